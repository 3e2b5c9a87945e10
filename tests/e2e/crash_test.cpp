// Crash safety with real processes: `syncnode client` children are killed
// with SIGKILL after a flush and in the middle of a stream of flushes; the
// database must hold every flushed change, whole batches only, and pass
// SQLite's integrity check.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "actors/client/local_database.hpp"
#include "tests/support/process.hpp"

using namespace memsync;
using memsync::testing::child_process;
using memsync::testing::temp_dir;

namespace {

std::vector<std::string> client_args(const std::string& db_path,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> args{SYNCNODE_PATH, "client", "--config",
                                MEMSYNC_SOURCE_DIR "/config/client.ini",
                                "--client.db-path=" + db_path};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string entity_id(size_t i) {
  std::string id = "e"; // not "e" + ...: g++ 12 warns falsely (-Wrestrict)
  id += std::to_string(i);
  return id;
}

std::string put_command(int i) {
  return "put " + entity_id(i) + " note {\"i\":" + std::to_string(i) + "}";
}

local_snapshot open_and_check(const std::string& path) {
  local_database db{{path, "alice", "normal", std::chrono::milliseconds(1000)}};
  EXPECT_EQ(db.integrity_check(), "ok");
  return db.load();
}

} // namespace

TEST(crash, flushed_changes_survive_kill_9_and_mutation_ids_continue) {
  temp_dir dir;
  auto args = client_args(dir.file("alice.db"));
  constexpr int n = 300;
  {
    child_process client{args};
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(client.ask(put_command(i)), "ok");
    ASSERT_EQ(client.ask("sync"), "ok");
    client.kill_hard();
  }
  {
    child_process client{args};
    auto status = nlohmann::json::parse(client.ask("status"));
    EXPECT_EQ(status["entities"], n);
    EXPECT_EQ(status["pending"], n);
    auto e = nlohmann::json::parse(client.ask("get e42"));
    EXPECT_EQ(e["data"]["i"], 42);
    ASSERT_EQ(client.ask("put after-restart note {}"), "ok");
    ASSERT_EQ(client.ask("sync"), "ok");
    client.send("quit");
    EXPECT_EQ(client.wait(), 0);
  }
  auto snapshot = open_and_check(dir.file("alice.db"));
  ASSERT_EQ(snapshot.outbox.size(), static_cast<size_t>(n + 1));
  for (size_t i = 0; i < snapshot.outbox.size(); ++i)
    EXPECT_EQ(snapshot.outbox[i].mutation_id, i + 1);
  EXPECT_EQ(snapshot.outbox.back().id, "after-restart");
  EXPECT_EQ(snapshot.next_mutation_id, static_cast<uint64_t>(n + 2));
}

TEST(crash, a_kill_during_a_stream_of_flushes_leaves_whole_batches_only) {
  constexpr int total = 6000;
  size_t survived_somewhere = 0;
  for (int kill_after : {500, 1500, 3000, 4500}) {
    SCOPED_TRACE("killed after " + std::to_string(kill_after) + " writes");
    temp_dir dir;
    {
      // No debounce and small batches: the database is almost always in the
      // middle of a transaction when the kill lands.
      child_process client{client_args(dir.file("alice.db"),
                                       {"--flush.debounce=0ns", "--flush.max-batch=25"})};
      std::string line;
      for (int i = 0; i < total; i += 100) {
        for (int j = i; j < i + 100; ++j)
          client.send(put_command(j));
        for (int j = i; j < i + 100; ++j)
          ASSERT_TRUE(client.read_line(line));
        if (i + 100 >= kill_after)
          break;
      }
      client.kill_hard();
    }
    auto snapshot = open_and_check(dir.file("alice.db"));
    // Writes are flushed in order, one batch at a time: what survived is a
    // prefix of what was written, numbered without gaps, and the counter
    // moved in the same transactions as the rows it numbers.
    auto& outbox = snapshot.outbox;
    for (size_t i = 0; i < outbox.size(); ++i) {
      ASSERT_EQ(outbox[i].mutation_id, i + 1);
      ASSERT_EQ(outbox[i].id, entity_id(i));
    }
    EXPECT_EQ(snapshot.next_mutation_id, outbox.size() + 1);
    EXPECT_LT(outbox.size(), static_cast<size_t>(total));
    survived_somewhere += outbox.size();
  }
  EXPECT_GT(survived_somewhere, 0u); // the kills did land between flushes
}

TEST(crash, a_second_process_on_the_same_database_is_refused) {
  temp_dir dir;
  child_process first{client_args(dir.file("alice.db"))};
  ASSERT_EQ(first.ask("put a note {}"), "ok");
  child_process second{
    client_args(dir.file("alice.db"), {"--local-db.busy-timeout=10ms"})};
  std::string line;
  ASSERT_TRUE(second.read_line(line));
  EXPECT_NE(line.find("db_locked"), std::string::npos) << line;
  EXPECT_EQ(second.wait(), 1);
  EXPECT_EQ(first.ask("get a").substr(0, 1), "{"); // the first is unharmed
}
