// session alone, on virtual time: the limits it enforces before anything
// reaches the log (changes and bytes per push, data limits on the canonical
// form, mutation ids in range), the origin check, one push and one pull in
// flight, poke forwarding and reading ahead (the answer to the client's next
// pull instead of a poke, and when a poke it stays); scopes (the readable
// part of each requested entry,
// forbidden entries named, a refetch when the grants grew, validation of the
// subscription, grants changed only by the gateway, the poke filter it
// leaves the log); against a fake log that records and holds. Then
// with a real log over an in-memory backend: an exit message sent to a
// session ends that session alone.
#include "actors/server/session.hpp"

#include <deque>

#include "tests/server/server_fakes.hpp"

using namespace memsync;
using namespace memsync::testing;

namespace {

constexpr const char* alice = "alice-0123456789abcdef";

/// What a fake log got, and the requests it holds unanswered.
struct log_script {
  std::vector<log_push> pushes;
  std::vector<log_pull> pulls;
  std::vector<std::vector<std::string>> filters; ///< poke filters, in order
  std::vector<poke_listener_actor> subscribers;
  std::vector<caf::typed_response_promise<push_reply>> held_pushes;
  std::vector<held<pull_reply>> held_pulls;
  pull_reply answer; ///< what the fake log answers every pull with
};

replication_log_actor::behavior_type fake_log(std::shared_ptr<log_script> s) {
  return {
    [=](push_atom, log_push& p) -> caf::result<push_reply> {
      s->pushes.push_back(p);
      push_reply reply;
      reply.last_mutation_id = p.request.changes.empty()
                                 ? 0
                                 : p.request.changes.back().mutation_id;
      return reply;
    },
    [=](pull_atom, log_pull& req) -> caf::result<pull_reply> {
      s->pulls.push_back(req);
      return s->answer;
    },
    [=](subscribe_atom, poke_listener_actor& l) { s->subscribers.push_back(l); },
    [=](scopes_atom, poke_listener_actor&, std::vector<std::string>& f) {
      s->filters.push_back(f);
    },
    [=](reload_atom, scope_rules&) {},
    [=](poke_atom, const relayed_commit&) {},
    [=](stats_atom) { return log_stats{}; },
  };
}

// A log that holds every request until released (one push in flight).
using holding_log_ptr = replication_log_actor::stateful_pointer<
  std::shared_ptr<log_script>>;

replication_log_actor::behavior_type holding_log(holding_log_ptr self,
                                                 std::shared_ptr<log_script> s) {
  return {
    [=](push_atom, log_push& p) {
      s->pushes.push_back(p);
      auto rp = self->make_response_promise<push_reply>();
      s->held_pushes.push_back(rp);
      return rp;
    },
    [=](pull_atom, log_pull& req) {
      s->pulls.push_back(req);
      auto rp = self->make_response_promise<pull_reply>();
      s->held_pulls.push_back({rp, caf::actor_cast<caf::strong_actor_ptr>(self)});
      return rp;
    },
    [=](subscribe_atom, poke_listener_actor& l) { s->subscribers.push_back(l); },
    [=](scopes_atom, poke_listener_actor&, std::vector<std::string>& f) {
      s->filters.push_back(f);
    },
    [=](reload_atom, scope_rules&) {},
    [=](poke_atom, const relayed_commit&) {},
    [=](stats_atom) { return log_stats{}; },
  };
}

/// A log's answer that moves the cookie to `version`.
pull_reply answer_at(uint64_t version) {
  pull_reply r;
  r.next = cookie{"epoch-1", version, version * 10, "mac-" + std::to_string(version)};
  r.last_mutation_id = 4;
  return r;
}

struct session_test : server_actor_test {
  std::shared_ptr<log_script> script = std::make_shared<log_script>();
  std::shared_ptr<poke_record> pokes = std::make_shared<poke_record>();
  session_limits limits;
  grants granted = all_grants();
  caf::actor_addr gateway;

  session_actor start(replication_log_actor log) {
    session_config cfg{alice,  sys.node(), keep(spawn_client_recorder(sys, pokes)),
                       limits, nullptr,    granted,
                       gateway};
    auto s = keep(spawn_session(sys, log, std::move(cfg)));
    sched.run();
    return s;
  }
  session_actor start() { return start(keep(sys.spawn(fake_log, script))); }

  /// A session on `log` (a holding_log) whose client's first pull the test
  /// answered at version 5: it knows the pull the client makes next.
  session_actor answered_on_holding(replication_log_actor log) {
    auto s = start(log);
    pull(s);
    sched.run();
    answer(script->held_pulls.back(), answer_at(5));
    sched.run();
    return s;
  }
  /// The same on `log`, a fake_log.
  session_actor answered_on_fake(replication_log_actor log) {
    auto s = start(log);
    script->answer = answer_at(5);
    pull(s);
    sched.run();
    return s;
  }

  std::shared_ptr<answer_log<push_reply>> push(session_actor s, std::vector<change> cs,
                                               std::string client = alice) {
    return ask<push_reply>(s, push_atom::value, push_request{client, "", std::move(cs)});
  }
  std::shared_ptr<answer_log<pull_reply>> pull(session_actor s,
                                               std::string client = alice) {
    return ask<pull_reply>(s, pull_atom::value, pull_request{client, {}});
  }

  template <class T>
  static sync_errc only_code(const std::shared_ptr<answer_log<T>>& a) {
    EXPECT_EQ(a->entries.size(), 1u);
    return a->entries.empty() ? sync_errc::timeout : code_of(a->entries[0].error);
  }
};

std::vector<change> numbered(size_t n, std::string data = "{}") {
  std::vector<change> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(put_change(i + 1, "e" + std::to_string(i), data));
  return out;
}

TEST_F(session_test, subscribes_at_the_log_for_its_client) {
  start();
  EXPECT_EQ(script->subscribers.size(), 1u);
}

TEST_F(session_test, a_push_over_the_change_or_byte_limit_is_refused_before_the_log) {
  limits.max_push_changes = 3;
  limits.max_push_bytes = 200;
  auto s = start();
  auto many = push(s, numbered(4));
  sched.run();
  EXPECT_EQ(only_code(many), sync_errc::too_large);
  auto fat = push(s, numbered(2, R"({"text":")" + std::string(200, 'x') + "\"}"));
  sched.run();
  EXPECT_EQ(only_code(fat), sync_errc::too_large);
  EXPECT_TRUE(script->pushes.empty());
  auto fine = push(s, numbered(3));
  sched.run();
  EXPECT_EQ(only_code(fine), sync_errc::none);
  EXPECT_EQ(script->pushes.size(), 1u);
}

TEST_F(session_test, the_byte_limit_counts_each_change_by_push_bytes) {
  auto changes = numbered(2);
  limits.max_push_bytes = push_bytes(changes[0]) + push_bytes(changes[1]);
  auto s = start();
  auto at_limit = push(s, changes);
  sched.run();
  EXPECT_EQ(only_code(at_limit), sync_errc::none);
  limits.max_push_bytes -= 1;
  auto s2 = start();
  auto over = push(s2, numbered(2));
  sched.run();
  EXPECT_EQ(only_code(over), sync_errc::too_large);
}

TEST_F(session_test, a_change_over_the_data_limits_is_refused_alone_in_canonical_form) {
  limits.data.max_bytes = 100;
  limits.data.max_depth = 3;
  auto s = start();
  // Under 100 bytes as sent, far over once canonical (1e9 -> 1000000000.0).
  std::string numbers = R"({"n":[1e9,1e9,1e9,1e9,1e9,1e9,1e9,1e9,1e9,1e9,1e9,1e9]})";
  ASSERT_LT(numbers.size(), 100u);
  auto deep = R"({"a":{"b":{"c":{"d":1}}}})";
  auto answer = push(s, {put_change(1, "grows", numbers), put_change(2, "deep", deep),
                         put_change(3, "fine", R"({ "b":1, "a":2 })")});
  sched.run();
  EXPECT_EQ(only_code(answer), sync_errc::none);
  ASSERT_EQ(script->pushes.size(), 1u);
  auto& verdicts = script->pushes[0].verdicts;
  ASSERT_EQ(verdicts.size(), 3u);
  EXPECT_EQ(verdicts[0].code, sync_errc::too_large) << verdicts[0].describe();
  EXPECT_EQ(verdicts[1].code, sync_errc::too_deep);
  EXPECT_TRUE(verdicts[2].ok());
  EXPECT_EQ(script->pushes[0].request.changes[2].data, R"({"a":2,"b":1})");
}

TEST_F(session_test, mutation_ids_must_increase_and_fit_every_backend) {
  auto s = start();
  auto zero = push(s, {put_change(0, "a")});
  auto backwards = push(s, {put_change(2, "a"), put_change(1, "b")});
  auto huge = push(s, {put_change(max_mutation_id + 1, "a")});
  sched.run();
  EXPECT_EQ(only_code(zero), sync_errc::invalid_request);
  EXPECT_EQ(only_code(backwards), sync_errc::invalid_request);
  EXPECT_EQ(only_code(huge), sync_errc::invalid_request);
  EXPECT_TRUE(script->pushes.empty());
  auto largest = push(s, {put_change(max_mutation_id, "a")});
  sched.run();
  EXPECT_EQ(only_code(largest), sync_errc::none);
}

TEST_F(session_test, a_request_naming_another_client_is_refused) {
  auto s = start();
  auto p = push(s, numbered(1), "bob-0123456789abcdef");
  auto q = pull(s, "alice-1123456789abcdef");
  sched.run();
  EXPECT_EQ(only_code(p), sync_errc::unauthorized);
  EXPECT_EQ(only_code(q), sync_errc::unauthorized);
  EXPECT_TRUE(script->pushes.empty());
  EXPECT_TRUE(script->pulls.empty());
}

TEST_F(session_test, one_push_and_one_pull_in_flight) {
  auto s = start(keep(sys.spawn(holding_log, script)));
  auto first = push(s, numbered(1));
  auto first_pull = pull(s);
  sched.run();
  auto second = push(s, numbered(1));
  auto second_pull = pull(s);
  sched.run();
  EXPECT_EQ(only_code(second), sync_errc::invalid_request);
  EXPECT_EQ(only_code(second_pull), sync_errc::invalid_request);
  EXPECT_EQ(script->pushes.size(), 1u);
  EXPECT_EQ(script->pulls.size(), 1u);
  EXPECT_TRUE(first->entries.empty());
  EXPECT_TRUE(first_pull->entries.empty());
}

TEST_F(session_test, the_next_push_and_pull_go_through_once_the_first_are_answered) {
  auto s = start();
  auto a = push(s, numbered(1));
  auto b = pull(s);
  sched.run();
  auto c = push(s, numbered(2));
  auto d = pull(s);
  sched.run();
  for (auto code : {only_code(a), only_code(c)})
    EXPECT_EQ(code, sync_errc::none);
  for (auto code : {only_code(b), only_code(d)})
    EXPECT_EQ(code, sync_errc::none);
  EXPECT_EQ(script->pushes.size(), 2u);
  EXPECT_EQ(script->pulls.size(), 2u);
}

TEST_F(session_test, pokes_from_the_log_reach_the_client_and_others_do_not) {
  auto log = keep(sys.spawn(fake_log, script));
  auto s = start(log);
  // The log's poke: sent as the log (a session trusts only its log).
  ASSERT_EQ(script->subscribers.size(), 1u);
  caf::send_as(caf::actor_cast<caf::actor>(log), s, poke_atom::value, poke{7, 0});
  caf::anon_send(s, poke_atom::value, poke{8, 0}); // from anyone else
  sched.run();
  ASSERT_EQ(pokes->pokes.size(), 1u);
  EXPECT_EQ(pokes->pokes[0].version, 7u);
}

// -- with a real log ------------------------------------------------------------

struct session_with_log_test : session_test {
  std::shared_ptr<fake_db> db = std::make_shared<fake_db>();
  replication_log_actor log = keep(
    spawn_replication_log(sys, std::make_unique<fake_backend>(db), {}, false));
};

struct session_exits : session_with_log_test,
                       ::testing::WithParamInterface<caf::exit_reason> {};

TEST_P(session_exits, an_exit_message_ends_that_session_alone) {
  watch(log);
  auto victim = start(log);
  auto other = start(log);
  watch(victim);
  watch(other);
  caf::anon_send_exit(victim, GetParam());
  sched.run();
  EXPECT_TRUE(ended->ended(victim));
  EXPECT_FALSE(ended->ended(log)) << "a session's exit ended the log";
  EXPECT_FALSE(ended->ended(other)) << "a session's exit ended another session";
  auto pushed = push(other, numbered(1));
  sched.run();
  auto pulled = pull(other);
  sched.run();
  EXPECT_EQ(only_code(pushed), sync_errc::none);
  ASSERT_EQ(only_code(pulled), sync_errc::none);
  EXPECT_EQ(pulled->entries[0].value.entities.size(), 1u);
  auto stats = ask<log_stats>(log, stats_atom::value);
  sched.run();
  ASSERT_EQ(stats->entries.size(), 1u);
  EXPECT_EQ(stats->entries[0].value.listeners, 1u) << "the dead session is still poked";
}

INSTANTIATE_TEST_SUITE_P(any_reason, session_exits,
                         ::testing::Values(caf::exit_reason::kill,
                                           caf::exit_reason::user_shutdown,
                                           caf::exit_reason::unhandled_exception,
                                           caf::exit_reason::remote_link_unreachable));

TEST_F(session_with_log_test, a_session_ends_with_its_log_and_with_its_client) {
  auto s = start(log);
  watch(s);
  auto listener = keep(spawn_client_recorder(sys, pokes));
  auto other = keep(
    spawn_session(sys, log, {alice, sys.node(), listener, limits, nullptr}));
  watch(other);
  sched.run();
  caf::anon_send_exit(listener, caf::exit_reason::kill); // the client went away
  sched.run();
  EXPECT_TRUE(ended->ended(other));
  EXPECT_FALSE(ended->ended(s));
  caf::anon_send_exit(log, caf::exit_reason::user_shutdown); // the node stops
  sched.run();
  EXPECT_TRUE(ended->ended(s));
}

} // namespace

// -- scopes ------------------------------------------------------------------------

namespace {

/// Sends a session new grants as itself: the test's gateway, or a stranger.
caf::actor spawn_grant_sender(caf::actor_system& sys) {
  return sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    return {[=](const session_actor& s, grants& g) {
      self->send(caf::actor_cast<caf::actor>(s), grants_atom::value, std::move(g));
    }};
  });
}

pull_request scoped_pull(std::vector<scope_since> scopes, uint64_t version,
                         std::vector<std::string> known_reads = {}) {
  pull_request req{alice, cookie{"epoch-1", version, version, ""}};
  req.scopes = std::move(scopes);
  req.known_reads = std::move(known_reads);
  return req;
}

std::vector<std::pair<std::string, uint64_t>> parts_of(const log_pull& p) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto& part : p.parts)
    out.emplace_back(part.pattern, part.since);
  return out;
}

using parts = std::vector<std::pair<std::string, uint64_t>>;

} // namespace

TEST_F(session_test, a_pull_reads_what_the_grants_permit_and_names_what_they_do_not) {
  granted = {{"team-a", false}, {"project-*", true}};
  auto s = start();
  auto r = ask<pull_reply>(
    s, pull_atom::value,
    scoped_pull({{"team-*", 5}, {"team-b", 5}, {"project-1", 0}, {"*", 4}}, 5,
                {"team-a", "project-*"}));
  sched.run();
  ASSERT_EQ(only_code(r), sync_errc::none);
  ASSERT_EQ(script->pulls.size(), 1u);
  auto& pull = script->pulls[0];
  EXPECT_FALSE(pull.refetch);
  EXPECT_EQ(parts_of(pull),
            (parts{{"team-a", 5}, {"project-1", 0}, {"project-*", 4}, {"team-a", 4}}));
  auto& reply = r->entries[0].value;
  EXPECT_EQ(reply.forbidden, (std::vector<std::string>{"team-b"}));
  ASSERT_EQ(reply.granted.size(), 2u);
  EXPECT_EQ(reply.granted[1].pattern, "project-*");
  EXPECT_TRUE(reply.granted[1].write);
}

TEST_F(session_test, a_pull_without_scopes_reads_every_readable_scope_from_the_cookie) {
  granted = {{"team-a", false}, {"team-b", true}};
  auto s = start();
  auto r = ask<pull_reply>(s, pull_atom::value, scoped_pull({}, 7));
  sched.run();
  ASSERT_EQ(only_code(r), sync_errc::none);
  ASSERT_EQ(script->pulls.size(), 1u);
  EXPECT_EQ(parts_of(script->pulls[0]), (parts{{"team-a", 7}, {"team-b", 7}}));
  EXPECT_TRUE(r->entries[0].value.forbidden.empty());
}

TEST_F(session_test, a_subscription_of_nothing_readable_reads_nothing) {
  granted = {{"team-a", false}};
  auto s = start();
  auto r = ask<pull_reply>(s, pull_atom::value, scoped_pull({{"team-b", 0}}, 0));
  sched.run();
  ASSERT_EQ(only_code(r), sync_errc::none);
  ASSERT_EQ(script->pulls.size(), 1u);
  EXPECT_TRUE(script->pulls[0].parts.empty()) << "the log reads no scope for it";
  EXPECT_EQ(r->entries[0].value.forbidden, (std::vector<std::string>{"team-b"}));
}

TEST_F(session_test, grants_beyond_the_known_reads_refetch_every_part_from_the_start) {
  granted = {{"team-a", false}, {"team-b", false}};
  auto s = start();
  auto grew = ask<pull_reply>(s, pull_atom::value,
                              scoped_pull({{"team-*", 9}}, 9, {"team-a"}));
  sched.run();
  ASSERT_EQ(only_code(grew), sync_errc::none);
  ASSERT_EQ(script->pulls.size(), 1u);
  EXPECT_TRUE(script->pulls[0].refetch);
  EXPECT_EQ(parts_of(script->pulls[0]), (parts{{"team-a", 0}, {"team-b", 0}}));
  // Known reads that cover the grants (or none: every scope) do not.
  for (auto known : {std::vector<std::string>{"team-*"}, std::vector<std::string>{}}) {
    auto same = ask<pull_reply>(s, pull_atom::value,
                                scoped_pull({{"team-*", 9}}, 9, known));
    sched.run();
    ASSERT_EQ(only_code(same), sync_errc::none);
    EXPECT_FALSE(script->pulls.back().refetch);
    EXPECT_EQ(parts_of(script->pulls.back()), (parts{{"team-a", 9}, {"team-b", 9}}));
  }
}

TEST_F(session_test, a_bad_subscription_is_refused_before_the_log) {
  limits.max_pull_scopes = 4;
  auto s = start();
  auto bad_pattern = ask<pull_reply>(s, pull_atom::value, scoped_pull({{"te*m", 0}}, 3));
  auto empty_pattern = ask<pull_reply>(s, pull_atom::value, scoped_pull({{"", 0}}, 3));
  auto ahead = ask<pull_reply>(s, pull_atom::value, scoped_pull({{"team-a", 4}}, 3));
  auto bad_known = ask<pull_reply>(s, pull_atom::value,
                                   scoped_pull({{"team-a", 0}}, 3, {"a b"}));
  std::vector<scope_since> many(5, scope_since{"team-a", 0});
  auto too_many = ask<pull_reply>(s, pull_atom::value, scoped_pull(many, 3));
  sched.run();
  EXPECT_EQ(only_code(bad_pattern), sync_errc::invalid_request);
  EXPECT_EQ(only_code(empty_pattern), sync_errc::invalid_request);
  EXPECT_EQ(only_code(ahead), sync_errc::invalid_request);
  EXPECT_NE(to_sync_error(ahead->entries[0].error).message.find("team-a"),
            std::string::npos);
  EXPECT_EQ(only_code(bad_known), sync_errc::invalid_request);
  EXPECT_EQ(only_code(too_many), sync_errc::too_large);
  EXPECT_TRUE(script->pulls.empty());
  // Within the limits it goes through.
  many.pop_back();
  auto fine = ask<pull_reply>(s, pull_atom::value, scoped_pull(many, 3));
  sched.run();
  EXPECT_EQ(only_code(fine), sync_errc::none);
}

TEST_F(session_test, pushes_carry_the_sessions_grants) {
  granted = {{"team-a", true}};
  auto s = start();
  push(s, numbered(1));
  sched.run();
  ASSERT_EQ(script->pushes.size(), 1u);
  ASSERT_EQ(script->pushes[0].granted.size(), 1u);
  EXPECT_EQ(script->pushes[0].granted[0].pattern, "team-a");
  EXPECT_TRUE(script->pushes[0].granted[0].write);
}

TEST_F(session_test, only_its_gateway_changes_a_sessions_grants) {
  granted = {{"team-a", false}};
  auto gw = keep(spawn_grant_sender(sys));
  auto stranger = keep(spawn_grant_sender(sys));
  gateway = gw.address();
  auto s = start();
  auto pull_b = [&] {
    auto r = ask<pull_reply>(s, pull_atom::value, scoped_pull({{"team-b", 0}}, 0));
    sched.run();
    EXPECT_EQ(only_code(r), sync_errc::none);
    return r->entries.empty() ? pull_reply{} : r->entries[0].value;
  };
  // Another actor of the node (or a peer that got hold of the session):
  // ignored, the session keeps the grants its gateway gave it.
  caf::anon_send(stranger, s, grants{{"*", true}});
  caf::anon_send(caf::actor_cast<caf::actor>(s), grants_atom::value, grants{{"*", true}});
  sched.run();
  EXPECT_EQ(pull_b().forbidden, (std::vector<std::string>{"team-b"}));
  push(s, numbered(1));
  sched.run();
  ASSERT_EQ(script->pushes.size(), 1u);
  EXPECT_EQ(script->pushes[0].granted.size(), 1u);
  EXPECT_FALSE(script->pushes[0].granted[0].write);
  // The gateway's new grants apply to the next pull and push.
  caf::anon_send(gw, s, grants{{"team-b", true}});
  sched.run();
  auto now = pull_b();
  EXPECT_TRUE(now.forbidden.empty());
  EXPECT_EQ(parts_of(script->pulls.back()), (parts{{"team-b", 0}}));
  ASSERT_EQ(now.granted.size(), 1u);
  EXPECT_EQ(now.granted[0].pattern, "team-b");
}

TEST_F(session_test, each_pull_leaves_the_log_its_poke_filter_when_it_changed) {
  granted = {{"team-a", false}, {"team-b", false}, {"project-*", true}};
  auto gw = keep(spawn_grant_sender(sys));
  gateway = gw.address();
  auto s = start();
  using filters = std::vector<std::vector<std::string>>;
  EXPECT_TRUE(script->filters.empty()) << "before its first pull, every poke";
  auto pull_with = [&](std::vector<scope_since> scopes) {
    auto r = ask<pull_reply>(s, pull_atom::value, scoped_pull(std::move(scopes), 2));
    sched.run();
    EXPECT_EQ(only_code(r), sync_errc::none);
  };
  pull_with({{"team-*", 2}, {"project-1", 0}, {"secret", 0}});
  EXPECT_EQ(script->filters, (filters{{"project-1", "team-a", "team-b"}}));
  pull_with({{"team-*", 2}, {"project-1", 2}, {"secret", 0}});
  EXPECT_EQ(script->filters.size(), 1u) << "unchanged: not sent again";
  pull_with({{"team-b", 2}});
  EXPECT_EQ(script->filters.back(), (std::vector<std::string>{"team-b"}));
  // New grants change what the client may be poked for at once.
  caf::anon_send(gw, s, grants{{"team-a", false}});
  sched.run();
  EXPECT_EQ(script->filters.back(), (std::vector<std::string>{}));
  EXPECT_EQ(script->filters.size(), 3u);
}

TEST_F(session_test, a_reply_names_the_grants_it_was_read_under) {
  granted = {{"team-a", false}};
  auto gw = keep(spawn_grant_sender(sys));
  gateway = gw.address();
  auto s = start();
  // A reload grants team-b while the pull, read under team-a, is at the log:
  // the new grants reach the session before the log's answer does.
  auto r = ask<pull_reply>(s, pull_atom::value, scoped_pull({{"team-*", 0}}, 0));
  caf::anon_send(gw, s, grants{{"team-a", false}, {"team-b", false}});
  sched.run();
  ASSERT_EQ(script->pulls.size(), 1u);
  ASSERT_EQ(parts_of(script->pulls[0]), (parts{{"team-a", 0}})) << "read under team-a";
  ASSERT_EQ(only_code(r), sync_errc::none);
  auto& told = r->entries[0].value.granted;
  ASSERT_EQ(told.size(), 1u) << "the client would never fetch team-b";
  EXPECT_EQ(told[0].pattern, "team-a");
  // Its next pull, under the new grants, fetches every part again.
  auto next = ask<pull_reply>(s, pull_atom::value,
                              scoped_pull({{"team-*", 0}}, 0, {"team-a"}));
  sched.run();
  ASSERT_EQ(script->pulls.size(), 2u);
  EXPECT_TRUE(script->pulls[1].refetch);
  EXPECT_EQ(parts_of(script->pulls[1]), (parts{{"team-a", 0}, {"team-b", 0}}));
}

// -- reading ahead ---------------------------------------------------------------

namespace {

/// The log's poke, sent as the log (a session trusts only its log).
void poke_from(replication_log_actor log, session_actor s, uint64_t version) {
  caf::send_as(caf::actor_cast<caf::actor>(log), s, poke_atom::value, poke{version, 0});
}

} // namespace

TEST_F(session_test, after_an_answer_a_poke_brings_the_answer_to_the_next_pull_instead) {
  granted = {{"team-a", true}, {"team-b", false}};
  auto log = keep(sys.spawn(fake_log, script));
  auto s = start(log);
  script->answer = answer_at(10);
  ask<pull_reply>(s, pull_atom::value,
                  scoped_pull({{"team-a", 3}, {"team-b", 0}}, 3, {"team-a"}));
  sched.run();
  script->answer = answer_at(12);
  poke_from(log, s, 12);
  sched.run();
  // The pull the client makes after taking the answer at 10: from its
  // cookie, both entries at 10, known reads those of the answer's grants.
  pull_request next{alice, answer_at(10).next, 0, {{"team-a", 10}, {"team-b", 10}},
                    {"team-a", "team-b"}};
  ASSERT_EQ(script->pulls.size(), 2u);
  EXPECT_TRUE(script->pulls[1].request == next);
  EXPECT_EQ(parts_of(script->pulls[1]), (parts{{"team-a", 10}, {"team-b", 10}}));
  EXPECT_TRUE(pokes->pokes.empty()) << "an answer instead of the poke";
  ASSERT_EQ(pokes->answers.size(), 1u);
  auto& sent = pokes->answers[0];
  EXPECT_EQ(sent.cause.version, 12u);
  EXPECT_TRUE(sent.asked == next);
  EXPECT_EQ(sent.answer.next.version, 12u);
  EXPECT_EQ(sent.answer.granted.size(), 2u) << "named like any answer";
  // And the next poke reads what the client asks after that one.
  poke_from(log, s, 13);
  sched.run();
  ASSERT_EQ(pokes->answers.size(), 2u);
  EXPECT_EQ(pokes->answers[1].asked.since.version, 12u);
  EXPECT_EQ(pokes->answers[1].asked.scopes, (std::vector<scope_since>{{"team-a", 12},
                                                                       {"team-b", 12}}));
}

TEST_F(session_test, a_poke_stays_a_poke_before_the_first_answer_and_while_the_client_pulls) {
  auto log = keep(sys.spawn(holding_log, script));
  auto s = start(log);
  poke_from(log, s, 5);
  sched.run();
  EXPECT_EQ(pokes->pokes.size(), 1u) << "no answer yet tells the client's next pull";
  auto first = pull(s);
  sched.run();
  ASSERT_EQ(script->held_pulls.size(), 1u);
  answer(script->held_pulls[0], answer_at(5));
  sched.run();
  ASSERT_EQ(only_code(first), sync_errc::none);
  auto second = pull(s);
  sched.run();
  poke_from(log, s, 6);
  sched.run();
  EXPECT_EQ(script->pulls.size(), 2u) << "nothing read while the client pulls";
  EXPECT_EQ(pokes->pokes.size(), 2u);
  EXPECT_TRUE(pokes->answers.empty());
}

TEST_F(session_test, what_was_read_ahead_goes_as_a_poke_if_the_client_pulled_meanwhile) {
  auto log = keep(sys.spawn(holding_log, script));
  auto s = answered_on_holding(log);
  poke_from(log, s, 6);
  sched.run();
  ASSERT_EQ(script->held_pulls.size(), 2u) << "read ahead";
  auto own = pull(s); // the client's fallback pull, say: not refused
  sched.run();
  ASSERT_EQ(script->held_pulls.size(), 3u);
  answer(script->held_pulls[1], answer_at(6));
  sched.run();
  EXPECT_TRUE(pokes->answers.empty()) << "the client's next pull is another one now";
  ASSERT_EQ(pokes->pokes.size(), 1u);
  EXPECT_EQ(pokes->pokes[0].version, 6u);
  answer(script->held_pulls[2], answer_at(6));
  sched.run();
  EXPECT_EQ(only_code(own), sync_errc::none);
}

TEST_F(session_test, an_answer_in_pages_or_a_reset_goes_as_a_poke) {
  auto log = keep(sys.spawn(fake_log, script));
  auto s = answered_on_fake(log);
  script->answer = answer_at(9);
  script->answer.complete = false;
  poke_from(log, s, 9);
  sched.run();
  script->answer.complete = true;
  script->answer.reset = true;
  poke_from(log, s, 10);
  sched.run();
  EXPECT_EQ(script->pulls.size(), 3u);
  EXPECT_TRUE(pokes->answers.empty()) << "those the client asks for itself";
  EXPECT_EQ(pokes->pokes.size(), 2u);
}

TEST_F(session_test, new_grants_stop_reading_ahead_until_the_next_answer) {
  auto gw = keep(spawn_grant_sender(sys));
  gateway = gw.address();
  auto log = keep(sys.spawn(fake_log, script));
  auto s = answered_on_fake(log);
  caf::anon_send(gw, s, grants{{"team-a", true}});
  sched.run();
  poke_from(log, s, 6);
  sched.run();
  EXPECT_EQ(script->pulls.size(), 1u) << "the client pulls under its new grants itself";
  EXPECT_EQ(pokes->pokes.size(), 1u);
  pull(s);
  sched.run();
  poke_from(log, s, 7);
  sched.run();
  EXPECT_EQ(pokes->answers.size(), 1u) << "its next answer tells the next pull again";
}

TEST_F(session_test, pokes_during_a_read_ahead_are_served_by_one_more_read) {
  auto log = keep(sys.spawn(holding_log, script));
  auto s = answered_on_holding(log);
  poke_from(log, s, 6);
  sched.run();
  poke_from(log, s, 7);
  poke_from(log, s, 8);
  sched.run();
  ASSERT_EQ(script->held_pulls.size(), 2u) << "one read at a time";
  answer(script->held_pulls[1], answer_at(6));
  sched.run();
  ASSERT_EQ(script->held_pulls.size(), 3u);
  EXPECT_EQ(script->pulls[2].request.since.version, 6u) << "after the answer sent";
  answer(script->held_pulls[2], answer_at(8));
  sched.run();
  ASSERT_EQ(pokes->answers.size(), 2u);
  EXPECT_EQ(pokes->answers[0].cause.version, 6u);
  EXPECT_EQ(pokes->answers[1].cause.version, 8u);
  EXPECT_EQ(script->held_pulls.size(), 3u) << "and no more";
}
