#!/usr/bin/env bash
# A private Docker engine for the tests (and CI), in one short directory, without touching the
# host's network: no iptables, no bridge. Needs root and apt's docker.io + busybox-static.
#
#   eval "$(scripts/dockerd.sh start /tmp/pd-ci)"   # starts dockerd, builds the test image,
#                                                  # prints `export DOCKER_HOST=unix://DIR/docker.sock`
#   scripts/dockerd.sh stop /tmp/pd-ci              # removes its containers, stops dockerd by PID
#
# DIR must be short: the socket path DIR/docker.sock is limited to ~100 characters. Without DIR,
# `start` creates /tmp/pd-XXXXXX. Progress goes to stderr; stdout carries only the export lines.
# The test image `provisioning-test/busybox:latest` is built offline from the host's busybox:
# `/bin/busybox` plus `/www/health`, running `busybox httpd -f -p 8080 -h /www` by default.
set -euo pipefail

IMAGE=provisioning-test/busybox:latest
log() { printf 'dockerd.sh: %s\n' "$*" >&2; }

ping_engine() { curl -sf --max-time 2 --unix-socket "$1/docker.sock" http://localhost/_ping >/dev/null 2>&1; }

build_image() {
  local dir=$1 sock="unix://$1/docker.sock" work
  if docker -H "$sock" image inspect "$IMAGE" >/dev/null 2>&1; then return 0; fi
  work=$(mktemp -d "$dir/image.XXXXXX")
  mkdir -p "$work/rootfs/bin" "$work/rootfs/www" "$work/rootfs/tmp"
  cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
  ln -s busybox "$work/rootfs/bin/sh"
  echo ok >"$work/rootfs/www/health"
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  docker -H "$sock" import \
    --change 'CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]' \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
  rm -rf "$work"
  log "built $IMAGE"
}

start() {
  local dir=${1:-}
  if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/pd-XXXXXX); fi
  mkdir -p "$dir/root" "$dir/exec"
  dir=$(cd "$dir" && pwd)
  if [ ${#dir} -gt 80 ]; then
    log "directory path too long for a unix socket: $dir"
    exit 2
  fi
  if ping_engine "$dir"; then
    log "dockerd already answers on $dir/docker.sock"
  else
    command -v dockerd >/dev/null || { log "dockerd not found (apt-get install docker.io)"; exit 1; }
    # Remember a docker0 that is not ours, so `stop` deletes only one this engine created.
    if command -v ip >/dev/null && ip link show docker0 >/dev/null 2>&1; then
      touch "$dir/docker0.preexisting"
    fi
    # setsid: dockerd gets its own session, so a Ctrl+C in the caller's terminal does not reach it.
    setsid dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
      --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
      -H "unix://$dir/docker.sock" </dev/null >"$dir/dockerd.log" 2>&1 &
    local pid=$! deadline=$((SECONDS + 60))
    until ping_engine "$dir"; do
      if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
        log "dockerd did not come up; last lines of $dir/dockerd.log:"
        tail -n 20 "$dir/dockerd.log" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
      fi
      sleep 0.1
    done
    log "dockerd $pid answers on $dir/docker.sock"
  fi
  build_image "$dir"
  echo "export DOCKER_HOST=unix://$dir/docker.sock"
  echo "export PROVISIONING_DOCKERD_DIR=$dir"
}

stop() {
  local dir=${1:?usage: dockerd.sh stop DIR}
  local sock="unix://$dir/docker.sock" pid=""
  [ -f "$dir/dockerd.pid" ] && pid=$(cat "$dir/dockerd.pid")
  if ping_engine "$dir"; then
    local ids
    ids=$(docker -H "$sock" ps -aq)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      docker -H "$sock" rm -f $ids >/dev/null || true
    fi
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--pidfile $dir/dockerd.pid"; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        log "dockerd $pid ignored SIGTERM for 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
      fi
      sleep 0.1
    done
    log "dockerd $pid stopped"
  else
    log "no dockerd of $dir is running"
  fi
  if [ ! -e "$dir/docker0.preexisting" ] && command -v ip >/dev/null &&
    ip link show docker0 >/dev/null 2>&1; then
    ip link delete docker0 || true
  fi
  # dockerd can leave a mount behind (e.g. exec/netns/default); they are all under DIR, so ours.
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if grep -q " $dir/" /proc/mounts; then
    log "mounts remain under $dir; leaving it in place"
  else
    rm -rf "$dir"
  fi
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
