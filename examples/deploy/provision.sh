#!/bin/sh
# A provisioning program for `vdi-cluster worker --provisioner command`:
# one Docker container per exam session, reached over VNC.
#
# The worker runs it once per action, with (see `cargo doc`, module
# vdi_cluster_node::provision):
#   VDI_ACTION       allocate | release | prewarm | discard
#   VDI_WORKER_CODE  this worker's code
#   VDI_EXAM_ID      the exam;  VDI_USER_ID  the student (allocate, release)
#   VDI_SESSION      release: the JSON this program printed for allocate
#   VDI_MACHINE      allocate of a prewarmed machine, discard: the JSON it
#                    printed for prewarm
# allocate and prewarm print one JSON object on standard output (allocate's
# is handed to the exam application untouched); exit status 0 is success,
# anything else fails the action with the end of standard error as reason.
#
# Adapt the image, ports and connection details to your exam environment.
set -eu

IMAGE="${EXAM_IMAGE_NAME:-sot-exam-linux:latest}"
CPUS="${EXAM_VM_CPUS:-1.5}"
MEMORY_MB="${EXAM_VM_MEMORY_MB:-2048}"
HOST="${EXAM_PUBLIC_HOST:-127.0.0.1}"
USERNAME="${EXAM_VM_USERNAME:-student}"

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

start() { # start NAME → runs an idle container named NAME
  docker run -d --name "$1" --cpus "$CPUS" --memory "${MEMORY_MB}m" \
    --label vdi-cluster=session -p 0:5901 "$IMAGE" >/dev/null
}

case "$VDI_ACTION" in
  prewarm)
    name=$(name_of "warm-$VDI_EXAM_ID-$(date +%s%N)")
    start "$name"
    printf '{"container":%s}\n' "$(json_string "$name")"
    ;;
  allocate)
    name=$(name_of "$VDI_EXAM_ID/$VDI_USER_ID")
    warm=$(field container "${VDI_MACHINE:-}")
    if docker inspect "$name" >/dev/null 2>&1; then
      :  # already running (the worker restarted): hand it out again
    elif [ -n "$warm" ]; then
      docker rename "$warm" "$name"
    else
      start "$name"
    fi
    port=$(vnc_port "$name")
    printf '{"protocol":"vnc","host":%s,"port":%s,"username":%s,"container":%s}\n' \
      "$(json_string "$HOST")" "$port" "$(json_string "$USERNAME")" "$(json_string "$name")"
    ;;
  release)
    docker rm -f "$(name_of "$VDI_EXAM_ID/$VDI_USER_ID")" >/dev/null 2>&1 || true
    ;;
  discard)
    warm=$(field container "${VDI_MACHINE:-}")
    [ -z "$warm" ] || docker rm -f "$warm" >/dev/null 2>&1 || true
    ;;
  *)
    echo "unknown VDI_ACTION: ${VDI_ACTION:-}" >&2
    exit 2
    ;;
esac
