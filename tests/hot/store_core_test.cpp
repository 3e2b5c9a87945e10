// The hot layer without actors: read-your-writes, concurrent readers against
// a writer (also built under ThreadSanitizer), rebase, and subscriptions.
#include "actors/hot/store_core.hpp"
#include "actors/hot/subscribers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

using namespace memsync;
using namespace std::chrono_literals;

namespace {

entity server_entity(std::string id, std::string data, uint64_t version,
                     std::string type = "note") {
  return {std::move(id), std::move(type), std::move(data), version, false};
}

pull_reply pull(std::vector<entity> entities, uint64_t last_mutation_id,
                uint64_t version = 1) {
  pull_reply r;
  r.next = {"epoch-1", version};
  r.last_mutation_id = last_mutation_id;
  r.entities = std::move(entities);
  return r;
}

// Marks every pending change durable with consecutive mutation ids, as a
// flush of the whole queue would.
uint64_t flush_all(store_core& core, uint64_t first_mid = 1) {
  std::vector<flushed_change> flushed;
  auto mid = first_mid;
  for (auto& c : core.pending())
    if (c.mutation_id == 0)
      flushed.push_back({c.id, c.seq, mid++});
  core.mark_durable(flushed, core.last_seq());
  return mid - 1;
}

int field(const entity_ptr& e, const char* name) {
  return nlohmann::json::parse(e->data).at(name).get<int>();
}

} // namespace

TEST(store_core, a_write_is_visible_to_the_next_read) {
  store_core core;
  ASSERT_TRUE(core.put_json("c1", "comment", R"({"line":3})").ok());
  ASSERT_NE(core.get("c1"), nullptr);
  EXPECT_EQ(core.get("c1")->data, R"({"line":3})");
  ASSERT_TRUE(core.patch_json("c1", R"({"msg":"hi"})").ok());
  EXPECT_EQ(core.get("c1")->data, R"({"line":3,"msg":"hi"})");
  ASSERT_TRUE(core.erase("c1").ok());
  EXPECT_EQ(core.get("c1"), nullptr);
  EXPECT_EQ(core.size(), 0u);
}

TEST(store_core, a_write_is_visible_to_other_threads_once_it_returns) {
  store_core core;
  std::atomic<bool> written{false};
  std::atomic<bool> seen{false};
  std::thread reader{[&] {
    while (!written.load())
      std::this_thread::yield();
    seen = core.get("x") != nullptr;
  }};
  ASSERT_TRUE(core.put_json("x", "t", "{}").ok());
  written = true;
  reader.join();
  EXPECT_TRUE(seen.load());
}

TEST(store_core, data_is_stored_in_canonical_form) {
  store_core core;
  ASSERT_TRUE(core.put_json("a", "t", R"({ "b" : 1, "a" : [1, 2] })").ok());
  EXPECT_EQ(core.get("a")->data, R"({"a":[1,2],"b":1})");
}

TEST(store_core, invalid_writes_change_nothing) {
  store_core core{data_limits{64, 3}};
  EXPECT_EQ(core.put_json("", "t", "{}").code, sync_errc::invalid_id);
  EXPECT_EQ(core.put_json("a", "T", "{}").code, sync_errc::invalid_type);
  EXPECT_EQ(core.put_json("a", "t", "[1]").code, sync_errc::invalid_json);
  EXPECT_EQ(core.put_json("a", "t", "{").code, sync_errc::invalid_json);
  EXPECT_EQ(core.put_json("a", "t", R"({"a":{"b":{"c":{}}}})").code, sync_errc::too_deep);
  EXPECT_EQ(core.patch_json("missing", "{}").code, sync_errc::not_found);
  EXPECT_EQ(core.erase("missing").code, sync_errc::not_found);
  ASSERT_TRUE(core.put_json("a", "t", R"({"s":"x"})").ok());
  std::string big = R"({"s":")" + std::string(60, 'y') + R"("})";
  EXPECT_EQ(core.patch_json("a", big).code, sync_errc::too_large);
  EXPECT_EQ(core.get("a")->data, R"({"s":"x"})");
  EXPECT_EQ(core.pending().size(), 1u);
  EXPECT_EQ(core.take().changes.size(), 1u);
}

// A change that could never be pushed is refused when it is written, not
// looped on later: put, patch, and the entity a patch leaves behind all
// count id + type + data (push_bytes) against the push byte limit.
TEST(store_core, a_change_that_can_never_fit_a_push_is_refused_at_once) {
  store_core core{data_limits{}, 100};
  // "n1" + "note" + 94 bytes of data = 100 bytes: fits exactly.
  std::string fits = R"({"s":")" + std::string(86, 'x') + R"("})";
  ASSERT_EQ(fits.size(), 94u);
  ASSERT_TRUE(core.put_json("n1", "note", fits).ok());
  std::string over = R"({"s":")" + std::string(87, 'x') + R"("})";
  auto err = core.put_json("n2", "note", over);
  EXPECT_EQ(err.code, sync_errc::too_large);
  EXPECT_NE(err.message.find("101 bytes"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("limit of 100 bytes per push"), std::string::npos)
    << err.message;
  EXPECT_EQ(core.get("n2"), nullptr);
  // A patch that is small itself but leaves an entity too large to push
  // (a later put of n3 folds it into a put of the result).
  ASSERT_TRUE(core.put_json("n3", "note", R"({"a":1})").ok());
  auto grow = core.patch_json("n3", R"({"s":")" + std::string(86, 'y') + R"("})");
  EXPECT_EQ(grow.code, sync_errc::too_large);
  EXPECT_NE(grow.message.find("after the patch"), std::string::npos) << grow.message;
  EXPECT_EQ(core.get("n3")->data, R"({"a":1})");
  // A patch that is itself too large, even though it shrinks the entity.
  std::string nulls = "{";
  for (int i = 0; i < 20; ++i)
    nulls += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":null";
  nulls += "}";
  auto shrink = core.patch_json("n1", nulls);
  EXPECT_EQ(shrink.code, sync_errc::too_large);
  EXPECT_NE(shrink.message.find("the patch counts"), std::string::npos) << shrink.message;
  EXPECT_EQ(core.get("n1")->data, fits);
  // Nothing refused reached the write queue.
  auto queued = core.take().changes;
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0].id, "n1");
  EXPECT_EQ(queued[1].id, "n3");
  EXPECT_EQ(core.pending().size(), 2u);
}

// Before the hello the client's own limits decide; after it the smaller of
// the client's and the server's, whichever server said so last.
TEST(store_core, the_server_limits_only_ever_tighten_the_clients_own) {
  store_core core{data_limits{200, 64}, 300};
  std::string d150 = R"({"s":")" + std::string(142, 'x') + R"("})";
  ASSERT_EQ(d150.size(), 150u);
  core.set_server_limits(data_limits{100, 64}, 1000);
  EXPECT_EQ(core.put_json("a", "t", d150).code, sync_errc::too_large); // server data
  core.set_server_limits(data_limits{1000, 2}, 50);
  EXPECT_EQ(core.put_json("a", "t", R"({"a":{"b":{}}})").code, sync_errc::too_deep);
  auto err = core.put_json("a", "t", R"({"s":")" + std::string(41, 'x') + R"("})");
  EXPECT_EQ(err.code, sync_errc::too_large); // 2 + 49 bytes > the server's 50 per push
  EXPECT_NE(err.message.find("limit of 50 bytes"), std::string::npos) << err.message;
  // Another server allows more: back to the client's own limits, no further.
  core.set_server_limits(data_limits{1 << 20, 64}, 1 << 20);
  EXPECT_TRUE(core.put_json("a", "t", d150).ok());
  std::string d250 = R"({"s":")" + std::string(242, 'x') + R"("})";
  EXPECT_EQ(core.put_json("b", "t", d250).code, sync_errc::too_large); // own data
  EXPECT_EQ(core.size(), 1u);
}

TEST(store_core, queued_writes_keep_seq_order_and_events_only_for_real_changes) {
  store_core core;
  int wakes = 0;
  core.on_first_queued([&] { ++wakes; });
  ASSERT_TRUE(core.put_json("a", "t", R"({"v":1})").ok());
  ASSERT_TRUE(core.put_json("a", "t", R"({"v":1})").ok()); // same value again
  ASSERT_TRUE(core.put_json("b", "t", R"({"v":2})").ok());
  ASSERT_TRUE(core.erase("a").ok());
  EXPECT_EQ(wakes, 1); // one wake per non-empty queue
  auto d = core.take();
  ASSERT_EQ(d.changes.size(), 4u);
  for (size_t i = 1; i < d.changes.size(); ++i)
    EXPECT_LT(d.changes[i - 1].seq, d.changes[i].seq);
  EXPECT_EQ(d.changes[3].kind, change_kind::del);
  EXPECT_EQ(d.changes[3].type, "t");
  ASSERT_EQ(d.events.size(), 3u); // the repeated value is no event
  EXPECT_EQ(d.events[0].id, "a");
  EXPECT_EQ(d.events[1].id, "b");
  EXPECT_EQ(d.events[2].id, "a");
  EXPECT_EQ(d.events[2].value, nullptr);
  ASSERT_TRUE(core.put_json("c", "t", "{}").ok());
  EXPECT_EQ(wakes, 2);
}

TEST(store_core, by_type_follows_type_changes) {
  store_core core;
  ASSERT_TRUE(core.put_json("b", "x", "{}").ok());
  ASSERT_TRUE(core.put_json("a", "x", "{}").ok());
  ASSERT_TRUE(core.put_json("c", "y", "{}").ok());
  auto xs = core.by_type("x");
  std::sort(xs.begin(), xs.end(), [](auto& l, auto& r) { return l->id < r->id; });
  ASSERT_EQ(xs.size(), 2u);
  EXPECT_EQ(xs[0]->id, "a");
  EXPECT_EQ(xs[1]->id, "b");
  ASSERT_TRUE(core.put_json("a", "y", "{}").ok()); // moves to another type
  EXPECT_EQ(core.by_type("x").size(), 1u);
  EXPECT_EQ(core.by_type("y").size(), 2u);
  EXPECT_EQ(core.all().size(), 3u);
}

TEST(store_core, load_applies_the_outbox_on_top_of_the_base) {
  store_core core;
  std::vector<entity> base{server_entity("a", R"({"v":1})", 3),
                           server_entity("b", R"({"v":2})", 4)};
  change patch_a{0, 7, change_kind::patch, "a", "note", R"({"w":1})", {}};
  change del_b{0, 8, change_kind::del, "b", "note", "", {}};
  core.load(std::move(base), {patch_a, del_b});
  EXPECT_EQ(core.get("a")->data, R"({"v":1,"w":1})");
  EXPECT_EQ(core.get("a")->version, 3u);
  EXPECT_EQ(core.get("b"), nullptr);
  auto counts = core.counts();
  EXPECT_EQ(counts.pending, 2u);
  EXPECT_EQ(counts.last_seq, 2u);
  EXPECT_EQ(counts.durable_seq, 2u);
  ASSERT_TRUE(core.put_json("c", "note", "{}").ok());
  EXPECT_EQ(core.pending().back().seq, 3u); // seqs continue
}

TEST(store_core, a_pending_change_stays_visible_until_the_server_has_it) {
  store_core core;
  core.load({server_entity("x", R"({"v":0})", 1)}, {});
  ASSERT_TRUE(core.put_json("x", "note", R"({"v":1})").ok());
  core.take();
  auto mid = flush_all(core);
  // Another client's write arrives first: the base changes, the pending
  // change stays on top, nothing flickers.
  auto d = core.rebase(pull({server_entity("x", R"({"v":9})", 2)}, mid - 1));
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(core.get("x")->data, R"({"v":1})");
  EXPECT_EQ(core.pending().size(), 1u);
  // The server applied ours: pending dropped, same value, new version.
  d = core.rebase(pull({server_entity("x", R"({"v":1})", 3)}, mid, 3));
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(core.get("x")->version, 3u);
  EXPECT_TRUE(core.pending().empty());
}

TEST(store_core, unflushed_changes_survive_any_rebase) {
  store_core core;
  ASSERT_TRUE(core.put_json("x", "note", R"({"v":1})").ok());
  // No mutation id yet: the server cannot have seen it, whatever it says.
  auto d = core.rebase(pull({server_entity("x", R"({"v":5})", 1)}, 1000));
  EXPECT_EQ(core.get("x")->data, R"({"v":1})");
  EXPECT_EQ(core.pending().size(), 1u);
  ASSERT_EQ(d.changes.size(), 1u); // queued write handed out first
}

TEST(store_core, a_refused_change_is_undone_by_the_next_pull) {
  store_core core;
  core.load({server_entity("x", R"({"v":0})", 1)}, {});
  ASSERT_TRUE(core.put_json("x", "note", R"({"v":1})").ok());
  core.take();
  auto mid = flush_all(core);
  // The server refused it: last_mutation_id advanced, the entity did not.
  auto d = core.rebase(pull({}, mid));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].value->data, R"({"v":0})");
  EXPECT_EQ(core.get("x")->data, R"({"v":0})");
}

TEST(store_core, remote_changes_produce_events_and_tombstones_delete) {
  store_core core;
  auto d = core.rebase(
    pull({server_entity("a", R"({"v":1})", 1), server_entity("b", R"({"v":2})", 2)}, 0));
  EXPECT_EQ(d.events.size(), 2u);
  entity tomb = server_entity("a", "", 3);
  tomb.deleted = true;
  d = core.rebase(pull({tomb}, 0, 3));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].id, "a");
  EXPECT_EQ(d.events[0].value, nullptr);
  EXPECT_EQ(core.get("a"), nullptr);
  EXPECT_NE(core.get("b"), nullptr);
}

TEST(store_core, a_reset_replaces_the_base_but_keeps_pending_changes) {
  store_core core;
  core.load({server_entity("old", "{}", 1), server_entity("mine", "{}", 1)}, {});
  ASSERT_TRUE(core.patch_json("mine", R"({"p":1})").ok());
  ASSERT_TRUE(core.put_json("new", "note", R"({"n":1})").ok());
  auto r = pull({server_entity("fresh", "{}", 1)}, 0);
  r.reset = true;
  core.rebase(r);
  EXPECT_EQ(core.get("old"), nullptr);
  EXPECT_NE(core.get("fresh"), nullptr);
  EXPECT_NE(core.get("new"), nullptr);  // pending put on an empty base
  EXPECT_EQ(core.get("mine"), nullptr); // a patch of nothing shows nothing
  EXPECT_EQ(core.pending().size(), 2u);
}

TEST(store_core, wait_durable_returns_once_marked_and_times_out_otherwise) {
  store_core core;
  ASSERT_TRUE(core.put_json("a", "t", "{}").ok());
  EXPECT_FALSE(core.wait_durable(core.last_seq(), 10ms));
  std::thread flusher{[&] {
    std::this_thread::sleep_for(20ms);
    flush_all(core);
  }};
  EXPECT_TRUE(core.wait_durable(core.last_seq(), 10s));
  flusher.join();
  EXPECT_EQ(core.pending().front().mutation_id, 1u);
}

TEST(store_core, readers_on_many_threads_see_whole_batches_while_a_writer_writes) {
  store_core core;
  constexpr int rounds = 2000;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<long> reads{0};
  auto reader = [&] {
    int last_seen = -1;
    while (!done.load()) {
      auto pair = core.by_type("pair"); // one read: one batch
      if (pair.size() == 2 && field(pair[0], "n") != field(pair[1], "n"))
        ++torn;
      if (auto a = core.get("a")) { // monotonic: versions never go back
        if (field(a, "n") < last_seen)
          ++torn;
        last_seen = field(a, "n");
      }
      core.get("local"); // concurrent with the local writes below
      ++reads;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i)
    readers.emplace_back(reader);
  for (int n = 0; n < rounds; ++n) {
    auto data = R"({"n":)" + std::to_string(n) + "}";
    core.rebase(pull({server_entity("a", data, n + 1, "pair"),
                      server_entity("b", data, n + 1, "pair")},
                     0, n + 1));
    ASSERT_TRUE(core.put_json("local", "t", data).ok());
    EXPECT_EQ(field(core.get("local"), "n"), n); // read your writes
    if (n % 100 == 0)
      core.take();
  }
  done = true;
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST(subscriber_list, delivers_matching_events_until_the_subscription_ends) {
  subscriber_list subs;
  std::vector<std::string> all_ids;
  std::vector<std::string> notes;
  auto all = subs.add("", [&](const std::vector<change_event>& evs) {
    for (auto& ev : evs)
      all_ids.push_back(ev.id);
  });
  auto only_notes = subs.add("note", [&](const std::vector<change_event>& evs) {
    for (auto& ev : evs)
      notes.push_back(ev.id);
  });
  subs.dispatch({{"a", "note", nullptr}, {"b", "task", nullptr}});
  EXPECT_EQ(all_ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(notes, (std::vector<std::string>{"a"}));
  only_notes.cancel();
  subs.dispatch({{"c", "note", nullptr}});
  EXPECT_EQ(notes.size(), 1u);
  EXPECT_EQ(all_ids.size(), 3u);
  { auto gone = std::move(all); } // destroyed: ends the subscription
  subs.dispatch({{"d", "note", nullptr}});
  EXPECT_EQ(all_ids.size(), 3u);
  EXPECT_EQ(subs.size(), 0u); // expired entries are pruned
}

TEST(subscriber_list, a_callback_may_end_its_own_subscription) {
  subscriber_list subs;
  int calls = 0;
  subscription sub;
  sub = subs.add("", [&](const std::vector<change_event>&) {
    ++calls;
    sub.cancel();
  });
  subs.dispatch({{"a", "t", nullptr}});
  subs.dispatch({{"b", "t", nullptr}});
  EXPECT_EQ(calls, 1);
}

TEST(entity_table, finds_replaces_and_erases_across_growth_and_probe_runs) {
  entity_table table;
  std::vector<entity_ptr> values;
  for (int i = 0; i < 5000; ++i) {
    auto id = "id-" + std::to_string(i);
    values.push_back(std::make_shared<const entity>(entity{id, "t", "{}", 0, false}));
    table.assign(values.back(), entity_table::hash(id));
  }
  ASSERT_EQ(table.size(), 5000u);
  // Erase every third: backward shifts must keep every other id reachable.
  for (int i = 0; i < 5000; i += 3) {
    auto id = "id-" + std::to_string(i);
    ASSERT_TRUE(table.erase(id, entity_table::hash(id)));
  }
  EXPECT_FALSE(table.erase("id-0", entity_table::hash("id-0")));
  for (int i = 0; i < 5000; ++i) {
    auto id = "id-" + std::to_string(i);
    auto found = table.find(id, entity_table::hash(id));
    if (i % 3 == 0)
      EXPECT_EQ(found, nullptr) << id;
    else
      ASSERT_TRUE(found != nullptr && *found == values[i]) << id;
  }
  auto replacement = std::make_shared<const entity>(
    entity{"id-1", "t", R"({"v":2})", 0, false});
  table.assign(replacement, entity_table::hash("id-1"));
  EXPECT_EQ(*table.find("id-1", entity_table::hash("id-1")), replacement);
  size_t count = 0;
  table.for_each([&](const entity_ptr&) { ++count; });
  EXPECT_EQ(count, table.size());
  EXPECT_EQ(table.size(), 5000u - 1667u);
}

// -- scopes ----------------------------------------------------------------------

namespace {

// Notes carry their scope in field "team"; other types are in "default".
scope_rules team_rules() {
  return {scope_rule{"note", "team"}};
}

std::string field_text(const entity_ptr& e, const char* name) {
  return e ? nlohmann::json::parse(e->data).at(name).get<std::string>() : "(none)";
}

} // namespace

TEST(store_core, nothing_is_refused_for_its_scope_before_the_grants_are_known) {
  store_core core;
  EXPECT_TRUE(core.put_json("n1", "note", R"({"team":"b"})").ok());
  EXPECT_TRUE(core.put_json("n2", "note", R"({"x":1})").ok()); // no rules known
}

TEST(store_core, a_write_outside_the_writable_scopes_is_forbidden_at_once) {
  store_core core;
  core.load({server_entity("theirs", R"({"team":"b"})", 3)}, {});
  core.set_scopes({grant{"a", true}, grant{"b", false}}, team_rules());
  EXPECT_TRUE(core.put_json("n1", "note", R"({"team":"a"})").ok());
  auto into = core.put_json("n2", "note", R"({"team":"b"})");
  EXPECT_EQ(into.code, sync_errc::forbidden) << into.describe();
  EXPECT_NE(into.message.find("'b'"), std::string::npos) << into.message;
  EXPECT_EQ(core.get("n2"), nullptr); // nothing changed
  // Moving one of ours out to a scope we may not write, by patch.
  EXPECT_EQ(core.patch_json("n1", R"({"team":"b"})").code, sync_errc::forbidden);
  EXPECT_EQ(field_text(core.get("n1"), "team"), "a");
  // Readable but not writable: no patch, no delete, no replacing put.
  EXPECT_EQ(core.patch_json("theirs", R"({"x":1})").code, sync_errc::forbidden);
  EXPECT_EQ(core.erase("theirs").code, sync_errc::forbidden);
  EXPECT_EQ(core.put_json("theirs", "note", R"({"team":"a"})").code,
            sync_errc::forbidden);
  EXPECT_NE(core.get("theirs"), nullptr);
  // Types without a rule are in "default", which these grants do not name.
  EXPECT_EQ(core.put_json("c1", "comment", R"({"x":1})").code, sync_errc::forbidden);
  EXPECT_EQ(core.pending().size(), 1u); // only n1's put
}

TEST(store_core, a_ruled_entity_without_its_scope_field_is_refused_at_once) {
  store_core core;
  core.set_scopes(all_grants(), team_rules());
  auto missing = core.put_json("n1", "note", R"({"x":1})");
  EXPECT_EQ(missing.code, sync_errc::invalid_request) << missing.describe();
  EXPECT_NE(missing.message.find("team"), std::string::npos) << missing.message;
  EXPECT_EQ(core.put_json("n1", "note", R"({"team":7})").code,
            sync_errc::invalid_request);
  ASSERT_TRUE(core.put_json("n1", "note", R"({"team":"a"})").ok());
  // A patch that removes the field.
  EXPECT_EQ(core.patch_json("n1", R"({"team":null})").code, sync_errc::invalid_request);
  EXPECT_EQ(core.pending().size(), 1u);
}

TEST(store_core, prune_drops_base_entities_of_scopes_not_held_and_keeps_pending_ones) {
  store_core core;
  core.load({server_entity("a1", R"({"team":"a"})", 1),
             server_entity("b1", R"({"team":"b"})", 2),
             server_entity("b2", R"({"team":"b","n":1})", 3),
             server_entity("c1", R"({"x":1})", 4, "comment")},
            {});
  ASSERT_TRUE(core.put_json("b3", "note", R"({"team":"b"})").ok()); // pending
  ASSERT_TRUE(core.patch_json("b2", R"({"n":2})").ok());            // pending on a base
  flush_all(core);
  core.take();
  auto out = core.prune(team_rules(), {"a", "default"});
  // b1 is gone; b3 (a pending put) stays; b2's pending patch has no base
  // left to apply to.
  EXPECT_NE(core.get("a1"), nullptr);
  EXPECT_NE(core.get("c1"), nullptr);
  EXPECT_EQ(core.get("b1"), nullptr);
  ASSERT_NE(core.get("b3"), nullptr);
  EXPECT_EQ(core.get("b2"), nullptr);
  EXPECT_EQ(core.pending().size(), 2u); // both still go to the server
  std::vector<std::string> removed;
  for (auto& ev : out.events) {
    EXPECT_EQ(ev.value, nullptr) << ev.id;
    removed.push_back(ev.id);
  }
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<std::string>{"b1", "b2"}));
  // Once the server has b3's put, a pull that does not bring it (it is in a
  // scope not held) leaves nothing behind.
  core.rebase(pull({}, 2, 5));
  EXPECT_EQ(core.get("b3"), nullptr);
  EXPECT_EQ(core.size(), 2u);
}
