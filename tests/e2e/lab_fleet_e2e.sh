#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/lab.sh --fleet, the fleet story (docs/fleet.md), end to end: it
# must run every step (two relay hosts on a Sentinel store, a call through
# each, a drain that redirects and empties, a host failover that keeps its
# call) and leave nothing behind.
#
#   tests/e2e/lab_fleet_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root
need_dataplane
need_tools chromium keepalived redis-server
before=$(ip netns list | awk '{print $1}' | sort)
DPTURN_BUILD=$BUILD timeout 400 "$ROOT/scripts/lab.sh" --fleet >"$E2E_TMP/lab-fleet.log" 2>&1
rc=$?
grep -E "^===|PASS|FAIL|^lab:" "$E2E_TMP/lab-fleet.log"
check "lab.sh --fleet ran every step (exit $rc)" test "$rc" = 0
check "it says so" grep -qx "lab: the fleet story ran" "$E2E_TMP/lab-fleet.log"
check "the redirected call landed on the other host" grep -q "PASS: a new call set up against a lands on b" "$E2E_TMP/lab-fleet.log"
check "the failed-over call went on" grep -q "PASS: b's call goes on through a" "$E2E_TMP/lab-fleet.log"
after=$(ip netns list | awk '{print $1}' | sort)
check "it removed its namespaces" test "$before" = "$after"
finish
