// SPDX-License-Identifier: Apache-2.0
// The one logger of both binaries (turn-control, turn-dataplane; never on
// the packet path): timestamped lines with a level to stderr or a file.
// Refusals use log_every(), which logs once per (reason, source) per
// interval and counts what it suppressed, so a flood cannot turn into a log
// flood. Passwords, keys and tokens are never passed here.
#pragma once

#include <string>

#include "common/net/address.h"

namespace turn {

enum class LogKey { AuthFailure, PeerDenied, Quota, Capacity, Internal, State, Count };

void log_open(const std::string& file, bool verbose);
void log_info(const std::string& msg);
void log_warn(const std::string& msg);
void log_error(const std::string& msg);
void log_debug(const std::string& msg);
// At most once per key and source per 10 s; says how many were suppressed.
void log_every(LogKey key, const IpAddress& source, const std::string& msg);

}  // namespace turn
