#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The C++ layout is clang-format's, with the committed .clang-format
# (clang-format 14, Debian 12). Checks every .cpp/.h under the product and
# test trees; --fix rewrites them in place.
#
#   scripts/check-format.sh [--fix] [ROOT]
set -uo pipefail
fix=0
[ "${1:-}" = --fix ] && { fix=1; shift; }
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
command -v clang-format >/dev/null || { echo "check-format: clang-format not installed (scripts/setup.sh installs it)" >&2; exit 77; }
[ -f "$ROOT/.clang-format" ] || { echo "check-format: $ROOT/.clang-format missing" >&2; exit 1; }
mapfile -t files < <(cd "$ROOT" && find common dataplane controlplane bench tests \( -name '*.cpp' -o -name '*.h' \) -type f 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "check-format: no C++ files under $ROOT" >&2; exit 1; }
cd "$ROOT" || exit 1
if [ $fix = 1 ]; then
  clang-format -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}" >/dev/null 2>&1 && { echo "check-format: ${#files[@]} files follow .clang-format"; exit 0; }
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from clang-format's layout (scripts/check-format.sh --fix):" >&2
  for f in "${bad[@]}"; do
    echo "  $f" >&2
    clang-format "$f" | diff -u "$f" - | sed -n '3,12p' | sed 's/^/    /' >&2
  done
else
  echo "check-format: clang-format --dry-run failed on the whole list, on no file alone:" >&2
  clang-format --dry-run --Werror "${files[@]}" 2>&1 | head -5 >&2
fi
exit 1
