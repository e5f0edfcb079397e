// SPDX-License-Identifier: Apache-2.0
// The one Redis endpoint syntax of both binaries (common/redis/endpoint.h):
// coturn's form, the Sentinel form, and errors that name the offending
// item without ever showing a password.
#include "common/redis/endpoint.h"

#include <gtest/gtest.h>

namespace turn::redis {
namespace {

TEST(RedisEndpoint, CoturnForm) {
  auto e = parse_endpoint("ip=10.0.0.1 dbname=2 password=pw port=6380 connect_timeout=7");
  EXPECT_TRUE(e.enabled);
  EXPECT_FALSE(e.sentinel());
  EXPECT_EQ(e.host, "10.0.0.1");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.db, 2);
  EXPECT_EQ(e.password, "pw");
  EXPECT_EQ(e.connect_timeout_ms, 7000);
  EXPECT_EQ(e.describe(), "redis 10.0.0.1:6380");
}

TEST(RedisEndpoint, SentinelForm) {
  auto e = parse_endpoint(
      "sentinel=10.0.0.1:26379,[2001:db8::2]:26380,s3.example:26379 master=dpturn "
      "password=data-pw sentinel-password=s-pw dbname=3");
  EXPECT_TRUE(e.sentinel());
  ASSERT_EQ(e.sentinels.size(), 3u);
  EXPECT_EQ(e.sentinels[0], (HostPort{"10.0.0.1", 26379}));
  EXPECT_EQ(e.sentinels[1], (HostPort{"2001:db8::2", 26380}));
  EXPECT_EQ(e.sentinels[2], (HostPort{"s3.example", 26379}));
  EXPECT_EQ(e.master, "dpturn");
  EXPECT_EQ(e.password, "data-pw");
  EXPECT_EQ(e.sentinel_password, "s-pw");
  EXPECT_EQ(e.db, 3);
  EXPECT_EQ(e.describe(), "master 'dpturn' via sentinel(s) 10.0.0.1:26379,[2001:db8::2]:26380,s3.example:26379");
  EXPECT_EQ(e.describe().find("pw"), std::string::npos);
}

TEST(RedisEndpoint, ErrorsNameTheItemAndHidePasswords) {
  struct Case {
    const char* text;
    const char* item;  // what the error must name
  };
  for (const auto& c : std::vector<Case>{
           {"port=99999", "port=99999"},
           {"dbname=x", "dbname=x"},
           {"color=blue", "unknown item 'color'"},
           {"just-a-word", "just-a-word"},
           {"sentinel=10.0.0.1:26379", "master=NAME"},
           {"master=dpturn", "needs sentinel="},
           {"sentinel=10.0.0.1 master=m", "sentinel '10.0.0.1'"},
           {"sentinel=10.0.0.1:0 master=m", "10.0.0.1:0"},
           {"sentinel=10.0.0.1:26379,,10.0.0.2:26379 master=m", "empty sentinel address"},
           {"sentinel=10.0.0.1:26379 master=m ip=10.0.0.5", "not with sentinel="},
           {"sentinel-password=secret ip=1.2.3.4", "sentinel-password=<hidden>"},
           {"connect_timeout=0", "connect_timeout=0"},
           {"master=", "empty master name"},
       }) {
    try {
      (void)parse_endpoint(c.text);
      ADD_FAILURE() << c.text << " was accepted";
    } catch (const EndpointError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(c.item), std::string::npos) << c.text << " -> " << what;
      EXPECT_EQ(what.find("secret"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(hide_passwords("ip=1.2.3.4 password=p1 sentinel-password=p2"),
            "ip=1.2.3.4 password=<hidden> sentinel-password=<hidden>");
}

}  // namespace
}  // namespace turn::redis
