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
// added), e.g. to try hugepages or to see the skip.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* env = std::getenv("DPTURN_TEST_EAL");
  std::string eal = env ? env : "--no-huge -m 512 --no-shconf --no-pci --no-telemetry -l 0 --log-level=*:warning";
  const std::string name = std::filesystem::path(argv[0]).filename().string();
  const std::string prefix = "dptest-" + name + "-" + std::to_string(getpid());
  eal += " --file-prefix=" + prefix;
  struct RuntimeDir {
    std::string path;
    ~RuntimeDir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } runtime_dir{"/var/run/dpdk/" + prefix};

  std::vector<std::string> args{argv[0]};
  std::stringstream ss(eal);
  for (std::string tok; ss >> tok;) args.push_back(tok);
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "%s: SKIP: EAL did not start (rte_eal_init %s: %s)\n", name.c_str(), eal.c_str(),
                 rte_strerror(rte_errno));
    return 77;
  }
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
