// SPDX-License-Identifier: Apache-2.0
// Reply helpers (client.h): plain C++, the same with and without hiredis.
#include "common/redis/client.h"

namespace turn::redis {

std::vector<std::pair<std::string, std::string>> pairs(const Reply& r) {
  std::vector<std::pair<std::string, std::string>> f;
  if (r.type != Reply::Type::Array) return f;
  f.reserve(r.elements.size() / 2);
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) f.emplace_back(r.elements[i].str, r.elements[i + 1].str);
  return f;
}

}  // namespace turn::redis
