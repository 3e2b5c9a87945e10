// flush_scheduler alone, on virtual time, against a scripted local_db that
// records every batch and fails when told to, and against a slow one in
// front of a real local database (a SQLite file) whose replies come late.
#include "actors/client/flush_scheduler.hpp"

#include "actors/client/local_database.hpp"
#include "tests/support/temp_dir.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "tests/support/actor_fixture.hpp"

using namespace memsync;
using namespace std::chrono_literals;

namespace {

struct db_log {
  std::vector<std::vector<change>> attempts; ///< every batch received
  std::vector<std::vector<change>> committed;
  int fail_next = 0;
  uint64_t next_mid = 1;
  std::vector<flush_report> reports;
};

local_db_actor::behavior_type scripted_db(local_db_actor::pointer,
                                          std::shared_ptr<db_log> log) {
  return {
    [=](flush_atom, uint64_t,
        const std::vector<change>& batch) -> caf::result<std::vector<uint64_t>> {
      log->attempts.push_back(batch);
      if (log->fail_next > 0) {
        --log->fail_next;
        return make_error(sync_errc::db_error, "disk I/O error");
      }
      log->committed.push_back(batch);
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < batch.size(); ++i)
        ids.push_back(log->next_mid++);
      return ids;
    },
    [=](rebase_atom, const pull_reply&, const std::vector<std::string>&) {
      return ok_atom::value;
    },
    [=](outbox_atom, uint64_t, uint64_t, uint64_t) { return std::vector<change>{}; },
    [=](epoch_atom, const std::string&) { return ok_atom::value; },
    [=](outbox_max_atom) { return log->next_mid - 1; },
    [=](scopes_atom, const scope_subscription&) { return ok_atom::value; },
    [=](prune_atom, const scope_rules&, const std::vector<std::string>&) {
      return ok_atom::value;
    },
    [=](pushed_atom) { return uint64_t{0}; },
    [=](restored_atom, const std::string& id,
        uint64_t) -> caf::result<std::string, std::vector<uint64_t>> {
      return {id, std::vector<uint64_t>{}};
    },
  };
}

flush_listener_actor::behavior_type recorder(flush_listener_actor::pointer,
                                             std::shared_ptr<db_log> log) {
  return {
    [=](flushed_atom, const flush_report& r) { log->reports.push_back(r); },
  };
}

change put(uint64_t seq, std::string id, std::string data = "{}") {
  return {seq, 0, change_kind::put, std::move(id), "t", std::move(data), {seq, 0}};
}

change patch(uint64_t seq, std::string id, std::string data) {
  return {seq, 0, change_kind::patch, std::move(id), "t", std::move(data), {seq, 0}};
}

/// local_db behind a large rebase: every flush waits until the test lets it
/// into a real local database, in arrival order.
struct slow_db {
  std::unique_ptr<local_database> file;
  struct request {
    uint64_t batch;
    std::vector<change> changes;
    memsync::testing::held<std::vector<uint64_t>> reply;
  };
  std::vector<request> waiting;
  /// For each repair: the highest mutation id assigned when it ran.
  std::vector<uint64_t> assigned_at_repair;

  /// Applies every waiting flush and answers it (CAF drops the answer to a
  /// request that timed out meanwhile).
  void let_through() {
    for (auto& r : waiting)
      memsync::testing::answer(r.reply, file->append(r.changes, r.batch));
    waiting.clear();
  }
};

local_db_actor::behavior_type slow_local_db(local_db_actor::pointer self,
                                            std::shared_ptr<slow_db> db) {
  return {
    [=](flush_atom, uint64_t batch,
        const std::vector<change>& changes) -> caf::result<std::vector<uint64_t>> {
      auto rp = self->make_response_promise<std::vector<uint64_t>>();
      db->waiting.push_back(
        {batch, changes, {rp, caf::actor_cast<caf::strong_actor_ptr>(self)}});
      return rp;
    },
    [=](rebase_atom, const pull_reply&, const std::vector<std::string>&) {
      return ok_atom::value;
    },
    [=](outbox_atom, uint64_t, uint64_t, uint64_t) { return std::vector<change>{}; },
    [=](epoch_atom, const std::string&) { return ok_atom::value; },
    [=](outbox_max_atom) { return uint64_t{0}; },
    [=](scopes_atom, const scope_subscription&) { return ok_atom::value; },
    [=](prune_atom, const scope_rules&, const std::vector<std::string>&) {
      return ok_atom::value;
    },
    [=](pushed_atom) { return uint64_t{0}; },
    [=](restored_atom, const std::string& id,
        uint64_t record) -> caf::result<std::string, std::vector<uint64_t>> {
      db->assigned_at_repair.push_back(db->file->next_mutation_id() - 1);
      auto r = db->file->repair(id, record);
      return {r.client_id, r.old_ids};
    },
  };
}

struct flush_scheduler_test : memsync::testing::actor_test {
  std::shared_ptr<db_log> log = std::make_shared<db_log>();
  flush_scheduler_actor flusher;

  void start(flush_settings settings = {}) {
    auto db = keep(sys.spawn(scripted_db, log));
    flusher = keep(spawn_flush_scheduler(sys, db, settings));
    self->send(flusher, subscribe_atom::value, keep(sys.spawn(recorder, log)));
    sched.run();
  }

  void write(std::vector<change> changes) {
    self->send(flusher, write_atom::value, std::move(changes));
    sched.run();
  }
};

} // namespace

TEST_F(flush_scheduler_test, a_burst_inside_the_debounce_becomes_one_coalesced_batch) {
  start();
  write({put(1, "a", R"({"v":1})")});
  advance(20ms);
  write({patch(2, "a", R"({"w":2})")});
  advance(20ms);
  write({put(3, "b")});
  advance(20ms);
  write({patch(4, "a", R"({"v":3})")});
  advance(20ms);
  write({put(5, "b", R"({"x":1})")});
  advance(19ms); // t = 99 ms
  EXPECT_TRUE(log->attempts.empty());
  advance(1ms); // t = 100 ms
  ASSERT_EQ(log->committed.size(), 1u);
  auto& batch = log->committed[0];
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].id, "a"); // ordered by their last write
  EXPECT_EQ(batch[0].kind, change_kind::put);
  EXPECT_EQ(batch[0].data, R"({"v":3,"w":2})");
  EXPECT_EQ(batch[0].seq, 4u); // the highest seq is kept
  EXPECT_EQ(batch[1].data, R"({"x":1})");
  ASSERT_EQ(log->reports.size(), 1u);
  EXPECT_EQ(log->reports[0].durable_seq, 5u);
  ASSERT_EQ(log->reports[0].changes.size(), 2u);
  EXPECT_EQ(log->reports[0].changes[0].mutation_id, 1u);
  EXPECT_EQ(log->reports[0].changes[0].last_seq, 4u);
  advance(1s); // nothing left to flush, nothing flushed again
  EXPECT_EQ(log->attempts.size(), 1u);
}

TEST_F(flush_scheduler_test, patches_that_do_not_compose_stay_separate_in_order) {
  start();
  write({patch(1, "a", R"({"k":null})"), patch(2, "a", R"({"k":{"x":1}})")});
  advance(100ms);
  ASSERT_EQ(log->committed.size(), 1u);
  ASSERT_EQ(log->committed[0].size(), 2u);
  EXPECT_EQ(log->committed[0][0].seq, 1u);
  EXPECT_EQ(log->committed[0][1].seq, 2u);
}

TEST_F(flush_scheduler_test, a_failing_database_gets_the_same_batch_again_later) {
  flush_settings settings;
  settings.retry_min = 100ms;
  settings.retry_max = 1s;
  start(settings);
  log->fail_next = 2;
  write({put(1, "a"), put(2, "b")});
  advance(100ms);
  ASSERT_EQ(log->attempts.size(), 1u);
  write({put(3, "c"), put(4, "a", R"({"late":1})")}); // arrive while failing
  advance(99ms);
  EXPECT_EQ(log->attempts.size(), 1u); // backing off
  advance(1ms);
  ASSERT_EQ(log->attempts.size(), 2u); // retry after 100 ms, fails again
  advance(199ms);
  EXPECT_EQ(log->attempts.size(), 2u); // backoff doubled
  advance(1ms);
  ASSERT_EQ(log->committed.size(), 1u);
  // Nothing dropped: the failed changes went back to the buffer, where the
  // later write to "a" folded into its entry.
  auto& batch = log->committed[0];
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].id, "b");
  EXPECT_EQ(batch[1].id, "c");
  EXPECT_EQ(batch[2].id, "a");
  EXPECT_EQ(batch[2].data, R"({"late":1})");
  ASSERT_EQ(log->reports.size(), 1u);
  EXPECT_EQ(log->reports[0].durable_seq, 4u);
}

TEST_F(flush_scheduler_test,
       a_failing_database_shows_in_the_status_until_a_batch_commits) {
  flush_settings settings;
  settings.retry_min = 100ms;
  settings.retry_max = 1s;
  start(settings);
  auto status = [&] {
    std::string out = "no reply";
    auto rh = self->request(flusher, caf::infinite, status_atom::value);
    sched.run();
    rh.receive([&](std::string& err) { out = std::move(err); },
               [&](caf::error& err) { ADD_FAILURE() << sys.render(err); });
    return out;
  };
  EXPECT_EQ(status(), "");
  log->fail_next = 2;
  write({put(1, "a")});
  advance(100ms);
  EXPECT_EQ(status(), "db_error: disk I/O error");
  advance(100ms); // the retry fails too
  ASSERT_EQ(log->attempts.size(), 2u);
  EXPECT_EQ(status(), "db_error: disk I/O error");
  advance(200ms);
  ASSERT_EQ(log->committed.size(), 1u);
  EXPECT_EQ(status(), "");
}

TEST_F(flush_scheduler_test,
       a_write_during_a_flush_is_not_folded_into_the_batch_in_flight) {
  start();
  write({put(1, "a", R"({"v":1})")});
  sched.advance_time(100ms);
  sched.run_once(); // the debounce timer: the batch leaves for local_db
  ASSERT_TRUE(log->attempts.empty());
  self->send(flusher, write_atom::value, std::vector<change>{put(2, "a", R"({"v":2})")});
  sched.run();
  ASSERT_EQ(log->committed.size(), 1u);
  EXPECT_EQ(log->committed[0][0].seq, 1u);
  EXPECT_EQ(log->reports.back().durable_seq, 1u);
  advance(100ms);
  ASSERT_EQ(log->committed.size(), 2u);
  EXPECT_EQ(log->committed[1][0].data, R"({"v":2})");
  EXPECT_EQ(log->reports.back().durable_seq, 2u);
}

TEST_F(flush_scheduler_test, the_batch_cap_splits_a_large_burst) {
  flush_settings settings;
  settings.max_batch = 100;
  start(settings);
  std::vector<change> burst;
  for (uint64_t seq = 1; seq <= 250; ++seq)
    burst.push_back(put(seq, std::string("e").append(std::to_string(
                               seq)))); // not "e" + ...: a false -Wrestrict in GCC 12
  write(std::move(burst));              // a full buffer does not wait for the debounce
  ASSERT_EQ(log->committed.size(), 3u);
  EXPECT_EQ(log->committed[0].size(), 100u);
  EXPECT_EQ(log->committed[1].size(), 100u);
  EXPECT_EQ(log->committed[2].size(), 50u);
  uint64_t last = 0;
  for (auto& batch : log->committed)
    for (auto& c : batch) {
      EXPECT_EQ(c.seq, last + 1);
      last = c.seq;
    }
  EXPECT_EQ(log->reports.back().durable_seq, 250u);
}

TEST_F(flush_scheduler_test, the_durable_watermark_waits_for_the_oldest_write) {
  flush_settings settings;
  settings.max_batch = 1;
  start(settings);
  // "a" (seq 1) and "a" (seq 3) fold into one change that goes after "b".
  self->send(flusher, write_atom::value,
             std::vector<change>{put(1, "a"), put(2, "b"), put(3, "a")});
  sched.run_once(); // the write only
  sched.run_once(); // the first batch: "b"
  sched.run();
  ASSERT_EQ(log->reports.size(), 2u);
  EXPECT_EQ(log->committed[0][0].id, "b");
  EXPECT_EQ(log->reports[0].durable_seq, 0u); // seq 1 is not durable yet
  EXPECT_EQ(log->reports[1].durable_seq, 3u);
}

TEST_F(flush_scheduler_test, a_flush_request_skips_the_debounce) {
  start();
  write({put(1, "a")});
  auto rh = self->request(flusher, caf::infinite, flush_atom::value);
  sched.run();
  uint64_t durable = 0;
  rh.receive([&](uint64_t seq) { durable = seq; },
             [&](caf::error& err) { FAIL() << sys.render(err); });
  EXPECT_EQ(durable, 1u);
  EXPECT_EQ(log->committed.size(), 1u);
}

// The first attempt at a batch times out while local_db, busy, still has it
// in its mailbox; the retry follows it there. Both reach the database, and
// the batch is in it once: every change has one mutation id, and a write
// made meanwhile is not folded into the retry.
TEST_F(flush_scheduler_test,
       a_batch_that_timed_out_is_applied_once_when_it_commits_late) {
  memsync::testing::temp_dir dir;
  auto db = std::make_shared<slow_db>();
  db->file = std::make_unique<local_database>(
    local_db_settings{dir.file("client.db"), "alice", "normal", 100ms});
  flush_settings settings;
  settings.debounce = 10ms;
  settings.db_timeout = 1s;
  settings.retry_min = 100ms;
  settings.retry_max = 100ms;
  flusher = keep(
    spawn_flush_scheduler(sys, keep(sys.spawn(slow_local_db, db)), settings));
  self->send(flusher, subscribe_atom::value, keep(sys.spawn(recorder, log)));
  sched.run();
  write({put(1, "a", R"({"v":1})"), put(2, "b")});
  advance(10ms);
  ASSERT_EQ(db->waiting.size(), 1u);
  advance(1s); // the first attempt times out
  write({put(3, "a", R"({"v":3})")});
  advance(100ms); // ... and is retried
  ASSERT_EQ(db->waiting.size(), 2u);
  auto& first = db->waiting[0].changes;
  auto& retry = db->waiting[1].changes;
  ASSERT_EQ(retry.size(), first.size());
  for (size_t i = 0; i < retry.size(); ++i) {
    EXPECT_EQ(retry[i].id, first[i].id);
    EXPECT_EQ(retry[i].data, first[i].data);
  }
  db->let_through();
  sched.run();
  advance(10ms); // the later write's own batch
  ASSERT_EQ(db->waiting.size(), 1u);
  db->let_through();
  sched.run();

  auto outbox = db->file->load().outbox;
  ASSERT_EQ(outbox.size(), 3u);
  EXPECT_EQ(outbox[0].id, "a");
  EXPECT_EQ(outbox[0].data, R"({"v":1})");
  EXPECT_EQ(outbox[1].id, "b");
  EXPECT_EQ(outbox[2].id, "a");
  EXPECT_EQ(outbox[2].data, R"({"v":3})");
  std::vector<std::pair<std::string, uint64_t>> reported;
  for (auto& r : log->reports)
    for (auto& c : r.changes)
      reported.emplace_back(c.id, c.mutation_id);
  EXPECT_EQ(reported, (std::vector<std::pair<std::string, uint64_t>>{
                        {"a", 1}, {"b", 2}, {"a", 3}}));
  ASSERT_FALSE(log->reports.empty());
  EXPECT_EQ(log->reports.back().durable_seq, 3u);
}

// The repair of a restored database waits for the batch in flight and runs
// before the next one: the listeners hear the batch (old numbering), then
// the move, then later batches (new numbering); whoever asked gets the new
// id after the listeners heard of it.
TEST_F(flush_scheduler_test, a_repair_runs_between_two_batches_and_is_reported_in_order) {
  memsync::testing::temp_dir dir;
  auto db = std::make_shared<slow_db>();
  db->file = std::make_unique<local_database>(
    local_db_settings{dir.file("client.db"), "alice", "normal", 100ms});
  auto old_id = db->file->client_id();
  flush_settings settings;
  settings.debounce = 10ms;
  flusher = keep(
    spawn_flush_scheduler(sys, keep(sys.spawn(slow_local_db, db)), settings));
  self->send(flusher, subscribe_atom::value, keep(sys.spawn(recorder, log)));
  sched.run();
  write({put(1, "a"), put(2, "b")});
  advance(10ms);
  ASSERT_EQ(db->waiting.size(), 1u); // in flight
  auto rh = self->request(flusher, caf::infinite, restored_atom::value, old_id,
                          uint64_t{9});
  write({put(3, "c")});
  advance(10ms);
  EXPECT_TRUE(db->assigned_at_repair.empty()) << "repaired with a batch in flight";
  db->let_through();
  sched.run();
  ASSERT_EQ(db->assigned_at_repair, (std::vector<uint64_t>{2}));
  std::string new_id;
  rh.receive([&](std::string& id) { new_id = id; },
             [&](caf::error& err) { ADD_FAILURE() << sys.render(err); });
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(db->file->client_id(), new_id);
  ASSERT_EQ(db->waiting.size(), 1u); // c, after the repair
  db->let_through();
  sched.run();
  ASSERT_EQ(log->reports.size(), 3u);
  ASSERT_EQ(log->reports[0].changes.size(), 2u);
  EXPECT_EQ(log->reports[0].changes[1].mutation_id, 2u);
  EXPECT_TRUE(log->reports[0].new_client_id.empty());
  EXPECT_EQ(log->reports[1].new_client_id, new_id);
  EXPECT_EQ(log->reports[1].renumbered, (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(log->reports[1].changes.empty());
  ASSERT_EQ(log->reports[2].changes.size(), 1u);
  EXPECT_EQ(log->reports[2].changes[0].id, "c");
  EXPECT_EQ(log->reports[2].changes[0].mutation_id, 3u);
}
