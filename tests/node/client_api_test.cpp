// The public client interface (node/client/memsync.hpp) as an application
// uses it: errors that name what was wrong, writes that survive closing and
// opening again, a database that two clients cannot share, and a local disk
// that fails (full, on a fault-injecting VFS): writes stay visible, status
// and the REPL's `status` name the error until a flush succeeds again, and
// nothing is lost, locally or on the server.
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "messages/registry.hpp"
#include "node/client/client_config.hpp"
#include "node/client/client_node.hpp"
#include "node/client/memsync.hpp"
#include "node/client_cli.hpp"
#include "tests/support/e2e_helpers.hpp"
#include "tests/support/fault_vfs.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using memsync::testing::cluster;
using memsync::testing::fault_vfs;
using memsync::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

/// The disk is full: the client's files (`db` and its WAL) may not grow.
void fill_disk(fault_vfs& vfs, const std::string& db) {
  std::size_t used = 0;
  for (auto* suffix : {"", "-wal"})
    if (std::filesystem::exists(db + suffix))
      used += std::filesystem::file_size(db + suffix);
  vfs.set_quota(used);
}

/// Twenty notes of 4 KB each: more than any slack the files have.
void write_notes(memsync::store& s) {
  for (int i = 1; i <= 20; ++i)
    ASSERT_TRUE(
      s.put("n" + std::to_string(i), "note", {{"pad", std::string(4000, 'p')}}).ok());
}

/// Polls until `pred` holds; the deadline only detects a stall (a failed
/// flush is reported within milliseconds).
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

struct client_api_test : ::testing::Test {
  temp_dir dir;

  /// An offline client config with `extra` appended; returns its path.
  std::string write_config(const std::string& extra = "") {
    auto path = dir.file("app.ini");
    std::ofstream out{path};
    out << "[client]\nid = \"app\"\ndb-path = \"" << dir.file("app.db") << "\"\n"
        << extra;
    return path;
  }
};

TEST_F(client_api_test, a_bad_option_names_the_file_line_and_key) {
  auto path = write_config("[flush]\ndebounce = 100\n");
  try {
    client::open(path);
    FAIL() << "a duration without a unit was accepted";
  } catch (const config_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("app.ini:5"), std::string::npos) << what;
    EXPECT_NE(what.find("flush.debounce"), std::string::npos) << what;
  }
  EXPECT_THROW(client::open(write_config(), {"--flush.no-such-key=1"}), config_error);
}

TEST_F(client_api_test, a_flushed_write_is_there_when_the_client_opens_again) {
  auto path = write_config();
  std::string id;
  {
    auto c = client::open(path);
    id = c->client_id();
    ASSERT_TRUE(c->store().put("n1", "note", {{"text", "hi"}}).ok());
    ASSERT_TRUE(c->flushed(5s));
    auto st = c->status();
    EXPECT_FALSE(st.has_server);
    EXPECT_FALSE(st.connected);
    EXPECT_EQ(st.client_id, id);
    EXPECT_EQ(st.entities, 1u);
    EXPECT_EQ(st.pending, 1u); // no server has confirmed it
  }
  auto c = client::open(path);
  EXPECT_EQ(c->client_id(), id);
  auto e = c->store().get("n1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->data, R"({"text":"hi"})");
}

TEST_F(client_api_test, settings_built_in_code_open_the_same_client) {
  client_config cfg;
  cfg.client_name = "app";
  cfg.db.path = dir.file("app.db");
  cfg.db.client_name = "app";
  std::string id;
  {
    auto c = client::open(cfg);
    id = c->client_id();
    ASSERT_TRUE(c->store().put("n1", "note", {{"text", "coded"}}).ok());
    ASSERT_TRUE(c->flushed(5s));
  }
  // The config file naming the same database finds the same client.
  auto c = client::open(write_config());
  EXPECT_EQ(c->client_id(), id);
  ASSERT_TRUE(c->store().get("n1"));
}

TEST_F(client_api_test, closing_flushes_what_was_written) {
  // Only the destructor's flush can make the write durable: the debounce
  // would hold it for an hour.
  auto path = write_config("[flush]\ndebounce = 1h\n");
  {
    auto c = client::open(path);
    ASSERT_TRUE(c->store().put("n1", "note", {{"text", "bye"}}).ok());
  }
  auto c = client::open(path);
  auto e = c->store().get("n1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->data, R"({"text":"bye"})");
}

TEST_F(client_api_test, a_database_in_use_by_another_client_is_refused) {
  auto path = write_config();
  auto first = client::open(path);
  ASSERT_TRUE(first->store().put("n1", "note", {{"text", "mine"}}).ok());
  // (Not waiting for the lock to be released: it will not be.)
  EXPECT_THROW(client::open(path, {"--local-db.busy-timeout=0ns"}), local_db_error);
  // The first client is not disturbed.
  ASSERT_TRUE(first->store().put("n2", "note", {{"text", "still mine"}}).ok());
  EXPECT_TRUE(first->flushed(5s));
  EXPECT_EQ(first->store().size(), 2u);
}

// -- a failing local disk ----------------------------------------------------

TEST_F(client_api_test,
       a_full_disk_shows_in_status_and_loses_nothing_once_there_is_room) {
  fault_vfs vfs; // before opening: the client's files go through it
  auto path = write_config(
    "[flush]\ndebounce = 0ns\nretry-min = 5ms\nretry-max = 20ms\n");
  auto c = client::open(path);
  auto& s = c->store();
  ASSERT_TRUE(s.put("n0", "note", {{"text", "before"}}).ok());
  ASSERT_TRUE(c->flushed(5s));
  EXPECT_EQ(c->status().local_error, "");
  fill_disk(vfs, dir.file("app.db"));
  write_notes(s);
  // Visible at once, whatever the disk does.
  EXPECT_EQ(s.size(), 21u);
  ASSERT_TRUE(eventually([&] { return !c->status().local_error.empty(); }));
  auto st = c->status();
  EXPECT_NE(st.local_error.find("full"), std::string::npos) << st.local_error;
  EXPECT_EQ(st.entities, 21u);
  EXPECT_GT(vfs.failed_writes(), 0u);
  // Writes go on while the disk is full, and are readable.
  ASSERT_TRUE(s.patch("n1", {{"text", "while full"}}).ok());
  EXPECT_EQ(nlohmann::json::parse(s.get("n1")->data).at("text"), "while full");
  EXPECT_FALSE(c->status().local_error.empty()); // still failing
  vfs.set_quota(SIZE_MAX);
  ASSERT_TRUE(c->flushed(5s));
  EXPECT_EQ(c->status().local_error, "");
  c.reset();
  // Everything is in the database, the write made while full too.
  auto again = client::open(path);
  EXPECT_EQ(again->store().size(), 21u);
  auto n1 = again->store().get("n1");
  ASSERT_TRUE(n1);
  EXPECT_EQ(nlohmann::json::parse(n1->data).at("text"), "while full");
  EXPECT_EQ(again->status().local_error, "");
}

TEST_F(client_api_test, the_repl_status_names_the_local_error_until_a_flush_succeeds) {
  fault_vfs vfs;
  auto cfg = make_client_config(load_config(
    client_schema(), write_config("sync-timeout = 300ms\n[flush]\ndebounce = 0ns\n"
                                  "retry-min = 5ms\nretry-max = 20ms\n")));
  caf::actor_system_config sys_cfg;
  register_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  client_node node{sys, cfg};
  ASSERT_TRUE(node.app().put("n0", "note", {{"text", "before"}}).ok());
  ASSERT_TRUE(node.flush_now(5s));
  fill_disk(vfs, dir.file("app.db"));
  write_notes(node.app());
  ASSERT_TRUE(eventually([&] { return !node.local_error(5s).empty(); }));
  {
    std::istringstream in{"status\n"};
    std::ostringstream out;
    // End of input flushes, which cannot succeed yet: the user is told.
    EXPECT_EQ(run_client_cli(node, cfg, in, out, false), 1);
    std::istringstream lines{out.str()};
    std::string status, last;
    std::getline(lines, status);
    std::getline(lines, last);
    auto j = nlohmann::json::parse(status, nullptr, false);
    ASSERT_TRUE(j.is_object()) << status;
    EXPECT_NE(j.value("local_error", "").find("full"), std::string::npos) << status;
    EXPECT_EQ(j.value("entities", 0), 21);
    EXPECT_EQ(last, "error: timeout: some changes were not flushed before exit");
  }
  vfs.set_quota(SIZE_MAX);
  std::istringstream in{"sync\nstatus\n"};
  std::ostringstream out;
  EXPECT_EQ(run_client_cli(node, cfg, in, out, false), 0);
  std::istringstream lines{out.str()};
  std::string sync, status;
  std::getline(lines, sync);
  std::getline(lines, status);
  EXPECT_EQ(sync, "ok");
  auto j = nlohmann::json::parse(status, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status;
  EXPECT_FALSE(j.contains("local_error")) << status;
  node.shutdown(5s);
}

TEST_F(client_api_test, with_a_server_a_full_disk_holds_changes_back_and_then_syncs_all) {
  cluster cl;
  cl.start_server();
  fault_vfs vfs; // after the server's start: only this process's files
  auto db = dir.file("alice.db");
  auto c = client::open(
    MEMSYNC_SOURCE_DIR "/config/client-alice.ini",
    {"--client.db-path=" + db, "--server.port=" + std::to_string(cl.port()),
     "--flush.debounce=0ns", "--flush.retry-min=5ms", "--flush.retry-max=20ms",
     "--sync.retry-min=20ms", "--sync.retry-max=300ms", "--sync.request-timeout=2s",
     "--middleman.heartbeat-interval=200ms", "--middleman.connection-timeout=2s"});
  auto& s = c->store();
  ASSERT_TRUE(s.put("n0", "note", {{"text", "before"}}).ok());
  ASSERT_TRUE(c->sync(10s));
  fill_disk(vfs, db);
  write_notes(s);
  ASSERT_TRUE(s.patch("n1", {{"text", "while full"}}).ok());
  ASSERT_TRUE(eventually([&] { return !c->status().local_error.empty(); }));
  auto st = c->status();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.pending, 21u); // every write since n0, which the server has
  EXPECT_EQ(st.last_mutation_id, 1u);
  EXPECT_EQ(st.last_error, ""); // the network is fine
  vfs.set_quota(SIZE_MAX);
  ASSERT_TRUE(c->sync(10s));
  st = c->status();
  EXPECT_EQ(st.local_error, "");
  EXPECT_EQ(st.pending, 0u);
  // 21 or 22 mutations: the patch may or may not have folded into n1's put.
  EXPECT_GE(st.last_mutation_id, 21u);
  auto id = c->client_id();
  c.reset();
  cl.stop_server();
  auto state = memsync::testing::server_state(cl.server_db());
  ASSERT_EQ(state.size(), 21u);
  EXPECT_EQ(nlohmann::json::parse(state[1].data).at("text"), "while full"); // n1
  // Each change on the server exactly once.
  auto log = memsync::testing::server_log(cl.server_db(), id);
  EXPECT_EQ(log.rows, static_cast<int64_t>(st.last_mutation_id));
  EXPECT_EQ(log.distinct_mutations, log.rows);
  EXPECT_EQ(log.max_mutation, log.rows);
}

// -- scopes ----------------------------------------------------------------------

TEST_F(client_api_test, the_repl_subscribes_unsubscribes_and_prints_the_scopes) {
  cluster cl;
  cl.start_server();
  auto alice = cl.start_client("alice", {"--client.scopes=team-a"});
  ASSERT_EQ(alice->sync(), "ok");
  auto out = alice->batch({"scopes", "subscribe team-b", "subscribe team-b", "scopes",
                           "sync", "unsubscribe team-b", "unsubscribe team-c",
                           "unsubscribe team-a", "subscribe bad*scope", "subscribe",
                           "scopes", "status"});
  ASSERT_EQ(out.size(), 12u);
  EXPECT_EQ(out[0], R"(["team-a"])");
  EXPECT_EQ(out[1], "ok");
  EXPECT_EQ(out[2], "ok"); // already held: nothing changes
  EXPECT_EQ(out[3], R"(["team-a","team-b"])");
  EXPECT_EQ(out[4], "ok");
  EXPECT_EQ(out[5], "ok");
  EXPECT_EQ(out[6].rfind("error: not_found: ", 0), 0u) << out[6];
  EXPECT_NE(out[6].find(R"(["team-a"])"), std::string::npos) << out[6];
  EXPECT_EQ(out[7].rfind("error: invalid_request: ", 0), 0u) << out[7];
  EXPECT_EQ(out[8].rfind("error: invalid_request: ", 0), 0u) << out[8];
  EXPECT_EQ(out[9], "error: usage: subscribe SCOPE");
  EXPECT_EQ(out[10], R"(["team-a"])");
  auto j = nlohmann::json::parse(out[11], nullptr, false);
  ASSERT_TRUE(j.is_object()) << out[11];
  EXPECT_EQ(j["scopes"], nlohmann::json::array({"team-a"})) << out[11];
  EXPECT_EQ(alice->quit(), 0);
  // The subscription survives a restart with the same client.scopes.
  alice = cl.start_client("alice", {"--client.scopes=team-a"});
  EXPECT_EQ(alice->cmd("subscribe team-b"), "ok");
  EXPECT_EQ(alice->sync(), "ok");
  EXPECT_EQ(alice->quit(), 0);
  alice = cl.start_client("alice", {"--client.scopes=team-a"});
  EXPECT_EQ(alice->cmd("scopes"), R"(["team-a","team-b"])");
  EXPECT_EQ(alice->sync(), "ok");
  EXPECT_EQ(alice->quit(), 0);
}

TEST_F(client_api_test, the_handle_reports_its_scopes_and_needs_a_server_to_change_them) {
  auto c = client::open(write_config("scopes = [\"team-a\", \"team-b\"]\n"));
  EXPECT_EQ(c->scopes(), (std::vector<std::string>{"team-a", "team-b"}));
  EXPECT_EQ(c->status().scopes, (std::vector<std::string>{"team-a", "team-b"}));
  EXPECT_EQ(c->subscribe("team-c").code, sync_errc::unavailable);
  EXPECT_EQ(c->unsubscribe("team-a").code, sync_errc::unavailable);
}

} // namespace
