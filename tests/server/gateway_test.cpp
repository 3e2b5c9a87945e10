// gateway alone, on virtual time, in front of a fake log: the handshake
// refuses a protocol mismatch, an unknown token and a client id that does
// not belong to the token's client; a good hello hands out a session that
// serves that client (its requests reach the log) and is subscribed for pokes.
#include "actors/server/gateway.hpp"

#include "tests/server/server_fakes.hpp"

using namespace memsync;
using namespace memsync::testing;

namespace {

constexpr const char* alice = "alice-0123456789abcdef";

struct log_record {
  std::vector<pull_request> pulls;
  size_t subscribers = 0;
};

replication_log_actor::behavior_type recording_log(std::shared_ptr<log_record> r) {
  return {
    [](push_atom, log_push&) { return push_reply{}; },
    [=](pull_atom, pull_request& req) {
      r->pulls.push_back(req);
      return pull_reply{};
    },
    [=](subscribe_atom, poke_listener_actor&) { ++r->subscribers; },
    [](poke_atom, const poke&) {},
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
  gateway_actor gateway;
  poke_listener_actor listener = keep(
    spawn_poke_recorder(sys, std::make_shared<poke_record>()));

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
  EXPECT_EQ(record->pulls[0].client_id, alice);
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

} // namespace
