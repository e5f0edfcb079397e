#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/lab.sh, the reference story, end to end: it must run every step
# and print what the story promises (listeners on 3478/443/5349, the
# registered server reachable with a round trip, both clients in relay
# usage, then none). With turn-dataplane built, the same story again with
# the data plane owning the external interface (the dual-homed case: data
# for the inside bridge must leave through the kernel interface).
#
#   tests/e2e/lab_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root
if ! command -v chromium >/dev/null || [ ! -x /usr/bin/python3 ]; then
  echo "SKIP: needs Debian's chromium and /usr/bin/python3 (scripts/setup.sh installs them)"
  exit 77
fi

story() {  # name [lab.sh args]
  local name=$1; shift
  local out=$E2E_TMP/lab-$name.log
  log "scripts/lab.sh $*"
  DPTURN_BUILD=$BUILD timeout 120 "$ROOT/scripts/lab.sh" "$@" >"$out" 2>&1
  local rc=$?
  cat "$out"
  check "$name: lab.sh ran every step (exit $rc)" test "$rc" = 0
  check "$name: it says so" grep -qx "lab: the whole story ran" "$out"
  for l in "udp	10.81.1.1:3478" "tcp	10.81.1.1:3478" "tcp	10.81.1.1:443" "tls	10.81.1.1:5349" "udp	10.81.2.1:3478"; do
    check "$name: status shows ${l/	/ } up" grep -qF "  $l	up" "$out"
  done
  check "$name: the registered server's status: reachable with roundTripTimeMs" \
    grep -qE '"reachable": ?true' "$out"
  check "$name: roundTripTimeMs is a number" grep -qE '"roundTripTimeMs": ?[0-9.]+' "$out"
  check "$name: relay usage listed the outside browser" grep -qE '^  browser  (udp|tcp) 10\.81\.1\.2:[0-9]+ -> relay 10\.81\.1\.1:' "$out"
  check "$name: relay usage listed the inside bridge" grep -qE '^  bridge  udp 10\.81\.2\.2:[0-9]+ -> relay 10\.81\.1\.1:' "$out"
  check "$name: relay usage empty at the end" grep -q '^0 active allocation(s)' "$out"
  local nss; nss=$(sed -n 's/^namespaces: //p' "$out")
  check "$name: lab.sh named its namespaces ($nss)" test -n "$nss"
  for ns in $nss; do
    check "$name: namespace $ns removed at the end" bash -c "! ip netns list | grep -qw '$ns'"
  done
}

story control
if [ -x "$BUILD/dataplane/turn-dataplane" ]; then
  story dataplane --dataplane
fi
finish
