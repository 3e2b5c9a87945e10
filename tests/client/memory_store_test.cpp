// memory_store with the real flush scheduler and local_db (SQLite in memory),
// on virtual time: the application's writes reach the database, durability
// comes back, subscribers hear each real change once, off the writer's path;
// a pull confirms a change even when it arrives before the flush report, and
// a restored database's renumbering reaches the pending changes.
#include "actors/client/memory_store.hpp"

#include "actors/client/local_database.hpp"
#include "tests/support/actor_fixture.hpp"

#include <nlohmann/json.hpp>

using namespace memsync;
using namespace std::chrono_literals;

namespace {

struct memory_store_test : memsync::testing::actor_test {
  std::shared_ptr<store_core> core = std::make_shared<store_core>();
  std::shared_ptr<subscriber_list> subs = std::make_shared<subscriber_list>();
  store app{core, subs};
  local_database* db = nullptr; // owned by the local_db actor
  flush_scheduler_actor flusher;
  memory_store_actor memory;

  memory_store_test() {
    auto file = std::make_unique<local_database>(
      local_db_settings{":memory:", "alice", "normal", 100ms});
    db = file.get();
    auto db_actor = keep(spawn_local_db(sys, std::move(file)));
    flusher = keep(spawn_flush_scheduler(sys, db_actor, flush_settings{}));
    memory = keep(spawn_memory_store(sys, core, subs, flusher));
    sched.run();
  }

  /// Runs actors one message at a time until local_db has committed a
  /// batch that nobody has heard of yet.
  void run_until_outbox_has(size_t n) {
    while (db->load().outbox.size() < n)
      ASSERT_TRUE(sched.try_run_once()) << "the batch never reached local_db";
  }

  template <class T>
  T ask(caf::message msg) {
    T result{};
    auto rh = self->request(caf::actor_cast<caf::actor>(memory), caf::infinite,
                            std::move(msg));
    sched.run();
    rh.receive([&](T& x) { result = std::move(x); },
               [&](caf::error& err) { ADD_FAILURE() << sys.render(err); });
    return result;
  }
};

} // namespace

TEST_F(memory_store_test, writes_become_durable_after_the_debounce) {
  ASSERT_TRUE(app.put("c1", "comment", {{"line", 1}}).ok());
  ASSERT_TRUE(app.patch("c1", {{"msg", "hi"}}).ok());
  sched.run();
  EXPECT_FALSE(app.flushed(0ms));
  advance(100ms);
  EXPECT_TRUE(app.flushed(0ms));
  auto pending = app.pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].mutation_id, 1u); // both folded into mutation 1
  EXPECT_EQ(pending[1].mutation_id, 1u);
  auto snapshot = db->load();
  ASSERT_EQ(snapshot.outbox.size(), 1u);
  EXPECT_EQ(snapshot.outbox[0].data, R"({"line":1,"msg":"hi"})");
}

TEST_F(memory_store_test, a_flush_request_skips_the_debounce) {
  ASSERT_TRUE(app.put("c1", "comment", {{"line", 1}}).ok());
  EXPECT_EQ(ask<uint64_t>(caf::make_message(flush_atom::value)), 1u);
  EXPECT_TRUE(app.flushed(0ms));
  EXPECT_EQ(db->load().outbox.size(), 1u);
}

TEST_F(memory_store_test, subscribers_hear_each_real_change_once_off_the_writer_path) {
  std::vector<std::string> seen;
  int batches = 0;
  auto sub = app.subscribe("comment", [&](const std::vector<change_event>& evs) {
    ++batches;
    for (auto& ev : evs)
      seen.push_back(ev.id + (ev.value ? "=" + ev.value->data : " deleted"));
  });
  ASSERT_TRUE(app.put("c1", "comment", {{"v", 1}}).ok());
  ASSERT_TRUE(app.put("c1", "comment", {{"v", 1}}).ok()); // no change
  ASSERT_TRUE(app.put("t1", "task", {{"v", 1}}).ok());    // other type
  ASSERT_TRUE(app.erase("c1").ok());
  EXPECT_TRUE(seen.empty()); // the writer never runs callbacks
  sched.run();
  EXPECT_EQ(batches, 1);
  EXPECT_EQ(seen, (std::vector<std::string>{R"(c1={"v":1})", "c1 deleted"}));
}

TEST_F(memory_store_test, local_writes_reach_subscribers_before_a_later_rebase) {
  std::vector<std::string> seen;
  auto sub = app.subscribe("", [&](const std::vector<change_event>& evs) {
    for (auto& ev : evs)
      seen.push_back(ev.id + "=" + (ev.value ? ev.value->data : "-"));
  });
  ASSERT_TRUE(app.put("mine", "note", {{"v", 1}}).ok());
  pull_reply reply;
  reply.next = {"e1", 1};
  reply.entities.push_back({"theirs", "note", R"({"v":2})", 1, false});
  reply.entities.push_back({"mine", "note", R"({"v":0})", 1, false});
  // The rebase message may overtake the write's wake-up; order still holds.
  EXPECT_EQ(ask<ok_atom>(caf::make_message(rebase_atom::value, reply)), ok_atom::value);
  EXPECT_EQ(seen, (std::vector<std::string>{R"(mine={"v":1})", R"(theirs={"v":2})"}));
  EXPECT_EQ(app.get("mine")->data, R"({"v":1})"); // pending stays on top
}

// The pull that confirms a change reaches the store before the flush report
// that gives the change its mutation id (they come from different actors):
// the change is confirmed all the same, and the server's newer value shows.
TEST_F(memory_store_test, a_pull_that_overtakes_the_flush_report_still_confirms) {
  ASSERT_TRUE(app.put("x", "note", {{"v", 1}}).ok());
  sched.run();
  sched.advance_time(100ms); // the debounce: the batch goes to local_db
  run_until_outbox_has(1);   // committed as mutation 1; the report is not sent yet
  // Meanwhile the syncer pushed mutation 1, another client wrote over it,
  // and this pull of both got here first.
  pull_reply reply;
  reply.next = {"e1", 2};
  reply.last_mutation_id = 1;
  reply.entities.push_back({"x", "note", R"({"v":2})", 2, false});
  self->send(memory, rebase_atom::value, reply);
  sched.run();
  EXPECT_TRUE(app.pending().empty());
  ASSERT_TRUE(app.get("x"));
  EXPECT_EQ(app.get("x")->data, R"({"v":2})");
  EXPECT_EQ(app.get("x")->version, 2u);
}

// local_db moves to a new client id: the pending changes take the new ids,
// later flushes number on from them, and a pull of the new id confirms by
// the new numbering.
TEST_F(memory_store_test, a_restored_database_renumbers_the_pending_changes) {
  ASSERT_TRUE(app.put("a", "note", {{"v", 1}}).ok());
  ASSERT_TRUE(app.put("b", "note", {{"v", 1}}).ok());
  EXPECT_EQ(ask<uint64_t>(caf::make_message(flush_atom::value)), 2u);
  db->mark_pushed(2);
  pull_reply first;
  first.next = {"e1", 1};
  first.last_mutation_id = 1; // a is confirmed, b (2) is not
  first.entities.push_back({"a", "note", R"({"v":1})", 1, false});
  db->apply_pull(first); // as the syncer has local_db do first
  EXPECT_EQ(ask<ok_atom>(caf::make_message(rebase_atom::value, first)), ok_atom::value);
  auto old_id = db->client_id();
  // The server has seen mutation 5 of this id: the file is an older copy.
  auto rh = self->request(flusher, caf::infinite, restored_atom::value, old_id,
                          uint64_t{5});
  sched.run();
  std::string new_id;
  rh.receive([&](std::string& id) { new_id = id; },
             [&](caf::error& err) { ADD_FAILURE() << sys.render(err); });
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(db->client_id(), new_id);
  auto pending = app.pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, "b");
  EXPECT_EQ(pending[0].mutation_id, 1u);
  ASSERT_TRUE(app.put("c", "note", {{"v", 1}}).ok());
  EXPECT_EQ(ask<uint64_t>(caf::make_message(flush_atom::value)), 3u);
  db->mark_pushed(2);
  pull_reply second;
  second.next = {"e1", 2};
  second.last_mutation_id = 1; // the new id's first change: b
  second.entities.push_back({"b", "note", R"({"v":1})", 2, false});
  db->apply_pull(second);
  EXPECT_EQ(ask<ok_atom>(caf::make_message(rebase_atom::value, second)), ok_atom::value);
  pending = app.pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, "c");
  EXPECT_EQ(pending[0].mutation_id, 2u);
  auto outbox = db->load().outbox;
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].id, "c");
  EXPECT_EQ(outbox[0].mutation_id, 2u);
}

TEST_F(memory_store_test, the_servers_hello_tightens_what_a_write_may_be) {
  std::string data = R"({"s":")" + std::string(200, 'x') + R"("})";
  ASSERT_TRUE(app.put_json("n1", "note", data).ok()); // the client's own limits
  hello_reply hello;
  hello.max_data_bytes = 100;
  hello.max_push_bytes = 1024;
  self->send(memory, hello_atom::value, hello);
  sched.run();
  EXPECT_EQ(app.put_json("n2", "note", data).code, sync_errc::too_large);
  EXPECT_EQ(app.patch_json("n1", R"({"s":")" + std::string(1100, 'y') + R"("})").code,
            sync_errc::too_large);
  EXPECT_EQ(app.get("n1")->data, data); // written before: kept
  EXPECT_EQ(app.get("n2"), nullptr);
  EXPECT_TRUE(app.put_json("n3", "note", R"({"s":"small"})").ok());
}

TEST_F(memory_store_test, the_grants_it_learns_refuse_a_forbidden_write_at_once) {
  ASSERT_TRUE(app.put("n1", "note", {{"team", "b"}}).ok()); // nothing known yet
  self->send(memory, grants_atom::value, grants{grant{"a", true}},
             scope_rules{scope_rule{"note", "team"}});
  sched.run();
  auto err = app.put("n2", "note", {{"team", "b"}});
  EXPECT_EQ(err.code, sync_errc::forbidden) << err.describe();
  EXPECT_EQ(app.get("n2"), nullptr);
  EXPECT_EQ(app.put("n3", "note", {{"x", 1}}).code, sync_errc::invalid_request);
  EXPECT_TRUE(app.put("n4", "note", {{"team", "a"}}).ok());
}

TEST_F(memory_store_test,
       prune_drops_synced_entities_as_deletions_and_keeps_pending_ones) {
  pull_reply reply;
  reply.next = {"e1", 2};
  reply.entities = {{"a1", "note", R"({"team":"a"})", 1, false},
                    {"b1", "note", R"({"team":"b"})", 2, false}};
  ASSERT_EQ(ask<ok_atom>(caf::make_message(rebase_atom::value, reply)), ok_atom::value);
  ASSERT_TRUE(app.put("b2", "note", {{"team", "b"}}).ok()); // pending
  sched.run();
  std::vector<std::string> seen;
  auto sub = app.subscribe("note", [&](const std::vector<change_event>& evs) {
    for (auto& ev : evs)
      seen.push_back(ev.id + (ev.value ? " put" : " deleted"));
  });
  EXPECT_EQ(ask<ok_atom>(caf::make_message(prune_atom::value,
                                           scope_rules{scope_rule{"note", "team"}},
                                           std::vector<std::string>{"a"})),
            ok_atom::value);
  EXPECT_NE(app.get("a1"), nullptr);
  EXPECT_EQ(app.get("b1"), nullptr);
  EXPECT_NE(app.get("b2"), nullptr); // a pending write stays until answered
  EXPECT_EQ(seen, (std::vector<std::string>{"b1 deleted"}));
  EXPECT_EQ(app.pending().size(), 1u);
}
