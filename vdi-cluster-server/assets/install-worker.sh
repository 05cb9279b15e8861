#!/bin/sh
# Installs the vdi-cluster worker agent on this host and joins it to the
# control plane at @CONTROL_PLANE@
# (POST /api/vdi/workers/install-script, generated @GENERATED_AT@).
#
#   sh install-worker.sh [--prefix DIR] [--no-systemd] [--uninstall]
#       [--code CODE] [--listen ADDR] [--api-base-url URL] [--set NAME=VALUE]...
#       [--lab-ca DIR] [--upgrade [--force REASON]]
#
# As root, without options: the agent (downloaded from the control plane and
# checked against its SHA-256) goes to /usr/local/bin/vdi-cluster, its
# settings to /etc/vdi-cluster/worker.env (mode 0600), its credential to
# /var/lib/vdi-cluster/, and the systemd unit vdi-cluster-worker.service
# starts it now and at boot. The script waits for the first heartbeat the
# control plane accepts and prints the worker's status.
#
# --prefix DIR --no-systemd installs under DIR (bin/, etc/, var/) and runs
# the agent in the foreground: for tests and hosts without systemd.
# --code names the worker (default: the host name), --listen is the address
# of its API (default 0.0.0.0:3001), --api-base-url how the control plane
# reaches it (default http://<first address of this host>:<port>), --set
# adds a setting to worker.env (`vdi-cluster worker --help` lists them).
# --lab-ca DIR: DIR holds a lab's private CA (ca.crt and ca.key, as
# examples/deploy/lab-ca.sh writes them); with openssl the script issues
# this worker's certificate (CN and a DNS name: its code; also this host's
# address and 127.0.0.1), keeps it with ca.crt in etc/tls/, and turns on
# TLS and mutual TLS (VDI_TLS_*): the API speaks https (the default
# --api-base-url too) and the control plane is verified with the CA.
#
# --upgrade (on a host where an agent is installed, with a script the
# control plane generated since its own upgrade): first asks the control
# plane to clear the upgrade with the change freeze (POST
# /api/vdi/workers/CODE/upgrade, with an ADMIN token in VDI_ADMIN_TOKEN),
# which refuses while taking this worker out would leave an exam under way
# short, naming the exams and the time it is safe from; --force REASON
# overrides that (audited). Then it replaces the agent and restarts it.
#
# Running the script again changes nothing; --uninstall stops the agent
# (the systemd unit, or the process a run without systemd started, even if
# that run's script was stopped without it), which deregisters, and removes
# what it wrote. The join token below is valid once, until @EXPIRES_AT@.
set -eu

CONTROL_PLANE='@CONTROL_PLANE@'
JOIN_TOKEN='@JOIN_TOKEN@'
CLUSTER_TOKEN='@CLUSTER_TOKEN@'
AGENT_SHA256='@AGENT_SHA256@'
AGENT_PLATFORM='@AGENT_PLATFORM@'
REQUESTED_CODE='@CODE@'
UNIT=vdi-cluster-worker
WAIT_SEC=120

prefix=''
systemd=yes
uninstall=no
upgrade=no
force_reason=''
listen='0.0.0.0:3001'
api_base_url=''
code=$REQUESTED_CODE
extra=''
lab_ca=''

die() {
    echo "install-worker: $*" >&2
    exit 1
}

say() {
    echo "install-worker: $*"
}

# A value written between single quotes in worker.env.
quotable() {
    case "$1" in
        *"'"* | *'
'*) die "$2 must not contain a quote or a newline" ;;
    esac
}

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need_value "$1" $#; prefix=$2; shift 2 ;;
        --no-systemd) systemd=no; shift ;;
        --uninstall) uninstall=yes; shift ;;
        --upgrade) upgrade=yes; shift ;;
        --force) need_value "$1" $#; force_reason=$2; shift 2 ;;
        --code) need_value "$1" $#; code=$2; shift 2 ;;
        --listen) need_value "$1" $#; listen=$2; shift 2 ;;
        --api-base-url) need_value "$1" $#; api_base_url=$2; shift 2 ;;
        --lab-ca) need_value "$1" $#; lab_ca=$2; shift 2 ;;
        --set)
            need_value "$1" $#
            case "$2" in
                [A-Z_]*=*) ;;
                *) die "--set needs NAME=VALUE, got $2" ;;
            esac
            quotable "$2" "--set"
            extra="$extra$2
"
            shift 2
            ;;
        *) die "unknown option: $1" ;;
    esac
done

[ -z "$force_reason" ] || [ "$upgrade" = yes ] || die "--force goes with --upgrade"

if [ -n "$prefix" ]; then
    mkdir -p "$prefix"
    prefix=$(cd "$prefix" && pwd)
    bin_dir=$prefix/bin
    etc_dir=$prefix/etc
    state_dir=$prefix/var
else
    [ "$(id -u)" -eq 0 ] || die "run as root, or with --prefix DIR --no-systemd"
    bin_dir=/usr/local/bin
    etc_dir=/etc/vdi-cluster
    state_dir=/var/lib/vdi-cluster
fi
bin=$bin_dir/vdi-cluster
env_file=$etc_dir/worker.env
credential_file=$state_dir/credential
pid_file=$state_dir/agent.pid
tls_dir=$etc_dir/tls
if [ -n "$lab_ca" ] && [ "$uninstall" = no ]; then
    if [ ! -f "$lab_ca/ca.crt" ] || [ ! -f "$lab_ca/ca.key" ]; then
        die "--lab-ca $lab_ca needs ca.crt and ca.key"
    fi
    command -v openssl >/dev/null 2>&1 || die "--lab-ca needs openssl"
    command -v curl >/dev/null 2>&1 || die "--lab-ca needs curl"
fi

# curl towards the control plane and this worker: with TLS, verified with
# the CA and presenting this worker's certificate once it has one.
tls_curl() {
    if [ -f "$tls_dir/worker.crt" ]; then
        curl --cacert "$tls_dir/ca.crt" --cert "$tls_dir/worker.crt" \
            --key "$tls_dir/worker.key" "$@"
    elif [ -n "$lab_ca" ]; then
        curl --cacert "$lab_ca/ca.crt" "$@"
    else
        curl "$@"
    fi
}
unit_file=/etc/systemd/system/$UNIT.service

# Whether process $1 is the agent this script started from $bin (its
# executable, even once deleted, or its command line).
is_our_agent() {
    kill -0 "$1" 2>/dev/null || return 1
    exe=$(readlink "/proc/$1/exe" 2>/dev/null || true)
    case "$exe" in
        "$bin" | "$bin (deleted)") return 0 ;;
    esac
    ps -o args= -p "$1" 2>/dev/null | grep -q "^$bin worker"
}

# Stops the agent a run without systemd started and left running (its
# script was stopped without it): SIGTERM, on which it deregisters; if it
# has not exited after 30 s, SIGKILL and the deregistration sent here, with
# its own credential.
stop_foreground_agent() {
    [ -f "$pid_file" ] || return 0
    pid=$(cat "$pid_file")
    if is_our_agent "$pid"; then
        say "stopping the agent (process $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        waited=0
        while is_our_agent "$pid" && [ "$waited" -lt 30 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        if is_our_agent "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            deregister_here
        fi
    fi
    rm -f "$pid_file"
}

# Deregisters the worker with its own credential (best effort).
deregister_here() {
    [ -f "$env_file" ] && [ -f "$credential_file" ] || return 0
    worker=$(sed -n "s/^WORKER_CODE='\(.*\)'$/\1/p" "$env_file")
    secret=$(head -n 1 "$credential_file")
    [ -n "$worker" ] && [ -n "$secret" ] || return 0
    tls_curl -fsS -X POST -H "x-worker-token: $secret" \
        "$CONTROL_PLANE/api/vdi/workers/$worker/deregister" >/dev/null 2>&1 || true
}

if [ "$uninstall" = yes ]; then
    if [ "$systemd" = yes ] && [ -f "$unit_file" ]; then
        systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
        rm -f "$unit_file"
        systemctl daemon-reload || true
    fi
    stop_foreground_agent
    rm -f "$bin" "$env_file" "$credential_file"
    rm -f "$tls_dir/worker.crt" "$tls_dir/worker.key" "$tls_dir/ca.crt" "$tls_dir/ca.srl"
    rmdir "$tls_dir" 2>/dev/null || true
    rmdir "$state_dir" "$etc_dir" 2>/dev/null || true
    if [ -n "$prefix" ]; then
        rmdir "$bin_dir" "$prefix" 2>/dev/null || true
    fi
    say "uninstalled"
    exit 0
fi

platform="$(uname -s) $(uname -m)"
[ "$platform" = "$AGENT_PLATFORM" ] ||
    die "this host is $platform; the control plane serves an agent for $AGENT_PLATFORM"

fetch() {
    if command -v curl >/dev/null 2>&1; then
        tls_curl -fsS -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        die "needs curl or wget"
    fi
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    else
        shasum -a 256 "$1" | cut -d ' ' -f 1
    fi
}

# Asks the control plane to clear an upgrade of this worker's agent with
# the change freeze; stops here when it refuses.
clear_upgrade() {
    [ -f "$env_file" ] || die "--upgrade: no agent is installed here ($env_file)"
    [ -n "${VDI_ADMIN_TOKEN:-}" ] || die "--upgrade needs an ADMIN token in VDI_ADMIN_TOKEN"
    command -v curl >/dev/null 2>&1 || die "--upgrade needs curl"
    worker=$(sed -n "s/^WORKER_CODE='\(.*\)'$/\1/p" "$env_file")
    [ -n "$worker" ] || die "--upgrade: no WORKER_CODE in $env_file"
    set -- -sS -o "$state_dir/upgrade.answer" -w '%{http_code}' -X POST \
        -H "authorization: Bearer $VDI_ADMIN_TOKEN"
    if [ -n "$force_reason" ]; then
        set -- "$@" -G --data-urlencode "force=true" --data-urlencode "reason=$force_reason"
    fi
    answer=$(tls_curl "$@" "$CONTROL_PLANE/api/vdi/workers/$worker/upgrade") ||
        die "--upgrade: the control plane did not answer"
    body=$(cat "$state_dir/upgrade.answer" 2>/dev/null || true)
    rm -f "$state_dir/upgrade.answer"
    case "$answer" in
        204) say "the control plane cleared the upgrade of $worker" ;;
        409) die "the change freeze refuses the upgrade now (retry after safeFrom, or --force REASON): $body" ;;
        *) die "--upgrade: the control plane answered $answer: $body" ;;
    esac
}

mkdir -p "$bin_dir" "$etc_dir" "$state_dir"
chmod 0700 "$state_dir"

# The agent: the control plane's own build, checked before it is used.
if [ -f "$bin" ] && [ "$(sha256 "$bin")" = "$AGENT_SHA256" ]; then
    say "agent already installed: $bin"
    upgrade=no
else
    [ "$upgrade" = no ] || clear_upgrade
    download="$bin.download"
    fetch "$CONTROL_PLANE/api/vdi/agent/vdi-cluster" "$download"
    got=$(sha256 "$download")
    if [ "$got" != "$AGENT_SHA256" ]; then
        rm -f "$download"
        die "the agent's SHA-256 is $got, expected $AGENT_SHA256"
    fi
    chmod 0755 "$download"
    mv "$download" "$bin"
    say "installed $bin"
fi

# This worker's certificate from the lab's CA: CN and a DNS name its code,
# the address of its API and 127.0.0.1 (the script's own status calls).
issue_certificate() {
    host=${api_base_url#*://}
    host=${host%%/*}
    host=${host%:*}
    san="DNS:$code,IP:127.0.0.1"
    case $host in
        127.0.0.1 | "") ;;
        *[!0-9.]*) san="$san,DNS:$host" ;;
        *) san="$san,IP:$host" ;;
    esac
    mkdir -p "$tls_dir"
    cp "$lab_ca/ca.crt" "$tls_dir/ca.crt"
    ext=$tls_dir/worker.ext
    csr=$tls_dir/worker.csr
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" >"$ext"
    (
        umask 077
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$tls_dir/worker.key" -out "$csr" -subj "/CN=$code" 2>/dev/null
    ) || die "openssl could not make this worker's key"
    openssl x509 -req -in "$csr" -CA "$lab_ca/ca.crt" -CAkey "$lab_ca/ca.key" \
        -CAserial "$tls_dir/ca.srl" -CAcreateserial -days 825 -sha256 \
        -extfile "$ext" -out "$tls_dir/worker.crt" 2>/dev/null ||
        die "openssl could not sign this worker's certificate with $lab_ca/ca.key"
    rm -f "$ext" "$csr"
    say "issued $tls_dir/worker.crt for $san"
}

# The settings, written once: a second run keeps them (and the credential
# the first run's join earned).
if [ -f "$env_file" ]; then
    say "keeping $env_file"
else
    if [ -z "$code" ]; then
        code=$(printf '%s' "$(hostname)" | tr '[:upper:]' '[:lower:]' |
            tr -c 'a-z0-9._-' '-' | sed 's/^[^a-z0-9]*//' | cut -c 1-64)
        [ -n "$code" ] || code=worker
    fi
    port=${listen##*:}
    if [ -z "$api_base_url" ]; then
        address=$(hostname -I 2>/dev/null | cut -d ' ' -f 1)
        [ -n "$address" ] || die "cannot tell this host's address: give --api-base-url"
        scheme=http
        [ -z "$lab_ca" ] || scheme=https
        api_base_url="$scheme://$address:$port"
    fi
    quotable "$code" "--code"
    quotable "$listen" "--listen"
    quotable "$api_base_url" "--api-base-url"
    tls_settings=''
    if [ -n "$lab_ca" ]; then
        issue_certificate
        tls_settings="VDI_TLS_CA=$tls_dir/ca.crt
VDI_TLS_CERT=$tls_dir/worker.crt
VDI_TLS_KEY=$tls_dir/worker.key
VDI_TLS_REQUIRE_CLIENT_CERT=true
"
        quotable "$tls_dir" "--prefix"
    fi
    (
        umask 077
        {
            echo "# vdi-cluster worker settings, written by the install script."
            echo "CONTROL_PLANE_API_BASE='$CONTROL_PLANE/api'"
            echo "WORKER_CODE='$code'"
            echo "WORKER_LISTEN='$listen'"
            echo "WORKER_API_BASE_URL='$api_base_url'"
            echo "WORKER_CLUSTER_TOKEN='$CLUSTER_TOKEN'"
            echo "WORKER_JOIN_TOKEN='$JOIN_TOKEN'"
            echo "WORKER_CREDENTIAL_FILE='$credential_file'"
            echo "WORKER_DEREGISTER_ON_EXIT='true'"
            printf '%s%s' "$tls_settings" "$extra" | while IFS='=' read -r name value; do
                echo "$name='$value'"
            done
        } >"$env_file.new"
    )
    chmod 0600 "$env_file.new"
    mv "$env_file.new" "$env_file"
    say "wrote $env_file"
fi

# The settings as the agent will read them.
WORKER_LISTEN=$listen
WORKER_CLUSTER_TOKEN=$CLUSTER_TOKEN
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

# Waits until the agent reports a heartbeat the control plane accepted
# (its own status API), then prints that status. $1: the agent's process
# id when it runs in the foreground.
wait_for_heartbeat() {
    scheme=http
    [ -z "${VDI_TLS_CERT:-}" ] || scheme=https
    status_url="$scheme://127.0.0.1:${WORKER_LISTEN##*:}/api/vdi/cluster/status"
    waited=0
    while [ "$waited" -lt "$WAIT_SEC" ]; do
        if body=$(tls_curl -fsS -H "x-cluster-token: $WORKER_CLUSTER_TOKEN" "$status_url" 2>/dev/null) &&
            printf '%s' "$body" | grep -q '"heartbeatsOk":[1-9]'; then
            say "the control plane accepted a heartbeat; the worker's status:"
            printf '%s\n' "$body"
            return 0
        fi
        if [ -n "${1:-}" ] && ! kill -0 "$1" 2>/dev/null; then
            die "the agent exited before its first heartbeat"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    die "no accepted heartbeat after $WAIT_SEC s (journalctl -u $UNIT, or the agent's output)"
}

if [ "$systemd" = yes ]; then
    unit=$(
        cat <<EOF
# Written by the vdi-cluster install script.
[Unit]
Description=vdi-cluster worker agent
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
EnvironmentFile=$env_file
ExecStart=$bin worker
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF
    )
    if [ -f "$unit_file" ] && [ "$(cat "$unit_file")" = "$unit" ]; then
        say "keeping $unit_file"
    else
        printf '%s\n' "$unit" >"$unit_file"
        systemctl daemon-reload
        say "wrote $unit_file"
    fi
    systemctl enable --now "$UNIT" >/dev/null
    [ "$upgrade" = no ] || systemctl restart "$UNIT"
    wait_for_heartbeat
    exit 0
fi

# An upgrade replaces the agent a run without systemd left running.
[ "$upgrade" = no ] || stop_foreground_agent

# In the foreground: the agent runs until this script is stopped (SIGTERM
# or Ctrl-C, passed on so that it deregisters first).
# Its process id is kept, so that --uninstall stops it even if this script
# was stopped without it.
"$bin" worker &
agent=$!
echo "$agent" >"$pid_file"
trap 'kill -TERM "$agent" 2>/dev/null || true' INT TERM
wait_for_heartbeat "$agent"
status=0
wait "$agent" || status=$?
if kill -0 "$agent" 2>/dev/null; then
    status=0
    wait "$agent" || status=$?
fi
rm -f "$pid_file"
exit "$status"
