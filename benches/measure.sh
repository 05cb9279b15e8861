#!/usr/bin/env bash
# Runs every measurement behind BENCHMARKS.md in one batch and writes the
# raw results to benches/results/<name>.txt: the command, the load average
# before and after, the JSON object of every run and the printed tables.
#
#   benches/measure.sh [NAME ...]
#
# With names (e.g. `surge-redis criterion`), only those; `benches/measure.sh
# --list` prints them. Redis and PostgreSQL come from REDIS_URL and
# DATABASE_URL (loopback only; every run uses a fresh key prefix or a
# fresh database and removes it afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

redis=${REDIS_URL:-redis://127.0.0.1:6379}
pg=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
http=http://127.0.0.1:18080
out=benches/results
lg=target/release/vdi-loadgen

# name | arguments of vdi-loadgen (or a command of its own)
jobs=(
    "surge-memory|surge --store memory"
    "surge-redis|surge --store $redis --booked"
    "surge-postgres|surge --store $pg --booked"
    "surge-redis-breakdown|surge --store $redis --breakdown --booked --runs 1"
    "surge-postgres-breakdown|surge --store $pg --breakdown --booked --runs 1"
    "surge-http-memory|surge --store $http --server-store memory --replicas 1"
    "surge-http-redis|surge --store $http --server-store $redis --replicas 1 --vs-in-process --booked"
    "surge-http-postgres|surge --store $http --server-store $pg --replicas 1"
    "heartbeat-memory|heartbeat --store memory"
    "heartbeat-redis|heartbeat --store $redis"
    "heartbeat-postgres|heartbeat --store $pg"
    "heartbeat-http-memory|heartbeat --store $http --server-store memory --replicas 1"
    "heartbeat-http-redis|heartbeat --store $http --server-store $redis --replicas 1"
    "steady-memory|steady --store memory"
    "steady-redis|steady --store $redis"
    "steady-postgres|steady --store $pg --rate 500"
    "seat-redis|seat --store $http --server-store $redis --replicas 1"
    "seat-storm|seat --storm --workers 4 --slots 60 --students 200 --window-secs 4 --storm-base-ms 200 --storm-k 0.5 --start-timeout-ms 2000 --retry-pause-ms 2000 --runs 3"
    "cover-redis|cover --store $redis"
    "cover-postgres|cover --store $pg"
    "gameday-redis|gameday --store $redis"
    "gameday-postgres|gameday --store $pg"
    "failover-redis|failover --store redis"
    "failover-redis-sync|failover --store redis --sync"
    "failover-postgres|failover --store postgres"
    "failover-postgres-sync|failover --store postgres --sync"
    "wrk-memory|!benches/wrk/run.sh memory 1s 64"
    "criterion|!cargo bench -p vdi-cluster-benches --bench domain"
    "criterion-request|!cargo bench -p vdi-cluster-benches --bench request"
)

if [ "${1:-}" = "--list" ]; then
    for job in "${jobs[@]}"; do echo "${job%%|*}"; done
    exit 0
fi

cargo build --release -q -p vdi-cluster-benches -p vdi-cluster-server
mkdir -p "$out"

selected=("$@")
wanted() {
    [ "${#selected[@]}" -eq 0 ] && return 0
    for w in "${selected[@]}"; do [ "$w" = "$1" ] && return 0; done
    return 1
}

for job in "${jobs[@]}"; do
    name=${job%%|*}
    args=${job#*|}
    wanted "$name" || continue
    file="$out/$name.txt"
    echo "== $name"
    {
        echo "### $name"
        case "$args" in
        !*)
            echo "\$ ${args#!}"
            echo "load before: $(cat /proc/loadavg)"
            # shellcheck disable=SC2086 # the job's words are its arguments
            ${args#!} 2>&1 | grep -v '^\s*Compiling\|^\s*Running\|^\s*Finished' ||
                echo "exit status $?"
            ;;
        *)
            echo "\$ vdi-loadgen $args"
            echo "load before: $(cat /proc/loadavg)"
            # shellcheck disable=SC2086 # the job's words are its arguments
            "$lg" $args --json 2>&1 || echo "exit status $? (a run was not correct, or failed)"
            ;;
        esac
        echo "load after: $(cat /proc/loadavg)"
    } >"$file"
    tail -n 3 "$file"
done
