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
# postgres://postgres@127.0.0.1:5432/DB (state written there is kept: use
# a scratch database or Redis prefix). VDI_BIN_DIR picks the binaries
# (default target/release).
set -euo pipefail
cd "$(dirname "$0")/../.."

store=${1:-memory}
duration=${2:-20s}
connections=${3:-64}
bin=${VDI_BIN_DIR:-target/release}/vdi-cluster
port=18090
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin not found: cargo build --release -p vdi-cluster-server" >&2; exit 1; }

secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
JWT_SECRET=$(secret)
WORKER_CLUSTER_TOKEN=$(secret)
WORKER_HEARTBEAT_TOKEN=$(secret)
export JWT_SECRET WORKER_CLUSTER_TOKEN WORKER_HEARTBEAT_TOKEN
export RUST_LOG=warn
logs=$(mktemp -d)
pids=()
stop() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop EXIT

"$bin" serve --listen "127.0.0.1:$port" --store "$store" >"$logs/serve.log" 2>&1 &
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
