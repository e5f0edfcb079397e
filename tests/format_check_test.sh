#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The tree follows .clang-format (scripts/check-format.sh), and the check
# can fail: a copy with one file's layout broken is refused, naming it.
#
#   tests/format_check_test.sh SOURCE_ROOT
set -uo pipefail
ROOT=$1
command -v clang-format >/dev/null || { echo "SKIP: clang-format not installed (scripts/setup.sh installs it)"; exit 77; }
status=0
"$ROOT/scripts/check-format.sh" "$ROOT" || status=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/common"
cp "$ROOT/.clang-format" "$tmp/"
printf 'int   planted( int a ){return a;}\n' >"$tmp/common/planted.h"
out=$("$ROOT/scripts/check-format.sh" "$tmp" 2>&1)
if [ $? -ne 0 ] && grep -q "common/planted.h" <<<"$out"; then
  echo "PASS: a planted misformatted file is refused and named"
else
  echo "FAIL: the check passed a planted misformatted file:"; echo "$out"; status=1
fi
"$ROOT/scripts/check-format.sh" --fix "$tmp" >/dev/null
if "$ROOT/scripts/check-format.sh" "$tmp" >/dev/null 2>&1; then
  echo "PASS: --fix makes it pass"
else
  echo "FAIL: --fix did not fix the planted file"; status=1
fi
exit $status
