// replication_log alone, on virtual time, over an in-memory backend the test
// controls: group commit (what arrives during a commit forms the next group,
// the group caps, versions in commit order, duplicates skipped), poke
// fan-out, and failures contained at the actor boundary (every exception a
// backend can throw becomes an error for the pushes it concerns; a push that
// fails by itself fails alone).
#include "actors/server/replication_log.hpp"

#include "actors/server/cookie_signer.hpp"
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
  auto failed = ask<pull_reply>(log, pull_atom::value, pull_request{"a", {}});
  sched.run();
  ASSERT_EQ(failed->entries.size(), 1u);
  EXPECT_TRUE(failed->entries[0].error);
  db->pulls = failure::none;
  auto fine = push(log, log_push_of("a", {put_change(1, "a1")}));
  auto pulled = ask<pull_reply>(log, pull_atom::value, pull_request{"a", {}});
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
                               pull_request{"a", std::move(since)});
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
