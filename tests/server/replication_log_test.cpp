// replication_log alone, on virtual time, over an in-memory backend the test
// controls: group commit (what arrives during a commit forms the next group,
// the group caps, versions in commit order, duplicates skipped), poke
// fan-out by scope (only listeners whose filter names a touched scope; every
// listener for another node's commit), scope rules and their reload, the
// parts a pull reads, and failures contained at the actor boundary (every exception a
// backend can throw becomes an error for the pushes it concerns; a push that
// fails by itself fails alone).
#include "actors/server/replication_log.hpp"

#include "actors/server/cookie_signer.hpp"
#include "actors/server/poke_index.hpp"
#include "tests/server/server_fakes.hpp"

using namespace memsync;
using namespace memsync::testing;

namespace {

struct replication_log_test : server_actor_test {
  std::shared_ptr<fake_db> db = std::make_shared<fake_db>();
  log_settings settings;

  replication_log_actor start() {
    return keep(
      spawn_replication_log(sys, std::make_unique<fake_backend>(db), settings, false));
  }

  std::shared_ptr<answer_log<push_reply>> push(replication_log_actor log, log_push p) {
    return ask<push_reply>(log, push_atom::value, std::move(p));
  }

  log_stats stats(replication_log_actor log) {
    auto out = ask<log_stats>(log, stats_atom::value);
    sched.run();
    EXPECT_EQ(out->entries.size(), 1u);
    return out->entries.empty() ? log_stats{} : out->entries[0].value;
  }

  uint64_t version_of(const std::string& id) {
    auto it = db->entities.find(id);
    return it == db->entities.end() ? 0 : it->second.version;
  }
};

TEST_F(replication_log_test, pushes_arriving_during_a_commit_form_the_next_group) {
  auto log = start();
  std::shared_ptr<answer_log<push_reply>> b, c;
  db->on_commit = [&] { // the first commit is being written
    b = push(log, log_push_of("b", {put_change(1, "b1")}));
    c = push(log, log_push_of("c", {put_change(1, "c1")}));
  };
  auto a = push(log, log_push_of("a", {put_change(1, "a1")}));
  sched.run();
  using group = std::vector<std::string>;
  ASSERT_EQ(db->commits, (std::vector<group>{{"a"}, {"b", "c"}}));
  for (auto& answers : {a, b, c}) {
    ASSERT_EQ(answers->entries.size(), 1u);
    EXPECT_FALSE(answers->entries[0].error);
    EXPECT_EQ(answers->entries[0].value.last_mutation_id, 1u);
  }
  // Versions in commit order.
  EXPECT_EQ(version_of("a1"), 1u);
  EXPECT_EQ(version_of("b1"), 2u);
  EXPECT_EQ(version_of("c1"), 3u);
  auto s = stats(log);
  EXPECT_EQ(s.commits, 2u);
  EXPECT_EQ(s.pushes, 3u);
  EXPECT_EQ(s.version, 3u);
}

TEST_F(replication_log_test, the_group_caps_split_a_long_queue_in_arrival_order) {
  settings.max_group_pushes = 2;
  auto log = start();
  std::vector<std::shared_ptr<answer_log<push_reply>>> answers;
  for (int i = 0; i < 5; ++i) {
    auto client = "c" + std::to_string(i);
    answers.push_back(push(log, log_push_of(client, {put_change(1, client + "-e")})));
  }
  sched.run();
  using group = std::vector<std::string>;
  EXPECT_EQ(db->commits, (std::vector<group>{{"c0", "c1"}, {"c2", "c3"}, {"c4"}}));
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(answers[i]->entries.size(), 1u);
    EXPECT_FALSE(answers[i]->entries[0].error);
    EXPECT_EQ(version_of("c" + std::to_string(i) + "-e"), static_cast<uint64_t>(i + 1));
  }
}

TEST_F(replication_log_test, what_a_cap_left_behind_commits_with_what_arrived_meanwhile) {
  settings.max_group_pushes = 2;
  auto log = start();
  // Straight into the log's mailbox while it commits (no requester in between).
  db->on_commit = [&] {
    caf::anon_send(log, push_atom::value, log_push_of("late", {put_change(1, "late-e")}));
  };
  for (int i = 0; i < 3; ++i) {
    auto client = "c" + std::to_string(i);
    push(log, log_push_of(client, {put_change(1, client + "-e")}));
  }
  sched.run();
  using group = std::vector<std::string>;
  EXPECT_EQ(db->commits, (std::vector<group>{{"c0", "c1"}, {"c2", "late"}}));
}

TEST_F(replication_log_test, the_byte_cap_closes_a_group_but_a_big_push_still_commits) {
  settings.max_group_bytes = 100;
  auto log = start();
  auto big = std::string(R"({"x":")") + std::string(200, 'x') + "\"}";
  push(log, log_push_of("a", {put_change(1, "a1")}));
  auto large = push(log, log_push_of("b", {put_change(1, "b1", big)}));
  push(log, log_push_of("c", {put_change(1, "c1")}));
  sched.run();
  using group = std::vector<std::string>;
  EXPECT_EQ(db->commits, (std::vector<group>{{"a"}, {"b"}, {"c"}}));
  ASSERT_EQ(large->entries.size(), 1u);
  EXPECT_FALSE(large->entries[0].error);
}

TEST_F(replication_log_test, resent_changes_are_skipped_and_write_nothing) {
  auto log = start();
  push(log, log_push_of("a", {put_change(1, "e1", R"({"n":1})")}));
  sched.run();
  auto writes = db->client_writes;
  auto again = push(log, log_push_of("a", {put_change(1, "e1", R"({"n":2})")}));
  sched.run();
  ASSERT_EQ(again->entries.size(), 1u);
  EXPECT_FALSE(again->entries[0].error);
  EXPECT_EQ(again->entries[0].value.last_mutation_id, 1u);
  EXPECT_EQ(db->entities.at("e1").data, R"({"n":1})");
  EXPECT_EQ(db->head, 1u);
  EXPECT_EQ(db->client_writes, writes) << "a push of duplicates wrote its client row";
}

TEST_F(replication_log_test, an_empty_push_of_a_new_client_writes_nothing) {
  auto log = start();
  auto empty = push(log, log_push_of("newcomer", {}));
  sched.run();
  ASSERT_EQ(empty->entries.size(), 1u);
  EXPECT_FALSE(empty->entries[0].error);
  EXPECT_EQ(empty->entries[0].value.last_mutation_id, 0u);
  EXPECT_EQ(db->client_writes, 0u);
  EXPECT_EQ(db->entity_writes, 0u);
  EXPECT_TRUE(db->clients.empty());
}

TEST_F(replication_log_test, every_listener_gets_one_poke_per_commit_until_it_ends) {
  auto log = start();
  std::vector<std::shared_ptr<poke_record>> recs;
  std::vector<poke_listener_actor> listeners;
  for (int i = 0; i < 3; ++i) {
    recs.push_back(std::make_shared<poke_record>());
    listeners.push_back(keep(spawn_poke_recorder(sys, recs.back())));
    caf::anon_send(log, subscribe_atom::value, listeners.back());
  }
  sched.run();
  EXPECT_EQ(stats(log).listeners, 3u);
  push(log, log_push_of("a", {put_change(1, "a1"), put_change(2, "a2")}));
  sched.run();
  push(log, log_push_of("a", {put_change(3, "a3")}));
  sched.run();
  for (auto& rec : recs) {
    ASSERT_EQ(rec->pokes.size(), 2u);
    EXPECT_EQ(rec->pokes[0].version, 2u);
    EXPECT_EQ(rec->pokes[1].version, 3u);
  }
  caf::anon_send_exit(listeners[1], caf::exit_reason::kill);
  sched.run();
  EXPECT_EQ(stats(log).listeners, 2u) << "a terminated listener was kept";
  push(log, log_push_of("a", {put_change(4, "a4")}));
  sched.run();
  EXPECT_EQ(recs[0]->pokes.size(), 3u);
  EXPECT_EQ(recs[1]->pokes.size(), 2u);
  EXPECT_EQ(recs[2]->pokes.size(), 3u);
  // A commit that wrote nothing new pokes nobody.
  push(log, log_push_of("a", {put_change(4, "a4")}));
  sched.run();
  EXPECT_EQ(recs[0]->pokes.size(), 3u);
}

TEST_F(replication_log_test, a_push_that_fails_by_itself_fails_alone_in_its_group) {
  db->poison = {"bad"};
  auto log = start();
  push(log, log_push_of("seed", {put_change(1, "s")}));
  sched.run();
  std::shared_ptr<answer_log<push_reply>> a, b, c;
  db->on_commit = [&] { // all three queue behind the seed's commit
    a = push(log, log_push_of("a", {put_change(1, "a1")}));
    b = push(log, log_push_of("b", {put_change(1, "b1"), put_change(2, "bad")}));
    c = push(log, log_push_of("c", {put_change(1, "c1")}));
  };
  push(log, log_push_of("seed", {put_change(2, "s2")}));
  sched.run();
  ASSERT_TRUE(a && b && c);
  ASSERT_EQ(b->entries.size(), 1u);
  EXPECT_EQ(code_of(b->entries[0].error), sync_errc::db_error);
  EXPECT_NE(to_sync_error(b->entries[0].error).message.find("bad"), std::string::npos);
  for (auto& good : {a, c}) {
    ASSERT_EQ(good->entries.size(), 1u);
    EXPECT_FALSE(good->entries[0].error) << sys.render(good->entries[0].error);
  }
  EXPECT_FALSE(db->entities.count("b1")) << "half of the failed push was applied";
  EXPECT_LT(version_of("a1"), version_of("c1"));
  EXPECT_EQ(db->clients.count("b"), 0u);
}

TEST_F(replication_log_test, a_mutation_id_no_backend_can_store_fails_its_push_alone) {
  auto log = start();
  auto huge = push(log, log_push_of("a", {put_change(max_mutation_id + 6, "a1")}));
  auto fine = push(log, log_push_of("b", {put_change(1, "b1")}));
  sched.run();
  ASSERT_EQ(huge->entries.size(), 1u);
  EXPECT_EQ(code_of(huge->entries[0].error), sync_errc::invalid_request);
  ASSERT_EQ(fine->entries.size(), 1u);
  EXPECT_FALSE(fine->entries[0].error);
  EXPECT_EQ(db->commits.size(), 1u);
  EXPECT_FALSE(db->entities.count("a1"));
}

// Every kind of exception a backend throws, on commit and on pull: answered
// as an error, and the log serves the next push and pull.
struct replication_log_failures : replication_log_test,
                                  ::testing::WithParamInterface<failure> {};

TEST_P(replication_log_failures, a_throwing_commit_is_answered_and_the_log_goes_on) {
  auto log = start();
  watch(log);
  db->next_commit = GetParam();
  auto failed = push(log, log_push_of("a", {put_change(1, "a1")}));
  sched.run();
  ASSERT_EQ(failed->entries.size(), 1u);
  auto code = code_of(failed->entries[0].error);
  bool retryable = GetParam() == failure::retryable
                   || GetParam() == failure::out_of_memory;
  EXPECT_EQ(code, retryable ? sync_errc::unavailable : sync_errc::db_error);
  EXPECT_TRUE(db->entities.empty());
  auto again = push(log, log_push_of("a", {put_change(1, "a1")}));
  sched.run();
  ASSERT_EQ(again->entries.size(), 1u);
  EXPECT_FALSE(again->entries[0].error);
  EXPECT_FALSE(ended->ended(log));
}

TEST_P(replication_log_failures, a_throwing_pull_is_answered_and_the_log_goes_on) {
  auto log = start();
  watch(log);
  db->pulls = GetParam();
  auto failed = ask<pull_reply>(log, pull_atom::value, log_pull{pull_request{"a", {}}});
  sched.run();
  ASSERT_EQ(failed->entries.size(), 1u);
  EXPECT_TRUE(failed->entries[0].error);
  db->pulls = failure::none;
  auto fine = push(log, log_push_of("a", {put_change(1, "a1")}));
  auto pulled = ask<pull_reply>(log, pull_atom::value, log_pull{pull_request{"a", {}}});
  sched.run();
  ASSERT_EQ(fine->entries.size(), 1u);
  EXPECT_FALSE(fine->entries[0].error);
  ASSERT_EQ(pulled->entries.size(), 1u);
  EXPECT_FALSE(pulled->entries[0].error);
  EXPECT_FALSE(ended->ended(log));
}

INSTANTIATE_TEST_SUITE_P(every_kind, replication_log_failures,
                         ::testing::Values(failure::retryable, failure::fatal,
                                           failure::sqlite, failure::out_of_memory,
                                           failure::other));

} // namespace

// -- signed cookies ----------------------------------------------------------

namespace {

pull_reply pull_with(replication_log_test& t, replication_log_actor log, cookie since) {
  auto out = t.ask<pull_reply>(log, pull_atom::value,
                               log_pull{pull_request{"a", std::move(since)}, {{"*", 0}}});
  t.sched.run();
  EXPECT_EQ(out->entries.size(), 1u);
  EXPECT_FALSE(out->entries.empty() && out->entries[0].error);
  return out->entries.empty() ? pull_reply{} : out->entries[0].value;
}

} // namespace

TEST_F(replication_log_test, cookies_come_back_signed_and_forged_ones_count_as_none) {
  auto log = start();
  push(log, log_push_of("a", {put_change(1, "a1")}));
  sched.run();
  auto first = pull_with(*this, log, {});
  EXPECT_TRUE(first.reset);
  cookie_signer signer{"fake-secret"};
  EXPECT_TRUE(signer.verify(first.next)) << first.next.mac;
  // The signed cookie: an incremental pull.
  push(log, log_push_of("a", {put_change(2, "a2")}));
  sched.run();
  auto next = pull_with(*this, log, first.next);
  EXPECT_FALSE(next.reset);
  ASSERT_EQ(next.entities.size(), 1u);
  EXPECT_EQ(next.entities[0].id, "a2");
  // The same position unsigned, or signed by someone else: what a new client
  // gets (the whole state), never taken for a history the server lost.
  for (auto forged : {cookie{first.next.epoch, first.next.version, first.next.commit, ""},
                      cookie{first.next.epoch, 1, 999,
                             cookie_signer{"guess"}.sign({first.next.epoch, 1, 999})}}) {
    auto r = pull_with(*this, log, forged);
    EXPECT_TRUE(r.reset);
    EXPECT_EQ(r.entities.size(), 2u);
    EXPECT_TRUE(signer.verify(r.next));
  }
}

// -- scopes: pokes by filter, rules, parts -------------------------------------

namespace {

const scope_rules team_rules{{"note", "team"}};

change team_note(uint64_t mid, std::string id, const std::string& team) {
  return put_change(mid, std::move(id), R"({"team":")" + team + R"("})");
}

} // namespace

TEST_F(replication_log_test,
       a_commit_pokes_only_listeners_whose_filter_names_its_scopes) {
  settings.rules = team_rules;
  auto log = start();
  // No filter yet, team-a, team-*, team-b, nothing, everything.
  std::vector<std::vector<std::string>> filters{
    {"team-a"}, {"team-*"}, {"team-b"}, {}, {"*"}};
  std::vector<std::shared_ptr<poke_record>> recs;
  std::vector<poke_listener_actor> listeners;
  for (size_t i = 0; i <= filters.size(); ++i) {
    recs.push_back(std::make_shared<poke_record>());
    listeners.push_back(keep(spawn_poke_recorder(sys, recs.back())));
    caf::anon_send(log, subscribe_atom::value, listeners.back());
  }
  sched.run();
  for (size_t i = 0; i < filters.size(); ++i)
    caf::anon_send(log, scopes_atom::value, listeners[i + 1], filters[i]);
  sched.run();
  auto counts = [&] {
    std::vector<size_t> out;
    for (auto& r : recs)
      out.push_back(r->pokes.size());
    return out;
  };
  push(log, log_push_of("w", {team_note(1, "x1", "team-a")}));
  sched.run();
  EXPECT_EQ(counts(), (std::vector<size_t>{1, 1, 1, 0, 0, 1}));
  push(log, log_push_of("w", {team_note(2, "x2", "team-b")}));
  sched.run();
  EXPECT_EQ(counts(), (std::vector<size_t>{2, 1, 2, 1, 0, 2}));
  push(log, log_push_of("w", {team_note(3, "x3", "other")}));
  sched.run();
  EXPECT_EQ(counts(), (std::vector<size_t>{3, 1, 2, 1, 0, 3}));
  // Another node's commit whose scopes are unknown: everyone is poked.
  caf::anon_send(log, poke_atom::value, relayed_commit{10, {}, false});
  sched.run();
  EXPECT_EQ(counts(), (std::vector<size_t>{4, 2, 3, 2, 1, 4}));
  // One whose notification named its scopes: as a commit of this node.
  caf::anon_send(log, poke_atom::value, relayed_commit{12, {"team-b"}, true});
  sched.run();
  EXPECT_EQ(counts(), (std::vector<size_t>{5, 2, 4, 3, 1, 5}));
  // A move between two scopes another node made pokes the listeners of both.
  caf::anon_send(log, poke_atom::value, relayed_commit{13, {"other", "team-a"}, true});
  sched.run();
  EXPECT_EQ(counts(), (std::vector<size_t>{6, 3, 5, 3, 1, 6}));
  // A filter for a listener that never subscribed changes nothing.
  auto stranger_rec = std::make_shared<poke_record>();
  auto stranger = keep(spawn_poke_recorder(sys, stranger_rec));
  caf::anon_send(log, scopes_atom::value, stranger, std::vector<std::string>{"*"});
  push(log, log_push_of("w", {team_note(4, "x4", "team-a")}));
  sched.run();
  EXPECT_TRUE(stranger_rec->pokes.empty());
  EXPECT_EQ(stats(log).listeners, 6u);
}

TEST_F(replication_log_test, a_listener_that_ends_leaves_the_scope_index) {
  settings.rules = team_rules;
  auto log = start();
  auto rec = std::make_shared<poke_record>();
  auto gone = keep(spawn_poke_recorder(sys, std::make_shared<poke_record>()));
  auto stays = keep(spawn_poke_recorder(sys, rec));
  for (auto& l : {gone, stays}) {
    caf::anon_send(log, subscribe_atom::value, l);
    caf::anon_send(log, scopes_atom::value, l, std::vector<std::string>{"team-a"});
  }
  sched.run();
  caf::anon_send_exit(gone, caf::exit_reason::kill);
  sched.run();
  push(log, log_push_of("w", {team_note(1, "x1", "team-a")}));
  sched.run();
  EXPECT_EQ(rec->pokes.size(), 1u);
  EXPECT_EQ(stats(log).listeners, 1u);
}

TEST_F(replication_log_test, reloaded_rules_decide_the_scopes_of_later_writes) {
  auto log = start();
  auto rec = std::make_shared<poke_record>();
  auto listener = keep(spawn_poke_recorder(sys, rec));
  caf::anon_send(log, subscribe_atom::value, listener);
  caf::anon_send(log, scopes_atom::value, listener, std::vector<std::string>{"team-a"});
  sched.run();
  // No rules: every entity is in 'default'.
  push(log, log_push_of("w", {team_note(1, "x1", "team-a")}));
  sched.run();
  EXPECT_TRUE(rec->pokes.empty());
  caf::anon_send(log, reload_atom::value, team_rules);
  sched.run();
  push(log, log_push_of("w", {team_note(2, "x2", "team-a")}));
  // A ruled entity without its field is refused, naming the field.
  auto unscoped = push(log, log_push_of("w", {put_change(3, "x3", "{}")}));
  sched.run();
  EXPECT_EQ(rec->pokes.size(), 1u);
  ASSERT_EQ(unscoped->entries.size(), 1u);
  ASSERT_EQ(unscoped->entries[0].value.refused.size(), 1u);
  auto& why = unscoped->entries[0].value.refused[0].reason;
  EXPECT_EQ(why.code, sync_errc::invalid_request);
  EXPECT_NE(why.message.find("team"), std::string::npos) << why.message;
  // Every pull reply carries the rules in force.
  auto pulled = pull_with(*this, log, {});
  ASSERT_EQ(pulled.rules.size(), 1u);
  EXPECT_EQ(pulled.rules[0].field, "team");
}

TEST_F(replication_log_test, a_push_outside_its_grants_is_refused_forbidden) {
  settings.rules = team_rules;
  auto log = start();
  auto p = log_push_of("w", {team_note(1, "x1", "team-a"), team_note(2, "x2", "team-b")});
  p.granted = {{"team-a", true}, {"team-b", false}};
  auto answer = push(log, std::move(p));
  sched.run();
  ASSERT_EQ(answer->entries.size(), 1u);
  auto& reply = answer->entries[0].value;
  EXPECT_EQ(reply.last_mutation_id, 2u);
  ASSERT_EQ(reply.refused.size(), 1u);
  EXPECT_EQ(reply.refused[0].mutation_id, 2u);
  EXPECT_EQ(reply.refused[0].reason.code, sync_errc::forbidden);
  EXPECT_EQ(db->entities.count("x1"), 1u);
  EXPECT_EQ(db->entities.count("x2"), 0u);
}

TEST_F(replication_log_test,
       a_pull_reads_the_parts_the_session_gave_and_no_part_reads_nothing) {
  auto log = start();
  log_pull scoped{pull_request{"a", {}}, {{"team-a", 3}, {"project-*", 0}}, true};
  auto first = ask<pull_reply>(log, pull_atom::value, scoped);
  sched.run();
  ASSERT_EQ(first->entries.size(), 1u);
  ASSERT_EQ(db->last_page.parts.size(), 2u);
  EXPECT_EQ(db->last_page.parts[1].pattern, "project-*");
  EXPECT_EQ(db->last_page.parts[0].since, 3u);
  EXPECT_TRUE(db->last_page.refetch);
  // No readable part: the backend must not read "every scope" (what an
  // empty list means to it), only the cookie and the client's record.
  auto none = ask<pull_reply>(log, pull_atom::value, log_pull{pull_request{"a", {}}});
  sched.run();
  ASSERT_EQ(none->entries.size(), 1u);
  ASSERT_EQ(db->last_page.parts.size(), 1u);
  auto& nothing = db->last_page.parts[0].pattern;
  for (auto scope : {"default", "team-a", "x"})
    EXPECT_FALSE(pattern_matches(nothing, scope)) << scope;
  EXPECT_FALSE(validate_scope(nothing).ok());
}

// -- poke_index ------------------------------------------------------------------

TEST(poke_index, finds_the_listeners_of_a_scope_among_many) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::vector<caf::actor> actors;
  poke_index index;
  for (int i = 0; i < 2000; ++i) {
    actors.push_back(sys.spawn([] {
      return caf::behavior{[](int) {
      }};
    }));
    index.add(actors.back().address());
    index.set_filter(actors.back().address(),
                     {"s-" + std::to_string(i), "p" + std::to_string(i % 10) + "-*"});
  }
  auto exact = index.touched_by({"s-42"});
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0], actors[42].address());
  // "p3-x" is named by the prefix of every tenth listener.
  EXPECT_EQ(index.touched_by({"p3-x"}).size(), 200u);
  // Both at once: each listener once.
  EXPECT_EQ(index.touched_by({"s-3", "p3-x"}).size(), 200u);
  EXPECT_TRUE(index.touched_by({"nobody"}).empty());
  // A new filter replaces the old one.
  index.set_filter(actors[42].address(), {"*"});
  EXPECT_EQ(index.touched_by({"s-42"}).size(), 1u);
  EXPECT_EQ(index.touched_by({"nobody"}).size(), 1u);
  index.remove(actors[42].address());
  EXPECT_TRUE(index.touched_by({"s-42", "nobody"}).empty());
  EXPECT_EQ(index.size(), 1999u);
  EXPECT_FALSE(index.set_filter(actors[42].address(), {"*"})) << "removed";
  for (auto& a : actors)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}
