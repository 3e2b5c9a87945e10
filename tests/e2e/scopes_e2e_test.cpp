// Scoped sync with permissions, with real processes: a server on
// config/server-teams.ini's rules (config/scopes.txt: a task belongs to the
// scope named by its "team") and grants (config/tokens-teams.txt: alice
// write:team-a, bob write:team-b, carol read:team-a, dave write:team-* and
// read:default). Each client holds exactly what it may read, a write it may
// not make is refused (at once when the client knows its grants, by the
// server otherwise) and undone, a move between scopes reaches both sides,
// a revoked grant removes the data from memory and from the local file, and
// a scope can be dropped and fetched again without a full reset.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/common/sqlite.hpp"
#include "tests/support/e2e_helpers.hpp"

using namespace std::chrono_literals;
using memsync::testing::cluster;
using memsync::testing::sync_client;
using nlohmann::json;

namespace {

/// The scoped server's tokens file, copied so a test may rewrite it.
std::string copy_tokens(const cluster& c) {
  auto path = c.dir().file("tokens-teams.txt");
  std::filesystem::copy_file(MEMSYNC_SOURCE_DIR "/config/tokens-teams.txt", path,
                             std::filesystem::copy_options::overwrite_existing);
  return path;
}

uint16_t start_scoped_server(cluster& c, uint16_t port = 0) {
  return c.start_server(port, {"--server.tokens-file=" + copy_tokens(c),
                               "--server.scopes-file=" MEMSYNC_SOURCE_DIR
                               "/config/scopes.txt"});
}

/// The ids `ls` shows.
std::set<std::string> ids(sync_client& c) {
  std::set<std::string> out;
  for (auto& line : c.ls())
    out.insert(json::parse(line).value("id", ""));
  return out;
}

std::string task(const std::string& id, const std::string& team, int n = 1) {
  return "put " + id + " task " + json{{"team", team}, {"n", n}}.dump();
}

/// Ids of the entities in a client's local database file (client stopped).
std::set<std::string> local_ids(const std::string& db_path) {
  memsync::sqlite_db db{db_path, false};
  auto stmt = db.prepare("SELECT id FROM entities");
  std::set<std::string> out;
  while (stmt.step())
    out.insert(stmt.column_text(0));
  stmt.reset();
  return out;
}

void wait_reloaded(cluster& c) {
  std::string line;
  while (c.server()->read_line(line, 10s))
    if (line.find("reloaded") != std::string::npos)
      return;
  FAIL() << "the server did not report reloading its files";
}

/// Everyone holds what they may read after a few writes of each.
struct teams : ::testing::Test {
  cluster c;
  std::unique_ptr<sync_client> alice, bob, carol;
  void SetUp() override {
    ASSERT_NE(start_scoped_server(c), 0);
    alice = c.start_client("alice");
    bob = c.start_client("bob");
    carol = c.start_client("carol");
    ASSERT_EQ(alice->cmd(task("a1", "team-a")), "ok");
    ASSERT_EQ(alice->cmd(task("a2", "team-a")), "ok");
    ASSERT_EQ(bob->cmd(task("b1", "team-b")), "ok");
    ASSERT_EQ(alice->sync(), "ok");
    ASSERT_EQ(bob->sync(), "ok");
    ASSERT_EQ(carol->sync(), "ok");
    ASSERT_EQ(alice->sync(), "ok");
  }
};

} // namespace

TEST_F(teams, each_client_holds_exactly_the_scopes_its_token_may_read) {
  EXPECT_EQ(ids(*alice), (std::set<std::string>{"a1", "a2"}));
  EXPECT_EQ(ids(*bob), (std::set<std::string>{"b1"}));
  EXPECT_EQ(ids(*carol), (std::set<std::string>{"a1", "a2"}));
  EXPECT_EQ(alice->cmd("scopes"), R"(["team-a"])");
  EXPECT_EQ(carol->cmd("scopes"), R"(["team-a"])");
  EXPECT_EQ(alice->status().value("scopes", json::array()), json::array({"team-a"}));
}

TEST_F(teams, writes_the_token_may_not_make_are_refused_at_once) {
  // carol may only read team-a; alice may not move a1 to team-b or write
  // outside her team; nobody here may write the default scope.
  EXPECT_EQ(carol->cmd(task("c1", "team-a")).rfind("error: forbidden", 0), 0u);
  EXPECT_EQ(carol->cmd("del a1").rfind("error: forbidden", 0), 0u);
  EXPECT_EQ(alice->cmd(R"(patch a1 {"team":"team-b"})").rfind("error: forbidden", 0), 0u);
  EXPECT_EQ(alice->cmd(task("x", "team-b")).rfind("error: forbidden", 0), 0u);
  EXPECT_EQ(alice->cmd(R"(put n1 note {"t":1})").rfind("error: forbidden", 0), 0u);
  // A ruled type without its scope field says which field it needs.
  auto missing = alice->cmd(R"(put a3 task {"n":1})");
  EXPECT_EQ(missing.rfind("error: invalid_request", 0), 0u) << missing;
  EXPECT_NE(missing.find("'team'"), std::string::npos) << missing;
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_EQ(ids(*bob), (std::set<std::string>{"b1"}));
  EXPECT_EQ(ids(*carol), (std::set<std::string>{"a1", "a2"}));
}

TEST_F(teams, a_move_between_scopes_reaches_the_clients_of_both) {
  auto dave = c.start_client("dave"); // write:team-*
  ASSERT_EQ(dave->sync(), "ok");
  EXPECT_EQ(ids(*dave), (std::set<std::string>{"a1", "a2", "b1"}));
  ASSERT_EQ(dave->cmd(R"(patch a1 {"team":"team-b","moved":true})"), "ok");
  ASSERT_EQ(dave->sync(), "ok");
  for (auto* cl : {alice.get(), bob.get(), carol.get()})
    ASSERT_EQ(cl->sync(), "ok") << cl->name();
  EXPECT_EQ(ids(*alice), (std::set<std::string>{"a2"}));
  EXPECT_EQ(ids(*carol), (std::set<std::string>{"a2"}));
  EXPECT_EQ(ids(*bob), (std::set<std::string>{"a1", "b1"}));
  auto moved = json::parse(bob->cmd("get a1"));
  EXPECT_EQ(moved["data"]["team"], "team-b") << moved.dump();
  EXPECT_EQ(moved["data"]["moved"], true) << moved.dump();
  // And back: alice gets it again, bob loses it.
  ASSERT_EQ(dave->cmd(R"(patch a1 {"team":"team-a"})"), "ok");
  ASSERT_EQ(dave->sync(), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_EQ(ids(*alice), (std::set<std::string>{"a1", "a2"}));
  EXPECT_EQ(ids(*bob), (std::set<std::string>{"b1"}));
}

TEST_F(teams, a_revoked_grant_removes_the_data_from_memory_and_the_local_file) {
  auto tokens = c.dir().file("tokens-teams.txt");
  {
    std::ofstream out{tokens, std::ios::trunc};
    out << "alice-token-9f2c alice write:team-a\n"
           "bob-token-41d7 bob write:team-b\n"
           "carol-token-6b1e carol read:team-b\n";
  }
  ASSERT_EQ(::kill(c.server()->pid(), SIGHUP), 0);
  wait_reloaded(c);
  ASSERT_EQ(carol->sync(), "ok");
  EXPECT_EQ(ids(*carol), (std::set<std::string>{"b1"}));
  EXPECT_EQ(carol->cmd("scopes"), R"(["team-b"])");
  ASSERT_EQ(carol->quit(), 0);
  EXPECT_EQ(local_ids(c.dir().file("carol.db")), (std::set<std::string>{"b1"}));
  // The others are untouched.
  ASSERT_EQ(alice->sync(), "ok");
  EXPECT_EQ(ids(*alice), (std::set<std::string>{"a1", "a2"}));
}

TEST_F(teams, a_scope_dropped_and_subscribed_again_comes_back_without_a_full_reset) {
  auto dave = c.start_client("dave", {R"(--client.scopes=["team-a","team-b"])"});
  ASSERT_EQ(dave->sync(), "ok");
  EXPECT_EQ(ids(*dave), (std::set<std::string>{"a1", "a2", "b1"}));
  ASSERT_EQ(dave->cmd("unsubscribe team-a"), "ok");
  EXPECT_EQ(ids(*dave), (std::set<std::string>{"b1"}));
  EXPECT_EQ(dave->cmd("scopes"), R"(["team-b"])");
  EXPECT_EQ(dave->cmd("unsubscribe team-c").rfind("error: not_found", 0), 0u);
  // While team-a is not held, its changes do not reach dave.
  ASSERT_EQ(alice->cmd(task("a3", "team-a")), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(dave->sync(), "ok");
  EXPECT_EQ(ids(*dave), (std::set<std::string>{"b1"}));
  auto cookie_before = dave->status().value("cookie", 0);
  ASSERT_EQ(dave->cmd("subscribe team-a"), "ok");
  ASSERT_EQ(dave->sync(), "ok");
  EXPECT_EQ(ids(*dave), (std::set<std::string>{"a1", "a2", "a3", "b1"}));
  EXPECT_EQ(dave->cmd("scopes"), R"(["team-a","team-b"])");
  // Not a reset: the epoch and the cursor went on.
  EXPECT_GE(dave->status().value("cookie", 0), cookie_before);
  EXPECT_EQ(dave->cmd("subscribe project-9").rfind("error: forbidden", 0), 0u);
}

TEST(scopes_e2e, a_write_made_before_the_client_knew_its_grants_is_refused_and_undone) {
  cluster c;
  auto port = c.reserve_port();
  // carol starts with no server: she cannot know she may only read.
  auto carol = c.start_client("carol", {"--client.sync-timeout=200ms"}, port);
  ASSERT_EQ(carol->cmd(task("c1", "team-a")), "ok");
  ASSERT_EQ(carol->cmd("sync").rfind("error: timeout", 0), 0u);
  ASSERT_NE(start_scoped_server(c, port), 0);
  json last;
  EXPECT_TRUE(carol->wait_status(
    [&](const json& s) {
      last = s;
      return s.value("last_refusal", "").find("forbidden") != std::string::npos
             && s.value("pending", 1) == 0;
    },
    10s))
    << last.dump();
  EXPECT_EQ(carol->cmd("get c1"), "not found");
  ASSERT_EQ(carol->quit(), 0);
  c.stop_server();
  auto server = memsync::testing::server_state(c.server_db());
  EXPECT_TRUE(server.empty());
}
