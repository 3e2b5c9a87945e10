// The conformance suite's scopes (run on every backend with the others):
// where apply_pushes puts an entity by the scope rules, writes a token may
// not make, the moves record, and pulls of parts of the data (per-part
// progress, removals, refetch, paging, resets). Then what only SQLite shows:
// the upgrade of a database of the schema before scopes, and the index a
// scoped pull reads through.
#include "tests/storage/backend_conformance.hpp"

#include "actors/common/sqlite.hpp"
#include "actors/storage/sqlite_backend.hpp"

#include <nlohmann/json.hpp>

using namespace memsync;
using namespace memsync::conformance;

namespace {

// Notes name their scope in "team"; memos have no rule (scope "default").
const scope_rules rules{{"note", "team"}};

// The pages of one pull and what they brought.
struct pulled {
  std::vector<pull_reply> pages;
  const pull_reply& last() const { return pages.back(); }
  std::map<std::string, entity> entities; // as received, later pages winning
};

class scoped_pulls {
public:
  explicit scoped_pulls(storage_backend& db) : db_(db) {}

  commit_result apply(std::vector<log_push> pushes) {
    auto r = apply_pushes(db_, pushes, {}, rules);
    EXPECT_EQ(r.outcomes.size(), pushes.size());
    return r;
  }
  push_outcome push1(const std::string& client, std::vector<change> changes,
                     grants g = all_grants()) {
    auto p = push(client, db_.epoch(), std::move(changes));
    p.granted = std::move(g);
    return apply({p}).outcomes.at(0);
  }

  // Every page of one pull; checks what holds for every page of a pull.
  pulled pull(const cookie& since, std::vector<scope_since> parts, bool refetch = false,
              std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) {
    pulled out;
    page_request page{0, max_bytes, std::move(parts), refetch};
    for (int n = 0; n < 10000; ++n) {
      auto p = db_.pull_page("reader", since, page);
      std::set<std::string> seen;
      uint64_t last = page.after;
      for (auto& e : p.entities) {
        EXPECT_TRUE(seen.insert(e.id).second) << e.id << " appears twice in a page";
        EXPECT_GT(e.version, last) << e.id << " is out of version order";
        EXPECT_LE(e.version, p.next.version) << e.id;
        last = e.version;
        out.entities[e.id] = e;
      }
      if (page.after != 0) {
        EXPECT_EQ(p.total, 0u) << "total comes on the first page only";
      }
      out.pages.push_back(p);
      if (p.complete)
        break;
      EXPECT_FALSE(p.entities.empty()) << "an incomplete page holds something";
      if (p.entities.empty())
        break;
      page.after = p.entities.back().version;
    }
    return out;
  }
  pulled pull_all(std::vector<scope_since> parts) {
    return pull({db_.epoch(), 0, 0}, std::move(parts));
  }

  // A cookie of the head, as a pull hands it out.
  cookie head() {
    page_request nothing{
      0, std::numeric_limits<std::size_t>::max(), {{"nobody", 0}}, false};
    return db_.pull_page("probe", {db_.epoch(), 0, 0}, nothing).next;
  }

  // The scope `id` is stored in ("<none>" if it was never written).
  std::string scope_of(const std::string& id) {
    auto tx = db_.begin(); // rolled back: only reads
    entity e;
    std::string scope;
    return tx->load_entity(id, e, scope) ? scope : "<none>";
  }

private:
  storage_backend& db_;
};

std::set<std::string> ids_of(const pulled& p) {
  std::set<std::string> out;
  for (auto& [id, e] : p.entities)
    out.insert(id);
  return out;
}

std::string numbered(std::string prefix, uint64_t n) {
  return prefix.append(std::to_string(n));
}

// -- where writes go ---------------------------------------------------------------

TEST_P(backend_conformance, the_rules_put_an_entity_in_the_scope_its_field_names) {
  scoped_pulls s{*db};
  auto out = s.push1("a", {put(1, "n1", R"({"team":"team-a","x":1})"),
                           put(2, "m1", R"({"team":"team-a"})", "memo")});
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_TRUE(out.reply.refused.empty());
  EXPECT_EQ(s.scope_of("n1"), "team-a");
  EXPECT_EQ(s.scope_of("m1"), "default"); // memos have no rule
  EXPECT_EQ(ids_of(s.pull_all({{"team-a", 0}})), (std::set<std::string>{"n1"}));
  EXPECT_EQ(ids_of(s.pull_all({{"default", 0}})), (std::set<std::string>{"m1"}));
}

TEST_P(backend_conformance, a_ruled_entity_without_its_scope_field_is_refused) {
  scoped_pulls s{*db};
  auto out = s.push1("a", {put(1, "n1", R"({"x":1})"), put(2, "n2", R"({"team":7})"),
                           put(3, "n3", R"({"team":"team-a"})")});
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 3u);
  ASSERT_EQ(out.reply.refused.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out.reply.refused[i].mutation_id, i + 1);
    EXPECT_EQ(out.reply.refused[i].reason.code, sync_errc::invalid_request);
    EXPECT_NE(out.reply.refused[i].reason.message.find("'team'"), std::string::npos)
      << out.reply.refused[i].reason.message;
  }
  EXPECT_EQ(s.scope_of("n1"), "<none>");
  EXPECT_EQ(s.scope_of("n2"), "<none>");
  EXPECT_EQ(s.scope_of("n3"), "team-a");
  // A patch that drops the field is refused too; the entity stays.
  auto drop = s.push1("a", {patch(4, "n3", R"({"team":null})")});
  ASSERT_EQ(drop.reply.refused.size(), 1u);
  EXPECT_EQ(drop.reply.refused[0].reason.code, sync_errc::invalid_request);
  EXPECT_EQ(s.scope_of("n3"), "team-a");
}

TEST_P(backend_conformance, a_write_outside_the_tokens_scopes_is_refused_per_change) {
  scoped_pulls s{*db};
  s.push1("admin", {put(1, "b1", R"({"team":"team-b"})")});
  auto head = db->head_version();
  grants team_a{{"team-a", true}, {"team-b", false}};
  auto out = s.push1("a",
                     {put(1, "a1", R"({"team":"team-a"})"),   // allowed
                      put(2, "b2", R"({"team":"team-b"})"),   // after: read only
                      patch(3, "b1", R"({"team":"team-a"})"), // before: read only
                      put(4, "a2", R"({"team":"team-a"})")},
                     team_a);
  ASSERT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.last_mutation_id, 4u); // the refused ids are used up
  ASSERT_EQ(out.reply.refused.size(), 2u);
  EXPECT_EQ(out.reply.refused[0].mutation_id, 2u);
  EXPECT_EQ(out.reply.refused[0].reason.code, sync_errc::forbidden);
  EXPECT_NE(out.reply.refused[0].reason.message.find("team-b"), std::string::npos);
  EXPECT_EQ(out.reply.refused[1].mutation_id, 3u);
  EXPECT_EQ(out.reply.refused[1].reason.code, sync_errc::forbidden);
  EXPECT_EQ(db->head_version(), head + 2); // a1 and a2 committed
  EXPECT_EQ(s.scope_of("a1"), "team-a");
  EXPECT_EQ(s.scope_of("a2"), "team-a");
  EXPECT_EQ(s.scope_of("b2"), "<none>");
  EXPECT_EQ(s.scope_of("b1"), "team-b");
  // The next pull undoes the refused writes: their refusals come with it.
  auto mine = db->pull("a", {db->epoch(), 0, 0});
  EXPECT_EQ(mine.last_mutation_id, 4u);
  EXPECT_EQ(mine.refused.size(), 2u);
  // Deleting what the token may only read is refused as well.
  auto gone = s.push1("a", {del(5, "b1")}, team_a);
  ASSERT_EQ(gone.reply.refused.size(), 1u);
  EXPECT_EQ(gone.reply.refused[0].reason.code, sync_errc::forbidden);
  EXPECT_FALSE(s.pull_all({{"team-b", 0}}).entities.at("b1").deleted);
}

TEST_P(backend_conformance, a_commit_names_every_scope_it_touched) {
  scoped_pulls s{*db};
  s.push1("a", {put(1, "n1", R"({"team":"team-a"})")});
  auto ep = db->epoch();
  auto r = s.apply({push("a", ep,
                         {patch(2, "n1", R"({"team":"team-c"})"), // a -> c
                          put(3, "m1", "{}", "memo")}),
                    push("b", ep, {put(1, "n2", R"({"team":"team-b"})")})});
  EXPECT_EQ(r.scopes,
            (std::vector<std::string>{"default", "team-a", "team-b", "team-c"}));
  auto del_only = s.apply({push("a", ep, {del(4, "n2")})});
  EXPECT_EQ(del_only.scopes, (std::vector<std::string>{"team-b"}));
  auto refused = s.apply({push("a", ep, {patch(5, "missing", "{}")})});
  EXPECT_TRUE(refused.scopes.empty());
}

// -- pulls of parts -------------------------------------------------------------------

// team-a: a1 a2; team-ab: ab1; team-b: b1; other: o1; default: m1.
void fill_scopes(scoped_pulls& s) {
  s.push1("w",
          {put(1, "a1", R"({"team":"team-a"})"), put(2, "b1", R"({"team":"team-b"})"),
           put(3, "ab1", R"({"team":"team-ab"})"), put(4, "o1", R"({"team":"other"})"),
           put(5, "m1", "{}", "memo"), put(6, "a2", R"({"team":"team-a"})")});
}

TEST_P(backend_conformance, a_pull_brings_only_the_scopes_its_parts_name) {
  scoped_pulls s{*db};
  fill_scopes(s);
  using ids = std::set<std::string>;
  EXPECT_EQ(ids_of(s.pull_all({{"team-a", 0}})), (ids{"a1", "a2"}));
  EXPECT_EQ(ids_of(s.pull_all({{"team-a*", 0}})), (ids{"a1", "a2", "ab1"}));
  EXPECT_EQ(ids_of(s.pull_all({{"team-*", 0}})), (ids{"a1", "a2", "ab1", "b1"}));
  EXPECT_EQ(ids_of(s.pull_all({{"*", 0}})), (ids{"a1", "a2", "ab1", "b1", "m1", "o1"}));
  EXPECT_EQ(ids_of(s.pull_all({{"team-b", 0}, {"default", 0}})), (ids{"b1", "m1"}));
  EXPECT_TRUE(s.pull_all({{"nobody", 0}}).entities.empty());
  // Overlapping parts read their union, each entity once (the pull helper
  // fails on a duplicate); total counts the same union.
  auto overlap = s.pull_all({{"team-*", 0}, {"team-a", 0}, {"team-a*", 0}, {"*", 0}});
  EXPECT_EQ(ids_of(overlap), (ids{"a1", "a2", "ab1", "b1", "m1", "o1"}));
  EXPECT_EQ(overlap.last().total, 6u);
  auto two = s.pull_all({{"team-a*", 0}, {"team-a", 0}});
  EXPECT_EQ(two.pages.front().total, 3u);
  EXPECT_EQ(two.pages.front().entities.size(), 3u);
  EXPECT_EQ(two.last().next.version, db->head_version());
}

TEST_P(backend_conformance, each_part_reads_from_its_own_progress) {
  scoped_pulls s{*db};
  fill_scopes(s); // versions 1..6
  auto at_mid = s.head();
  auto mid = at_mid.version;
  s.push1("w", {patch(7, "a1", R"({"x":1})"), patch(8, "b1", R"({"x":1})"),
                put(9, "b2", R"({"team":"team-b"})")});
  // team-a known up to now-ish, team-b only up to mid: a1's new write is
  // not above team-a's progress, b1's and b2's are above team-b's.
  auto p = s.pull(at_mid, {{"team-a", db->head_version()}, {"team-b", mid}});
  EXPECT_EQ(ids_of(p), (std::set<std::string>{"b1", "b2"}));
  // A part from 0 (just subscribed) brings its whole scope, the other only
  // what is new.
  auto q = s.pull(at_mid, {{"team-a", 0}, {"team-b", mid}});
  EXPECT_EQ(ids_of(q), (std::set<std::string>{"a1", "a2", "b1", "b2"}));
  EXPECT_EQ(q.last().total, 4u);
}

TEST_P(backend_conformance, tombstones_come_to_parts_with_progress_only) {
  scoped_pulls s{*db};
  fill_scopes(s);
  auto at = s.head();
  auto since = at.version;
  s.push1("w", {del(7, "a1"), del(8, "b1")});
  auto p = s.pull(at, {{"team-a", since}, {"team-b", 0}});
  ASSERT_TRUE(p.entities.count("a1"));
  EXPECT_TRUE(p.entities.at("a1").deleted); // the client held it
  EXPECT_FALSE(p.entities.count("b1"));     // from 0: it holds nothing of team-b
  EXPECT_EQ(p.last().total, 1u);
}

// -- removals ----------------------------------------------------------------------

TEST_P(backend_conformance, an_entity_that_moved_out_of_the_parts_comes_as_a_removal) {
  scoped_pulls s{*db};
  fill_scopes(s);
  auto at = s.head();
  auto since = at.version;
  s.push1("w", {patch(7, "a1", R"({"team":"other","y":2})")});
  auto moved_at = db->head_version();
  EXPECT_EQ(s.scope_of("a1"), "other");
  auto p = s.pull(at, {{"team-a", since}});
  ASSERT_EQ(p.entities.size(), 1u);
  auto& removal = p.entities.at("a1");
  EXPECT_TRUE(removal.deleted);
  EXPECT_TRUE(removal.data.empty()) << "a removal carries no data: " << removal.data;
  EXPECT_EQ(removal.version, moved_at);
  EXPECT_EQ(p.last().total, 1u);
  // Written again in its new scope: still a removal at the move's version
  // for the old one, data for the new one.
  s.push1("w", {patch(8, "a1", R"({"z":3})")});
  auto again = s.pull(at, {{"team-a", since}});
  ASSERT_EQ(again.entities.size(), 1u);
  EXPECT_TRUE(again.entities.at("a1").deleted);
  EXPECT_EQ(again.entities.at("a1").version, moved_at);
  auto there = s.pull(at, {{"other", 0}});
  EXPECT_FALSE(there.entities.at("a1").deleted);
  EXPECT_EQ(there.entities.at("a1").data, R"({"team":"other","y":2,"z":3})");
  // Progress past the move: nothing more.
  EXPECT_TRUE(s.pull(s.head(), {{"team-a", moved_at}}).entities.empty());
  // The moves record survives a reopen.
  reopen();
  scoped_pulls r{*db};
  EXPECT_TRUE(r.pull(at, {{"team-a", since}}).entities.at("a1").deleted);
}

TEST_P(backend_conformance, an_entity_moved_within_the_held_scopes_comes_as_data) {
  scoped_pulls s{*db};
  fill_scopes(s);
  auto at = s.head();
  auto since = at.version;
  s.push1("w", {patch(7, "a1", R"({"team":"team-b"})")});
  for (auto parts : std::vector<std::vector<scope_since>>{
         {{"team-a", since}, {"team-b", since}}, {{"team-*", since}}, {{"*", since}}}) {
    auto p = s.pull(at, parts);
    ASSERT_EQ(p.entities.size(), 1u) << parts.size();
    EXPECT_FALSE(p.entities.at("a1").deleted);
    EXPECT_EQ(p.entities.at("a1").data, R"({"team":"team-b"})");
    EXPECT_EQ(p.last().total, 1u);
  }
}

TEST_P(backend_conformance, an_entity_moved_out_and_back_comes_as_data) {
  scoped_pulls s{*db};
  fill_scopes(s);
  auto at = s.head();
  auto since = at.version;
  s.push1("w", {patch(7, "a1", R"({"team":"other"})")});
  s.push1("w", {patch(8, "a1", R"({"team":"team-a","back":true})")});
  auto p = s.pull(at, {{"team-a", since}});
  ASSERT_EQ(p.entities.size(), 1u);
  EXPECT_FALSE(p.entities.at("a1").deleted);
  EXPECT_EQ(p.entities.at("a1").version, db->head_version());
  // Moved through two scopes the client holds and out: one removal, the
  // latest move.
  s.push1("w", {patch(9, "a1", R"({"team":"team-b"})")});
  s.push1("w", {patch(10, "a1", R"({"team":"other"})")});
  auto out = s.pull(at, {{"team-a", since}, {"team-b", since}});
  ASSERT_EQ(out.entities.size(), 1u);
  EXPECT_TRUE(out.entities.at("a1").deleted);
  EXPECT_EQ(out.entities.at("a1").version, db->head_version());
}

TEST_P(backend_conformance, an_entity_moved_out_then_deleted_comes_as_a_removal_beside_a_part_from_0) {
  scoped_pulls s{*db};
  fill_scopes(s);
  auto at = s.head();
  auto since = at.version;
  s.push1("w", {patch(7, "a1", R"({"team":"team-b"})")});
  s.push1("w", {del(8, "a1")});
  // The client holds team-a and has just subscribed to team-b or to every
  // scope: those parts from 0 bring live entities only, so they never say
  // that a1 is gone, and the client would keep its team-a copy.
  for (auto fresh : {"team-b", "team-*", "*"}) {
    auto p = s.pull(at, {{"team-a", since}, {fresh, 0}});
    ASSERT_TRUE(p.entities.count("a1")) << fresh;
    EXPECT_TRUE(p.entities.at("a1").deleted) << fresh;
  }
  // Live in its new scope, it comes as its data there.
  s.push1("w", {put(9, "b9", R"({"team":"team-a"})")});
  s.push1("w", {patch(10, "b9", R"({"team":"team-b"})")});
  auto p = s.pull(at, {{"team-a", since}, {"team-b", 0}});
  ASSERT_TRUE(p.entities.count("b9"));
  EXPECT_FALSE(p.entities.at("b9").deleted);
  EXPECT_EQ(p.entities.at("b9").data, R"({"team":"team-b"})");
}

TEST_P(backend_conformance, a_refetch_brings_tombstones_and_removals_from_zero) {
  scoped_pulls s{*db};
  fill_scopes(s);
  auto at = s.head();
  s.push1("w", {del(7, "a2"), patch(8, "a1", R"({"team":"other"})")});
  // Without refetch, a part from 0 gets live entities only.
  EXPECT_TRUE(s.pull_all({{"team-a", 0}}).entities.empty());
  // With it (the grants grew: the client may hold entities it was not told
  // about), the tombstone and the removal come.
  auto p = s.pull(at, {{"team-a", 0}}, true);
  ASSERT_EQ(p.entities.size(), 2u);
  EXPECT_TRUE(p.entities.at("a2").deleted);
  EXPECT_TRUE(p.entities.at("a1").deleted);
  EXPECT_TRUE(p.entities.at("a1").data.empty());
  EXPECT_EQ(p.last().total, 2u);
}

TEST_P(backend_conformance, scoped_pages_within_a_byte_limit_end_in_the_exact_state) {
  scoped_pulls s{*db};
  // 60 entities over team-0..team-3; then a third move to team-9 and a
  // seventh are deleted (some of them after moving).
  auto data = [](int i) {
    return R"({"team":"team-)" + std::to_string(i % 4) + R"(","pad":")"
           + std::string(100, 'x') + R"("})";
  };
  uint64_t mid = 0;
  std::vector<change> changes;
  for (int i = 0; i < 60; ++i)
    changes.push_back(put(++mid, numbered("e", i), data(i)));
  s.push1("w", changes);
  // A client of team-0 holds it up to here.
  auto at = s.head();
  std::map<std::string, entity> holds = s.pull_all({{"team-0", 0}}).entities;
  changes.clear();
  for (int i = 0; i < 60; i += 3)
    changes.push_back(patch(++mid, numbered("e", i), R"({"team":"team-9"})"));
  for (int i = 1; i < 60; i += 7)
    changes.push_back(del(++mid, numbered("e", i)));
  s.push1("w", changes);
  // It subscribes to team-1 (from 0) and team-9 (as if since the cookie).
  std::vector<scope_since> parts{
    {"team-0", at.version}, {"team-1", 0}, {"team-9", at.version}};
  auto whole = s.pull(at, parts);
  ASSERT_EQ(whole.pages.size(), 1u);
  EXPECT_EQ(whole.last().total, whole.entities.size());
  auto paged = s.pull(at, parts, false, 600);
  EXPECT_GT(paged.pages.size(), 3u);
  EXPECT_EQ(paged.pages.front().total, whole.last().total);
  // What the client holds once it applied an answer (later pages may bring
  // tombstones of a part from 0 too: they undo what an earlier page sent).
  auto live_after = [&](const pulled& answer) {
    auto now = holds;
    for (auto& [id, e] : answer.entities)
      now[id] = e;
    state live;
    for (auto& [id, e] : now)
      if (!e.deleted)
        live[id] = {e.type, e.data, false};
    return live;
  };
  state expected;
  for (int i = 0; i < 60; ++i) {
    bool moved = i % 3 == 0;
    int scope = moved ? 9 : i % 4;
    if (i % 7 == 1 || (scope != 0 && scope != 1 && scope != 9))
      continue;
    auto doc = nlohmann::json::parse(data(i));
    doc["team"] = "team-9";
    expected[numbered("e", i)] = {"note", moved ? doc.dump() : data(i), false};
  }
  EXPECT_EQ(live_after(whole), expected);
  EXPECT_EQ(live_after(paged), expected);
}

TEST_P(backend_conformance, a_cookie_of_another_epoch_resets_every_part) {
  scoped_pulls s{*db};
  fill_scopes(s);
  s.push1("w", {del(7, "a2"), patch(8, "b1", R"({"team":"other"})")});
  auto p = s.pull({"another-epoch", 5, 99}, {{"team-a", 5}, {"team-b", 5}});
  EXPECT_TRUE(p.pages.front().reset);
  // Every part from 0: the live entities of the parts, no tombstone or removal.
  EXPECT_EQ(ids_of(p), (std::set<std::string>{"a1"}));
  EXPECT_EQ(p.pages.front().total, 1u);
  EXPECT_EQ(p.last().next.epoch, db->epoch());
}

// -- SQLite only ---------------------------------------------------------------------

// The schema before scopes, as servers of before created it.
const char* schema_before_scopes = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entities(id TEXT PRIMARY KEY, type TEXT NOT NULL,
                      data TEXT NOT NULL, version INTEGER NOT NULL,
                      deleted INTEGER NOT NULL);
CREATE INDEX entities_by_version ON entities(version);
CREATE TABLE clients(client_id TEXT PRIMARY KEY,
                     last_mutation_id INTEGER NOT NULL);
CREATE TABLE log(version INTEGER PRIMARY KEY, commit_id INTEGER NOT NULL,
                 client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL,
                 entity_id TEXT NOT NULL, deleted INTEGER NOT NULL);
CREATE TABLE refusals(client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL,
                      code INTEGER NOT NULL, message TEXT NOT NULL,
                      PRIMARY KEY(client_id, mutation_id));
INSERT INTO meta VALUES('epoch', 'old-epoch'), ('head_version', '2'),
                       ('head_commit', '77'), ('cookie_secret', 'secret');
INSERT INTO entities VALUES('n1', 'note', '{"team":"team-a"}', 1, 0),
                           ('n2', 'note', '{}', 2, 1);
INSERT INTO clients VALUES('a', 2);
INSERT INTO log VALUES(1, 77, 'a', 1, 'n1', 0), (2, 77, 'a', 2, 'n2', 1);
PRAGMA application_id=1297306188;
PRAGMA user_version=1;
)sql";

TEST(sqlite_backend_upgrade, a_database_of_before_scopes_keeps_its_rows_in_default) {
  auto dir = make_temp_dir();
  auto path = dir + "/server.db";
  {
    sqlite_db raw{path, true};
    raw.exec(schema_before_scopes);
  }
  {
    sqlite_backend db{path};
    EXPECT_EQ(db.epoch(), "old-epoch");
    EXPECT_EQ(db.head_version(), 2u);
    scoped_pulls s{db};
    EXPECT_EQ(s.scope_of("n1"), "default"); // until next written
    auto all = db.pull("a", {db.epoch(), 0, 0});
    ASSERT_EQ(all.entities.size(), 2u);
    EXPECT_TRUE(all.entities[1].deleted);
    EXPECT_EQ(all.last_mutation_id, 2u);
    EXPECT_EQ(ids_of(s.pull_all({{"default", 0}})), (std::set<std::string>{"n1"}));
    // Written again, the rules decide: n1 moves to team-a, and a client of
    // default from version 2 learns it as a removal.
    auto out = s.push1("a", {patch(3, "n1", R"({"x":1})")});
    ASSERT_TRUE(out.error.ok() && out.reply.refused.empty());
    EXPECT_EQ(s.scope_of("n1"), "team-a");
    auto p = s.pull({db.epoch(), 2, 77}, {{"default", 2}});
    ASSERT_EQ(p.entities.size(), 1u);
    EXPECT_TRUE(p.entities.at("n1").deleted);
    EXPECT_EQ(ids_of(s.pull_all({{"team-a", 0}})), (std::set<std::string>{"n1"}));
  }
  {
    sqlite_db raw{path, false};
    EXPECT_EQ(raw.query_int("PRAGMA user_version"), 2);
  }
  {
    sqlite_backend db{path}; // opened again: upgraded once, data kept
    EXPECT_EQ(scoped_pulls{db}.scope_of("n1"), "team-a");
  }
  fs::remove_all(dir);
}

// Every line of a statement's query plan, joined.
std::string query_plan(sqlite_db& raw, const std::string& sql) {
  auto stmt = raw.prepare("EXPLAIN QUERY PLAN " + sql);
  std::string out;
  while (stmt.step())
    out += stmt.column_text(3) + "\n";
  return out;
}

TEST(sqlite_backend_index, a_scoped_pull_reads_through_the_scope_version_index) {
  auto dir = make_temp_dir();
  auto path = dir + "/server.db";
  {
    // 40 scopes s0..s39 of 10 entities, and 10 entities in x1 and x2.
    sqlite_backend db{path};
    std::vector<change> changes;
    for (uint64_t i = 1; i <= 410; ++i)
      changes.push_back(
        put(i, numbered("e", i),
            R"({"team":")" + (i > 400 ? numbered("x", i % 2 + 1) : numbered("s", i % 40))
              + R"("})"));
    apply_pushes(db, {push("a", db.epoch(), changes)}, {}, rules);
  }
  sqlite_db raw{path, false};
  raw.exec("ANALYZE");
  for (auto pattern : {"s3", "x*"}) {
    auto plan = query_plan(raw, sqlite_part_rows_sql(pattern));
    EXPECT_NE(plan.find("USING INDEX entities_by_scope"), std::string::npos)
      << pattern << ":\n"
      << plan;
  }
  // One scope's rows come in index order: no sort.
  auto exact = query_plan(raw, sqlite_part_rows_sql("s3"));
  EXPECT_EQ(exact.find("TEMP B-TREE"), std::string::npos) << exact;
  // "*" keeps reading in version order through the version index.
  auto all = query_plan(raw, sqlite_part_rows_sql("*"));
  EXPECT_NE(all.find("entities_by_version"), std::string::npos) << all;
  fs::remove_all(dir);
}

} // namespace
