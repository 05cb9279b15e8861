#!/usr/bin/env bash
# Drives POST /api/vdi/sessions with wrk (an independent HTTP load tool)
# against `vdi-cluster serve` and four `vdi-cluster worker --provisioner
# simulated` processes on loopback, each with room for about 4,000
# sessions and instant starts, then prints wrk's report.
#
#   cargo build --release -p vdi-cluster-server
#   benches/wrk/run.sh [STORE] [DURATION] [CONNECTIONS]
#
# STORE is memory (default), redis://127.0.0.1:6379 or
# postgres://postgres@127.0.0.1:5432/DB, on this machine only. A run on
# Redis uses a key prefix of its own (vdi-wrk-…) and deletes every key
# under it afterwards (SCAN + UNLINK, with redis-cli); a run on PostgreSQL
# creates a database of its own beside DB (vdi_wrk_…, with psql) and drops
# it afterwards — also when the run fails or is interrupted — so that
# nothing of one run is left for the next to measure. VDI_BIN_DIR picks
# the binaries (default target/release). The control plane does not pace
# starts (VDI_PACE_STARTS=false unless set), so the figures stay those of
# placements alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

store=${1:-memory}
duration=${2:-20s}
connections=${3:-64}
bin=${VDI_BIN_DIR:-target/release}/vdi-cluster
port=18090
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin not found: cargo build --release -p vdi-cluster-server" >&2; exit 1; }

# The run's own namespace on the store, and how to remove it.
run_id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
serve_store=$store
namespace=()
case "$store" in
memory) ;;
redis://* | postgres://* | postgresql://*)
    scheme=${store%%://*}
    rest=${store#*://}
    authority=${rest%%/*}
    host=${authority##*@}
    case "$host" in
    \[*) host=${host%%]*}] ;;
    *) host=${host%%:*} ;;
    esac
    case "$host" in
    127.* | localhost | "[::1]") ;;
    *) echo "STORE must be on this machine (127.0.0.1, localhost, [::1]), not $host" >&2; exit 1 ;;
    esac
    if [ "$scheme" = redis ]; then
        command -v redis-cli >/dev/null || { echo "redis-cli is not installed (apt-get install redis-tools)" >&2; exit 1; }
        namespace=(--redis-prefix "vdi-wrk-$run_id")
    else
        command -v psql >/dev/null || { echo "psql is not installed (apt-get install postgresql-client)" >&2; exit 1; }
        database="vdi_wrk_$run_id"
        query=""
        case "$rest" in *\?*) query="?${rest#*\?}" ;; esac
        serve_store="$scheme://$authority/$database$query"
    fi
    ;;
*) echo "STORE must be memory, redis://… or postgres://…, not $store" >&2; exit 1 ;;
esac
remove_namespace() {
    case "$store" in
    redis://*)
        redis-cli -u "$store" --scan --pattern "vdi-wrk-$run_id:*" |
            xargs -r -d '\n' -n 500 redis-cli -u "$store" unlink >/dev/null ||
            echo "warning: could not delete the keys under vdi-wrk-$run_id" >&2
        ;;
    postgres://* | postgresql://*)
        psql "$store" -v ON_ERROR_STOP=1 -qAt \
            -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null ||
            echo "warning: could not drop the database $database" >&2
        ;;
    esac
}
pids=()
stop() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    remove_namespace
}
trap stop EXIT
case "$store" in
postgres://* | postgresql://*)
    psql "$store" -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE \"$database\"" >/dev/null
    ;;
esac

secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
JWT_SECRET=$(secret)
WORKER_CLUSTER_TOKEN=$(secret)
WORKER_HEARTBEAT_TOKEN=$(secret)
export JWT_SECRET WORKER_CLUSTER_TOKEN WORKER_HEARTBEAT_TOKEN
export RUST_LOG=warn
logs=$(mktemp -d)

"$bin" serve --listen "127.0.0.1:$port" --store "$serve_store" "${namespace[@]}" \
    --pace-starts "${VDI_PACE_STARTS:-false}" >"$logs/serve.log" 2>&1 &
pids+=("$!")
for i in 1 2 3 4; do
    "$bin" worker --code "wrk-$i" --listen "127.0.0.1:$((port + 10 + i))" \
        --control-plane "http://127.0.0.1:$port/api" \
        --provisioner simulated --sim-start-latency-ms 0 --report-usage false \
        --total-cpus 6000 --total-memory-mb 8192000 >"$logs/worker-$i.log" 2>&1 &
    pids+=("$!")
done

admin=$("$bin" token)
summary() {
    curl -s "http://127.0.0.1:$port/api/vdi/workers/summary" -H "authorization: Bearer $admin"
}
for _ in $(seq 120); do
    summary 2>/dev/null | grep -q '"healthyWorkers":4' && break
    sleep 0.5
done
summary | grep -q '"healthyWorkers":4' || { echo "workers did not join; logs in $logs" >&2; exit 1; }
echo "before: $(summary)"

service=$("$bin" token --sub wrk --role SERVICE)
wrk -t2 -c"$connections" -d"$duration" --latency -s benches/wrk/allocate.lua \
    "http://127.0.0.1:$port" -- "$service"
echo "after:  $(summary)"
rm -rf "$logs"
