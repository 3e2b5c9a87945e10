// What only the PostgreSQL backend has: several servers on one database
// (versions in commit order, a shared epoch), lost connections, and how its
// errors are classified. The shared rules are in the conformance suite.
#include "actors/storage/postgres_backend.hpp"
#include "tests/storage/backend_conformance.hpp"
#include "tests/support/pg_cluster.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

using namespace memsync;
using namespace memsync::conformance;
using memsync::testing::pg_cluster;

namespace {

// (Not `"e" + std::to_string(n)`: GCC 12 warns about it, a false -Wrestrict.)
std::string numbered(std::string prefix, uint64_t n) {
  return prefix.append(std::to_string(n));
}

std::map<std::string, entity> by_id(const pull_reply& p) {
  std::map<std::string, entity> out;
  for (auto& e : p.entities)
    out[e.id] = e;
  return out;
}

class postgres_backend_test : public ::testing::Test {
protected:
  void SetUp() override { name = cluster().create_database(); }
  void TearDown() override { cluster().drop_database(name); }

  static pg_cluster& cluster() { return pg_cluster::shared(); }
  std::unique_ptr<postgres_backend> open() {
    return std::make_unique<postgres_backend>(cluster().conninfo(name));
  }
  std::string sql(const std::string& query) { return cluster().query(name, query); }
  static push_outcome push1(storage_backend& db, const std::string& client,
                            std::vector<change> changes) {
    return apply_pushes(db, {push(client, db.epoch(), std::move(changes))}, {})
      .outcomes.at(0);
  }

  std::string name;
};

TEST_F(postgres_backend_test,
       a_writer_waits_for_the_one_before_it_so_versions_follow_commit_order) {
  auto first = open();
  auto second = open();
  push1(*first, "a", {put(1, "e0", "{}")});
  // Declared before tx: if the test fails, tx rolls back (freeing the lock)
  // before the future waits for the second writer.
  std::future<push_outcome> later;
  auto tx = first->begin();
  EXPECT_EQ(tx->write_entity({"e1", "note", "{}", 0, false}, "default", "a", 2), 2u);
  tx->set_last_mutation_id("a", 2);
  later = std::async(std::launch::async,
                     [&] { return push1(*second, "b", {put(1, "e2", "{}")}); });
  EXPECT_EQ(later.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
    << "a second writer must wait for the head lock";
  tx->commit();
  auto out = later.get();
  EXPECT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(second->head_version(), 3u);
  auto all = by_id(first->pull("r", {first->epoch(), 0, 0}));
  EXPECT_EQ(all["e1"].version, 2u);
  EXPECT_EQ(all["e2"].version, 3u);
}

TEST_F(postgres_backend_test,
       concurrent_servers_never_let_a_chained_pull_miss_a_version) {
  constexpr int writers = 4;
  constexpr int groups = 40;
  open(); // creates the schema
  auto write = [&](int w) {
    auto db = open();
    auto client = numbered("c", w);
    uint64_t mid = 0;
    for (int g = 0; g < groups; ++g) {
      std::vector<change> cs;
      for (int n = 0; n <= g % 3; ++n) {
        auto id = numbered("e", (g * 7 + n + w) % 10); // shared ids
        ++mid;
        cs.push_back(n == 1 ? patch(mid, id, R"({"by":")" + client + "\"}")
                            : put(mid, id, R"({"g":)" + std::to_string(g) + "}"));
      }
      auto out = push1(*db, client, std::move(cs));
      EXPECT_TRUE(out.error.ok()) << out.error.describe();
      EXPECT_EQ(out.reply.last_mutation_id, mid);
    }
  };
  std::atomic<bool> done{false};
  std::map<std::string, entity> synced;
  cookie since;
  auto reader = std::async(std::launch::async, [&] {
    auto db = open();
    since = {db->epoch(), 0, 0};
    for (bool last = false; !last;) {
      last = done.load();
      auto p = db->pull("reader", since);
      EXPECT_FALSE(p.reset);
      for (auto& e : p.entities)
        synced[e.id] = e;
      since = p.next;
    }
  });
  std::vector<std::future<void>> threads;
  for (int w = 0; w < writers; ++w)
    threads.push_back(std::async(std::launch::async, [&, w] {
      try {
        write(w);
      } catch (const std::exception& e) { // the reader stops all the same
        ADD_FAILURE() << e.what();
      }
    }));
  for (auto& t : threads)
    t.get();
  done = true;
  reader.get();
  auto db = open();
  auto full = db->pull("check", {db->epoch(), 0, 0});
  EXPECT_EQ(to_state(synced), to_state(by_id(full)));
  EXPECT_EQ(since.version, db->head_version());
  // Versions 1..head, each once, and every commit's versions contiguous.
  auto head = std::to_string(db->head_version());
  EXPECT_EQ(sql("SELECT count(*) FROM memsync.log"), head);
  EXPECT_EQ(sql("SELECT max(version) FROM memsync.log"), head);
  EXPECT_EQ(sql("SELECT count(*) FROM (SELECT commit_id FROM memsync.log GROUP BY "
                "commit_id HAVING max(version) - min(version) + 1 <> count(*)) t"),
            "0");
}

// The interleaving that breaks a log numbered by a bare sequence: writer 1
// draws version 1 and is slow to commit, writer 2 draws version 2 and
// commits, a puller reads up to 2, then writer 1 commits version 1 behind
// the puller's cookie. The same chained-pull check runs against a bare
// sequence (it must catch the skipped version, or it proves nothing) and
// against the backend (it must find none).
struct chained_puller {
  std::set<uint64_t> seen;
  uint64_t cookie = 0;
  // `pull(since)` returns the versions above `since` and the new cookie.
  template <class Pull>
  void step(Pull pull) {
    auto [versions, next] = pull(cookie);
    seen.insert(versions.begin(), versions.end());
    cookie = next;
  }
  std::vector<uint64_t> missed(uint64_t head) const {
    std::vector<uint64_t> out;
    for (uint64_t v = 1; v <= head; ++v)
      if (!seen.count(v))
        out.push_back(v);
    return out;
  }
};

TEST_F(postgres_backend_test, a_bare_sequence_lets_a_chained_pull_skip_a_version) {
  auto connect = [&] {
    std::unique_ptr<PGconn, void (*)(PGconn*)> c{
      PQconnectdb(cluster().conninfo(name).c_str()), PQfinish};
    EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK);
    return c;
  };
  auto exec = [](PGconn* c, const std::string& q) {
    std::unique_ptr<PGresult, void (*)(PGresult*)> r{PQexec(c, q.c_str()), PQclear};
    EXPECT_TRUE(PQresultStatus(r.get()) == PGRES_COMMAND_OK
                || PQresultStatus(r.get()) == PGRES_TUPLES_OK)
      << q << ": " << PQresultErrorMessage(r.get());
    std::vector<uint64_t> column;
    for (int i = 0; i < PQntuples(r.get()); ++i)
      column.push_back(std::stoull(PQgetvalue(r.get(), i, 0)));
    return column;
  };
  auto w1 = connect(), w2 = connect(), reader = connect();
  exec(w1.get(), "CREATE TABLE naive_log(version bigserial PRIMARY KEY, id text)");
  auto pull = [&](uint64_t since) {
    auto rows = exec(reader.get(), "SELECT version FROM naive_log WHERE version > "
                                     + std::to_string(since) + " ORDER BY version");
    auto head = exec(reader.get(), "SELECT coalesce(max(version), 0) FROM naive_log");
    return std::pair{rows, head.at(0)};
  };
  chained_puller puller;
  exec(w1.get(), "BEGIN; INSERT INTO naive_log(id) VALUES ('slow')");
  exec(w2.get(), "INSERT INTO naive_log(id) VALUES ('fast')");
  puller.step(pull);
  exec(w1.get(), "COMMIT");
  puller.step(pull);
  EXPECT_EQ(puller.missed(2), std::vector<uint64_t>{1});
}

TEST_F(postgres_backend_test, the_same_interleaving_skips_nothing_with_the_locked_head) {
  auto w1 = open(), w2 = open(), reader = open();
  cookie since{reader->epoch(), 0, 0}; // the whole cookie, as a client keeps it
  auto pull = [&](uint64_t) {
    auto reply = reader->pull("reader", since);
    EXPECT_FALSE(reply.reset);
    std::vector<uint64_t> versions;
    for (auto& e : reply.entities)
      versions.push_back(e.version);
    since = reply.next;
    return std::pair{versions, since.version};
  };
  chained_puller puller;
  std::future<push_outcome> fast;
  auto slow = w1->begin();
  slow->write_entity({"slow", "note", "{}", 0, false}, "default", "a", 1);
  slow->set_last_mutation_id("a", 1);
  fast = std::async(std::launch::async,
                    [&] { return push1(*w2, "b", {put(1, "fast", "{}")}); });
  EXPECT_EQ(fast.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  puller.step(pull); // what is committed: nothing yet
  slow->commit();
  EXPECT_TRUE(fast.get().error.ok());
  puller.step(pull);
  EXPECT_EQ(reader->head_version(), 2u);
  EXPECT_EQ(puller.missed(2), std::vector<uint64_t>{});
}

TEST_F(postgres_backend_test, servers_on_one_database_share_the_epoch_and_its_renewal) {
  auto a = open();
  auto b = open();
  EXPECT_EQ(a->epoch(), b->epoch());
  push1(*a, "a", {put(1, "e1", "{}")});
  auto old = a->epoch();
  // A cookie this history never issued: a renews the epoch.
  EXPECT_TRUE(a->pull("x", {old, 7, 0}).reset);
  EXPECT_NE(a->epoch(), old);
  // b still holds the old epoch; its next write fails, retryable, and learns it.
  auto stale = push1(*b, "b", {put(1, "e2", "{}")});
  EXPECT_EQ(stale.error.code, sync_errc::unavailable)
    << "a write under a stale epoch must fail: " << stale.error.describe();
  EXPECT_EQ(b->epoch(), a->epoch());
  auto out = push1(*b, "b", {put(1, "e2", "{}")});
  EXPECT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(out.reply.epoch, a->epoch());
  EXPECT_EQ(b->head_version(), 2u);
}

TEST_F(postgres_backend_test,
       a_lost_connection_is_retryable_and_the_next_call_reconnects) {
  auto db = open();
  push1(*db, "a", {put(1, "e1", "{}")});
  cluster().terminate_connections(name);
  try {
    db->pull("a", {db->epoch(), 0, 0});
    ADD_FAILURE() << "a pull on a dropped connection must fail";
  } catch (const storage_error& e) {
    EXPECT_TRUE(e.retryable()) << e.what();
  }
  EXPECT_EQ(db->pull("a", {db->epoch(), 0, 0}).last_mutation_id, 1u);

  // Lost in the middle of a transaction: nothing of it is applied.
  auto tx = db->begin();
  tx->write_entity({"e2", "note", "{}", 0, false}, "default", "a", 2);
  tx->set_last_mutation_id("a", 2);
  cluster().terminate_connections(name);
  try {
    tx->commit();
    ADD_FAILURE() << "a commit on a dropped connection must fail";
  } catch (const storage_error& e) {
    EXPECT_TRUE(e.retryable()) << e.what();
  }
  tx.reset();
  auto out = push1(*db, "a", {put(2, "e2", R"({"n":2})")});
  EXPECT_TRUE(out.error.ok()) << out.error.describe();
  EXPECT_EQ(db->head_version(), 2u);
  auto all = by_id(db->pull("r", {db->epoch(), 0, 0}));
  EXPECT_EQ(all["e2"].data, R"({"n":2})");
}

TEST_F(postgres_backend_test,
       an_unreachable_server_is_retryable_a_bad_connection_string_is_not) {
  try {
    // Nothing listens on the cluster's port + 1 (almost surely).
    postgres_backend db{"host=127.0.0.1 connect_timeout=5 port="
                        + std::to_string(cluster().port() + 1)};
    ADD_FAILURE() << "connected to nothing";
  } catch (const storage_error& e) {
    EXPECT_TRUE(e.retryable()) << e.what();
  }
  try {
    postgres_backend db{"host=127.0.0.1 no_such_option=1"};
    ADD_FAILURE() << "accepted a bad connection string";
  } catch (const storage_error& e) {
    EXPECT_FALSE(e.retryable()) << e.what();
  }
}

TEST_F(postgres_backend_test, a_schema_that_is_not_ours_or_newer_is_refused) {
  sql("CREATE SCHEMA memsync; CREATE TABLE memsync.meta(key text PRIMARY KEY, "
      "value text NOT NULL)");
  try {
    open();
    ADD_FAILURE() << "took a foreign schema";
  } catch (const storage_error& e) {
    EXPECT_FALSE(e.retryable()) << e.what();
  }
  EXPECT_EQ(sql("SELECT to_regclass('memsync.refusals') IS NULL"), "t")
    << "wrote into a schema that is not ours";
  auto db = std::make_unique<postgres_backend>(cluster().conninfo(name), "other");
  db.reset();
  sql("UPDATE other.meta SET value = '99' WHERE key = 'schema_version'");
  try {
    postgres_backend again{cluster().conninfo(name), "other"};
    ADD_FAILURE() << "took a newer schema";
  } catch (const storage_error& e) {
    EXPECT_FALSE(e.retryable()) << e.what();
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

// A database made before refusals were kept has no table for them: the
// next connection adds one, and refusals are kept from then on.
TEST_F(postgres_backend_test, an_older_database_gets_the_refusals_table) {
  {
    auto db = open();
    push1(*db, "a", {put(1, "e1", "{}")});
  }
  sql("DROP TABLE memsync.refusals");
  auto db = open();
  EXPECT_EQ(db->pull("a", {db->epoch(), 0, 0}).last_mutation_id, 1u);
  push1(*db, "a", {patch(2, "ghost", "{}")});
  auto p = db->pull("a", {db->epoch(), 0, 0});
  ASSERT_EQ(p.refused.size(), 1u);
  EXPECT_EQ(p.refused[0].mutation_id, 2u);
  EXPECT_EQ(p.refused[0].reason.code, sync_errc::not_found);
}

// A database of the schema before scopes (version 1): the next connection
// upgrades it once; its rows are in 'default' until next written.
TEST_F(postgres_backend_test, a_database_of_before_scopes_keeps_its_rows_in_default) {
  sql(R"sql(
CREATE SCHEMA memsync;
CREATE TABLE memsync.meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE memsync.entities(id text PRIMARY KEY, type text NOT NULL,
  data text NOT NULL, version bigint NOT NULL, deleted boolean NOT NULL);
CREATE INDEX entities_by_version ON memsync.entities(version);
CREATE TABLE memsync.clients(client_id text PRIMARY KEY,
  last_mutation_id bigint NOT NULL);
CREATE TABLE memsync.log(version bigint PRIMARY KEY,
  commit_id bigint NOT NULL, client_id text NOT NULL, mutation_id bigint NOT NULL,
  entity_id text NOT NULL, deleted boolean NOT NULL);
CREATE TABLE memsync.refusals(client_id text NOT NULL,
  mutation_id bigint NOT NULL, code integer NOT NULL, message text NOT NULL,
  PRIMARY KEY (client_id, mutation_id));
INSERT INTO memsync.meta VALUES ('epoch', 'old-epoch'), ('head_version', '2'),
  ('head_commit', '77'), ('schema_version', '1'), ('cookie_secret', 'secret');
INSERT INTO memsync.entities VALUES ('n1', 'note', '{"team":"team-a"}', 1, false),
  ('n2', 'note', '{}', 2, true);
INSERT INTO memsync.clients VALUES ('a', 2);
INSERT INTO memsync.log VALUES (1, 77, 'a', 1, 'n1', false), (2, 77, 'a', 2, 'n2', true);
)sql");
  // Two servers at once: the advisory lock lets one upgrade, the other wait.
  auto both = std::async(std::launch::async, [&] { return open(); });
  auto db = open();
  both.get().reset();
  EXPECT_EQ(db->epoch(), "old-epoch");
  EXPECT_EQ(sql("SELECT value FROM memsync.meta WHERE key = 'schema_version'"), "2");
  EXPECT_EQ(sql("SELECT to_regclass('memsync.entities_by_scope') IS NOT NULL"), "t");
  EXPECT_EQ(sql("SELECT to_regclass('memsync.moves_by_scope') IS NOT NULL"), "t");
  {
    auto tx = db->begin();
    entity e;
    std::string scope;
    ASSERT_TRUE(tx->load_entity("n1", e, scope));
    EXPECT_EQ(scope, "default");
  }
  auto all = db->pull("a", {db->epoch(), 2, 77});
  EXPECT_FALSE(all.reset);
  EXPECT_EQ(all.last_mutation_id, 2u);
  page_request of_default{0, SIZE_MAX, {{"default", 0}}, false};
  EXPECT_EQ(db->pull_page("a", {db->epoch(), 0, 0}, of_default).entities.size(), 1u);
  // Written again, the rules decide: n1 moves to team-a; a client of
  // default learns it as a removal.
  auto written = apply_pushes(*db,
                              {push("a", db->epoch(), {patch(3, "n1", R"({"x":1})")})},
                              {}, {{"note", "team"}});
  ASSERT_TRUE(written.outcomes.at(0).reply.refused.empty());
  EXPECT_EQ(written.scopes, (std::vector<std::string>{"default", "team-a"}));
  page_request since_two{0, SIZE_MAX, {{"default", 2}}, false};
  auto p = db->pull_page("a", {db->epoch(), 2, 77}, since_two);
  ASSERT_EQ(p.entities.size(), 1u);
  EXPECT_TRUE(p.entities[0].deleted);
  EXPECT_EQ(p.entities[0].version, 3u);
}

TEST_F(postgres_backend_test, two_schemas_in_one_database_are_two_histories) {
  auto a = std::make_unique<postgres_backend>(cluster().conninfo(name), "log_a");
  auto b = std::make_unique<postgres_backend>(cluster().conninfo(name), "log b");
  EXPECT_NE(a->epoch(), b->epoch());
  push1(*a, "a", {put(1, "e1", "{}")});
  EXPECT_EQ(a->head_version(), 1u);
  EXPECT_EQ(b->head_version(), 0u);
  EXPECT_TRUE(b->pull("r", {b->epoch(), 0, 0}).entities.empty());
}

} // namespace
