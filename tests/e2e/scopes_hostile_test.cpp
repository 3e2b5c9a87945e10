// Scopes against a real server process: a hand-made CAF client whose token
// may only read team-a asks its session for team-b directly and gets none of
// it (the scope named in `forbidden`), its writes outside its grants are
// refused `forbidden`, grants it sends its own session are ignored and a
// reload it asks the gateway for is refused; and
// SIGHUP makes the server re-read the tokens file, so a live session's next
// pull follows the new grants without a reconnect (a bad file is reported
// with its line and changes nothing).
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <fstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/registry.hpp"
#include "messages/remote.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using namespace std::chrono_literals;
using memsync::testing::child_process;
using memsync::testing::temp_dir;

namespace {

constexpr const char* writer_id = "writer-0123456789abcdef";
constexpr const char* carol_id = "carol-0123456789abcdef";

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  register_message_types(cfg);
  cfg.load<caf::io::middleman>();
  cfg.set("logger.console", caf::atom("none"));
  return cfg;
}

client_listener_actor::behavior_type ignore_pokes() {
  return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
}

change team_note(uint64_t mid, const std::string& id, const std::string& team) {
  return {0, mid, change_kind::put, id, "note", R"({"team":")" + team + R"("})", {}};
}

struct scopes_hostile : ::testing::Test {
  temp_dir dir;
  std::string tokens_file = dir.file("tokens.txt");
  std::unique_ptr<child_process> server;
  uint16_t port = 0;
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  client_listener_actor listener = sys.spawn(ignore_pokes);

  scopes_hostile() {
    write_tokens("writer-token writer write:*\n"
                 "carol-token carol read:team-a\n");
    std::ofstream{dir.file("scopes.txt")} << "note team\n";
    server = std::make_unique<child_process>(std::vector<std::string>{
      SYNCNODE_PATH, "server", "--config", MEMSYNC_SOURCE_DIR "/config/server.ini",
      "--server.port=0", "--server.db-path=" + dir.file("server.db"),
      "--server.tokens-file=" + tokens_file,
      "--server.scopes-file=" + dir.file("scopes.txt")});
    std::string line;
    EXPECT_TRUE(server->read_line(line)) << "server did not start";
    port = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }

  ~scopes_hostile() override {
    caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  }

  void write_tokens(const std::string& text) {
    std::ofstream{tokens_file, std::ios::trunc} << text;
  }

  struct opened {
    session_actor session;
    hello_reply reply;
  };

  opened hello(const std::string& id, const std::string& token) {
    opened out;
    auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
    EXPECT_TRUE(gw) << sys.render(gw.error());
    if (!gw)
      return out;
    self
      ->request(*gw, 5s, hello_atom::value, hello_request{protocol_version, id, token, 0},
                listener)
      .receive(
        [&](hello_reply& r, session_actor& s) {
          out.reply = std::move(r);
          out.session = std::move(s);
        },
        [&](caf::error& e) { ADD_FAILURE() << "hello: " << sys.render(e); });
    return out;
  }

  push_reply push(session_actor s, const std::string& id, std::vector<change> changes) {
    push_reply out;
    self->request(s, 5s, push_atom::value, push_request{id, "", std::move(changes)})
      .receive([&](push_reply& r) { out = std::move(r); },
               [&](caf::error& e) { ADD_FAILURE() << "push: " << sys.render(e); });
    return out;
  }

  pull_reply pull(session_actor s, const std::string& id,
                  std::vector<scope_since> scopes) {
    pull_reply out;
    pull_request req{id, {}};
    req.scopes = std::move(scopes);
    self->request(s, 5s, pull_atom::value, std::move(req))
      .receive([&](pull_reply& r) { out = std::move(r); },
               [&](caf::error& e) { ADD_FAILURE() << "pull: " << sys.render(e); });
    return out;
  }

  static std::vector<std::string> ids_of(const pull_reply& r) {
    std::vector<std::string> out;
    for (auto& e : r.entities)
      out.push_back(e.id);
    std::sort(out.begin(), out.end());
    return out;
  }

  /// The writer puts one note in team-a and one in team-b.
  void seed() {
    auto w = hello(writer_id, "writer-token");
    ASSERT_TRUE(w.session);
    auto r = push(w.session, writer_id,
                  {team_note(1, "note-a", "team-a"), team_note(2, "note-b", "team-b")});
    EXPECT_EQ(r.last_mutation_id, 2u);
    EXPECT_TRUE(r.refused.empty());
  }

  using names = std::vector<std::string>;
};

} // namespace

TEST_F(scopes_hostile, a_reader_of_team_a_gets_nothing_of_team_b_and_cannot_write_it) {
  seed();
  auto c = hello(carol_id, "carol-token");
  ASSERT_TRUE(c.session);
  // The handshake tells the client its grants and the rules.
  ASSERT_EQ(c.reply.granted.size(), 1u);
  EXPECT_EQ(c.reply.granted[0].pattern, "team-a");
  EXPECT_FALSE(c.reply.granted[0].write);
  ASSERT_EQ(c.reply.rules.size(), 1u);
  EXPECT_EQ(c.reply.rules[0].field, "team");
  // Asking for team-b directly: nothing of it, and told so.
  auto direct = pull(c.session, carol_id, {{"team-b", 0}});
  EXPECT_EQ(direct.forbidden, names{"team-b"});
  EXPECT_EQ(ids_of(direct), names{});
  // Everything: only what it may read.
  auto all = pull(c.session, carol_id, {{"*", 0}});
  EXPECT_EQ(all.forbidden, names{});
  EXPECT_EQ(ids_of(all), names{"note-a"});
  ASSERT_EQ(all.granted.size(), 1u);
  EXPECT_EQ(all.granted[0].pattern, "team-a");
  // Grants a client sends its own session are ignored: only the gateway of
  // the session's node may change them.
  caf::anon_send(caf::actor_cast<caf::actor>(c.session), grants_atom::value,
                 all_grants());
  self->send(caf::actor_cast<caf::actor>(c.session), grants_atom::value, all_grants());
  // Nor may a peer make the server re-read its files.
  auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
  ASSERT_TRUE(gw);
  self->request(caf::actor_cast<caf::actor>(*gw), 5s, reload_atom::value)
    .receive([&](std::string& line) { ADD_FAILURE() << "a peer reloaded: " << line; },
             [&](caf::error& e) {
               EXPECT_EQ(to_sync_error(e).code, sync_errc::unauthorized) << sys.render(e);
             });
  // Writes: team-b (where it cannot read) and team-a (where it may only read).
  auto r = push(c.session, carol_id,
                {team_note(1, "note-b", "team-b"), team_note(2, "mine", "team-a")});
  EXPECT_EQ(r.last_mutation_id, 2u);
  ASSERT_EQ(r.refused.size(), 2u);
  for (auto& refused : r.refused)
    EXPECT_EQ(refused.reason.code, sync_errc::forbidden) << refused.reason.message;
  EXPECT_EQ(pull(c.session, carol_id, {{"team-b", 0}}).forbidden, names{"team-b"});
  // The writer sees its notes unchanged.
  auto w = hello(writer_id, "writer-token");
  ASSERT_TRUE(w.session);
  EXPECT_EQ(ids_of(pull(w.session, writer_id, {})), (names{"note-a", "note-b"}));
}

TEST_F(scopes_hostile, sighup_rereads_the_tokens_file_and_live_sessions_follow) {
  seed();
  auto c = hello(carol_id, "carol-token");
  ASSERT_TRUE(c.session);
  EXPECT_EQ(pull(c.session, carol_id, {{"team-b", 0}}).forbidden, names{"team-b"});
  write_tokens("writer-token writer write:*\n"
               "carol-token carol read:team-b\n");
  ASSERT_EQ(::kill(server->pid(), SIGHUP), 0);
  std::string line;
  ASSERT_TRUE(server->read_line(line, 10s)) << "no answer to SIGHUP";
  EXPECT_EQ(line, "reloaded tokens (2) and scope rules (1)");
  // The same session, no reconnect: team-b now, team-a no longer.
  auto now = pull(c.session, carol_id, {{"team-a", 0}, {"team-b", 0}});
  EXPECT_EQ(now.forbidden, names{"team-a"});
  EXPECT_EQ(ids_of(now), names{"note-b"});
  ASSERT_EQ(now.granted.size(), 1u);
  EXPECT_EQ(now.granted[0].pattern, "team-b");
  // A bad file is reported with its line, and the tables in force stay.
  write_tokens("writer-token writer write:*\n"
               "carol-token carol read:team-a admin:everything\n");
  ASSERT_EQ(::kill(server->pid(), SIGHUP), 0);
  ASSERT_TRUE(server->read_line(line, 10s)) << "no answer to SIGHUP";
  EXPECT_NE(line.find("error: reload: " + tokens_file + ":2: grant 'admin:everything'"),
            std::string::npos)
    << line;
  EXPECT_EQ(pull(c.session, carol_id, {{"team-a", 0}, {"team-b", 0}}).forbidden,
            names{"team-a"});
}
