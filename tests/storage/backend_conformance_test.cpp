// One conformance suite for every storage_backend: the push rules of
// apply_pushes, put/patch/del semantics, pulls, consistency of chained pulls,
// durability, epochs and rollback detection. A new backend (PostgreSQL) is
// one more entry in `backends` at the end of this file.
#include "tests/storage/backend_conformance.hpp"

#include "actors/storage/sqlite_backend.hpp"
#ifdef MEMSYNC_CONFORMANCE_POSTGRES
#include "tests/storage/pg_backend_factory.hpp"
#endif

#include <random>

#include <nlohmann/json.hpp>

using namespace memsync;
using namespace memsync::conformance;

namespace {

// (Not `"e" + std::to_string(n)`: GCC 12 warns about it, a false -Wrestrict.)
std::string numbered(std::string prefix, uint64_t n) {
  return prefix.append(std::to_string(n));
}

// -- push rules ---------------------------------------------------------------

TEST_P(backend_conformance, first_push_of_a_new_client_is_applied_in_order) {
  auto head = db->head_version();
  auto out = push1("a", {put(1, "e1", R"({"n":1})"), put(2, "e2", R"({"n":2})"),
                         put(3, "e3", R"({"n":3})")});
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 3u);
  EXPECT_TRUE(out.reply.refused.empty());
  EXPECT_EQ(out.reply.epoch, db->epoch());
  EXPECT_EQ(db->head_version(), head + 3);
  auto all = by_id(pull_all());
  ASSERT_EQ(all.size(), 3u);
  for (uint64_t i = 1; i <= 3; ++i) {
    auto& e = all[numbered("e", i)];
    EXPECT_EQ(e.version, head + i);
    EXPECT_EQ(e.data, (nlohmann::json{{"n", i}}.dump()));
    EXPECT_FALSE(e.deleted);
  }
}

TEST_P(backend_conformance, resent_mutations_are_acknowledged_without_new_versions) {
  push1("a", {put(1, "e1", R"({"n":1})"), put(2, "e2", R"({"n":2})"),
              put(3, "e3", R"({"n":3})")});
  auto head = db->head_version();
  auto again = push1("a", {put(1, "e1", R"({"n":9})"), put(2, "e2", R"({"n":9})"),
                           put(3, "e3", R"({"n":9})")});
  ASSERT_TRUE(again.error.ok()) << again.error.describe();
  EXPECT_EQ(again.reply.last_mutation_id, 3u);
  EXPECT_TRUE(again.reply.refused.empty());
  EXPECT_EQ(db->head_version(), head);
  EXPECT_EQ(data_of("e1"), R"({"n":1})");

  auto overlap = push1("a", {put(2, "e2", R"({"n":9})"), put(3, "e3", R"({"n":9})"),
                             put(4, "e4", R"({"n":4})")});
  ASSERT_TRUE(overlap.error.ok()) << overlap.error.describe();
  EXPECT_EQ(overlap.reply.last_mutation_id, 4u);
  EXPECT_EQ(db->head_version(), head + 1);
  EXPECT_EQ(data_of("e2"), R"({"n":2})");
  EXPECT_EQ(data_of("e3"), R"({"n":3})");
  EXPECT_EQ(data_of("e4"), R"({"n":4})");
}

TEST_P(backend_conformance,
       a_gap_rejects_the_whole_push_but_not_the_others_in_the_group) {
  auto ep = db->epoch();
  push1("a", {put(1, "a1", "{}"), put(2, "a2", "{}"), put(3, "a3", "{}")});
  push1("c", {put(1, "c1", "{}")});
  auto head = db->head_version();
  auto r = apply({push("a", ep, {put(5, "a5", "{}"), put(6, "a6", "{}")}),
                  push("b", ep, {put(1, "b1", "{}")}),
                  push("c", ep, {put(2, "c2", "{}"), put(4, "c4", "{}")})});
  EXPECT_EQ(r.outcomes.at(0).error.code, sync_errc::mutation_gap);
  EXPECT_EQ(r.outcomes.at(0).reply.last_mutation_id, 3u);
  EXPECT_TRUE(r.outcomes.at(1).error.ok()) << r.outcomes.at(1).error.describe();
  EXPECT_EQ(r.outcomes.at(1).reply.last_mutation_id, 1u);
  EXPECT_EQ(r.outcomes.at(2).error.code, sync_errc::mutation_gap);
  EXPECT_EQ(r.outcomes.at(2).reply.last_mutation_id, 1u);
  EXPECT_EQ(db->head_version(), head + 1);
  auto all = by_id(pull_all());
  EXPECT_TRUE(all.count("b1"));
  for (auto id : {"a5", "a6", "c2", "c4"})
    EXPECT_FALSE(all.count(id)) << id << " of a rejected push was applied";
  EXPECT_EQ(pull_all("a").last_mutation_id, 3u);
  EXPECT_EQ(pull_all("c").last_mutation_id, 1u);
}

TEST_P(backend_conformance, pushes_of_one_client_in_one_group_apply_in_order) {
  auto ep = db->epoch();
  auto r = apply(
    {push("a", ep, {put(1, "e1", R"({"n":1})"), put(2, "e2", "{}")}),
     push("a", ep, {put(2, "e2", R"({"n":9})"), put(3, "e1", R"({"n":3})")})});
  ASSERT_TRUE(r.outcomes.at(0).error.ok() && r.outcomes.at(1).error.ok());
  EXPECT_EQ(r.outcomes.at(1).reply.last_mutation_id, 3u);
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(data_of("e1"), R"({"n":3})");
  EXPECT_EQ(data_of("e2"), "{}");
}

TEST_P(backend_conformance, a_change_refused_by_the_session_uses_up_its_id) {
  push1("a", {put(1, "e1", R"({"n":1})")});
  sync_error bad{sync_errc::invalid_json, "data is not valid JSON"};
  auto out = push1("a", {put(2, "e1", R"({"n":2})"), put(3, "e2", "{}")}, {bad, {}});
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 3u);
  ASSERT_EQ(out.reply.refused.size(), 1u);
  EXPECT_EQ(out.reply.refused[0].mutation_id, 2u);
  EXPECT_EQ(out.reply.refused[0].reason, bad);
  EXPECT_EQ(db->head_version(), 2u);
  auto e1 = find("e1");
  ASSERT_TRUE(e1);
  EXPECT_EQ(e1->data, R"({"n":1})");
  EXPECT_EQ(e1->version, 1u);
  // Id 2 is used up: sending it again is a duplicate, 4 follows 3.
  push1("a", {put(2, "e1", R"({"n":2})")});
  EXPECT_EQ(data_of("e1"), R"({"n":1})");
  auto next = push1("a", {put(4, "e3", "{}")});
  EXPECT_TRUE(next.error.ok()) << next.error.describe();
  EXPECT_EQ(next.reply.last_mutation_id, 4u);
}

TEST_P(backend_conformance, patching_a_missing_entity_is_refused_with_not_found) {
  auto out = push1("a", {patch(1, "ghost", R"({"x":1})"), put(2, "e1", R"({"n":1})"),
                         del(3, "e1"), patch(4, "e1", R"({"x":1})")});
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 4u);
  ASSERT_EQ(out.reply.refused.size(), 2u);
  EXPECT_EQ(out.reply.refused[0].mutation_id, 1u);
  EXPECT_EQ(out.reply.refused[0].reason.code, sync_errc::not_found);
  EXPECT_EQ(out.reply.refused[1].mutation_id, 4u);
  EXPECT_EQ(out.reply.refused[1].reason.code, sync_errc::not_found);
  EXPECT_EQ(db->head_version(), 2u);
  EXPECT_FALSE(find("ghost"));
  auto e1 = find("e1");
  ASSERT_TRUE(e1);
  EXPECT_TRUE(e1->deleted);
  EXPECT_TRUE(push1("a", {put(5, "e2", "{}")}).error.ok());
}

// The first reply naming a refusal can be lost with the connection: the
// client pushes again, and must still learn that the change was refused.
TEST_P(backend_conformance,
       a_duplicate_of_a_refused_change_is_answered_with_its_refusal) {
  sync_error bad{sync_errc::invalid_json, "data is not valid JSON"};
  auto first = push1(
    "a", {put(1, "e1", "{}"), patch(2, "ghost", R"({"x":1})"), put(3, "e2", "{}")},
    {{}, {}, bad});
  ASSERT_EQ(first.reply.refused.size(), 2u);
  auto head = db->head_version();
  reopen(); // kept in the database, not in memory
  auto again = push1("a", {put(1, "e1", "{}"), patch(2, "ghost", R"({"x":1})"),
                           put(3, "e2", "{}")});
  ASSERT_TRUE(again.error.ok()) << again.error.describe();
  EXPECT_EQ(again.reply.last_mutation_id, 3u);
  ASSERT_EQ(again.reply.refused.size(), 2u);
  EXPECT_EQ(again.reply.refused[0].mutation_id, 2u);
  EXPECT_EQ(again.reply.refused[0].reason, first.reply.refused[0].reason);
  EXPECT_EQ(again.reply.refused[0].reason.code, sync_errc::not_found);
  EXPECT_EQ(again.reply.refused[1].mutation_id, 3u);
  EXPECT_EQ(again.reply.refused[1].reason, bad);
  EXPECT_EQ(db->head_version(), head);
  // Only the duplicates' own refusals, next to the new changes' ones.
  auto tail = push1("a", {patch(3, "e2", "{}"), patch(4, "nothing", R"({"y":1})")});
  ASSERT_EQ(tail.reply.refused.size(), 2u);
  EXPECT_EQ(tail.reply.refused[0].mutation_id, 3u);
  EXPECT_EQ(tail.reply.refused[0].reason, bad);
  EXPECT_EQ(tail.reply.refused[1].mutation_id, 4u);
  EXPECT_EQ(tail.reply.refused[1].reason.code, sync_errc::not_found);
  // Another client's duplicates of the same ids were never refused.
  push1("b", {put(1, "b1", "{}"), put(2, "b2", "{}")});
  EXPECT_TRUE(push1("b", {put(2, "b2", "{}")}).reply.refused.empty());
}

// The pull after a reconnect confirms the refused change (its id is used
// up): it must name the refusal too, whatever page the client stops at.
TEST_P(backend_conformance, a_pull_carries_the_clients_kept_refusals) {
  push1("a", {put(1, "e1", R"({"n":1})"), patch(2, "ghost", R"({"x":1})")});
  push1("b", {put(1, "e2", R"({"n":2})")});
  auto p = pull_all("a");
  EXPECT_EQ(p.last_mutation_id, 2u);
  ASSERT_EQ(p.refused.size(), 1u);
  EXPECT_EQ(p.refused[0].mutation_id, 2u);
  EXPECT_EQ(p.refused[0].reason.code, sync_errc::not_found);
  EXPECT_FALSE(p.refused[0].reason.message.empty());
  EXPECT_TRUE(pull_all("b").refused.empty());
  EXPECT_TRUE(pull_all("stranger").refused.empty());
  // An incremental pull, and each page of a paged one, carries them too.
  EXPECT_EQ(pull("a", p.next).refused.size(), 1u);
  auto page = db->pull_page("a", {db->epoch(), 0, 0}, {0, 1});
  ASSERT_FALSE(page.complete);
  EXPECT_EQ(page.refused.size(), 1u);
  auto last = db->pull_page("a", {db->epoch(), 0, 0}, {page.entities.back().version, 1});
  EXPECT_EQ(last.refused.size(), 1u);
}

TEST_P(backend_conformance, refusals_below_a_pushs_first_id_are_forgotten) {
  push1("a", {patch(1, "ghost", "{}"), put(2, "e1", "{}"), patch(3, "ghost", "{}"),
              put(4, "e2", "{}")});
  push1("b", {patch(1, "ghost", "{}")});
  auto ids = [&](const std::string& client) {
    std::vector<uint64_t> out;
    for (auto& r : pull_all(client).refused)
      out.push_back(r.mutation_id);
    return out;
  };
  ASSERT_EQ(ids("a"), (std::vector<uint64_t>{1, 3}));
  // An empty push says nothing about what the client was answered.
  push1("a", {});
  EXPECT_EQ(ids("a"), (std::vector<uint64_t>{1, 3}));
  // Starting at 2: the client was answered for 1; 3 is still a duplicate.
  auto dup = push1("a", {put(2, "e1", "{}"), patch(3, "ghost", "{}")});
  ASSERT_EQ(dup.reply.refused.size(), 1u);
  EXPECT_EQ(dup.reply.refused[0].mutation_id, 3u);
  EXPECT_EQ(ids("a"), (std::vector<uint64_t>{3}));
  auto next = push1("a", {put(5, "e3", "{}")});
  EXPECT_TRUE(next.reply.refused.empty());
  EXPECT_TRUE(ids("a").empty());
  reopen();
  EXPECT_TRUE(ids("a").empty());
  EXPECT_EQ(ids("b"), (std::vector<uint64_t>{1})) << "another client's were touched";
}

TEST_P(backend_conformance,
       a_patch_growing_past_the_size_limit_is_refused_with_too_large) {
  data_limits small{64, 8};
  push1("a", {put(1, "e1", R"({"a":"0123456789"})")}, {}, small);
  auto big = R"({"b":")" + std::string(60, 'x') + R"("})";
  auto out = push1("a", {patch(2, "e1", big)}, {}, small);
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 2u);
  ASSERT_EQ(out.reply.refused.size(), 1u);
  EXPECT_EQ(out.reply.refused[0].reason.code, sync_errc::too_large);
  EXPECT_EQ(db->head_version(), 1u);
  EXPECT_EQ(data_of("e1"), R"({"a":"0123456789"})");
  auto fits = push1("a", {patch(3, "e1", R"({"c":1})")}, {}, small);
  EXPECT_TRUE(fits.reply.refused.empty());
  EXPECT_EQ(data_of("e1"), R"({"a":"0123456789","c":1})");
}

TEST_P(backend_conformance, the_push_epoch_decides_whether_a_gap_is_accepted) {
  push1("a", {put(1, "a1", "{}")});
  push1("b", {put(1, "b1", "{}")});
  auto r = apply({push("a", "an-older-epoch", {put(5, "a5", "{}"), put(6, "a6", "{}")}),
                  push("b", db->epoch(), {put(5, "b5", "{}")})});
  EXPECT_TRUE(r.outcomes.at(0).error.ok()) << r.outcomes.at(0).error.describe();
  EXPECT_EQ(r.outcomes.at(0).reply.last_mutation_id, 6u);
  EXPECT_EQ(r.outcomes.at(1).error.code, sync_errc::mutation_gap);
  EXPECT_EQ(r.outcomes.at(1).reply.last_mutation_id, 1u);
  auto all = by_id(pull_all());
  EXPECT_TRUE(all.count("a5") && all.count("a6"));
  EXPECT_FALSE(all.count("b5"));
  // Even from another epoch, ids inside the push must not skip.
  auto skip = apply(
    {push("a", "an-older-epoch", {put(8, "a8", "{}"), put(10, "a10", "{}")})});
  EXPECT_EQ(skip.outcomes.at(0).error.code, sync_errc::mutation_gap);
}

// -- put / patch / del ----------------------------------------------------------

TEST_P(backend_conformance, put_replaces_the_whole_entity_including_its_type) {
  push1("a", {put(1, "e1", R"({"a":1,"b":2})", "note")});
  push1("b", {put(1, "e1", R"({"c":3})", "task")});
  auto e1 = find("e1");
  ASSERT_TRUE(e1);
  EXPECT_EQ(e1->type, "task");
  EXPECT_EQ(e1->data, R"({"c":3})");
  EXPECT_EQ(e1->version, 2u);
}

TEST_P(backend_conformance, patches_of_different_fields_from_two_clients_both_survive) {
  push1("a", {put(1, "e1", R"({"a":1,"b":1,"keep":true})")});
  push1("b", {patch(1, "e1", R"({"b":2})")}); // both patch the version they saw
  push1("a", {patch(2, "e1", R"({"a":2})")});
  EXPECT_EQ(data_of("e1"), R"({"a":2,"b":2,"keep":true})");
  push1("b", {patch(2, "e1", R"({"keep":null})")});
  EXPECT_EQ(data_of("e1"), R"({"a":2,"b":2})");
}

TEST_P(backend_conformance, a_later_put_in_server_order_wins_for_the_whole_entity) {
  auto ep = db->epoch();
  push1("a", {put(1, "e1", R"({"a":1})")});
  apply({push("b", ep, {patch(1, "e1", R"({"b":2})")}),
         push("a", ep, {put(2, "e1", R"({"c":3})")})});
  EXPECT_EQ(data_of("e1"), R"({"c":3})");
  apply({push("a", ep, {put(3, "e1", R"({"d":4})")}),
         push("b", ep, {patch(2, "e1", R"({"e":5})")})});
  EXPECT_EQ(data_of("e1"), R"({"d":4,"e":5})");
}

TEST_P(backend_conformance, delete_writes_a_tombstone_that_pulls_return) {
  push1("a", {put(1, "e1", R"({"n":1})")});
  auto since = pull_all().next;
  push1("b", {del(1, "e1")});
  auto p = pull("reader", since);
  ASSERT_EQ(p.entities.size(), 1u);
  EXPECT_EQ(p.entities[0].id, "e1");
  EXPECT_TRUE(p.entities[0].deleted);
  EXPECT_GT(p.entities[0].version, since.version);
  auto full = find("e1");
  ASSERT_TRUE(full);
  EXPECT_TRUE(full->deleted);
  push1("a", {put(2, "e1", R"({"n":2})")}); // a put brings it back
  full = find("e1");
  ASSERT_TRUE(full);
  EXPECT_FALSE(full->deleted);
  EXPECT_EQ(full->data, R"({"n":2})");
}

TEST_P(backend_conformance, deleting_a_missing_entity_changes_nothing) {
  auto out = push1("a", {del(1, "ghost")});
  EXPECT_TRUE(out.error.ok() && out.reply.refused.empty());
  EXPECT_EQ(out.reply.last_mutation_id, 1u);
  EXPECT_EQ(db->head_version(), 0u);
  EXPECT_TRUE(pull_all().entities.empty());
  push1("a", {put(2, "e1", "{}"), del(3, "e1"), del(4, "e1")});
  EXPECT_EQ(db->head_version(), 2u);
  EXPECT_EQ(version_of("e1"), 2u);
}

TEST_P(backend_conformance,
       one_group_writing_one_entity_many_times_keeps_the_last_state) {
  auto ep = db->epoch();
  apply(
    {push("a", ep,
          {put(1, "e1", R"({"n":1})"), patch(2, "e1", R"({"m":2})"), del(3, "e1"),
           put(4, "e1", R"({"n":4})")}),
     push("b", ep, {patch(1, "e1", R"({"by":"b"})"), put(2, "e2", "{}"), del(3, "e2")})});
  auto all = by_id(pull_all());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all["e1"].data, R"({"by":"b","n":4})");
  EXPECT_EQ(all["e1"].version, 5u);
  EXPECT_FALSE(all["e1"].deleted);
  EXPECT_TRUE(all["e2"].deleted);
  EXPECT_EQ(all["e2"].version, 7u);
  EXPECT_EQ(db->head_version(), 7u);
  reopen();
  EXPECT_EQ(data_of("e1"), R"({"by":"b","n":4})");
}

TEST_P(backend_conformance, ids_and_data_with_quotes_backslashes_and_unicode_survive) {
  const std::vector<std::string> ids{R"(q"uote)", R"(back\slash)",        "comma,{brace}",
                                     "sp ace",    "caf\u00e9-\U0001F600", "NULL",
                                     "\"\""};
  std::vector<change> changes;
  uint64_t mid = 0;
  for (auto& id : ids)
    changes.push_back(put(++mid, id, R"({"s":"a\"b\\c,{d}","u":"\u00fc"})"));
  push1("a", changes);
  reopen();
  auto all = by_id(pull_all());
  ASSERT_EQ(all.size(), ids.size());
  for (auto& id : ids) {
    ASSERT_TRUE(all.count(id)) << id;
    EXPECT_EQ(all[id].data, R"({"s":"a\"b\\c,{d}","u":"\u00fc"})") << id;
  }
}

// -- pulls --------------------------------------------------------------------

TEST_P(backend_conformance,
       a_pull_from_version_zero_returns_the_latest_state_of_everything) {
  push1("a", {put(1, "e1", R"({"n":1})"), put(2, "e2", "{}"),
              patch(3, "e1", R"({"m":2})"), del(4, "e2"), put(5, "e3", "{}")});
  auto p = pull_all();
  EXPECT_FALSE(p.reset);
  EXPECT_EQ(p.next.version, 5u);
  auto all = by_id(p);
  ASSERT_EQ(p.entities.size(), 3u);
  EXPECT_EQ(all["e1"].data, R"({"m":2,"n":1})");
  EXPECT_EQ(all["e1"].version, 3u);
  EXPECT_TRUE(all["e2"].deleted);
  EXPECT_EQ(all["e2"].version, 4u);
  EXPECT_EQ(all["e3"].version, 5u);
}

TEST_P(backend_conformance, a_pull_from_a_previous_cookie_returns_only_later_changes) {
  push1("a", {put(1, "e1", "{}"), put(2, "e2", "{}"), put(3, "e3", "{}")});
  auto c1 = pull_all().next;
  push1("b", {patch(1, "e2", R"({"x":1})"), put(2, "e4", "{}")});
  auto p = pull("reader", c1);
  EXPECT_FALSE(p.reset);
  auto got = by_id(p);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_TRUE(got.count("e2") && got.count("e4"));
  auto nothing = pull("reader", p.next);
  EXPECT_TRUE(nothing.entities.empty());
  EXPECT_EQ(nothing.next.version, p.next.version);
}

TEST_P(backend_conformance, a_pull_reports_the_clients_last_mutation_id) {
  push1("a", {put(1, "e1", "{}"), put(2, "e2", "{}"), put(3, "e3", "{}")});
  push1("b", {put(1, "e4", "{}")});
  push1("b", {put(5, "e5", "{}")}); // gap: rejected, not counted
  EXPECT_EQ(pull_all("a").last_mutation_id, 3u);
  EXPECT_EQ(pull_all("b").last_mutation_id, 1u);
  EXPECT_EQ(pull_all("nobody").last_mutation_id, 0u);
}

TEST_P(backend_conformance, a_cookie_from_another_epoch_gets_a_reset_with_live_entities) {
  push1("a", {put(1, "e1", "{}"), put(2, "e2", "{}"), del(3, "e2")});
  auto epoch = db->epoch();
  auto p = pull("reader", {"other", 2, 0});
  EXPECT_TRUE(p.reset);
  auto got = by_id(p);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_TRUE(got.count("e1"));
  EXPECT_EQ(db->epoch(), epoch) << "a foreign cookie must not renew the epoch";
  EXPECT_FALSE(pull("reader", p.next).reset);
}

// -- pages ----------------------------------------------------------------------

// Reads every page of one answer of at most `max_bytes` each, calling
// `between` after each page but the last; checks what holds for every page.
std::vector<pull_reply> read_pages(storage_backend& db, const cookie& since,
                                   std::size_t max_bytes,
                                   const std::function<void(int)>& between = {}) {
  std::vector<pull_reply> pages;
  uint64_t after = 0;
  for (int i = 0; i < 10000; ++i) {
    auto p = db.pull_page("reader", since, {after, max_bytes});
    std::size_t bytes = 0;
    for (auto& e : p.entities) {
      EXPECT_GT(e.version, after) << "a page goes back: " << e.id;
      EXPECT_GT(e.version, p.reset ? 0 : since.version) << e.id;
      after = e.version;
      bytes += pull_bytes(e);
    }
    if (p.entities.size() > 1) {
      EXPECT_LE(bytes, max_bytes) << "page " << i << " is over its limit";
    }
    EXPECT_EQ(p.total != 0, i == 0 && !p.entities.empty())
      << "total is on the first page";
    bool last = p.complete;
    if (!last) {
      EXPECT_FALSE(p.entities.empty()) << "an incomplete page must make progress";
    }
    pages.push_back(std::move(p));
    if (last)
      return pages;
    if (between)
      between(i);
  }
  ADD_FAILURE() << "the answer never completed";
  return pages;
}

// What a client holds after applying the pages in order onto `base` (a
// reset starts from nothing): later pages win.
std::map<std::string, entity> apply_pages(std::map<std::string, entity> base,
                                          const std::vector<pull_reply>& pages) {
  if (!pages.empty() && pages.front().reset)
    base.clear();
  for (auto& p : pages)
    for (auto& e : p.entities)
      base[e.id] = e;
  std::erase_if(base, [](auto& kv) { return kv.second.deleted; });
  return base;
}

std::map<std::string, entity> live(const std::map<std::string, entity>& xs) {
  auto out = xs;
  std::erase_if(out, [](auto& kv) { return kv.second.deleted; });
  return out;
}

TEST_P(backend_conformance, a_large_answer_comes_in_pages_within_the_byte_limit) {
  std::vector<change> cs;
  for (uint64_t i = 1; i <= 60; ++i)
    cs.push_back(
      put(i, "e" + std::to_string(i), R"({"text":")" + std::string(100, 'x') + R"("})"));
  push1("a", cs);
  for (bool reset : {false, true}) {
    cookie since = reset ? cookie{"another-epoch", 3, 0} : cookie{db->epoch(), 0, 0};
    auto pages = read_pages(*db, since, 1000);
    ASSERT_GT(pages.size(), 5u) << "60 entities of ~140 bytes in pages of 1000";
    EXPECT_EQ(pages.front().total, 60u);
    EXPECT_EQ(pages.back().next.version, db->head_version());
    EXPECT_EQ(to_state(apply_pages({}, pages)), to_state(live(by_id(pull_all()))));
  }
}

TEST_P(backend_conformance, a_page_may_hold_more_rows_than_a_backend_reads_at_once) {
  std::vector<change> cs;
  for (uint64_t i = 1; i <= 2500; ++i)
    cs.push_back(put(i, "t" + std::to_string(i), "{}"));
  push1("a", cs);
  // About 40 bytes each: some 1,500 per page, two pages.
  auto pages = read_pages(*db, {db->epoch(), 0, 0}, 60000);
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_GT(pages[0].entities.size(), 1000u);
  EXPECT_EQ(pages[0].entities.size() + pages[1].entities.size(), 2500u);
  EXPECT_EQ(to_state(apply_pages({}, pages)), to_state(live(by_id(pull_all()))));
}

TEST_P(backend_conformance, an_entity_larger_than_a_page_comes_alone) {
  push1("a", {put(1, "small", "{}"),
              put(2, "big", R"({"t":")" + std::string(5000, 'y') + R"("})"),
              put(3, "after", "{}")});
  auto pages = read_pages(*db, {db->epoch(), 0, 0}, 1024);
  ASSERT_EQ(pages.size(), 3u);
  ASSERT_EQ(pages[1].entities.size(), 1u);
  EXPECT_EQ(pages[1].entities[0].id, "big");
}

TEST_P(backend_conformance, writes_between_pages_end_in_the_state_at_the_last_page) {
  for (bool reset : {false, true}) {
    reopen();
    auto base_cookie = pull_all().next;
    auto base = by_id(pull_all());
    uint64_t mid = db->head_version() == 0 ? 0 : pull_all("w").last_mutation_id;
    std::vector<change> cs;
    for (int i = 0; i < 40; ++i)
      cs.push_back(put(++mid, "p" + std::to_string(i),
                       R"({"v":")" + std::string(50, 'a') + R"("})"));
    push1("w", cs);
    cookie since = reset ? cookie{"another-epoch", 1, 0} : base_cookie;
    auto pages = read_pages(*db, since, 600, [&](int page) {
      if (page != 0)
        return;
      // After the first page: rewrite and delete entities it carried, delete
      // one it did not, and create a new one.
      push1("w", {patch(++mid, "p0", R"({"v":"changed"})"), del(++mid, "p1"),
                  del(++mid, "p39"), put(++mid, "fresh", "{}")});
    });
    ASSERT_GT(pages.size(), 2u);
    EXPECT_EQ(pages.back().next.version, db->head_version());
    auto held = apply_pages(reset ? std::map<std::string, entity>{} : base, pages);
    EXPECT_EQ(to_state(held), to_state(live(by_id(pull_all()))))
      << (reset ? "reset" : "diff");
    EXPECT_EQ(held.at("p0").data, R"({"v":"changed"})");
    EXPECT_FALSE(held.count("p1") || held.count("p39"));
    EXPECT_TRUE(held.count("fresh"));
  }
}

// -- consistency ----------------------------------------------------------------

TEST_P(backend_conformance, chained_incremental_pulls_reconstruct_the_full_state) {
  std::mt19937 rng(4711);
  auto pick = [&](uint32_t n) {
    return static_cast<uint32_t>(rng() % n);
  };
  state model;
  std::map<std::string, uint64_t> next_mid, model_last;
  std::map<std::string, entity> synced;
  cookie since{db->epoch(), 0, 0};
  const std::vector<std::string> clients{"c0", "c1", "c2"};
  for (int g = 0; g < 60; ++g) {
    std::vector<log_push> group;
    for (auto& client : clients) {
      if (pick(3) == 0)
        continue;
      std::vector<change> cs;
      std::vector<sync_error> verdicts;
      if (next_mid[client] > 0 && pick(4) == 0) { // resend the last one
        cs.push_back(put(next_mid[client], "e0", R"({"dup":1})"));
        verdicts.push_back({});
      }
      for (auto n = 1 + pick(4); n > 0; --n) {
        auto mid = ++next_mid[client];
        auto id = numbered("e", pick(6));
        auto field = numbered("f", pick(3));
        switch (pick(5)) {
          case 0:
          case 1:
            cs.push_back(put(mid, id,
                             nlohmann::json{{"v", pick(100)}, {"by", client}}.dump(),
                             pick(2) ? "note" : "task"));
            break;
          case 2:
          case 3:
            cs.push_back(patch(mid, id,
                               pick(4) ? nlohmann::json{{field, pick(100)}}.dump()
                                       : R"({")" + field + R"(":null})"));
            break;
          default: cs.push_back(del(mid, id));
        }
        verdicts.push_back(pick(10) == 0 ? sync_error{sync_errc::unauthorized, "no"}
                                         : sync_error{});
      }
      // The reference model of the rules, applied in group order.
      for (size_t i = 0; i < cs.size(); ++i) {
        auto& c = cs[i];
        if (c.mutation_id <= model_last[client])
          continue;
        model_last[client] = c.mutation_id;
        auto it = model.find(c.id);
        bool exists = it != model.end() && !std::get<2>(it->second);
        if (!verdicts[i].ok() || (c.kind != change_kind::put && !exists))
          continue;
        if (c.kind == change_kind::put) {
          model[c.id] = {c.type, c.data, false};
        } else if (c.kind == change_kind::patch) {
          auto doc = nlohmann::json::parse(std::get<1>(it->second));
          doc.merge_patch(nlohmann::json::parse(c.data));
          std::get<1>(it->second) = doc.dump();
        } else {
          it->second = {std::get<0>(it->second), "", true};
        }
      }
      group.push_back(push(client, db->epoch(), std::move(cs), std::move(verdicts)));
    }
    auto r = apply(group);
    for (auto& o : r.outcomes)
      ASSERT_TRUE(o.error.ok()) << "group " << g << ": " << o.error.describe();
    if (pick(3) != 0) {
      auto p = pull(clients[g % 3], since);
      ASSERT_FALSE(p.reset);
      for (auto& e : p.entities)
        synced[e.id] = e;
      since = p.next;
    }
  }
  for (auto& e : pull("c0", since).entities)
    synced[e.id] = e;
  auto full = to_state(by_id(pull_all()));
  EXPECT_GT(db->head_version(), 100u);
  EXPECT_EQ(to_state(synced), full);
  EXPECT_EQ(full, model);
}

// -- durability, epochs, rollback ------------------------------------------------

TEST_P(backend_conformance, a_reopened_database_keeps_everything) {
  push1("a", {put(1, "e1", R"({"n":1})"), put(2, "e2", "{}"), del(3, "e2")});
  push1("b", {put(1, "e3", "{}"), patch(2, "e1", R"({"m":1})")});
  auto epoch = db->epoch();
  auto head = db->head_version();
  auto before = pull_all();
  reopen();
  EXPECT_EQ(db->epoch(), epoch);
  EXPECT_EQ(db->head_version(), head);
  auto after = pull_all();
  EXPECT_EQ(by_id(after), by_id(before));
  EXPECT_EQ(pull_all("a").last_mutation_id, 3u);
  EXPECT_EQ(pull_all("b").last_mutation_id, 2u);
  auto p = pull("a", before.next);
  EXPECT_FALSE(p.reset);
  EXPECT_TRUE(p.entities.empty());
  auto out = push1("a", {put(4, "e4", "{}")}); // versions go on, no gap
  EXPECT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(version_of("e4"), head + 1);
}

TEST_P(backend_conformance, a_fresh_database_has_a_new_epoch) {
  auto other = GetParam().open(new_dir());
  EXPECT_FALSE(db->epoch().empty());
  EXPECT_FALSE(other->epoch().empty());
  EXPECT_NE(other->epoch(), db->epoch());
  EXPECT_EQ(other->head_version(), 0u);
}

TEST_P(backend_conformance, a_restored_backup_is_detected_and_gets_a_new_epoch) {
  auto rb = restore_older_copy();
  auto p = pull("a", rb.lost);
  EXPECT_TRUE(p.reset);
  EXPECT_NE(p.next.epoch, rb.old_epoch);
  EXPECT_EQ(p.last_mutation_id, 2u);
  auto got = by_id(p);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_FALSE(got.count("a3"));
  auto new_epoch = db->epoch();
  // a was acknowledged 4 in the old epoch: it goes on with 5.
  auto r = apply({push("a", rb.old_epoch, {put(5, "a5", "{}")}),
                  push("b", new_epoch, {put(3, "b3", "{}")})});
  EXPECT_TRUE(r.outcomes.at(0).error.ok()) << r.outcomes.at(0).error.describe();
  EXPECT_EQ(r.outcomes.at(0).reply.last_mutation_id, 5u);
  EXPECT_EQ(r.outcomes.at(0).reply.epoch, new_epoch);
  EXPECT_EQ(r.outcomes.at(1).error.code, sync_errc::mutation_gap);
  reopen();
  EXPECT_EQ(db->epoch(), new_epoch) << "the renewed epoch must be durable";
  EXPECT_EQ(pull_all("a").last_mutation_id, 5u);
}

TEST_P(backend_conformance, a_restored_backup_is_detected_after_growing_past_the_cookie) {
  auto rb = restore_older_copy();
  // Before anyone pulls, the restored history grows to the lost cookie's version.
  push1("b", {put(2, "b2", "{}"), put(3, "b3", "{}")});
  ASSERT_GE(db->head_version(), rb.lost.version);
  auto old = pull("b", rb.before_backup); // a cookie this history did issue
  EXPECT_FALSE(old.reset);
  EXPECT_EQ(by_id(old).size(), 2u);
  auto p = pull("a", rb.lost);
  EXPECT_TRUE(p.reset);
  EXPECT_NE(p.next.epoch, rb.old_epoch);
}

TEST_P(backend_conformance, an_empty_group_commits_nothing) {
  push1("a", {put(1, "e1", "{}")});
  auto before = pull_all().next;
  auto r = apply({});
  EXPECT_TRUE(r.outcomes.empty());
  EXPECT_EQ(r.version, before.version);
  auto p = pull("reader", before);
  EXPECT_FALSE(p.reset);
  EXPECT_TRUE(p.entities.empty());
  EXPECT_EQ(p.next.version, before.version);
  EXPECT_EQ(p.next.commit, before.commit);
}

// -- the history, for audits ---------------------------------------------------

TEST_P(backend_conformance, the_log_lists_every_written_change_once_in_version_order) {
  auto head = db->head_version();
  push1("a", {put(1, "e1", R"({"n":1})"), put(2, "e2", "{}")});
  // Refused (nothing to patch): uses up its id, writes no history.
  push1("b", {patch(1, "ghost", R"({"x":1})"), del(2, "e1")});
  // Resent: a duplicate, skipped.
  push1("a", {put(2, "e2", R"({"n":9})"), put(3, "e2", R"({"n":3})")});
  auto log = db->read_log(head, 100);
  struct row {
    std::string client;
    uint64_t mid;
    std::string id;
    bool deleted;
  };
  std::vector<row> want{{"a", 1, "e1", false},
                        {"a", 2, "e2", false},
                        {"b", 2, "e1", true},
                        {"a", 3, "e2", false}};
  ASSERT_EQ(log.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(log[i].version, head + i + 1) << i;
    EXPECT_EQ(log[i].client_id, want[i].client) << i;
    EXPECT_EQ(log[i].mutation_id, want[i].mid) << i;
    EXPECT_EQ(log[i].entity_id, want[i].id) << i;
    EXPECT_EQ(log[i].deleted, want[i].deleted) << i;
  }
  EXPECT_EQ(log.back().version, db->head_version());
  // Read in pages: `after` is exclusive, `max` caps the page.
  auto page = db->read_log(head + 1, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].version, head + 2);
  EXPECT_EQ(page[1].version, head + 3);
  EXPECT_TRUE(db->read_log(db->head_version(), 100).empty());
  // The history survives a reopen like the entities do.
  reopen();
  EXPECT_EQ(db->read_log(head, 100).size(), want.size());
}

TEST_P(backend_conformance, a_mutation_id_out_of_range_fails_its_push_alone) {
  auto ep = db->epoch();
  auto r = apply({push("a", ep, {put(max_mutation_id + 6, "a1", "{}")}),
                  push("b", ep, {put(1, "b1", "{}")})});
  EXPECT_EQ(r.outcomes.at(0).error.code, sync_errc::invalid_request);
  EXPECT_TRUE(r.outcomes.at(1).error.ok()) << r.outcomes.at(1).error.describe();
  auto all = by_id(pull_all());
  EXPECT_FALSE(all.count("a1"));
  EXPECT_TRUE(all.count("b1"));
  EXPECT_EQ(pull_all("a").last_mutation_id, 0u);
}

TEST_P(backend_conformance, the_largest_mutation_id_is_stored_exactly) {
  // A client from another epoch may start anywhere: here at the top.
  auto out = apply({push("a", "another-epoch", {put(max_mutation_id, "a1", "{}")})})
               .outcomes.at(0);
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, max_mutation_id);
  EXPECT_EQ(pull_all("a").last_mutation_id, max_mutation_id);
  reopen();
  EXPECT_EQ(pull_all("a").last_mutation_id, max_mutation_id);
  auto again = push1("a", {put(max_mutation_id, "a1", R"({"n":2})")});
  ASSERT_TRUE(again.error.ok());
  EXPECT_EQ(data_of("a1"), "{}") << "the top id was not recognised as a duplicate";
}

TEST_P(backend_conformance, an_empty_push_of_a_new_client_commits_nothing) {
  push1("a", {put(1, "e1", "{}")});
  auto before = pull_all().next;
  auto out = push1("newcomer", {});
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 0u);
  auto p = pull("reader", before);
  EXPECT_TRUE(p.entities.empty());
  EXPECT_EQ(p.next.version, before.version);
  EXPECT_EQ(p.next.commit, before.commit);
}

// A database made before refusals were kept has no table for them: opening
// it adds one, and refusals are kept from then on.
TEST(sqlite_backend_upgrade, an_older_database_gets_the_refusals_table) {
  auto dir = make_temp_dir();
  auto path = dir + "/server.db";
  {
    sqlite_backend db{path};
    apply_pushes(db, {push("a", db.epoch(), {put(1, "e1", "{}")})}, {});
  }
  {
    sqlite_db raw{path, true};
    raw.exec("DROP TABLE refusals");
  }
  {
    sqlite_backend db{path};
    EXPECT_EQ(db.pull("a", {db.epoch(), 0, 0}).last_mutation_id, 1u);
    apply_pushes(db, {push("a", db.epoch(), {patch(2, "ghost", "{}")})}, {});
    auto p = db.pull("a", {db.epoch(), 0, 0});
    ASSERT_EQ(p.refused.size(), 1u);
    EXPECT_EQ(p.refused[0].mutation_id, 2u);
  }
  fs::remove_all(dir);
}

// SQLite keeps the database in server.db (and server.db-wal while a commit is
// not checkpointed); -shm is only an index SQLite rebuilds.
void copy_sqlite_files(const std::string& from, const std::string& to) {
  for (auto& f : fs::directory_iterator(to))
    if (f.path().filename().string().rfind("server.db", 0) == 0)
      fs::remove(f.path());
  for (auto name : {"server.db", "server.db-wal"})
    if (fs::exists(fs::path(from) / name))
      fs::copy_file(fs::path(from) / name, fs::path(to) / name);
}

const std::vector<backend_factory> backends{
  {"sqlite",
   [](const std::string& dir) -> std::unique_ptr<storage_backend> {
     return std::make_unique<sqlite_backend>(dir + "/server.db");
   },
   copy_sqlite_files},
#ifdef MEMSYNC_CONFORMANCE_POSTGRES
  // Built into backend_conformance_pg_test (label postgres): needs a cluster.
  postgres_factory(),
#endif
};

} // namespace

INSTANTIATE_TEST_SUITE_P(all, backend_conformance, ::testing::ValuesIn(backends),
                         [](const auto& info) { return info.param.name; });
