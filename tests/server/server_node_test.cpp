// A server node in this process (real scheduler, loopback): if its
// replication log ends while the node runs, the node reports it as failed
// with a clear reason (syncnode then exits non-zero); a normal stop is not a
// failure; a gateway that dies (killed here from inside the process, since
// the front lets no peer do it) is replaced, new clients say hello to its
// successor through the front and existing sessions keep working.
#include "node/server/server_node.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/registry.hpp"
#include "messages/remote.hpp"
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

constexpr auto budget = 2s; // a hello, push or pull takes milliseconds

/// A client node in this process: an actor system of its own (so a node id
/// of its own) that reaches the server through its front.
struct client_peer {
  caf::actor_system_config cfg;
  caf::actor_system sys{server_node_test::init(cfg)};
  caf::scoped_actor self{sys};
  client_listener_actor listener = sys.spawn([]() -> client_listener_actor::behavior_type {
    return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
  });

  ~client_peer() { caf::anon_send_exit(listener, caf::exit_reason::user_shutdown); }

  /// The gateway's id and a session, or an error.
  caf::expected<std::pair<caf::actor_id, session_actor>> hello(uint16_t port,
                                                               const std::string& id) {
    auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
    if (!gw)
      return gw.error();
    caf::expected<std::pair<caf::actor_id, session_actor>> out{caf::error{}};
    self
      ->request(*gw, budget, hello_atom::value,
                hello_request{protocol_version, id, "alice-token", 0}, listener)
      .receive([&](hello_reply&, session_actor& s) { out = std::make_pair(gw->id(), s); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// Pushes one change with `mutation` and pulls it back: true if both work.
  bool push_and_pull(const session_actor& s, const std::string& id, uint64_t mutation,
                     const std::string& entity) {
    bool pushed = false, pulled = false;
    change c{0, mutation, change_kind::put, entity, "note", R"({"ok":true})", {}};
    self->request(s, budget, push_atom::value, push_request{id, "", {c}})
      .receive([&](push_reply& r) { pushed = r.last_mutation_id == mutation; },
               [&](caf::error& e) { ADD_FAILURE() << "push: " << sys.render(e); });
    self->request(s, budget, pull_atom::value, pull_request{id, {}})
      .receive(
        [&](pull_reply& r) {
          for (auto& e : r.entities)
            pulled = pulled || e.id == entity;
        },
        [&](caf::error& e) { ADD_FAILURE() << "pull: " << sys.render(e); });
    return pushed && pulled;
  }
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

TEST_F(server_node_test, a_killed_gateway_is_replaced_and_its_sessions_live_on) {
  server_node node{sys, cfg};
  const std::string first_id = "alice-00000000000000a1";
  client_peer first;
  auto opened = first.hello(node.port(), first_id);
  ASSERT_TRUE(opened) << first.sys.render(opened.error());
  auto [old_gateway, session] = *opened;
  ASSERT_TRUE(first.push_and_pull(session, first_id, 1, "before"));
  // The front closes any connection that sends an exit, so the kill comes
  // from inside: the published gateway, found by the id every peer is told.
  auto gateway = sys.registry().get(old_gateway);
  ASSERT_TRUE(gateway) << "the published gateway is not in the registry";
  caf::anon_send_exit(gateway, caf::exit_reason::kill);
  gateway = nullptr;
  // A new client gets in once the supervisor has published a successor (it
  // waits a moment for the old port to close); each try is a node of its
  // own, as a client that reconnects would be. The deadline only detects a
  // stall.
  std::optional<std::pair<caf::actor_id, session_actor>> second;
  const std::string second_id = "alice-00000000000000b2";
  for (auto deadline = std::chrono::steady_clock::now() + budget;
       !second && std::chrono::steady_clock::now() < deadline;) {
    client_peer next;
    if (auto r = next.hello(node.port(), second_id)) {
      EXPECT_NE(r->first, old_gateway) << "a hello reached the dead gateway";
      EXPECT_TRUE(next.push_and_pull(r->second, second_id, 1, "after"));
      second = *r;
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_TRUE(second) << "no client could say hello after the gateway died";
  EXPECT_FALSE(node.failed()) << node.failure();
  // The session the dead gateway handed out still serves its client.
  EXPECT_TRUE(first.push_and_pull(session, first_id, 2, "still"));
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
