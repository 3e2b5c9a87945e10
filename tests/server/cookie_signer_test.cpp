// Cookie signatures: only the server's secret makes a cookie that verifies,
// and changing any field of a signed cookie breaks it.
#include "actors/server/cookie_signer.hpp"

#include <gtest/gtest.h>

using memsync::cookie;
using memsync::cookie_signer;

TEST(cookie_signer, a_signed_cookie_verifies_and_a_changed_one_does_not) {
  cookie_signer signer{cookie_signer::make_secret()};
  cookie c{"epoch-1", 42, 17};
  c.mac = signer.sign(c);
  EXPECT_EQ(c.mac.size(), 64u);
  EXPECT_TRUE(signer.verify(c));
  // The last hex digit changed: to another digit whatever it was.
  auto other_mac = c.mac.substr(0, 63) + (c.mac.back() == '0' ? "1" : "0");
  for (auto changed : {cookie{"epoch-2", 42, 17, c.mac}, cookie{"epoch-1", 43, 17, c.mac},
                       cookie{"epoch-1", 42, 18, c.mac}, cookie{"epoch-1", 42, 17, ""},
                       cookie{"epoch-1", 42, 17, other_mac}})
    EXPECT_FALSE(signer.verify(changed)) << changed.epoch << " " << changed.version;
}

TEST(cookie_signer, another_secret_does_not_verify) {
  cookie_signer a{cookie_signer::make_secret()};
  cookie_signer b{cookie_signer::make_secret()};
  cookie c{"epoch-1", 1, 1};
  c.mac = a.sign(c);
  EXPECT_FALSE(b.verify(c));
  // Field boundaries are part of what is signed.
  cookie x{"e1", 23, 4};
  cookie y{"e12", 3, 4};
  EXPECT_NE(a.sign(x), a.sign(y));
  EXPECT_THROW(cookie_signer{""}, std::invalid_argument);
}
