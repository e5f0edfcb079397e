// SPDX-License-Identifier: Apache-2.0
// RouteTable set-up (dataplane/table/routes.h): runs once before the
// workers start, may allocate and throw; the readers stay in the header.
#include "dataplane/table/routes.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace turn::dp {

void RouteTable::set(const std::vector<Link>& links, const std::vector<Route>& routes) {
  if (links.empty() || links.size() > kMaxLinks)
    throw std::invalid_argument("1 to " + std::to_string(kMaxPorts) + " ports");
  if (routes.size() > kMaxRoutes) throw std::invalid_argument("at most 32 routes");
  nlinks_ = static_cast<uint8_t>(links.size());
  nroutes_ = 0;  // gateways are resolved against the links only (no recursion)
  default_port_ = -1;
  for (size_t i = 0; i < links.size(); ++i) {
    links_[i] = LinkSlot{links[i].ip, links[i].netmask, links[i].gateway, bits(links[i].netmask)};
    if (links[i].gateway != 0 && default_port_ < 0) default_port_ = static_cast<int>(i);
  }
  std::vector<RouteSlot> rs;
  for (const Route& r : routes) {
    int port = link_of(r.gateway);
    if (port < 0) throw std::invalid_argument("route gateway is on none of the ports' links");
    rs.push_back(RouteSlot{r.net, r.netmask, r.gateway, static_cast<uint8_t>(port), bits(r.netmask)});
  }
  std::stable_sort(rs.begin(), rs.end(), [](const RouteSlot& a, const RouteSlot& b) { return a.bits > b.bits; });
  for (const RouteSlot& r : rs) routes_[nroutes_++] = r;
}

void RouteTable6::set(const std::vector<Link>& links) {
  if (links.size() > RouteTable::kMaxLinks) throw std::invalid_argument("1 to " + std::to_string(kMaxPorts) + " ports");
  n_ = static_cast<uint8_t>(links.size());
  default_port_ = -1;
  for (size_t i = 0; i < links.size(); ++i) {
    links_[i] = links[i];
    if (links[i].present && !(links[i].gateway == Ip6{}) && default_port_ < 0) default_port_ = static_cast<int>(i);
  }
}

}  // namespace turn::dp
