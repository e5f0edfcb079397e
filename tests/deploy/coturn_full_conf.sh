#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every key of Debian's coturn /etc/turnserver.conf at once, uncommented
# with values (placeholders replaced), through `turn-control
# --check-config`. Each stop must be a key docs/migrating-from-coturn.md
# marks refused, or a combination its "Every key at once" table names; the
# line goes and the check runs again, until the file passes. Then every
# ignored key present is reported once. Skipped (77) without coturn's file.
#
#   tests/deploy/coturn_full_conf.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
TC=$BUILD/controlplane/turn-control
DOC=$ROOT/docs/migrating-from-coturn.md
SRC=${COTURN_CONF:-/etc/turnserver.conf}
[ -r "$SRC" ] || { echo "SKIP: $SRC (Debian's coturn) not installed"; exit 77; }
TMP=$(mktemp -d /tmp/dpturn-coturn-full.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Uncomment every key line, as coturn_keys.sh recognises them, and give
# placeholders values.
CONF=$TMP/turnserver.conf
grep -E '^# ?[a-zA-Z][a-zA-Z0-9_-]*(=.*| +"[^"]*"|)$|^[a-zA-Z][a-zA-Z0-9_-]*(=.*)?$' "$SRC" | sed -E 's/^# ?//' \
  | sed -E 's/^(redis-userdb|redis-statsdb)=.*/\1="ip=127.0.0.1 dbname=0 port=6379 connect_timeout=5"/;
            s/^dh-file=.*/dh-file=\/etc\/ssl\/dh.pem/;
            s/^proc-user=.*/proc-user=turnserver/;
            s/^proc-group=.*/proc-group=turnserver/' >"$CONF"
keys_in_file=$(sed -E 's/[= ].*//' "$CONF" | sort -u | wc -l)
echo "$keys_in_file keys, $(wc -l <"$CONF") lines from $SRC"
grep -q '<' "$CONF" && echo "placeholders left as they are: $(grep -c '<' "$CONF") line(s) (their keys must be refused)"

# Status of a key in the page: same / differs / ignored / refused.
status_of() { sed -nE "s/^\\| \`$1\` \\| (same|differs|ignored|refused) \\|.*/\\1/p" "$DOC" | head -1; }

removed=()
for round in $(seq 1 200); do
  out=$("$TC" -c "$CONF" --check-config 2>&1); rc=$?
  [ $rc = 0 ] && break
  first=$(head -1 <<<"$out")
  if [[ "$first" =~ turnserver\.conf:([0-9]+):\ ([^:= ]+) ]]; then
    n=${BASH_REMATCH[1]} key=${BASH_REMATCH[2]}
    st=$(status_of "$key")
    [ "$st" = refused ] || { bad "stopped at $key (status '${st:-no row}'): $first"; break; }
    removed+=("$key")
    sed -i "${n}d" "$CONF"
    continue
  fi
  # A combination of keys: the page's table names the message and the key to remove.
  row=$(awk -F'|' '/^## Every key at once/{on=1} on && /^\| `[^`]+` \|/ {print}' "$DOC" \
        | while IFS='|' read -r _ msg _ drop _; do
            msg=$(sed -E 's/^ *`//; s/` *$//' <<<"$msg"); drop=$(sed -E 's/^ *`//; s/` *$//' <<<"$drop")
            grep -qF -- "$msg" <<<"$first" && { echo "$drop"; break; }
          done)
  [ -n "$row" ] || { bad "stopped on a combination the page does not name: $first"; break; }
  ln=$(grep -nE "^$row([= ]|$)" "$CONF" | tail -1 | cut -d: -f1)
  [ -n "$ln" ] || { bad "the page says to remove $row, which is not in the file"; break; }
  removed+=("$row (combination)")
  sed -i "${ln}d" "$CONF"
done
[ $rc = 0 ] && tail -1 <<<"$out" | grep -qx 'config ok' || bad "the file never passed: rc=$rc: $(head -3 <<<"$out")"
echo "removed ${#removed[@]} line(s): ${removed[*]}"
grep -q '<' "$CONF" && bad "a placeholder value was accepted: $(grep '<' "$CONF" | head -1)"

# Each ignored key left is reported, each other key is not.
while read -r key; do
  st=$(status_of "$key")
  n=$(grep -c "^ignored: .*: $key: coturn key accepted and ignored" <<<"$out")
  lines=$(grep -cE "^$key([= ]|$)" "$CONF")
  case "$st" in
    ignored) [ "$n" = "$lines" ] || bad "$key: ignored $lines time(s) in the file, reported $n" ;;
    same|differs) [ "$n" = 0 ] || bad "$key ($st) reported as ignored" ;;
    *) bad "$key left in the file with status '${st:-no row}'" ;;
  esac
done < <(sed -E 's/[= ].*//' "$CONF" | sort -u)
grep '^note:' <<<"$out" | cut -c1-160
echo "coturn_full_conf: $fails failure(s), $(sed -E 's/[= ].*//' "$CONF" | sort -u | wc -l) keys accepted"
[ $fails = 0 ]
