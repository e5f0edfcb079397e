#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Processes a script starts itself, stopped by PID (never by name): sourced
# by scripts/ and tests/ (tests/e2e/lib.sh).
#
#   . scripts/lib/procs.sh
#   some-daemon ... & track_pid $!      # or: bg_in NS LOG command...
#   redis_start NS PORT DIR             # redis-server, answering PING, or 1
#   wait_port NS tcp 127.0.0.1:6379 10  # something listens there
#   stop_procs                          # in the EXIT trap: TERM, 5 s, KILL
#
# NS "" means this script's own network namespace.

TRACKED_PIDS=()

track_pid() { TRACKED_PIDS+=("$@"); }

# in_ns NS command...: runs it in NS, or here when NS is "".
in_ns() {
  local ns=$1; shift
  if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# bg_in NS LOG command...: in the background, output to LOG, PID tracked
# (and in BG_PID). The PID is the command's own (ip netns exec execs it), so
# that a signal sent to it reaches the command: never a function or a
# subshell in the background here, whose PID would be a bash that dies of
# the signal and leaves the command running.
bg_in() {
  local ns=$1 log=$2; shift 2
  if [ -n "$ns" ]; then
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
  else
    "$@" >"$log" 2>&1 &
  fi
  BG_PID=$!
  track_pid "$BG_PID"
}

stop_pid() {  # PID [SIGNAL]: the signal (TERM), up to 5 s, then KILL
  local pid=$1 sig=${2:-TERM}
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_procs() {  # every tracked PID; the list starts empty again
  local pid
  for pid in "${TRACKED_PIDS[@]:-}"; do [ -n "$pid" ] && stop_pid "$pid"; done
  TRACKED_PIDS=()
}

wait_port() {  # NS tcp|udp IP:PORT [TIMEOUT_S=10]: 0 once something listens there
  local ns=$1 proto=$2 addr=$3 t=${4:-10}
  local flag=-tln
  [ "$proto" = udp ] && flag=-uln
  for _ in $(seq 1 $((t * 10))); do
    in_ns "$ns" ss $flag 2>/dev/null | grep -qF " $addr " && return 0
    sleep 0.1
  done
  return 1
}

# redis_start NS PORT DIR: a throw-away redis-server on 127.0.0.1:PORT (no
# persistence, its log DIR/redis.log), tracked, PID in REDIS_PID; 1 if it
# does not answer PING within 5 s.
redis_start() {
  local ns=$1 port=$2 dir=$3
  bg_in "$ns" "$dir/redis.log" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir"
  REDIS_PID=$BG_PID
  for _ in $(seq 1 50); do
    [ "$(in_ns "$ns" redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
