#!/bin/sh
# One command per step for a worker node, as the exam platform's runbooks
# run theirs (docs/compat/exam-platform-runbook.md):
#
#   ./bootstrap-worker.sh up      install the agent and its settings, start it
#                                 as vdi-cluster-worker.service, wait for the
#                                 first accepted heartbeat, print the status
#   ./bootstrap-worker.sh status  the unit's state and the worker's own view
#   ./bootstrap-worker.sh logs    follow the agent's log
#   ./bootstrap-worker.sh down    stop it (it deregisters first) and disable it
#
# Settings come from the runbook's env file: --env-file FILE, else
# ./.env.worker, else ./deploy/worker-node/.env.worker (start from
# examples/deploy/worker.env). `up` installs it as
# /etc/vdi-cluster/worker.env (mode 0600) and the binary given by
# VDI_CLUSTER_BIN (default: vdi-cluster on PATH) as
# /usr/local/bin/vdi-cluster. Running `up` again changes only what differs.
# Needs root and systemd (except for `status` and `logs`, which need
# systemctl and journalctl).
set -eu

UNIT=vdi-cluster-worker
BIN=/usr/local/bin/vdi-cluster
ETC_DIR=/etc/vdi-cluster
ENV=$ETC_DIR/worker.env
UNIT_FILE=/etc/systemd/system/$UNIT.service
WAIT_SEC=120

die() {
    echo "bootstrap-worker: $*" >&2
    exit 1
}

say() {
    echo "bootstrap-worker: $*"
}

usage() {
    die "usage: $0 up|status|logs|down [--env-file FILE]"
}

[ $# -ge 1 ] || usage
verb=$1
shift
env_file=''
while [ $# -gt 0 ]; do
    case "$1" in
        --env-file)
            [ $# -ge 2 ] || usage
            env_file=$2
            shift 2
            ;;
        *) usage ;;
    esac
done
if [ -z "$env_file" ]; then
    for candidate in ./.env.worker ./deploy/worker-node/.env.worker; do
        if [ -f "$candidate" ]; then
            env_file=$candidate
            break
        fi
    done
fi

# The value of NAME in an env file (the last one; quotes removed).
setting() {
    sed -n "s/^$1=//p" "$2" | tail -n 1 | sed "s/^[\"']//; s/[\"']\$//"
}

# The worker's own status API, from the installed settings.
status_json() {
    listen=$(setting WORKER_LISTEN "$ENV")
    port=${listen##*:}
    [ -n "$port" ] || port=$(setting WORKER_PUBLIC_PORT "$ENV")
    [ -n "$port" ] || port=3000
    token=$(setting WORKER_CLUSTER_TOKEN "$ENV")
    curl -fsS -H "x-cluster-token: $token" "http://127.0.0.1:$port/api/vdi/cluster/status"
}

# Copies $1 to $2 with mode $3 when they differ; succeeds when it copied.
install_changed() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        return 1
    fi
    install -m "$3" "$1" "$2"
}

unit_text() {
    cat <<EOF
# Written by bootstrap-worker.sh.
[Unit]
Description=vdi-cluster worker agent
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
EnvironmentFile=$ENV
ExecStart=$BIN worker
StateDirectory=vdi-cluster
StateDirectoryMode=0700
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF
}

up() {
    [ "$(id -u)" -eq 0 ] || die "up needs root"
    if [ -z "$env_file" ] || [ ! -f "$env_file" ]; then
        die "no env file: give --env-file, or create ./.env.worker from examples/deploy/worker.env"
    fi
    source_bin=${VDI_CLUSTER_BIN:-$(command -v vdi-cluster || true)}
    if [ -z "$source_bin" ] || [ ! -x "$source_bin" ]; then
        die "no vdi-cluster binary: put it on PATH or set VDI_CLUSTER_BIN"
    fi
    changed=no
    mkdir -p "$ETC_DIR"
    if [ "$source_bin" != "$BIN" ] && install_changed "$source_bin" "$BIN" 0755; then
        say "installed $BIN"
        changed=yes
    fi
    if install_changed "$env_file" "$ENV" 0600; then
        say "installed $ENV"
        changed=yes
    fi
    unit=$(mktemp)
    unit_text >"$unit"
    if install_changed "$unit" "$UNIT_FILE" 0644; then
        say "installed $UNIT_FILE"
        systemctl daemon-reload
        changed=yes
    fi
    rm -f "$unit"
    systemctl enable "$UNIT" >/dev/null 2>&1
    if [ "$changed" = yes ] && systemctl is-active --quiet "$UNIT"; then
        systemctl restart "$UNIT"
    else
        systemctl start "$UNIT"
    fi
    waited=0
    while [ "$waited" -lt "$WAIT_SEC" ]; do
        if body=$(status_json 2>/dev/null) &&
            printf '%s' "$body" | grep -q '"heartbeatsOk":[1-9]'; then
            say "the control plane accepted a heartbeat"
            printf '%s\n' "$body"
            return 0
        fi
        sleep 1
        waited=$((waited + 1))
    done
    die "no accepted heartbeat after $WAIT_SEC s: ./bootstrap-worker.sh logs"
}

case "$verb" in
    up) up ;;
    status)
        systemctl status --no-pager "$UNIT" || true
        if [ -f "$ENV" ]; then
            status_json && echo
        fi
        ;;
    logs) journalctl -u "$UNIT" -n 200 -f ;;
    down)
        [ "$(id -u)" -eq 0 ] || die "down needs root"
        systemctl disable --now "$UNIT"
        say "stopped; the settings stay in $ENV (up starts it again)"
        ;;
    *) usage ;;
esac
