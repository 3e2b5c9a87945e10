// A real server process probed by a hand-made CAF peer over loopback: the
// handshake refuses wrong protocols, tokens and client ids; a session serves
// only its own client and validates what it is sent; an exit a hostile peer
// sends to the gateway never reaches it.
#include <gtest/gtest.h>

#include <fstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/server/gateway.hpp"
#include "messages/registry.hpp"
#include "tests/support/process.hpp"

using namespace memsync;
using namespace std::chrono_literals;
using memsync::testing::child_process;
using memsync::testing::temp_dir;

namespace {

constexpr const char* alice_id = "alice-0123456789abcdef";

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  register_message_types(cfg);
  cfg.load<caf::io::middleman>();
  cfg.set("logger.console", caf::atom("none"));
  return cfg;
}

poke_listener_actor::behavior_type ignore_pokes() {
  return {[](poke_atom, const poke&) {
  }};
}

struct hardening : ::testing::Test {
  temp_dir dir;
  std::unique_ptr<child_process> server;
  uint16_t port = 0;
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  poke_listener_actor listener = sys.spawn(ignore_pokes);

  hardening() {
    std::ofstream{dir.file("tokens.txt")} << "alice-token alice\n";
    server = std::make_unique<child_process>(std::vector<std::string>{
      SYNCNODE_PATH, "server", "--config", MEMSYNC_SOURCE_DIR "/config/server.ini",
      "--server.port=0", "--server.db-path=" + dir.file("server.db"),
      "--server.tokens-file=" + dir.file("tokens.txt")});
    std::string line;
    EXPECT_TRUE(server->read_line(line)) << "server did not start";
    port = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }

  ~hardening() override {
    caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  }

  gateway_actor gateway() {
    auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
    EXPECT_TRUE(gw) << sys.render(gw.error());
    return gw ? *gw : gateway_actor{};
  }

  /// The session on success, else the error.
  caf::expected<session_actor> hello(gateway_actor gw, hello_request req) {
    caf::expected<session_actor> out{caf::error{}};
    self->request(gw, 5s, hello_atom::value, std::move(req), listener)
      .receive([&](hello_reply&, session_actor& s) { out = std::move(s); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  static hello_request good() { return {protocol_version, alice_id, "alice-token", 0}; }
};

sync_errc code_of(const caf::error& err) {
  return to_sync_error(err).code;
}

} // namespace

TEST_F(hardening, the_handshake_refuses_wrong_protocols_tokens_and_ids) {
  auto gw = gateway();
  auto req = good();
  req.protocol = 999;
  EXPECT_EQ(code_of(hello(gw, req).error()), sync_errc::protocol_mismatch);
  req = good();
  req.token = "guess";
  EXPECT_EQ(code_of(hello(gw, req).error()), sync_errc::unauthorized);
  req = good();
  req.client_id = "bob-0123456789abcdef"; // alice's token, bob's id
  EXPECT_EQ(code_of(hello(gw, req).error()), sync_errc::unauthorized);
  req.client_id = "alice-2-0123456789abcdef"; // a prefix is not enough
  EXPECT_EQ(code_of(hello(gw, req).error()), sync_errc::unauthorized);
  EXPECT_TRUE(hello(gw, good()));
}

TEST_F(hardening, a_session_serves_only_its_own_client_and_validates_pushes) {
  auto session = hello(gateway(), good());
  ASSERT_TRUE(session);
  caf::error err;
  push_reply reply;
  auto push = [&](push_request req) {
    err = caf::error{};
    self->request(*session, 5s, push_atom::value, std::move(req))
      .receive([&](push_reply& r) { reply = std::move(r); },
               [&](caf::error& e) { err = std::move(e); });
  };
  change bad_json{0, 1, change_kind::put, "a", "note", "{not json", {}};
  change fine{0, 2, change_kind::put, "b", "note", R"({"ok":true})", {}};
  push({"bob-0123456789abcdef", "", {fine}});
  EXPECT_EQ(code_of(err), sync_errc::unauthorized);
  push({alice_id, "", {bad_json, fine}});
  ASSERT_FALSE(err) << sys.render(err);
  EXPECT_EQ(reply.last_mutation_id, 2u); // the refused change used up its id
  ASSERT_EQ(reply.refused.size(), 1u);
  EXPECT_EQ(reply.refused[0].reason.code, sync_errc::invalid_json);
  change gap{0, 9, change_kind::put, "c", "note", "{}", {}};
  push({alice_id, reply.epoch, {gap}});
  EXPECT_EQ(code_of(err), sync_errc::mutation_gap);
  std::vector<change> many(1001, change{0, 0, change_kind::put, "d", "note", "{}", {}});
  for (size_t i = 0; i < many.size(); ++i)
    many[i].mutation_id = 3 + i;
  push({alice_id, reply.epoch, many});
  EXPECT_EQ(code_of(err), sync_errc::too_large);
}

TEST_F(hardening, an_exit_sent_to_the_gateway_is_refused_and_the_gateway_lives_on) {
  auto gw = gateway();
  auto session = hello(gw, good());
  ASSERT_TRUE(session);
  caf::anon_send_exit(gw, caf::exit_reason::kill); // what a hostile peer would do
  // The server's front closes the sender's connection instead of passing
  // the exit on: this node's proxies of the server's actors go down.
  self->monitor(*session);
  bool closed = false;
  self->receive([&](caf::down_msg&) { closed = true; },
                caf::after(5s) >> [] {}); // only detects a stall
  EXPECT_TRUE(closed) << "the connection that sent an exit is still open";
  // A node that connects afterwards finds the same gateway, alive. (A
  // second actor system: this one's middleman keeps the closed connection's
  // handles.)
  caf::actor_system_config fresh_cfg;
  caf::actor_system fresh{init(fresh_cfg)};
  caf::scoped_actor fresh_self{fresh};
  auto fresh_listener = fresh.spawn(ignore_pokes);
  auto g = fresh.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
  ASSERT_TRUE(g) << fresh.render(g.error());
  EXPECT_EQ(g->id(), gw.id()) << "the gateway was replaced: the exit reached it";
  bool in = false;
  fresh_self->request(*g, 5s, hello_atom::value, good(), fresh_listener)
    .receive([&](hello_reply&, session_actor&) { in = true; },
             [&](caf::error& e) { ADD_FAILURE() << fresh.render(e); });
  caf::anon_send_exit(fresh_listener, caf::exit_reason::user_shutdown);
  EXPECT_TRUE(in);
}
