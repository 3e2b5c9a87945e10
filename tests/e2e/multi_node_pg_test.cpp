// Several server nodes on one PostgreSQL database, as real processes: the
// example configs config/server-node-a.ini and -b.ini (pointed at a
// throwaway cluster), clients connected to different nodes, and the
// database connection lost while clients push.
#include <gtest/gtest.h>

#include <signal.h>

#include <nlohmann/json.hpp>

#include "tests/support/e2e_helpers.hpp"
#include "tests/support/pg_cluster.hpp"

using namespace memsync::testing;
using namespace std::chrono_literals;

namespace {

// Pokes are the only way news reaches these clients: their fallback pull
// timer is an hour.
const std::vector<std::string> only_pokes{"--sync.pull-interval=1h"};

class multi_node_test : public ::testing::Test {
protected:
  void SetUp() override { db = pg().create_database(); }
  void TearDown() override {
    for (auto& n : nodes)
      stop(*n);
    nodes.clear();
    pg().drop_database(db);
  }
  static pg_cluster& pg() { return pg_cluster::shared(); }

  /// Starts `syncnode server` with config/server-node-NAME.ini on a free port.
  uint16_t start_node(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{
      SYNCNODE_PATH,
      "server",
      "--config",
      MEMSYNC_SOURCE_DIR "/config/server-node-" + name + ".ini",
      "--server.port=0",
      "--server.postgres=" + pg().conninfo(db),
      "--server.tokens-file=" + clients.dir().file("tokens.txt"),
      "--middleman.heartbeat-interval=200ms",
      "--middleman.connection-timeout=2s"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto node = std::make_unique<child_process>(args);
    std::string line;
    const std::string marker = "listening on 127.0.0.1:";
    while (node->read_line(line, 15s))
      if (auto pos = line.find(marker); pos != std::string::npos) {
        nodes.push_back(std::move(node));
        return static_cast<uint16_t>(std::stoi(line.substr(pos + marker.size())));
      }
    ADD_FAILURE() << "node " << name << " did not start: " << line;
    return 0;
  }
  static void stop(child_process& node) {
    ::kill(node.pid(), SIGTERM);
    if (node.wait(5s) != 0)
      node.kill_hard();
  }
  /// Polls `get ID` on `client` until its data has `field` == `value`.
  static bool sees(sync_client& client, const std::string& id, const std::string& field,
                   const nlohmann::json& value, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      auto j = nlohmann::json::parse(client.cmd("get " + id), nullptr, false);
      if (!j.is_discarded() && j.is_object() && j["data"][field] == value)
        return true;
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }
  std::string sql(const std::string& query) { return pg().query(db, query); }

  std::string db;
  cluster clients; // a temp dir, tokens and clients; its own server is unused
  std::vector<std::unique_ptr<child_process>> nodes;
};

TEST_F(multi_node_test, a_write_through_one_node_is_poked_to_clients_of_the_other) {
  auto a = start_node("a");
  auto b = start_node("b");
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto alice = clients.start_client("alice", only_pokes, a);
  auto bob = clients.start_client("bob", only_pokes, b);
  ASSERT_TRUE(alice->wait_status([](auto& s) { return s["connected"] == true; }, 10s));
  ASSERT_TRUE(bob->wait_status([](auto& s) { return s["connected"] == true; }, 10s));
  ASSERT_EQ(alice->cmd(R"(put doc-1 doc {"by":"alice"})"), "ok");
  EXPECT_TRUE(sees(*bob, "doc-1", "by", "alice")) << "node b did not poke bob";
  ASSERT_EQ(bob->cmd(R"(patch doc-1 {"seen":true})"), "ok");
  EXPECT_TRUE(sees(*alice, "doc-1", "seen", true)) << "node a did not poke alice";
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(
      (i % 2 ? alice : bob)
        ->cmd("put n-" + std::to_string(i) + R"( note {"i":)" + std::to_string(i) + "}"),
      "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  auto alice_ls = alice->ls();
  EXPECT_EQ(alice_ls.size(), 21u);
  EXPECT_EQ(alice_ls, bob->ls());
  EXPECT_EQ(sql("SELECT count(*) FROM memsync.entities"), "21");
  // One history: versions 1..head without a gap, whichever node wrote them.
  EXPECT_EQ(sql("SELECT count(*) = max(version) FROM memsync.log"), "t");
}

// The rules and grants of config/server-teams.ini on two nodes: a client
// holds only what its token may read, whichever node it uses and whichever
// node took the write.
TEST_F(multi_node_test, scopes_isolate_clients_across_nodes) {
  const std::vector<std::string> teams{
    "--server.tokens-file=" MEMSYNC_SOURCE_DIR "/config/tokens-teams.txt",
    "--server.scopes-file=" MEMSYNC_SOURCE_DIR "/config/scopes.txt"};
  auto a = start_node("a", teams);
  auto b = start_node("b", teams);
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto alice = clients.start_client("alice", only_pokes, a); // write:team-a
  auto bob = clients.start_client("bob", only_pokes, b);     // write:team-b
  auto carol = clients.start_client("carol", only_pokes, b); // read:team-a
  for (auto* c : {alice.get(), bob.get(), carol.get()})
    ASSERT_TRUE(c->wait_status([](auto& s) { return s["connected"] == true; }, 10s));
  ASSERT_EQ(alice->cmd(R"(put a1 task {"team":"team-a","by":"alice"})"), "ok");
  ASSERT_EQ(bob->cmd(R"(put b1 task {"team":"team-b","by":"bob"})"), "ok");
  EXPECT_TRUE(sees(*carol, "a1", "by", "alice")) << "node b did not poke carol";
  EXPECT_EQ(bob->cmd(R"(put a2 task {"team":"team-a"})").rfind("error: forbidden", 0),
            0u);
  for (auto* c : {alice.get(), bob.get(), carol.get()})
    ASSERT_EQ(c->sync(), "ok") << c->name();
  auto ids = [](sync_client& c) {
    std::vector<std::string> out;
    for (auto& line : c.ls())
      out.push_back(nlohmann::json::parse(line).value("id", ""));
    return out;
  };
  EXPECT_EQ(ids(*alice), std::vector<std::string>{"a1"});
  EXPECT_EQ(ids(*bob), std::vector<std::string>{"b1"});
  EXPECT_EQ(ids(*carol), std::vector<std::string>{"a1"});
  EXPECT_EQ(sql("SELECT string_agg(id || ':' || scope, ',' ORDER BY id) FROM "
                "memsync.entities"),
            "a1:team-a,b1:team-b");
  // Node b hears node a's commits with their scopes: it pokes carol (team-a)
  // and not bob (team-b), whose cookie therefore stays where it was.
  auto bob_cookie = bob->status()["cookie"];
  for (auto id : {"a3", "a4", "a5"})
    ASSERT_EQ(alice->cmd(std::string{"put "} + id + R"( task {"team":"team-a"})"), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  EXPECT_TRUE(sees(*carol, "a5", "team", "team-a")) << "node b did not poke carol";
  ASSERT_EQ(carol->sync(), "ok");
  EXPECT_EQ(bob->status()["cookie"], bob_cookie) << "bob was poked for team-a's commits";
}

TEST_F(multi_node_test, losing_the_database_connection_loses_nothing) {
  auto a = start_node("a");
  auto b = start_node("b");
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto alice = clients.start_client("alice", {"--sync.max-push-changes=10"}, a);
  auto bob = clients.start_client("bob", only_pokes, b);
  constexpr int writes = 300;
  for (int round = 0; round < 6; ++round) {
    std::vector<std::string> batch;
    for (int i = round * writes / 6; i < (round + 1) * writes / 6; ++i)
      batch.push_back("put w-" + std::to_string(i) + R"( note {"i":)" + std::to_string(i)
                      + "}");
    auto results = alice->batch(batch);
    ASSERT_EQ(results.size(), batch.size());
    // Both nodes lose their connections (pushes in flight fail retryably).
    pg().terminate_connections(db);
  }
  ASSERT_EQ(alice->sync(), "ok");
  EXPECT_TRUE(sees(*bob, "w-" + std::to_string(writes - 1), "i", writes - 1));
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_EQ(bob->ls().size(), static_cast<size_t>(writes));
  EXPECT_EQ(alice->ls(), bob->ls());
  // Every mutation exactly once (duplicates of retried pushes are skipped).
  auto client_id = alice->status()["client_id"].get<std::string>();
  auto of_alice = " FROM memsync.log WHERE client_id = '" + client_id + "'";
  EXPECT_EQ(sql("SELECT count(*)" + of_alice), std::to_string(writes));
  EXPECT_EQ(sql("SELECT count(DISTINCT mutation_id)" + of_alice), std::to_string(writes));
  // Both nodes connect again (a backend and a listener each). The listeners
  // come back on their own backoff, so this may take a moment after the
  // syncs; the deadline only detects a listener that never returns.
  auto connections = [&] {
    return std::stoi(sql("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db
                         + "' AND pid <> pg_backend_pid()"));
  };
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (connections() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_GE(connections(), 4);
}

} // namespace
