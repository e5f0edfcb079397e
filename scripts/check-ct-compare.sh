#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Secrets are compared in constant time (issue 7): every comparison of a
# MAC, key, nonce tag, token or password in the code that handles them goes
# through crypto::equal_ct (CRYPTO_memcmp). Checked by grep:
#   1. no memcmp/strcmp/strncmp/bcmp and no ==/!= on a secret-named
#      operand (mac, digest, hmac, key, tag, token, password, secret) in
#      common/crypto/, controlplane/auth/, controlplane/admin/ and the
#      authentication in controlplane/server/turn_server.cpp;
#   2. the known comparison sites call equal_ct: MESSAGE-INTEGRITY(-SHA256),
#      the nonce tag, the admin token.
# Exit 1 naming each violation.
set -uo pipefail
cd "$(dirname "$0")/.."
files=(common/crypto/*.cpp common/crypto/*.h controlplane/auth/*.cpp controlplane/auth/*.h
       controlplane/admin/*.cpp controlplane/server/turn_server.cpp)
secret='(mac|digest|hmac|key|tag|token|password|passwd|secret)'
status=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  # Non-comment lines only.
  code=$(grep -nvE '^\s*//' "$f")
  if out=$(grep -E '\b(memcmp|strcmp|strncmp|bcmp)\s*\(' <<<"$code" | grep -v 'CRYPTO_memcmp' | grep -iE "$secret"); then
    echo "$f: variable-time comparison of a secret:"; echo "$out"; status=1
  fi
  # a == b / a != b where an operand is named like a secret (size/length/
  # empty/count comparisons and pointers against nullptr are fine).
  if out=$(grep -iE "\b[a-z_]*$secret[a-z_0-9]*(\(\))?\s*[!=]=\s*[a-z_]|[a-z_)]\s*[!=]=\s*[a-z_]*$secret[a-z_0-9]*\b" <<<"$code" \
           | grep -viE '(size|length|len|empty|count|nullptr|npos|end\(\)|algorithm|\.type|_type|kind|begin\(\)|== *[0-9]|!= *[0-9])'); then
    echo "$f: ==/!= on a secret-named operand (use crypto::equal_ct):"; echo "$out"; status=1
  fi
done
need() {  # file pattern what
  grep -qE "$2" "$1" || { echo "$1: $3 does not use crypto::equal_ct"; status=1; }
}
need common/crypto/integrity.cpp 'CRYPTO_memcmp' 'equal_ct itself'
need common/crypto/integrity.cpp 'return equal_ct\(Bytes\{mac\}, m\.value' 'MESSAGE-INTEGRITY'
need common/crypto/integrity.cpp 'return equal_ct\(Bytes\{mac\}\.first' 'MESSAGE-INTEGRITY-SHA256'
need controlplane/auth/nonce.cpp 'crypto::equal_ct' 'the nonce tag check'
need controlplane/admin/admin_server.cpp 'crypto::equal_ct' 'the admin token check'
[ $status -eq 0 ] && echo "secret comparisons are constant-time: ${files[*]}"
exit $status
