// A server node in this process (real scheduler, loopback): if its
// replication log ends while the node runs, the node reports it as failed
// with a clear reason (syncnode then exits non-zero); a normal stop is not a
// failure.
#include "node/server/server_node.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>

#include "messages/registry.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using namespace std::chrono_literals;

namespace {

struct server_node_test : ::testing::Test {
  memsync::testing::temp_dir dir;
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{init(sys_cfg)};

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    register_message_types(c);
    c.load<caf::io::middleman>();
    c.set("logger.console", caf::atom("none"));
    return c;
  }

  static server_config config(const memsync::testing::temp_dir& dir) {
    server_config out;
    out.server_id = "server-T";
    out.host = "127.0.0.1";
    out.port = 0;
    out.backend = "sqlite";
    out.db_path = dir.file("server.db");
    out.tokens.add("alice-token", "alice");
    return out;
  }

  server_config cfg = config(dir);
};

TEST_F(server_node_test, a_log_that_ends_while_running_fails_the_node) {
  server_node node{sys, cfg};
  EXPECT_FALSE(node.failed());
  caf::anon_send_exit(node.log(), caf::exit_reason::kill);
  // The watcher hears of it at once; the deadline only detects a stall.
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!node.failed() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(node.failed());
  EXPECT_NE(node.failure().find("replication log"), std::string::npos) << node.failure();
  node.stop();
}

TEST(server_node_stop, a_normal_stop_is_not_a_failure) {
  memsync::testing::temp_dir dir;
  std::unique_ptr<server_node> node;
  caf::actor_system_config sys_cfg;
  auto sys = std::make_unique<caf::actor_system>(server_node_test::init(sys_cfg));
  node = std::make_unique<server_node>(*sys, server_node_test::config(dir));
  node->stop();
  sys.reset(); // waits for every actor: the watcher has seen the log end
  EXPECT_FALSE(node->failed()) << node->failure();
}

} // namespace
