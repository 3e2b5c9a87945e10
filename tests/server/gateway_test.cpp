// gateway alone, on virtual time, in front of a fake log: the handshake
// refuses a protocol mismatch, an unknown token and a client id that does
// not belong to the token's client; a good hello hands out a session that
// serves that client (its requests reach the log) and is subscribed for pokes.
// Scopes: the hello carries the token's grants and the rules, the session
// enforces those grants; a reload re-reads both files, gives live sessions
// their token's new grants (none for a token that is gone) and the log the
// new rules, and a bad file changes nothing and says where it is wrong.
#include "actors/server/gateway.hpp"

#include <fstream>

#include "tests/server/server_fakes.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using namespace memsync::testing;

namespace {

constexpr const char* alice = "alice-0123456789abcdef";

struct log_record {
  std::vector<log_pull> pulls;
  size_t subscribers = 0;
  std::vector<scope_rules> reloads;
};

replication_log_actor::behavior_type recording_log(std::shared_ptr<log_record> r) {
  return {
    [](push_atom, log_push&) { return push_reply{}; },
    [=](pull_atom, log_pull& req) {
      r->pulls.push_back(req);
      return pull_reply{};
    },
    [=](subscribe_atom, poke_listener_actor&) { ++r->subscribers; },
    [](scopes_atom, poke_listener_actor&, std::vector<std::string>&) {},
    [=](reload_atom, scope_rules& rules) { r->reloads.push_back(rules); },
    [](poke_atom, const relayed_commit&) {},
    [](stats_atom) { return log_stats{}; },
  };
}

struct hello_answer {
  hello_reply reply;
  session_actor session;
  caf::error error;
  bool answered = false;
};

struct gateway_test : server_actor_test {
  std::shared_ptr<log_record> record = std::make_shared<log_record>();
  replication_log_actor log = keep(sys.spawn(recording_log, record));
  gateway_control_actor gateway;
  client_listener_actor listener = keep(
    spawn_client_recorder(sys, std::make_shared<poke_record>()));

  gateway_test() {
    gateway_config cfg;
    cfg.server_id = "server-T";
    cfg.epoch = "epoch-T";
    cfg.tokens.add("alice-token", "alice");
    cfg.tokens.add("bob-token", "bob");
    cfg.limits.data.max_bytes = 5000;
    cfg.limits.data.max_depth = 9;
    cfg.limits.max_push_changes = 17;
    cfg.limits.max_push_bytes = 70000;
    gateway = keep(spawn_gateway(sys, log, cfg));
  }

  std::shared_ptr<hello_answer> hello(hello_request req) {
    auto out = std::make_shared<hello_answer>();
    auto gw = gateway;
    auto l = listener;
    keep(sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      self->request(gw, caf::infinite, hello_atom::value, req, l)
        .then(
          [=](hello_reply& r, session_actor& s) {
            out->reply = std::move(r);
            out->session = std::move(s);
            out->answered = true;
          },
          [=](caf::error& err) {
            out->error = std::move(err);
            out->answered = true;
          });
      return {[](caf::ok_atom) {
      }};
    }));
    sched.run();
    return out;
  }

  static hello_request good() { return {protocol_version, alice, "alice-token", 0}; }
};

TEST_F(gateway_test, a_protocol_mismatch_is_refused) {
  auto req = good();
  req.protocol = protocol_version + 1;
  auto a = hello(req);
  ASSERT_TRUE(a->answered);
  EXPECT_EQ(code_of(a->error), sync_errc::protocol_mismatch);
  EXPECT_FALSE(a->session);
}

TEST_F(gateway_test, an_unknown_token_is_refused) {
  auto req = good();
  req.token = "guess";
  auto a = hello(req);
  ASSERT_TRUE(a->answered);
  EXPECT_EQ(code_of(a->error), sync_errc::unauthorized);
  EXPECT_FALSE(a->session);
}

TEST_F(gateway_test, a_client_id_of_another_client_name_is_refused) {
  for (auto id : {"bob-0123456789abcdef", "alice-2-0123456789abcdef", "alice", ""}) {
    auto req = good();
    req.client_id = id;
    auto a = hello(req);
    ASSERT_TRUE(a->answered) << id;
    EXPECT_EQ(code_of(a->error), sync_errc::unauthorized) << id;
    EXPECT_FALSE(a->session) << id;
  }
  EXPECT_EQ(record->subscribers, 0u) << "a refused hello opened a session";
}

TEST_F(gateway_test, a_good_hello_hands_out_a_session_of_that_client) {
  auto a = hello(good());
  ASSERT_TRUE(a->answered);
  ASSERT_FALSE(a->error) << sys.render(a->error);
  ASSERT_TRUE(a->session);
  keep(a->session);
  EXPECT_EQ(a->reply.protocol, protocol_version);
  EXPECT_EQ(a->reply.server_id, "server-T");
  EXPECT_EQ(a->reply.epoch, "epoch-T");
  // The client sizes its pushes and checks pulls by the server's limits.
  EXPECT_EQ(a->reply.max_data_bytes, 5000u);
  EXPECT_EQ(a->reply.max_data_depth, 9u);
  EXPECT_EQ(a->reply.max_push_changes, 17u);
  EXPECT_EQ(a->reply.max_push_bytes, 70000u);
  EXPECT_EQ(record->subscribers, 1u);
  auto mine = ask<pull_reply>(a->session, pull_atom::value, pull_request{alice, {}});
  sched.run();
  ASSERT_EQ(mine->entries.size(), 1u);
  EXPECT_FALSE(mine->entries[0].error);
  ASSERT_EQ(record->pulls.size(), 1u);
  EXPECT_EQ(record->pulls[0].request.client_id, alice);
  // Bound to alice's id: bob's token does not make it serve bob.
  auto theirs = ask<pull_reply>(a->session, pull_atom::value,
                                pull_request{"bob-0123456789abcdef", {}});
  sched.run();
  ASSERT_EQ(theirs->entries.size(), 1u);
  EXPECT_EQ(code_of(theirs->entries[0].error), sync_errc::unauthorized);
  // A second hello gets a session of its own.
  auto b = hello(good());
  ASSERT_TRUE(b->session);
  keep(b->session);
  EXPECT_NE(a->session, b->session);
}

// -- scopes ------------------------------------------------------------------------

constexpr const char* carol = "carol-0123456789abcdef";

struct gateway_scopes_test : gateway_test {
  memsync::testing::temp_dir dir;
  std::string tokens_file = dir.file("tokens.txt");
  std::string scopes_file = dir.file("scopes.txt");

  gateway_scopes_test() {
    write(tokens_file, "carol-token carol read:team-a\n");
    write(scopes_file, "note team\n");
    gateway_config cfg;
    cfg.tokens = token_table::load(tokens_file);
    cfg.tokens_file = tokens_file;
    cfg.rules = load_scope_rules(scopes_file);
    cfg.scopes_file = scopes_file;
    gateway = keep(spawn_gateway(sys, log, cfg));
  }

  static void write(const std::string& path, const std::string& text) {
    std::ofstream{path, std::ios::trunc} << text;
  }

  static hello_request carols() { return {protocol_version, carol, "carol-token", 0}; }

  /// What a pull of `scope` through `session` was told is forbidden.
  std::vector<std::string> forbidden_of(session_actor session, const std::string& scope) {
    pull_request req{carol, {}};
    req.scopes = {{scope, 0}};
    auto r = ask<pull_reply>(session, pull_atom::value, req);
    sched.run();
    EXPECT_EQ(r->entries.size(), 1u);
    EXPECT_FALSE(r->entries.empty() || r->entries[0].error);
    return r->entries.empty() ? std::vector<std::string>{"no answer"}
                              : r->entries[0].value.forbidden;
  }

  std::shared_ptr<answer_log<std::string>> reload() {
    auto out = ask<std::string>(gateway, reload_atom::value);
    sched.run();
    EXPECT_EQ(out->entries.size(), 1u);
    return out;
  }

  using names = std::vector<std::string>;
};

TEST_F(gateway_scopes_test, the_hello_carries_the_tokens_grants_and_the_rules) {
  auto a = hello(carols());
  ASSERT_TRUE(a->session);
  keep(a->session);
  ASSERT_EQ(a->reply.granted.size(), 1u);
  EXPECT_EQ(a->reply.granted[0].pattern, "team-a");
  EXPECT_FALSE(a->reply.granted[0].write);
  ASSERT_EQ(a->reply.rules.size(), 1u);
  EXPECT_EQ(a->reply.rules[0].type, "note");
  EXPECT_EQ(a->reply.rules[0].field, "team");
  // The session holds the same grants.
  EXPECT_EQ(forbidden_of(a->session, "team-b"), names{"team-b"});
  EXPECT_EQ(forbidden_of(a->session, "team-a"), names{});
}

TEST_F(gateway_scopes_test,
       a_reload_gives_live_sessions_new_grants_and_the_log_new_rules) {
  auto a = hello(carols());
  ASSERT_TRUE(a->session);
  keep(a->session);
  write(tokens_file, "carol-token carol read:team-b\nother-token dave\n");
  write(scopes_file, "note team\ntask project\n");
  auto r = reload();
  ASSERT_FALSE(r->entries[0].error) << sys.render(r->entries[0].error);
  EXPECT_EQ(r->entries[0].value, "reloaded tokens (2) and scope rules (2)");
  ASSERT_EQ(record->reloads.size(), 1u);
  EXPECT_EQ(record->reloads[0].size(), 2u);
  // The live session follows at once, without a new hello.
  EXPECT_EQ(forbidden_of(a->session, "team-a"), names{"team-a"});
  EXPECT_EQ(forbidden_of(a->session, "team-b"), names{});
  // A new hello gets the new tables.
  auto b = hello(carols());
  ASSERT_TRUE(b->session);
  keep(b->session);
  ASSERT_EQ(b->reply.granted.size(), 1u);
  EXPECT_EQ(b->reply.granted[0].pattern, "team-b");
  EXPECT_EQ(b->reply.rules.size(), 2u);
  EXPECT_TRUE(
    hello({protocol_version, "dave-0123456789abcdef", "other-token", 0})->session);
}

TEST_F(gateway_scopes_test, a_session_whose_token_is_gone_is_granted_nothing) {
  auto a = hello(carols());
  ASSERT_TRUE(a->session);
  keep(a->session);
  write(tokens_file, "other-token dave\n");
  auto r = reload();
  ASSERT_FALSE(r->entries[0].error);
  EXPECT_EQ(forbidden_of(a->session, "team-a"), names{"team-a"});
  EXPECT_EQ(code_of(hello(carols())->error), sync_errc::unauthorized);
}

TEST_F(gateway_scopes_test, a_bad_file_changes_nothing_and_names_file_and_line) {
  auto a = hello(carols());
  ASSERT_TRUE(a->session);
  keep(a->session);
  write(tokens_file, "carol-token carol read:team-b admin:x\n");
  auto bad_tokens = reload();
  ASSERT_TRUE(bad_tokens->entries[0].error);
  auto why = to_sync_error(bad_tokens->entries[0].error).message;
  EXPECT_NE(why.find(tokens_file + ":1: grant 'admin:x'"), std::string::npos) << why;
  // Good tokens, bad rules: neither is taken.
  write(tokens_file, "carol-token carol read:team-b\n");
  write(scopes_file, "note team\nnote owner\n");
  auto bad_rules = reload();
  ASSERT_TRUE(bad_rules->entries[0].error);
  why = to_sync_error(bad_rules->entries[0].error).message;
  EXPECT_NE(why.find(scopes_file + ":2: type 'note' listed twice"), std::string::npos)
    << why;
  EXPECT_TRUE(record->reloads.empty());
  EXPECT_EQ(forbidden_of(a->session, "team-a"), names{});
  EXPECT_EQ(forbidden_of(a->session, "team-b"), names{"team-b"});
  auto b = hello(carols());
  ASSERT_EQ(b->reply.granted.size(), 1u);
  keep(b->session);
  EXPECT_EQ(b->reply.granted[0].pattern, "team-a");
  EXPECT_EQ(b->reply.rules.size(), 1u);
}

} // namespace
