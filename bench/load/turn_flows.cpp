// SPDX-License-Identifier: Apache-2.0
// turn_flows: the allocations behind the overload benchmark's generator
// (scripts/bench-overload.sh), made by the same TURN client for any
// server: N clients, each on its own UDP socket, do Allocate (401, then
// authenticated), CreatePermission and ChannelBind 0x4000 to --peer. Each
// flow's source port (the XOR-MAPPED-ADDRESS the server saw) and channel
// go to --out, one "PORT CHANNEL" line per flow, which is what blaster
// sends from. Then it holds the sockets (their ports stay this host's, so
// nothing else takes them) until SIGINT/SIGTERM or --hold seconds.
//
//   turn_flows --server IP:PORT -u USER -p PASS --peer IP:PORT --flows N --out FILE [--hold S]
// Bounded: N at most 20000, --hold at most 3600 (the allocations ask for
// 3600 s). Exit 1 if any flow could not be made (the first error printed).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/client/turn_client.h"

using namespace turn;
using namespace std::chrono;

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "turn_flows: %s\nusage: turn_flows --server IP:PORT -u USER -p PASS --peer IP:PORT --flows N(1..20000) "
               "--out FILE [--hold S(0..3600)]\n",
               why.c_str());
  std::exit(2);
}
}  // namespace

int main(int argc, char** argv) {
  std::string server, user, pass, peer, out;
  long flows = 0, hold = 600;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage(k + " needs a value");
    std::string v = argv[i + 1];
    char* end = nullptr;
    if (k == "--server")
      server = v;
    else if (k == "-u")
      user = v;
    else if (k == "-p")
      pass = v;
    else if (k == "--peer")
      peer = v;
    else if (k == "--out")
      out = v;
    else if (k == "--flows") {
      flows = std::strtol(v.c_str(), &end, 10);
      if (*end || flows < 1 || flows > 20000) usage("--flows '" + v + "' is not 1..20000");
    } else if (k == "--hold") {
      hold = std::strtol(v.c_str(), &end, 10);
      if (*end || hold < 0 || hold > 3600) usage("--hold '" + v + "' is not 0..3600");
    } else
      usage("unknown option " + k);
  }
  auto srv = SocketAddress::parse(server);
  auto pr = SocketAddress::parse(peer);
  if (!srv) usage("--server '" + server + "' is not IP:PORT");
  if (!pr) usage("--peer '" + peer + "' is not IP:PORT");
  if (user.empty() || out.empty() || flows == 0) usage("--server, -u, -p, --peer, --flows and --out are needed");

  std::vector<std::unique_ptr<cp::TurnClient>> clients;
  std::string lines;
  auto t0 = steady_clock::now();
  for (long i = 0; i < flows; ++i) {
    cp::TurnClient::Options o;
    o.server = *srv;
    o.username = user;
    o.password = pass;
    o.timeout = milliseconds(3000);
    auto c = std::make_unique<cp::TurnClient>(o);
    if (!(c->connect() && c->allocate(3600) && c->create_permission(pr->ip) && c->channel_bind(0x4000, *pr))) {
      std::fprintf(stderr, "turn_flows: flow %ld of %ld against %s: %s\n", i + 1, flows, server.c_str(),
                   c->error().c_str());
      return 1;
    }
    lines += std::to_string(c->mapped().port) + " 4000\n";
    clients.push_back(std::move(c));
  }
  double took = duration<double>(steady_clock::now() - t0).count();
  FILE* f = std::fopen(out.c_str(), "w");
  if (!f || std::fputs(lines.c_str(), f) < 0 || std::fclose(f) != 0) {
    std::fprintf(stderr, "turn_flows: cannot write %s\n", out.c_str());
    return 1;
  }
  std::printf("turn_flows: %ld allocations with a channel to %s on %s in %.2f s\n", flows, peer.c_str(), server.c_str(),
              took);
  std::fflush(stdout);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  for (long s = 0; s < hold * 10 && !g_stop; ++s) std::this_thread::sleep_for(100ms);
  return 0;
}
