// A real server process probed by a hand-made CAF peer over loopback: the
// handshake refuses wrong protocols, tokens and client ids; a session serves
// only its own client and validates what it is sent; an exit a hostile peer
// sends to the gateway never reaches it; a client that kills its own session
// ends that session only; a full disk fails the push that does not fit and
// nothing else.
#include <gtest/gtest.h>

#include <signal.h>

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

client_listener_actor::behavior_type ignore_pokes() {
  return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
}

struct hardening : ::testing::Test {
  temp_dir dir;
  std::unique_ptr<child_process> server;
  uint16_t port = 0;
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  client_listener_actor listener = sys.spawn(ignore_pokes);

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

namespace {

/// An honest client's round trip on a fresh session: hello, push one change,
/// pull it back. Returns how long it took (failing the test on any error).
std::chrono::milliseconds
honest_round_trip(caf::actor_system& sys, caf::scoped_actor& self, uint16_t port,
                  client_listener_actor listener, const std::string& client_id,
                  const std::string& entity_id) {
  auto start = std::chrono::steady_clock::now();
  auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
  EXPECT_TRUE(gw) << sys.render(gw.error());
  if (!gw)
    return std::chrono::milliseconds::max();
  session_actor session;
  hello_request hello{protocol_version, client_id, "alice-token", 0};
  self->request(*gw, 2s, hello_atom::value, hello, listener)
    .receive([&](hello_reply&, session_actor& s) { session = std::move(s); },
             [&](caf::error& e) { ADD_FAILURE() << "hello: " << sys.render(e); });
  if (!session)
    return std::chrono::milliseconds::max();
  change c{0, 1, change_kind::put, entity_id, "note", R"({"honest":true})", {}};
  self->request(session, 2s, push_atom::value, push_request{client_id, "", {c}})
    .receive([&](push_reply& r) { EXPECT_EQ(r.last_mutation_id, 1u); },
             [&](caf::error& e) { ADD_FAILURE() << "push: " << sys.render(e); });
  bool seen = false;
  self->request(session, 2s, pull_atom::value, pull_request{client_id, {}})
    .receive(
      [&](pull_reply& r) {
        for (auto& e : r.entities)
          seen = seen || e.id == entity_id;
      },
      [&](caf::error& e) { ADD_FAILURE() << "pull: " << sys.render(e); });
  EXPECT_TRUE(seen) << entity_id << " not in the pull";
  return std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - start);
}

} // namespace

TEST_F(hardening, an_exit_message_to_its_own_session_ends_only_that_connection) {
  // An authenticated client kills its own session, with every kind of
  // reason. The front closes its connection before the exit reaches the
  // session (the session then ends with its client; session_test shows that
  // an exit that did arrive would end that session alone).
  for (auto reason : {caf::exit_reason::kill, caf::exit_reason::user_shutdown,
                      caf::exit_reason::unhandled_exception}) {
    // A node of its own each time: a closed connection's handles stay dead.
    caf::actor_system_config cfg;
    caf::actor_system attacker{init(cfg)};
    caf::scoped_actor attacker_self{attacker};
    auto attacker_listener = attacker.spawn(ignore_pokes);
    auto gw = attacker.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
    ASSERT_TRUE(gw) << attacker.render(gw.error());
    session_actor session;
    attacker_self->request(*gw, 5s, hello_atom::value, good(), attacker_listener)
      .receive([&](hello_reply&, session_actor& s) { session = std::move(s); },
               [&](caf::error& e) { ADD_FAILURE() << attacker.render(e); });
    ASSERT_TRUE(session);
    caf::anon_send_exit(session, reason);
    attacker_self->monitor(session);
    bool closed = false;
    attacker_self->receive([&](caf::down_msg&) { closed = true; },
                           caf::after(5s) >> [] {}); // only detects a stall
    EXPECT_TRUE(closed) << "the connection that sent an exit is still open";
    caf::anon_send_exit(attacker_listener, caf::exit_reason::user_shutdown);
  }
  // Right after, an honest client's push and pull work, in milliseconds.
  auto took = honest_round_trip(sys, self, port, listener, "alice-00000000000000a1",
                                "after-exit");
  EXPECT_LT(took, 2s) << "the log did not survive a session's exit";
  EXPECT_EQ(kill(server->pid(), 0), 0) << "the server died";
}

// A server whose disk is full (a file size limit stands in for it, contained
// to this test's process): the push that does not fit gets a clear error,
// other clients' small pushes and pulls go on, and the process stays up.
TEST(hardening_disk, a_full_disk_fails_the_large_push_and_the_server_goes_on) {
  temp_dir dir;
  std::ofstream{dir.file("tokens.txt")} << "alice-token alice\n";
  // bash: ulimit -f counts KiB; an ignored SIGXFSZ stays ignored across exec.
  child_process server{std::vector<std::string>{
    "/bin/bash", "-c", "ulimit -f 1024 && trap '' XFSZ && exec \"$@\"", "syncnode",
    SYNCNODE_PATH, "server", "--config", MEMSYNC_SOURCE_DIR "/config/server.ini",
    "--server.port=0", "--server.db-path=" + dir.file("server.db"),
    "--server.tokens-file=" + dir.file("tokens.txt")}};
  std::string line;
  ASSERT_TRUE(server.read_line(line)) << "server did not start";
  ASSERT_NE(line.find("listening"), std::string::npos) << line;
  auto port = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));

  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  auto listener = sys.spawn(ignore_pokes);
  auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
  ASSERT_TRUE(gw) << sys.render(gw.error());
  auto open = [&](const std::string& id) {
    session_actor out;
    self
      ->request(*gw, 5s, hello_atom::value,
                hello_request{protocol_version, id, "alice-token", 0}, listener)
      .receive([&](hello_reply&, session_actor& s) { out = std::move(s); },
               [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return out;
  };
  const std::string big_id = "alice-00000000000000b1";
  const std::string small_id = "alice-00000000000000c1";
  auto big_session = open(big_id);
  auto small_session = open(small_id);
  ASSERT_TRUE(big_session && small_session);
  // Four entities of 900 KB: more than the 1 MiB the server may write, and
  // more than SQLite's page cache holds, so a statement fails, not only the
  // commit.
  std::vector<change> big;
  for (uint64_t i = 1; i <= 4; ++i)
    big.push_back({0,
                   i,
                   change_kind::put,
                   "big" + std::to_string(i),
                   "blob",
                   R"({"x":")" + std::string(900 << 10, 'x') + "\"}",
                   {}});
  change small{0, 1, change_kind::put, "small1", "note", R"({"n":1})", {}};
  // Both at once: they may share a commit group, and the small one must not
  // fail with the large one.
  auto big_reply = self->request(big_session, 10s, push_atom::value,
                                 push_request{big_id, "", big});
  auto small_reply = self->request(small_session, 10s, push_atom::value,
                                   push_request{small_id, "", {small}});
  small_reply.receive([&](push_reply& r) { EXPECT_EQ(r.last_mutation_id, 1u); },
                      [&](caf::error& e) {
                        ADD_FAILURE() << "small: " << sys.render(e);
                      });
  sync_error big_error;
  big_reply.receive([&](push_reply&) { ADD_FAILURE() << "the large push fit"; },
                    [&](caf::error& e) { big_error = to_sync_error(e); });
  EXPECT_TRUE(big_error.code == sync_errc::db_error
              || big_error.code == sync_errc::unavailable)
    << big_error.describe();
  EXPECT_NE(big_error.message.find("disk"), std::string::npos) << big_error.describe();
  // The server goes on: another client's round trip, in milliseconds, twice.
  for (auto* id : {"alice-00000000000000d1", "alice-00000000000000d2"}) {
    auto took = honest_round_trip(sys, self, port, listener, id,
                                  std::string("after-") + id);
    EXPECT_LT(took, 2s);
  }
  EXPECT_EQ(kill(server.pid(), 0), 0) << "the server died";
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  kill(server.pid(), SIGTERM);
  bool stopped = false;
  while (server.read_line(line, 5s))
    stopped = stopped || line.find("stopped") != std::string::npos;
  EXPECT_TRUE(stopped) << "no clean stop after the full disk";
  EXPECT_EQ(server.wait(5s), 0);
}

TEST_F(hardening, a_forged_cookie_gets_its_sender_a_reset_and_renews_no_epoch) {
  auto session = hello(gateway(), good());
  ASSERT_TRUE(session);
  auto pull = [&](cookie since) {
    pull_reply out;
    self
      ->request(*session, 5s, pull_atom::value, pull_request{alice_id, std::move(since)})
      .receive([&](pull_reply& r) { out = std::move(r); },
               [&](caf::error& e) { ADD_FAILURE() << "pull: " << sys.render(e); });
    return out;
  };
  change c{0, 1, change_kind::put, "forge-1", "note", "{}", {}};
  self->request(*session, 5s, push_atom::value, push_request{alice_id, "", {c}})
    .receive([](push_reply&) {}, [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  auto honest = pull({});
  ASSERT_FALSE(honest.next.epoch.empty());
  ASSERT_FALSE(honest.next.mac.empty()) << "the server did not sign its cookie";
  // The server's epoch with a commit it never issued and no valid signature:
  // before cookies were signed, this made the server renew its epoch and
  // reset every client.
  auto forged = pull({honest.next.epoch, honest.next.version, 987654321, "00"});
  EXPECT_TRUE(forged.reset);
  EXPECT_EQ(forged.next.epoch, honest.next.epoch);
  // The honest cookie still works incrementally: no epoch was renewed.
  auto after = pull(honest.next);
  EXPECT_FALSE(after.reset);
  EXPECT_EQ(after.next.epoch, honest.next.epoch);
}
