#!/bin/sh
# scale-hook.sh: a sample scale hook for `vdi-cluster serve --scale-command`.
#
# It starts and stops *simulated* workers on this machine (`vdi-cluster
# worker` with the simulated provisioner, on loopback ports): enough to see
# capacity on schedule work end to end, and what the tests run. A real hook
# calls a cloud's instance API instead (docs/capacity.md shows how).
#
# The control plane runs it with VDI_ACTION=scale_up or scale_down and one
# JSON object on standard input (docs/capacity.md):
#   scale_up:   {"requestId", "slots", "constraints", "deadline", "examIds"}
#               prints {"workers": ["code", ...]}: the codes the new workers
#               register under. Run again for the same requestId, it answers
#               the same codes and starts nothing.
#   scale_down: {"requestId", "workers"}: stops them.
#
# Settings (environment):
#   VDI_SCALE_STATE_DIR         where the workers' pid files and logs live
#                               (/tmp/vdi-scale-hook)
#   VDI_SCALE_WORKER_BIN        the agent binary (vdi-cluster)
#   VDI_SCALE_CONTROL_PLANE     the control plane's URL (http://127.0.0.1:8080)
#   VDI_SCALE_SLOTS_PER_WORKER  slots of each worker started (4)
#   VDI_SCALE_TOKENS_FILE       a file setting WORKER_CLUSTER_TOKEN and
#                               WORKER_HEARTBEAT_TOKEN for the workers (the
#                               control plane never passes its secrets on)
set -eu

state=${VDI_SCALE_STATE_DIR:-/tmp/vdi-scale-hook}
bin=${VDI_SCALE_WORKER_BIN:-vdi-cluster}
control_plane=${VDI_SCALE_CONTROL_PLANE:-http://127.0.0.1:8080}
per_worker=${VDI_SCALE_SLOTS_PER_WORKER:-4}

if [ -n "${VDI_SCALE_TOKENS_FILE:-}" ]; then
    # shellcheck source=/dev/null
    . "$VDI_SCALE_TOKENS_FILE"
    export WORKER_CLUSTER_TOKEN WORKER_HEARTBEAT_TOKEN
fi

order=$(cat)
string_field() {
    printf '%s' "$order" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}
number_field() {
    printf '%s' "$order" | sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p"
}

request=$(string_field requestId)
[ -n "$request" ] || { echo "no requestId in the order" >&2; exit 2; }
# A short, code-safe name for the request.
tag=$(printf '%s' "$request" | cksum | cut -d ' ' -f 1)
dir="$state/$tag"
mkdir -p "$dir"

answer() {
    printf '{"workers":['
    sep=''
    for pid_file in "$dir"/*.pid; do
        [ -e "$pid_file" ] || continue
        printf '%s"%s"' "$sep" "$(basename "$pid_file" .pid)"
        sep=','
    done
    printf ']}\n'
}

start_worker() {
    code=$1
    zone=$(string_field zone)
    if [ -n "$zone" ]; then
        export WORKER_ZONE="$zone"
    fi
    # Port 0: each agent takes a free loopback port and tells the control
    # plane where it listens.
    WORKER_CODE="$code" \
    WORKER_LISTEN=127.0.0.1:0 \
    CONTROL_PLANE_API_BASE="$control_plane" \
    VDI_PROVISIONER=simulated \
    WORKER_REPORT_USAGE=false \
    VM_CPU_CORES=1 VM_MEMORY_MB=1024 \
    WORKER_RESERVED_CPUS=0 WORKER_RESERVED_MEMORY_MB=0 \
    WORKER_TOTAL_CPUS="$per_worker" \
    WORKER_TOTAL_MEMORY_MB=$((per_worker * 1024)) \
        nohup "$bin" worker </dev/null >"$dir/$code.log" 2>&1 &
    echo $! >"$dir/$code.pid"
}

case "${VDI_ACTION:-}" in
scale_up)
    if ! ls "$dir"/*.pid >/dev/null 2>&1; then
        slots=$(number_field slots)
        count=$(((${slots:-1} + per_worker - 1) / per_worker))
        n=1
        while [ "$n" -le "$count" ]; do
            start_worker "scale-$tag-$n"
            n=$((n + 1))
        done
    fi
    answer
    ;;
scale_down)
    for pid_file in "$dir"/*.pid; do
        [ -e "$pid_file" ] || continue
        pid=$(cat "$pid_file")
        kill "$pid" 2>/dev/null || true
        tries=0
        while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 50 ]; do
            sleep 0.2
            tries=$((tries + 1))
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pid_file"
    done
    ;;
*)
    echo "VDI_ACTION must be scale_up or scale_down" >&2
    exit 2
    ;;
esac
