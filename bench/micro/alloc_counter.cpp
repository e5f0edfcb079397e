// SPDX-License-Identifier: Apache-2.0
// Replacement operator new/delete and OpenSSL allocator hooks that count.
#include "bench/micro/alloc_counter.h"

#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<uint64_t> g_new_calls{0};
std::atomic<uint64_t> g_openssl_calls{0};

void* openssl_malloc(size_t n, const char*, int) {
  g_openssl_calls.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* openssl_realloc(void* p, size_t n, const char*, int) {
  g_openssl_calls.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void openssl_free(void* p, const char*, int) { std::free(p); }
}  // namespace

void* operator new(size_t n) {
  g_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  g_new_calls.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace turn::bench {

uint64_t new_calls() noexcept { return g_new_calls.load(std::memory_order_relaxed); }
uint64_t openssl_calls() noexcept { return g_openssl_calls.load(std::memory_order_relaxed); }

bool install_openssl_counter() noexcept {
  return CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) == 1;
}

}  // namespace turn::bench
