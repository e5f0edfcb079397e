// SPDX-License-Identifier: Apache-2.0
// Counts heap allocations in a benchmark binary (pion's ReportAllocs): a
// replacement global operator new (alloc_counter.cpp, its own translation
// unit so the compiler cannot inline it into callers) and, once installed,
// OpenSSL's allocator hooks. Counters are process-wide and relaxed.
#pragma once

#include <cstdint>

namespace turn::bench {

// C++ operator new calls so far.
[[nodiscard]] uint64_t new_calls() noexcept;
// OpenSSL CRYPTO_malloc/CRYPTO_realloc calls so far (0 unless installed).
[[nodiscard]] uint64_t openssl_calls() noexcept;
// Routes OpenSSL's allocations through the counter. Must run before OpenSSL
// allocates anything (first thing in main); false if it is too late.
bool install_openssl_counter() noexcept;

}  // namespace turn::bench
