#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# docs/migrating-from-coturn.md, row by row: each coturn key's example goes
# through `turn-control --check-config` and must get exactly the status the
# page gives it (same/differs: accepted; ignored: accepted and reported;
# refused: exit 1 naming the key). Every key of Debian's coturn
# /etc/turnserver.conf must have a row. The page's example file too.
#
#   tests/deploy/coturn_keys.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
TC=$BUILD/controlplane/turn-control
DOC=$ROOT/docs/migrating-from-coturn.md
TMP=$(mktemp -d /tmp/dpturn-coturn-keys.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0 rows=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A valid base: the cross-key rules (TLS needs cert and pkey, REST needs a
# secret) hold whatever single key is added.
base=$TMP/base.conf
printf '%s\n' 'listening-ip=192.0.2.10' 'realm=example.org' 'static-auth-secret=base-secret' \
  'cert=/nonexistent/cert.pem' 'pkey=/nonexistent/key.pem' >"$base"

# Rows: | `key` | status | `example` | notes |
declare -A listed
while IFS=$'\t' read -r key status example; do
  rows=$((rows + 1))
  listed[$key]=1
  cp "$base" "$TMP/t.conf"
  printf '%s\n' "$example" >>"$TMP/t.conf"
  out=$("$TC" -c "$TMP/t.conf" --check-config 2>&1); rc=$?
  case "$status" in
    same|differs)
      [ $rc = 0 ] && ! grep -q '^ignored:' <<<"$out" || bad "$key ($status): '$example' -> rc=$rc: $out" ;;
    ignored)
      [ $rc = 0 ] && grep -qF "ignored: $TMP/t.conf:6: $key: coturn key accepted and ignored" <<<"$out" \
        || bad "$key (ignored): '$example' -> rc=$rc: $out" ;;
    refused)
      [ $rc = 1 ] && grep -qF "t.conf:6: $key" <<<"$out" || bad "$key (refused): '$example' -> rc=$rc: $out" ;;
    *) bad "$key: unknown status '$status' in the page" ;;
  esac
done < <(sed -nE 's/^\| `([^`]+)` \| (same|differs|ignored|refused|[a-z]+) \| `([^`]+)` \|.*/\1\t\2\t\3/p' "$DOC")
echo "checked $rows rows of $DOC"
[ "$rows" -ge 100 ] || bad "expected about 100 rows, parsed $rows"

# Completeness against Debian's coturn file, when installed.
if [ -r /etc/turnserver.conf ]; then
  n=0
  while read -r k; do
    n=$((n + 1))
    [ -n "${listed[$k]:-}" ] || bad "coturn key '$k' (/etc/turnserver.conf) has no row in the page"
  done < <(grep -E '^# ?[a-zA-Z][a-zA-Z0-9_-]*(=.*| +"[^"]*"|)$|^[a-zA-Z][a-zA-Z0-9_-]*(=.*)?$' /etc/turnserver.conf \
             | sed -E 's/^# ?//; s/[= ].*//' | sort -u)
  echo "all $n keys of /etc/turnserver.conf have a row"
else
  echo "note: /etc/turnserver.conf (Debian's coturn) not installed; completeness not checked"
fi

# The page's example (a production file with cipher-list and prometheus):
# it starts, with six ignored lines and no note (both suites are kept).
sed -n '/^A typical coturn production file/,/^`turn-control -c/p' "$DOC" | sed -n '/^```/,/^```/p' | grep -v '^```' >"$TMP/example.conf"
[ -s "$TMP/example.conf" ] || bad "the example file was not found in the page"
grep -q '^cipher-list=' "$TMP/example.conf" && grep -qx 'prometheus' "$TMP/example.conf" \
  || bad "the example lost its cipher-list or prometheus line"
out=$("$TC" -c "$TMP/example.conf" --check-config 2>&1); rc=$?
ign=$(grep -c '^ignored:' <<<"$out")
[ $rc = 0 ] && [ "$ign" = 6 ] && ! grep -q '^note:' <<<"$out" && tail -1 <<<"$out" | grep -qx 'config ok' \
  || bad "example: expected 6 ignored lines, no note and config ok, got rc=$rc: $out"
echo "coturn_keys: $fails failure(s)"
[ $fails = 0 ]
