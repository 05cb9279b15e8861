#!/bin/sh
# A provisioning program for `vdi-cluster worker --provisioner command`:
# one Docker container per exam session, reached over VNC.
#
# The worker runs it once per action, with (see `cargo doc`, module
# vdi_cluster_node::provision):
#   VDI_ACTION       allocate | release | prewarm | discard | check
#   VDI_WORKER_CODE  this worker's code
#   VDI_EXAM_ID      the exam;  VDI_USER_ID  the student (allocate, release)
#   VDI_SESSION      release: the JSON this program printed for allocate
#   VDI_MACHINE      allocate of a prewarmed machine, discard: the JSON it
#                    printed for prewarm
#   VDI_NETWORK_POLICY  prewarm, allocate, check: set when the desktop is
#                    restricted — by its exam's own policy (booked on the
#                    calendar) or else the worker's EXAM_RESTRICT_INTERNET
#                    and EXAM_ALLOWED_*: the policy
#                    as JSON, applied to each container's address by
#                    `vdi-cluster network-rules` (nftables; needs root).
#                    Under a strict policy a container whose rules cannot
#                    be applied is removed and the action fails.
# allocate and prewarm print one JSON object on standard output (allocate's
# is handed to the exam application untouched); exit status 0 is success,
# anything else fails the action with the end of standard error as reason.
# check is an exam's rehearsal (docs/rehearsal.md): it starts one test
# container of the exam, applies its network rules, stops it, and prints
# {"image","imagePresent","startMs","checks":[{"name","ok","detail"}]}:
# imagePresent false (exit 0) when the image is not pulled, a failed check
# by name, a non-zero exit when the test container did not start.
#
# Adapt the image, ports and connection details to your exam environment.
set -eu

IMAGE="${EXAM_IMAGE_NAME:-sot-exam-linux:latest}"
CPUS="${EXAM_VM_CPUS:-1.5}"
MEMORY_MB="${EXAM_VM_MEMORY_MB:-2048}"
HOST="${EXAM_PUBLIC_HOST:-127.0.0.1}"
USERNAME="${EXAM_VM_USERNAME:-student}"
VDI_CLUSTER="${VDI_CLUSTER_BIN:-vdi-cluster}"

# Container names allow [a-zA-Z0-9_.-]: map anything else to '_', and add a
# hash so that two ids differing only in such characters never collide.
name_of() {
  clean=$(printf '%s' "$1" | tr -c 'a-zA-Z0-9_.-' '_' | cut -c1-80)
  hash=$(printf '%s' "$1" | sha256sum | cut -c1-12)
  printf 'vdi-%s-%s' "$clean" "$hash"
}

json_string() {
  printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

vnc_port() {
  docker port "$1" 5901/tcp | head -n1 | sed 's/.*://'
}

field() { # field NAME JSON → the string value of "NAME" (flat objects only)
  printf '%s' "$2" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}

addresses() { # addresses NAME → the container's addresses, one a line
  docker inspect -f '{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}' "$1" |
    sed '/^$/d'
}

restrict() { # restrict NAME → the network policy on NAME's addresses
  [ -n "${VDI_NETWORK_POLICY:-}" ] || return 0
  for addr in $(addresses "$1"); do
    # Exits non-zero only when a strict policy could not be applied.
    if ! "$VDI_CLUSTER" network-rules apply --address "$addr" >&2; then
      docker rm -f "$1" >/dev/null 2>&1 || true
      echo "exam desktop $1 not started: its network rules could not be applied" >&2
      exit 1
    fi
  done
}

unrestrict() { # unrestrict NAME → removes the rules of NAME's addresses
  command -v "$VDI_CLUSTER" >/dev/null 2>&1 || return 0
  for addr in $(addresses "$1" 2>/dev/null); do
    "$VDI_CLUSTER" network-rules remove --address "$addr" >&2 || true
  done
}

start() { # start NAME → runs an idle container named NAME
  docker run -d --name "$1" --cpus "$CPUS" --memory "${MEMORY_MB}m" \
    --label vdi-cluster=session -p 0:5901 "$IMAGE" >/dev/null
}

case "$VDI_ACTION" in
  prewarm)
    name=$(name_of "warm-$VDI_EXAM_ID-$(date +%s%N)")
    start "$name"
    restrict "$name"
    printf '{"container":%s}\n' "$(json_string "$name")"
    ;;
  allocate)
    name=$(name_of "$VDI_EXAM_ID/$VDI_USER_ID")
    warm=$(field container "${VDI_MACHINE:-}")
    if docker inspect "$name" >/dev/null 2>&1; then
      :  # already running (the worker restarted): hand it out again
    elif [ -n "$warm" ]; then
      docker rename "$warm" "$name"
      # Prewarmed under a policy the exam no longer has: lift its rules
      # (a restricting policy replaces them below).
      [ -n "${VDI_NETWORK_POLICY:-}" ] || unrestrict "$name"
    else
      start "$name"
    fi
    restrict "$name"
    port=$(vnc_port "$name")
    printf '{"protocol":"vnc","host":%s,"port":%s,"username":%s,"container":%s}\n' \
      "$(json_string "$HOST")" "$port" "$(json_string "$USERNAME")" "$(json_string "$name")"
    ;;
  release)
    name=$(name_of "$VDI_EXAM_ID/$VDI_USER_ID")
    unrestrict "$name"
    docker rm -f "$name" >/dev/null 2>&1 || true
    ;;
  discard)
    warm=$(field container "${VDI_MACHINE:-}")
    if [ -n "$warm" ]; then
      unrestrict "$warm"
      docker rm -f "$warm" >/dev/null 2>&1 || true
    fi
    ;;
  check)
    if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
      printf '{"image":%s,"imagePresent":false}\n' "$(json_string "$IMAGE")"
      exit 0
    fi
    name=$(name_of "check-$VDI_EXAM_ID-$(date +%s%N)")
    began=$(date +%s%3N)
    start "$name"
    started=$(date +%s%3N)
    allow='{"name":"network-allow-list","ok":true}'
    if [ -n "${VDI_NETWORK_POLICY:-}" ]; then
      for addr in $(addresses "$name"); do
        if ! "$VDI_CLUSTER" network-rules apply --address "$addr" >&2; then
          allow='{"name":"network-allow-list","ok":false,"detail":"the rules could not be applied"}'
        fi
      done
      unrestrict "$name"
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    printf '{"image":%s,"imagePresent":true,"startMs":%s,"checks":[%s]}\n' \
      "$(json_string "$IMAGE")" "$((started - began))" "$allow"
    ;;
  *)
    echo "unknown VDI_ACTION: ${VDI_ACTION:-}" >&2
    exit 2
    ;;
esac
