#include "actors/client/local_database.hpp"
#include "messages/validation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "tests/support/temp_dir.hpp"

using namespace std::chrono_literals;
using namespace memsync;

namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

// Runs SQL on a file through the SQLite C API, as another program would.
void run_sql(const fs::path& p, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

change make_change(change_kind kind, std::string id, std::string data,
                   uint64_t trace_id) {
  change c;
  c.kind = kind;
  c.id = std::move(id);
  c.type = "note";
  c.data = std::move(data);
  c.trace.trace_id = trace_id;
  return c;
}

std::vector<entity> sorted(std::vector<entity> xs) {
  std::sort(xs.begin(), xs.end(),
            [](const entity& a, const entity& b) { return a.id < b.id; });
  return xs;
}

class local_database_test : public ::testing::Test {
protected:
  local_db_settings settings(std::string name = "alice") const {
    local_db_settings s;
    s.path = path_.string();
    s.client_name = std::move(name);
    s.busy_timeout = 50ms;
    return s;
  }

  std::unique_ptr<local_database> open(std::string name = "alice") const {
    return std::make_unique<local_database>(settings(std::move(name)));
  }

  // Opening must fail with `code` and leave the file exactly as it was.
  // Returns the error message.
  std::string expect_refused(const local_db_settings& s, sync_errc code) {
    auto before = read_all(path_);
    auto size_before = fs::file_size(path_);
    std::string message;
    try {
      local_database db{s};
      ADD_FAILURE() << "opening " << s.path << " as '" << s.client_name
                    << "' succeeded, client id " << db.client_id();
    } catch (const local_db_error& e) {
      EXPECT_EQ(e.error().code, code)
        << to_string(e.error().code) << ": " << e.error().message;
      message = e.error().message;
    }
    EXPECT_EQ(fs::file_size(path_), size_before);
    EXPECT_TRUE(read_all(path_) == before) << "file contents changed";
    return message;
  }

  memsync::testing::temp_dir tmp_;
  fs::path dir_{tmp_.path()};
  fs::path path_{dir_ / "client.db"};
};

} // namespace

// -- creation ------------------------------------------------------------------

TEST_F(local_database_test, new_client_id_has_name_and_suffix) {
  auto db = open("alice");
  EXPECT_TRUE(std::regex_match(db->client_id(), std::regex{"alice-[0-9a-fA-F]{16}"}))
    << db->client_id();
  EXPECT_TRUE(fs::exists(path_));
}

TEST_F(local_database_test, new_files_get_distinct_client_ids) {
  auto first = open("alice")->client_id();
  fs::remove(path_);
  auto second = open("alice")->client_id();
  EXPECT_NE(first, second);
}

TEST_F(local_database_test, fresh_load_is_empty) {
  auto db = open();
  auto snap = db->load();
  EXPECT_EQ(snap.client_id, db->client_id());
  EXPECT_EQ(snap.next_mutation_id, 1u);
  EXPECT_EQ(db->next_mutation_id(), 1u);
  EXPECT_EQ(snap.last_mutation_id, 0u);
  EXPECT_EQ(snap.cursor.epoch, "");
  EXPECT_EQ(snap.cursor.version, 0u);
  EXPECT_TRUE(snap.base.empty());
  EXPECT_TRUE(snap.outbox.empty());
}

// -- outbox --------------------------------------------------------------------

TEST_F(local_database_test, append_numbers_consecutively) {
  auto db = open();
  auto ids = db->append({make_change(change_kind::put, "a", R"({"x":1})", 11),
                         make_change(change_kind::patch, "b", R"({"y":2})", 12),
                         make_change(change_kind::del, "c", "", 13)});
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 3}));
  ids = db->append({make_change(change_kind::put, "d", R"({})", 14)});
  EXPECT_EQ(ids, (std::vector<uint64_t>{4}));
  EXPECT_EQ(db->next_mutation_id(), 5u);
}

TEST_F(local_database_test, outbox_batches_count_each_change_as_the_server_does) {
  auto db = open();
  std::vector<change> in{make_change(change_kind::put, "alpha", R"({"x":1})", 1),
                         make_change(change_kind::put, "beta", R"({"y":22})", 2),
                         make_change(change_kind::del, "gamma", "", 3)};
  db->append(in);
  // The server's session counts id, type and data (push_bytes): a batch
  // sized by data alone would hold both and be refused as too large.
  auto two = push_bytes(in[0]) + push_bytes(in[1]);
  EXPECT_EQ(db->outbox(0, 10, two).size(), 2u);
  auto cut = db->outbox(0, 10, two - 1);
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0].id, "alpha");
  // The first change goes out even alone over the limit (the syncer decides).
  EXPECT_EQ(db->outbox(0, 10, 1).size(), 1u);
  EXPECT_EQ(db->outbox(1, 10, push_bytes(in[1]) + push_bytes(in[2])).size(), 2u);
}

TEST_F(local_database_test, load_returns_outbox_in_order) {
  auto db = open();
  std::vector<change> in{make_change(change_kind::put, "a", R"({"x":1})",
                                     0xfffffffffffffff0ull),
                         make_change(change_kind::patch, "b", R"({"y":null})", 12),
                         make_change(change_kind::del, "c", "", 0)};
  db->append(in);
  db->append({make_change(change_kind::put, "a", R"({"x":2})", 14)});
  in.push_back(make_change(change_kind::put, "a", R"({"x":2})", 14));
  auto snap = db->load();
  EXPECT_EQ(snap.next_mutation_id, 5u);
  ASSERT_EQ(snap.outbox.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    auto& got = snap.outbox[i];
    EXPECT_EQ(got.mutation_id, i + 1);
    EXPECT_EQ(got.kind, in[i].kind) << i;
    EXPECT_EQ(got.id, in[i].id) << i;
    EXPECT_EQ(got.type, in[i].type) << i;
    EXPECT_EQ(got.data, in[i].data) << i;
    EXPECT_EQ(got.trace.trace_id, in[i].trace.trace_id) << i;
  }
}

TEST_F(local_database_test, reopen_continues_ids_and_keeps_client) {
  std::string client_id;
  {
    auto db = open();
    client_id = db->client_id();
    db->append({make_change(change_kind::put, "a", R"({"x":1})", 1),
                make_change(change_kind::put, "b", R"({"x":2})", 2)});
  }
  auto db = open();
  EXPECT_EQ(db->client_id(), client_id);
  EXPECT_EQ(db->next_mutation_id(), 3u);
  auto snap = db->load();
  ASSERT_EQ(snap.outbox.size(), 2u);
  EXPECT_EQ(snap.outbox[1].id, "b");
  auto ids = db->append({make_change(change_kind::del, "a", "", 3)});
  EXPECT_EQ(ids, (std::vector<uint64_t>{3}));
}

TEST_F(local_database_test, ids_not_reused_after_pull_and_reopen) {
  {
    auto db = open();
    db->append({make_change(change_kind::put, "a", R"({})", 1),
                make_change(change_kind::put, "b", R"({})", 2)});
    db->mark_pushed(2);
    pull_reply reply;
    reply.last_mutation_id = 2;
    db->apply_pull(reply);
    EXPECT_TRUE(db->load().outbox.empty());
  }
  auto db = open();
  EXPECT_EQ(db->append({make_change(change_kind::put, "c", R"({})", 3)}),
            (std::vector<uint64_t>{3}));
}

// -- pulls ---------------------------------------------------------------------

TEST_F(local_database_test, apply_pull_stores_base_and_cookie) {
  auto db = open();
  db->append({make_change(change_kind::put, "a", R"({"x":1})", 1),
              make_change(change_kind::put, "b", R"({"x":2})", 2),
              make_change(change_kind::put, "c", R"({"x":3})", 3)});
  pull_reply first;
  first.next = {"ep1", 10};
  first.last_mutation_id = 0;
  first.entities = {{"a", "note", R"({"x":1})", 9, false},
                    {"b", "note", R"({"x":2})", 10, false}};
  db->apply_pull(first);

  db->mark_pushed(3);
  pull_reply second;
  second.next = {"ep1", 12};
  second.last_mutation_id = 2;
  second.entities = {{"a", "memo", R"({"x":5})", 11, false},
                     {"b", "note", "", 12, true},
                     {"z", "note", "", 12, true}};
  db->apply_pull(second);

  auto snap = db->load();
  EXPECT_EQ(snap.cursor.epoch, "ep1");
  EXPECT_EQ(snap.cursor.version, 12u);
  EXPECT_EQ(snap.last_mutation_id, 2u);
  ASSERT_EQ(snap.base.size(), 1u);
  EXPECT_EQ(snap.base[0], (entity{"a", "memo", R"({"x":5})", 11, false}));
  ASSERT_EQ(snap.outbox.size(), 1u);
  EXPECT_EQ(snap.outbox[0].mutation_id, 3u);
  EXPECT_EQ(snap.outbox[0].id, "c");
  EXPECT_EQ(snap.next_mutation_id, 4u);
}

TEST_F(local_database_test, apply_pull_survives_reopen) {
  {
    auto db = open();
    pull_reply reply;
    reply.next = {"ep9", 3};
    reply.last_mutation_id = 0;
    reply.entities = {{"k", "note", R"({"v":1})", 3, false}};
    db->apply_pull(reply);
  }
  auto snap = open()->load();
  EXPECT_EQ(snap.cursor.epoch, "ep9");
  EXPECT_EQ(snap.cursor.version, 3u);
  ASSERT_EQ(snap.base.size(), 1u);
  EXPECT_EQ(snap.base[0], (entity{"k", "note", R"({"v":1})", 3, false}));
}

TEST_F(local_database_test, reset_replaces_base) {
  auto db = open();
  pull_reply first;
  first.next = {"old", 5};
  first.entities = {{"a", "note", R"({"x":1})", 4, false},
                    {"b", "note", R"({"x":2})", 5, false}};
  db->apply_pull(first);

  pull_reply reset;
  reset.next = {"new", 2};
  reset.reset = true;
  reset.entities = {{"b", "note", R"({"x":9})", 1, false},
                    {"c", "note", R"({"x":3})", 2, false}};
  db->apply_pull(reset);

  auto snap = db->load();
  EXPECT_EQ(snap.cursor.epoch, "new");
  EXPECT_EQ(snap.cursor.version, 2u);
  EXPECT_EQ(sorted(snap.base), sorted(reset.entities));
}

// -- refusals ------------------------------------------------------------------

TEST_F(local_database_test, garbage_file_is_corrupt) {
  {
    std::mt19937 rng{7};
    std::string bytes(8192, '\0');
    for (auto& ch : bytes)
      ch = static_cast<char>(rng());
    std::ofstream out{path_, std::ios::binary};
    out << bytes;
  }
  auto message = expect_refused(settings(), sync_errc::db_corrupt);
  EXPECT_NE(message.find(path_.string()), std::string::npos) << message;
}

TEST_F(local_database_test, other_sqlite_db_is_foreign) {
  run_sql(path_, "CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT);"
                 "INSERT INTO accounts VALUES(1, 'someone');");
  auto message = expect_refused(settings(), sync_errc::db_foreign);
  EXPECT_NE(message.find("not a memsync"), std::string::npos) << message;
}

TEST_F(local_database_test, newer_schema_refused) {
  open().reset();
  run_sql(path_, "PRAGMA user_version=99");
  auto message = expect_refused(settings(), sync_errc::db_schema_newer);
  EXPECT_NE(message.find("99"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(local_schema_version)), std::string::npos)
    << message;
}

TEST_F(local_database_test, other_client_is_foreign) {
  {
    auto db = open("alice");
    db->append({make_change(change_kind::put, "a", R"({})", 1)});
  }
  auto message = expect_refused(settings("bob"), sync_errc::db_foreign);
  EXPECT_NE(message.find("alice"), std::string::npos) << message;
  EXPECT_NE(message.find("bob"), std::string::npos) << message;
}

TEST_F(local_database_test, client_named_by_prefix_is_foreign) {
  // The file of client "laptop-2" is not the file of client "laptop".
  open("laptop-2").reset();
  expect_refused(settings("laptop"), sync_errc::db_foreign);
}

TEST_F(local_database_test, second_open_is_locked) {
  auto first = open();
  first->append({make_change(change_kind::put, "a", R"({})", 1)});
  try {
    local_database second{settings()};
    ADD_FAILURE() << "second open succeeded";
  } catch (const local_db_error& e) {
    EXPECT_EQ(e.error().code, sync_errc::db_locked)
      << to_string(e.error().code) << ": " << e.error().message;
  }
  EXPECT_EQ(first->append({make_change(change_kind::put, "b", R"({})", 2)}),
            (std::vector<uint64_t>{2}));
  EXPECT_EQ(first->load().outbox.size(), 2u);
}

// -- integrity -----------------------------------------------------------------

TEST_F(local_database_test, integrity_check_ok_after_use) {
  auto db = open();
  db->append({make_change(change_kind::put, "a", R"({"x":1})", 1),
              make_change(change_kind::del, "b", "", 2)});
  pull_reply reply;
  reply.next = {"e", 1};
  reply.last_mutation_id = 1;
  reply.entities = {{"a", "note", R"({"x":1})", 1, false}, {"b", "note", "", 1, true}};
  db->apply_pull(reply);
  db->append({make_change(change_kind::patch, "a", R"({"y":2})", 3)});
  EXPECT_EQ(db->integrity_check(), "ok");
}

TEST_F(local_database_test, the_cookie_signature_survives_a_restart) {
  {
    auto db = open();
    EXPECT_EQ(db->load().cursor.mac, "");
    pull_reply r;
    r.next = {"ep1", 10, 3, "c0ffee"};
    db->apply_pull(r);
  }
  auto snap = open()->load();
  EXPECT_EQ(snap.cursor.version, 10u);
  EXPECT_EQ(snap.cursor.commit, 3u);
  EXPECT_EQ(snap.cursor.mac, "c0ffee");
}

TEST_F(local_database_test,
       a_file_from_before_signed_cookies_opens_with_an_unsigned_cookie) {
  {
    auto db = open();
    pull_reply r;
    r.next = {"ep1", 10, 3, "c0ffee"};
    db->apply_pull(r);
  }
  {
    sqlite_db raw{path_.string(), false};
    raw.exec("DELETE FROM meta WHERE key = 'cookie_mac'");
  }
  auto snap = open()->load();
  EXPECT_EQ(snap.cursor.version, 10u);
  EXPECT_EQ(snap.cursor.mac, "");
}

// -- exactly-once batches ------------------------------------------------------

TEST_F(local_database_test, a_retried_batch_is_applied_once_and_gets_its_first_ids) {
  auto db = open();
  std::vector<change> batch{make_change(change_kind::put, "a", R"({"n":1})", 1),
                            make_change(change_kind::put, "b", R"({"n":2})", 2)};
  EXPECT_EQ(db->append(batch, 7), (std::vector<uint64_t>{1, 2}));
  // The caller's first attempt timed out although it committed: the retry
  // gets the same ids and writes nothing.
  EXPECT_EQ(db->append(batch, 7), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(db->load().outbox.size(), 2u);
  EXPECT_EQ(db->next_mutation_id(), 3u);
  // The next batch is applied, and so is every unnumbered one.
  EXPECT_EQ(db->append({make_change(change_kind::put, "c", "{}", 3)}, 8),
            (std::vector<uint64_t>{3}));
  EXPECT_EQ(db->append({make_change(change_kind::put, "c", "{}", 4)}),
            (std::vector<uint64_t>{4}));
  EXPECT_EQ(db->append({make_change(change_kind::put, "c", "{}", 5)}),
            (std::vector<uint64_t>{5}));
  EXPECT_EQ(db->load().outbox.size(), 5u);
}

// -- the record of pushes and restored copies ----------------------------------

TEST_F(local_database_test, the_push_record_only_rises_and_survives_a_restart) {
  {
    auto db = open();
    EXPECT_EQ(db->pushed_mutation_id(), 0u);
    db->append({make_change(change_kind::put, "a", "{}", 1),
                make_change(change_kind::put, "b", "{}", 2),
                make_change(change_kind::put, "c", "{}", 3)});
    db->mark_pushed(2);
    db->mark_pushed(1);
    EXPECT_EQ(db->pushed_mutation_id(), 2u);
  }
  EXPECT_EQ(open()->load().pushed_mutation_id, 2u);
}

TEST_F(local_database_test,
       a_file_from_before_the_push_record_counts_every_id_as_pushed) {
  {
    auto db = open();
    db->append({make_change(change_kind::put, "a", "{}", 1),
                make_change(change_kind::put, "b", "{}", 2)});
  }
  {
    sqlite_db raw{path_.string(), false};
    raw.exec("DELETE FROM meta WHERE key = 'pushed_mutation_id'");
  }
  EXPECT_EQ(open()->pushed_mutation_id(), 2u);
}

TEST_F(local_database_test, a_pull_never_drops_changes_that_were_never_pushed) {
  auto db = open();
  db->append({make_change(change_kind::put, "a", "{}", 1),
              make_change(change_kind::put, "b", "{}", 2),
              make_change(change_kind::put, "c", "{}", 3)});
  db->mark_pushed(1);
  pull_reply reply;
  reply.last_mutation_id = 3; // ids 2 and 3 of another copy of this file
  db->apply_pull(reply);
  auto snap = db->load();
  ASSERT_EQ(snap.outbox.size(), 2u);
  EXPECT_EQ(snap.outbox[0].id, "b");
  EXPECT_EQ(snap.outbox[1].id, "c");
}

TEST_F(local_database_test,
       a_restored_copy_moves_to_a_new_client_id_and_renumbers_its_outbox) {
  std::string old_id;
  std::string new_id;
  {
    auto db = open();
    old_id = db->client_id();
    db->append({make_change(change_kind::put, "a", R"({"n":1})", 1),
                make_change(change_kind::put, "b", R"({"n":2})", 2),
                make_change(change_kind::patch, "a", R"({"m":3})", 3)});
    db->mark_pushed(3);
    pull_reply confirmed;
    confirmed.next = {"ep1", 10, 4, "mac"};
    confirmed.last_mutation_id = 1;
    confirmed.entities = {{"a", "note", R"({"n":1})", 10, false}};
    db->apply_pull(confirmed);
    db->set_push_epoch("ep1");
    db->append({make_change(change_kind::put, "d", "{}", 4)}); // id 4, never pushed

    // A record the file can explain changes nothing.
    auto same = db->repair(old_id, 3);
    EXPECT_EQ(same.client_id, old_id);
    EXPECT_TRUE(same.old_ids.empty());
    EXPECT_EQ(db->client_id(), old_id);

    // The server has seen id 5 of this client: never handed out here.
    auto moved = db->repair(old_id, 5);
    new_id = moved.client_id;
    EXPECT_NE(new_id, old_id);
    EXPECT_EQ(new_id.rfind("alice-", 0), 0u) << new_id;
    EXPECT_EQ(moved.old_ids, (std::vector<uint64_t>{2, 3, 4}));
    EXPECT_EQ(db->client_id(), new_id);
    EXPECT_EQ(db->pushed_mutation_id(), 0u);
    // Asked again about the old id (a retry): the same answer, no new move.
    auto again = db->repair(old_id, 5);
    EXPECT_EQ(again.client_id, new_id);
    EXPECT_EQ(again.old_ids, moved.old_ids);
    EXPECT_EQ(db->repair(new_id, 0).old_ids, std::vector<uint64_t>{});
  }
  // All of it is in the file: the new id, the outbox from 1 in the old order,
  // the base and the cookie as they were, nothing confirmed for the new id.
  auto db = open();
  EXPECT_EQ(db->client_id(), new_id);
  auto snap = db->load();
  ASSERT_EQ(snap.outbox.size(), 3u);
  EXPECT_EQ(snap.outbox[0].mutation_id, 1u);
  EXPECT_EQ(snap.outbox[0].id, "b");
  EXPECT_EQ(snap.outbox[1].mutation_id, 2u);
  EXPECT_EQ(snap.outbox[1].id, "a");
  EXPECT_EQ(snap.outbox[1].kind, change_kind::patch);
  EXPECT_EQ(snap.outbox[2].mutation_id, 3u);
  EXPECT_EQ(snap.outbox[2].id, "d");
  EXPECT_EQ(snap.next_mutation_id, 4u);
  EXPECT_EQ(snap.last_mutation_id, 0u);
  EXPECT_EQ(snap.pushed_mutation_id, 0u);
  EXPECT_EQ(snap.push_epoch, "");
  EXPECT_EQ(snap.cursor.version, 10u);
  EXPECT_EQ(snap.cursor.mac, "mac");
  ASSERT_EQ(snap.base.size(), 1u);
  EXPECT_EQ(snap.base[0].id, "a");
  EXPECT_EQ(db->append({make_change(change_kind::put, "e", "{}", 5)}),
            (std::vector<uint64_t>{4}));
  EXPECT_EQ(db->integrity_check(), "ok");
}

// -- scopes --------------------------------------------------------------------

TEST_F(local_database_test,
       prune_deletes_entities_of_scopes_not_held_but_never_the_outbox) {
  {
    auto db = open();
    pull_reply r;
    r.next = {"ep1", 4, 4};
    r.entities = {{"a1", "note", R"({"team":"a"})", 1, false},
                  {"b1", "note", R"({"team":"b"})", 2, false},
                  {"old", "note", R"({"x":1})", 3, false}, // before the rule: default
                  {"c1", "comment", R"({"team":"b"})", 4, false}};
    db->apply_pull(r);
    db->append({make_change(change_kind::put, "b2", R"({"team":"b"})", 7)});
    EXPECT_EQ(db->prune({scope_rule{"note", "team"}}, {"a", "default"}), 1u);
    EXPECT_EQ(db->integrity_check(), "ok");
  }
  auto snap = open()->load();
  std::vector<std::string> ids;
  for (auto& e : sorted(snap.base))
    ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a1", "c1", "old"}));
  ASSERT_EQ(snap.outbox.size(), 1u);
  EXPECT_EQ(snap.outbox[0].id, "b2");
}

TEST_F(local_database_test, the_subscription_and_its_progress_survive_a_reopen) {
  EXPECT_FALSE(open()->load().subscription.stored);
  scope_subscription sub;
  sub.entries = {{"team-a", 12}, {"team-*", 0}};
  sub.known_reads = {"team-*"};
  sub.held = {"team-*"};
  sub.rules = {scope_rule{"note", "team"}, scope_rule{"task", "project"}};
  sub.configured = {"team-a"};
  open()->save_subscription(sub);
  auto loaded = open()->load().subscription;
  EXPECT_TRUE(loaded.stored);
  ASSERT_EQ(loaded.entries.size(), 2u);
  std::sort(loaded.entries.begin(), loaded.entries.end(),
            [](auto& a, auto& b) { return a.pattern > b.pattern; });
  EXPECT_EQ(loaded.entries[0].pattern, "team-a");
  EXPECT_EQ(loaded.entries[0].since, 12u);
  EXPECT_EQ(loaded.entries[1].pattern, "team-*");
  EXPECT_EQ(loaded.entries[1].since, 0u);
  EXPECT_EQ(loaded.known_reads, sub.known_reads);
  EXPECT_EQ(loaded.held, sub.held);
  EXPECT_EQ(loaded.configured, sub.configured);
  ASSERT_EQ(loaded.rules.size(), 2u);
  EXPECT_EQ(loaded.rules[1].type, "task");
  EXPECT_EQ(loaded.rules[1].field, "project");
  // Saving again replaces, never adds.
  sub.entries = {{"team-a", 13}};
  open()->save_subscription(sub);
  loaded = open()->load().subscription;
  ASSERT_EQ(loaded.entries.size(), 1u);
  EXPECT_EQ(loaded.entries[0].since, 13u);
}

TEST_F(local_database_test, a_pull_advances_the_progress_of_the_entries_it_names) {
  {
    auto db = open();
    db->save_subscription(scope_subscription{{{"team-a", 3}, {"team-b", 0}}});
    pull_reply r;
    r.next = {"ep1", 9, 4, "mac"};
    r.entities = {{"n1", "note", R"({"team":"team-a"})", 9, false}};
    // team-b was not in the answered request; team-c is no entry.
    db->apply_pull(r, {"team-a", "team-c"});
  }
  auto snap = open()->load();
  EXPECT_EQ(snap.cursor.version, 9u);
  ASSERT_EQ(snap.subscription.entries.size(), 2u);
  for (auto& e : snap.subscription.entries)
    EXPECT_EQ(e.since, e.pattern == "team-a" ? 9u : 0u) << e.pattern;
}

TEST_F(local_database_test, a_file_from_before_scopes_is_migrated_and_keeps_its_data) {
  {
    auto db = open();
    pull_reply r;
    r.next = {"ep1", 10, 3, "mac"};
    r.entities = {{"n1", "note", R"({"x":1})", 10, false}};
    db->apply_pull(r);
    db->append({make_change(change_kind::put, "n2", R"({"x":2})", 5)});
  }
  // What schema version 1 looked like: no scopes table, no scope rows.
  run_sql(path_, "DROP TABLE scopes; DELETE FROM meta WHERE key LIKE 'scope_%';"
                 "PRAGMA user_version=1");
  auto db = open();
  auto snap = db->load();
  EXPECT_EQ(snap.cursor.version, 10u);
  ASSERT_EQ(snap.base.size(), 1u);
  ASSERT_EQ(snap.outbox.size(), 1u);
  EXPECT_FALSE(snap.subscription.stored); // the syncer starts from client.scopes
  EXPECT_EQ(snap.subscription.held, (std::vector<std::string>{"*"}));
  EXPECT_TRUE(snap.subscription.entries.empty());
  db->save_subscription(scope_subscription{{{"*", 10}}});
  db.reset();
  auto reopened = open()->load();
  EXPECT_TRUE(reopened.subscription.stored);
  {
    sqlite_db raw{path_.string(), false};
    EXPECT_EQ(raw.query_int("PRAGMA user_version"), local_schema_version);
  }
}
