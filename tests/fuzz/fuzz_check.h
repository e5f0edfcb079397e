// SPDX-License-Identifier: Apache-2.0
// What every fuzz target in tests/fuzz/ shares: libFuzzer's entry point
// (declared here so that -Wmissing-declarations accepts its definition) and
// TURN_FUZZ_CHECK, an invariant that aborts with its location and condition
// (libFuzzer keeps the input as a crash reproducer; replay_main.cpp fails).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#define TURN_FUZZ_CHECK(cond)                                                           \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
