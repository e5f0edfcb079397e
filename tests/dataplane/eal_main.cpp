// SPDX-License-Identifier: Apache-2.0
// main() of the data-plane tests that need EAL (the real rte_hash tables,
// rte_malloc, the TSC): starts EAL once for the whole binary, then runs
// GoogleTest. No hugepages (4 KiB pages: what every machine has), no PCI,
// no shared config files, its own --file-prefix (other DPDK processes may
// run beside it), the runtime directory removed on the way out.
// DPDK 22.11 refuses --in-memory together with --no-huge (legacy memory).
//
// If EAL cannot start, the binary says why and exits 77: meson's skip code.
// DPTURN_TEST_EAL replaces the EAL arguments (the file prefix is still
// added), e.g. to try hugepages or to see the skip. Two lcores, both on
// CPU 0 (any machine has it): a Dataplane needs a worker lcore to exist,
// though these tests never launch one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "dataplane/eal_session.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* env = std::getenv("DPTURN_TEST_EAL");
  std::string eal =
      env ? env : "--no-huge -m 512 --no-shconf --no-pci --no-telemetry --lcores=0@0,1@0 --log-level=*:warning";
  const std::string name = std::filesystem::path(argv[0]).filename().string();
  turn::dp::EalSession session(argv[0], eal, "dptest-" + name + "-" + std::to_string(getpid()));
  if (!session.up()) {
    std::fprintf(stderr, "%s: SKIP: EAL did not start (%s)\n", name.c_str(), session.error().c_str());
    return 77;
  }
  return RUN_ALL_TESTS();
}
