#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/: the example configs parse (turn-control --check-config,
# turn-dataplane --check-config) and the systemd units pass
# `systemd-analyze verify` (with the binaries pointed at this build). A
# unit with a misspelt directive must fail the same check, so the check
# itself is known to bite. docs/deployment.md.
#
#   tests/deploy/deploy_configs.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
TMP=$(mktemp -d /tmp/dpturn-deploy.XXXXXX)
trap 'rm -rf "$TMP" "/var/run/dpdk/dptdeploy$$"' EXIT
fails=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

out=$("$BUILD/controlplane/turn-control" -c "$ROOT/deploy/examples/edge-dual-homed.conf" --check-config 2>&1)
echo "$out"
check "edge-dual-homed.conf: turn-control --check-config says config ok, nothing ignored" \
  test "$out" = "config ok"

DP=$BUILD/dataplane/turn-dataplane
if [ -x "$DP" ]; then
  # The .env's EAL arguments name a PCI NIC; here: no device at all.
  out=$("$DP" -l 0-1 --no-huge -m 64 --no-pci --no-shconf --file-prefix="dptdeploy$$" \
        -- -c "$ROOT/deploy/examples/dataplane-edge.conf" --check-config 2>&1)
  echo "$out" | tail -2
  check "dataplane-edge.conf: turn-dataplane --check-config says config ok" grep -qx "config ok" <<<"$out"
  out=$("$DP" -l 0-1 --no-huge -m 64 --no-pci --no-shconf --file-prefix="dptdeploy$$" \
        -- -c "$ROOT/deploy/examples/dataplane-edge.conf" --bogus-key=1 --check-config 2>&1)
  check "turn-dataplane --check-config refuses a bad key" grep -q "bogus-key" <<<"$out"
else
  echo "note: turn-dataplane not built (no DPDK); its example is not checked"
fi
# The .env names the example's config, and gives each of its TAPs the
# port's address (and the default route through the port with gateway=).
check "dataplane-edge.env names the example's config and each TAP's address" \
  /usr/bin/python3 - "$ROOT/deploy/examples/dataplane-edge.env" "$ROOT/deploy/examples/dataplane-edge.conf" <<'PY'
import shlex, sys
env = dict(l.split("=", 1) for l in open(sys.argv[1]).read().splitlines() if l and not l.startswith("#"))
env = {k: " ".join(shlex.split(v)) for k, v in env.items()}
assert env["DPTURN_DP_CONFIG"] == "/etc/dpturn/dataplane-edge.conf", env
ports, cur = [], None
for line in open(sys.argv[2]).read().splitlines():
    k, _, v = line.partition("=")
    if k == "port": cur = {}; ports.append(cur)
    elif k in ("ip", "gateway", "tap", "route") and cur is not None: cur.setdefault(k, []).append(v)
want = set()
for p in ports:
    want.add(f"{p['tap'][0]}={p['ip'][0]}" + (f",{p['gateway'][0]}" if "gateway" in p else ""))
    want.update(f"route={r}" for r in p.get("route", []))
got = set(env["DPTURN_TAPS"].split())
assert got == want, (got, want)
PY
check "dpturn-tap-up is valid sh" sh -n "$ROOT/deploy/systemd/dpturn-tap-up"

if command -v systemd-analyze >/dev/null; then
  # The units as installed, with /usr/local paths pointed at this build.
  mkdir -p "$TMP/units"
  for u in "$ROOT"/deploy/systemd/*.service; do
    sed -e "s|/usr/local/bin/turn-control|$BUILD/controlplane/turn-control|g" \
        -e "s|/usr/local/bin/turn-dataplane|${DP}|g" \
        -e "s|/usr/local/lib/dpturn/dpturn-tap-up|$ROOT/deploy/systemd/dpturn-tap-up|g" "$u" >"$TMP/units/$(basename "$u")"
  done
  [ -x "$DP" ] || sed -i "s|$DP|/bin/true|g" "$TMP/units/dpturn-dataplane@.service"
  # The drain drop-in (docs/fleet.md), with turnctl from this build.
  mkdir -p "$TMP/units/dpturn-control.service.d"
  sed -e "s|/usr/local/bin/turnctl|$BUILD/controlplane/turnctl|g" "$ROOT/deploy/systemd/dpturn-control.service.d/drain.conf" \
    >"$TMP/units/dpturn-control.service.d/drain.conf"
  for u in dpturn-control.service dpturn-dataplane@edge.service; do
    out=$(cd "$TMP/units" && systemd-analyze verify --man=no "./$u" 2>&1); rc=$?
    # Dependencies on units this machine lacks (redis-server) are not errors of ours.
    out=$(grep -v "redis-server.service" <<<"$out")
    [ -n "$out" ] && echo "$out"
    check "systemd-analyze verify $u" test "$rc" = 0 -a -z "$out"
  done
  sed 's/^ProtectSystem=/ProtectSytem=/' "$TMP/units/dpturn-control.service" >"$TMP/units/broken.service"
  out=$(cd "$TMP/units" && systemd-analyze verify --man=no ./broken.service 2>&1)
  check "systemd-analyze verify catches a misspelt directive (the check bites)" grep -q "ProtectSytem" <<<"$out"
else
  echo "note: systemd-analyze not installed; units not verified"
fi
# The fleet's examples (docs/fleet.md): keepalived's configuration parses
# (with an interface this machine has), the notify script is valid sh and
# does nothing for this host's own instance, and the store lines of a relay
# host parse in both binaries.
if command -v keepalived >/dev/null && [ "$(id -u)" = 0 ] && ip netns add "dptdeploy$$" 2>/dev/null; then
  # In a namespace of its own, with a dpt0 of its own (a veth stands in for the TAP).
  ip -n "dptdeploy$$" link add dpt0 type veth peer name dpt0p
  out=$(ip netns exec "dptdeploy$$" keepalived -t -f "$ROOT/deploy/keepalived/keepalived.conf" 2>&1); rc=$?
  ip netns del "dptdeploy$$"
  [ -n "$out" ] && echo "$out"
  check "keepalived -t deploy/keepalived/keepalived.conf" test "$rc" = 0 -a -z "$(grep -iE 'unknown|error|warning' <<<"$out")"
fi
check "dpturn-notify is valid sh" sh -n "$ROOT/deploy/keepalived/dpturn-notify"
printf 'DPTURN_INSTANCE=relay-a\nDPTURN_NOTIFY_LOG=%s\nTURNCTL=/bin/false\n' "$TMP/notify.log" >"$TMP/notify.env"
check "dpturn-notify: our own instance's address is no adoption" \
  bash -c '"$1" master relay-a "$2" && grep -q "our own instance relay-a" "$3"' _ \
  "$ROOT/deploy/keepalived/dpturn-notify" "$TMP/notify.env" "$TMP/notify.log"
# Another instance's address: adopted; refused because it is alive, so the
# address is given back (its track file 1, then 0 again after
# DPTURN_RELEASE_S); adopted, so it stays (no track file written).
printf '#!/bin/sh\necho "turnctl: 409: instance '"'"'$2'"'"' is alive: its membership record was refreshed 200 ms ago"\nexit 1\n' >"$TMP/turnctl-alive"
printf '#!/bin/sh\necho "adopted instance $2: 3 allocation(s)"\n' >"$TMP/turnctl-ok"
chmod +x "$TMP/turnctl-alive" "$TMP/turnctl-ok"
for t in alive ok; do
  printf 'DPTURN_INSTANCE=relay-a\nDPTURN_NOTIFY_LOG=%s\nTURNCTL=%s\nDPTURN_RELEASE_DIR=%s\nDPTURN_RELEASE_S=1\n' \
    "$TMP/notify-$t.log" "$TMP/turnctl-$t" "$TMP/rel-$t" >"$TMP/notify-$t.env"
  mkdir -p "$TMP/rel-$t"
  "$ROOT/deploy/keepalived/dpturn-notify" master relay-b "$TMP/notify-$t.env"
done
for _ in $(seq 1 50); do [ "$(cat "$TMP/rel-alive/dpturn-release-relay-b" 2>/dev/null)" = 1 ] && break; sleep 0.1; done
check "dpturn-notify: an alive instance's address is given back (track file 1)" \
  test "$(cat "$TMP/rel-alive/dpturn-release-relay-b" 2>/dev/null)" = 1
for _ in $(seq 1 50); do [ "$(cat "$TMP/rel-alive/dpturn-release-relay-b")" = 0 ] && break; sleep 0.1; done
check "... and backed up again after DPTURN_RELEASE_S (track file 0)" test "$(cat "$TMP/rel-alive/dpturn-release-relay-b")" = 0
check "dpturn-notify: an adopted instance's address stays (no track file written)" \
  bash -c 'sleep 0.5; [ ! -e "$1" ] && grep -q "exit 0 adopted instance relay-b" "$2"' _ "$TMP/rel-ok/dpturn-release-relay-b" "$TMP/notify-ok.log"
{
  echo "listening-ip=127.0.0.1"; echo "relay-ip=127.0.0.1"; echo "admin-port=0"
  grep -vE '^(#|$)' "$ROOT/deploy/fleet/dpturn-store.conf"
} >"$TMP/fleet-tc.conf"
out=$("$BUILD/controlplane/turn-control" -c "$TMP/fleet-tc.conf" --check-config 2>&1)
check "deploy/fleet/dpturn-store.conf's lines: turn-control --check-config ($out)" test "$out" = "config ok"
if [ -x "$DP" ]; then
  { echo "ip=10.0.0.2/24"; grep -E '^(state-redis|instance-id)=' "$ROOT/deploy/fleet/dpturn-store.conf"; } >"$TMP/fleet-dp.conf"
  out=$("$DP" -l 0-1 --no-huge -m 64 --no-pci --no-shconf --file-prefix="dptdeploy$$" \
        -- -c "$TMP/fleet-dp.conf" --check-config 2>&1)
  check "... and turn-dataplane --check-config" grep -q "config ok" <<<"$out"
fi
echo "deploy_configs: $fails failure(s)"
[ $fails = 0 ]
