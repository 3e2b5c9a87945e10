// Real processes over TLS: clients that trust the server's CA sync through
// it; a client that does not trust the certificate, expects another host
// name, or speaks plain BASP never gets in, says why in its status, and
// costs the honest clients nothing. (The rest of the end-to-end suite also
// runs over TLS: ctest -L tls.) And a tokens file that holds only digests.
#include <chrono>
#include <cstdlib>

#include <gtest/gtest.h>

#include "tests/support/e2e_helpers.hpp"

using namespace std::chrono_literals;
using memsync::testing::cluster;
using nlohmann::json;

namespace {

struct tls_env : ::testing::Environment {
  void SetUp() override { setenv("MEMSYNC_E2E_TLS", "1", 1); }
};
const auto* registered = ::testing::AddGlobalTestEnvironment(new tls_env);

/// alice's put + sync, which must take milliseconds, not seconds.
void expect_alice_syncs(memsync::testing::sync_client& alice, const std::string& id) {
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(alice.cmd("put " + id + " note {\"x\":1}"), "ok");
  ASSERT_EQ(alice.sync(), "ok");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

/// Waits until `c` reports a TLS error containing `what`; fails otherwise.
void expect_tls_error(memsync::testing::sync_client& c, const std::string& what) {
  json last;
  EXPECT_TRUE(c.wait_status(
    [&](const json& s) {
      last = s;
      return s.value("tls_error", "").find(what) != std::string::npos;
    },
    5s))
    << c.name() << ": " << last.dump();
  EXPECT_EQ(last.value("connected", true), false) << last.dump();
}

} // namespace

TEST(tls_e2e, clients_that_trust_the_ca_sync_through_tls) {
  ASSERT_TRUE(cluster::tls());
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  auto alice = c.start_client("alice");
  auto bob = c.start_client("bob");
  expect_alice_syncs(*alice, "over-tls");
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_NE(bob->cmd("get over-tls"), "not found");
  EXPECT_EQ(alice->status().value("tls_error", ""), "");
}

TEST(tls_e2e, an_untrusted_certificate_or_another_host_name_is_refused) {
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  auto alice = c.start_client("alice");
  expect_alice_syncs(*alice, "before");
  // A CA of its own: the server's certificate is not signed by it.
  auto other = c.dir().file("other-ca");
  ASSERT_EQ(std::system((std::string{MEMSYNC_SOURCE_DIR "/tools/make_certs.sh "} + other
                         + " >/dev/null")
                          .c_str()),
            0);
  auto stranger = c.start_client("carol", {"--server.tls-ca=" + other + "/ca.pem"});
  expect_tls_error(*stranger, "certificate verification failed");
  // The right CA, but a name the certificate does not carry.
  auto misnamed = c.start_client("dave", {"--server.tls-host=sync.example.org"});
  expect_tls_error(*misnamed, "hostname mismatch");
  expect_alice_syncs(*alice, "after");
}

TEST(tls_e2e, a_plain_client_gets_nothing_from_a_tls_server) {
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  auto alice = c.start_client("alice");
  // Without a CA the client speaks plain BASP; the guard takes it for a
  // failed TLS handshake and closes the connection.
  auto plain = c.start_client("erin", {"--server.tls-ca="});
  ASSERT_EQ(plain->cmd("put p note {}"), "ok");
  std::this_thread::sleep_for(300ms); // a few connection attempts
  auto st = plain->status();
  EXPECT_EQ(st.value("connected", true), false) << st.dump();
  expect_alice_syncs(*alice, "unaffected");
  ASSERT_EQ(alice->cmd("get p"), "not found");
}

TEST(tokens_e2e, a_tokens_file_of_digests_lets_the_right_clients_in) {
  cluster c;
  // Only digests on disk, made by `syncnode hash-token`.
  auto hashed = c.dir().file("hashed-tokens.txt");
  auto cmd = std::string{"echo alice-token-9f2c | " SYNCNODE_PATH " hash-token > "}
             + hashed + " && sed -i 's/$/ alice/' " + hashed;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_NE(c.start_server(0, {"--server.tokens-file=" + hashed}), 0);
  auto alice = c.start_client("alice");
  expect_alice_syncs(*alice, "hashed");
  // bob's token is not in the file.
  auto bob = c.start_client("bob");
  json last;
  EXPECT_TRUE(bob->wait_status(
    [&](const json& s) {
      last = s;
      return s.value("last_error", "").find("unauthorized") != std::string::npos;
    },
    5s))
    << last.dump();
}
