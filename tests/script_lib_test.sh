#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/lib/procs.sh and netns.sh, which every script and e2e test starts
# and stops its processes with: the PID bg_in records is the command's own
# (a signal to it reaches the command, not a bash around it: a TERM or HUP
# test would otherwise signal the wrong process and leave the command
# running), stop_procs ends every tracked one, redis_start answers PING,
# netns_add/netns_del make and remove namespaces.
#
#   tests/script_lib_test.sh SOURCE_ROOT
set -uo pipefail
ROOT=$1
. "$ROOT/scripts/lib/procs.sh"
. "$ROOT/scripts/lib/netns.sh"
tmp=$(mktemp -d)
NS="dpt-lib-$$"
status=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; status=1; }
cleanup() { stop_procs; netns_del "$NS"; rm -rf "$tmp"; }
trap cleanup EXIT

comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
gone() { for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

bg_in "" "$tmp/sleep.log" sleep 60
sleeper=$BG_PID
sleep 0.2
[ "$(comm_of "$sleeper")" = sleep ] && ok "bg_in records the command's own PID" \
  || bad "bg_in's PID $sleeper is '$(comm_of "$sleeper")', not the command (sleep)"
# TERM, not HUP: a runner started under nohup passes SIGHUP on ignored, and
# a shell cannot un-ignore a signal it was started with (a CI run by hand
# under nohup failed here: "sleep survived a HUP to its PID").
kill -TERM "$sleeper"
gone "$sleeper" && ok "a signal to that PID reaches the command" || bad "sleep survived a TERM to its PID"

if [ "$(id -u)" = 0 ] && netns_add "$NS"; then
  ok "netns_add made $NS"
  bg_in "$NS" "$tmp/ns-sleep.log" sleep 60
  in_ns_sleeper=$BG_PID
  sleep 0.3
  [ "$(comm_of "$in_ns_sleeper")" = sleep ] && ok "bg_in NS: the PID is the command's, inside the namespace" \
    || bad "bg_in NS's PID $in_ns_sleeper is '$(comm_of "$in_ns_sleeper")', not sleep"
  [ "$(readlink "/proc/$in_ns_sleeper/ns/net")" = "$(ip netns exec "$NS" readlink /proc/self/ns/net)" ] \
    && ok "... and it runs in $NS" || bad "the command does not run in $NS"
  if command -v redis-server >/dev/null; then
    redis_start "$NS" 6399 "$tmp" && [ "$(comm_of "$REDIS_PID")" = redis-server ] \
      && ok "redis_start: redis-server answers PING in $NS, its PID tracked" || bad "redis_start (see $tmp/redis.log)"
    wait_port "$NS" tcp 127.0.0.1:6399 2 && ok "wait_port sees it listen" || bad "wait_port does not see redis listen"
    wait_port "$NS" tcp 127.0.0.1:6398 1 && bad "wait_port saw a port nothing listens on" || ok "wait_port: 1 for a port nothing listens on"
  fi
  tracked=("${TRACKED_PIDS[@]}")
  stop_procs
  left=0
  for p in "${tracked[@]}"; do gone "$p" || left=1; done
  [ "$left" = 0 ] && ok "stop_procs ends every tracked process" || bad "a tracked process outlived stop_procs"
  netns_del "$NS"
  ip netns list | grep -qw "$NS" && bad "netns_del left $NS" || ok "netns_del removed $NS"
else
  echo "note: not root or no network namespaces: the namespace checks are not run"
fi
exit $status
