// The client's database under power loss, I/O errors and a full disk, with
// real SQLite on a fault-injecting VFS (tests/support/fault_vfs.hpp).
// Power loss keeps only what was synced: with synchronous=full every batch
// the database reported durable survives; with normal the file opens
// consistent with a prefix of them. In every case integrity_check passes,
// mutation ids stay gapless, and the outbox, the base and the cookie come
// from the same transactions. A failed write changes nothing, and once the
// disk has room again the same batch goes in.
#include "actors/client/local_database.hpp"

#include <random>

#include <gtest/gtest.h>

#include "tests/support/fault_vfs.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using memsync::testing::fault_vfs;
using memsync::testing::temp_dir;

namespace {

change make_change(uint64_t seq, std::size_t payload) {
  change c;
  c.seq = seq;
  c.kind = change_kind::put;
  c.id = "e" + std::to_string(seq % 97);
  c.type = "note";
  c.data = R"({"n":)" + std::to_string(seq) + R"(,"pad":")" + std::string(payload, 'p')
           + R"("})";
  return c;
}

/// A pull that confirms nothing but moves the cookie to `version` and sets
/// entity "base-<version>": the base and the cookie must move together.
pull_reply make_pull(uint64_t version) {
  pull_reply r;
  r.next = cookie{"epoch-1", version, version};
  r.entities.push_back(entity{"base-" + std::to_string(version), "note",
                              R"({"v":)" + std::to_string(version) + "}", version});
  return r;
}

struct history {
  std::vector<change> appended; // in mutation-id order, as reported durable
  uint64_t pulled = 0;          // the last pull's version, as reported stored
};

/// Writes up to `batches` batches of 20 changes (and a pull after every 7th)
/// and records what the database reported durable before the power went
/// off: what it reports afterwards, the dead process never saw.
history write_until_power_loss(local_database& db, const fault_vfs& vfs, int batches,
                               std::size_t payload) {
  history h;
  uint64_t seq = 0;
  for (int b = 0; b < batches && !vfs.off(); ++b) {
    std::vector<change> batch;
    for (int i = 0; i < 20; ++i)
      batch.push_back(make_change(++seq, payload));
    auto ids = db.append(batch);
    if (vfs.off())
      break;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].mutation_id = ids[i];
      h.appended.push_back(batch[i]);
    }
    if (b % 7 == 6) {
      db.apply_pull(make_pull(static_cast<uint64_t>(b)));
      if (!vfs.off())
        h.pulled = static_cast<uint64_t>(b);
    }
  }
  return h;
}

/// The checks every reopened file must pass; returns how many of the
/// reported-durable changes survived.
std::size_t check_consistent(const std::string& path, const history& h) {
  local_database db{local_db_settings{path, "alice"}};
  EXPECT_EQ(db.integrity_check(), "ok");
  auto snap = db.load();
  // The outbox is a prefix of what was reported durable, unchanged.
  EXPECT_LE(snap.outbox.size(), h.appended.size());
  for (std::size_t i = 0; i < snap.outbox.size() && i < h.appended.size(); ++i) {
    EXPECT_EQ(snap.outbox[i].mutation_id, i + 1);
    EXPECT_EQ(snap.outbox[i].data, h.appended[i].data);
    EXPECT_EQ(snap.outbox[i].id, h.appended[i].id);
  }
  // Ids continue right after the surviving outbox: never reused, no gap.
  EXPECT_EQ(snap.next_mutation_id, snap.outbox.size() + 1);
  // The base holds exactly the pulls up to the stored cookie.
  auto v = snap.cursor.version;
  EXPECT_LE(v, h.pulled);
  std::size_t expected_base = 0;
  for (uint64_t p = 6; p <= v && v > 0; p += 7)
    ++expected_base;
  EXPECT_EQ(snap.base.size(), expected_base) << "cookie " << v;
  for (auto& e : snap.base)
    EXPECT_EQ(e.data, R"({"v":)" + std::to_string(e.version) + "}");
  return snap.outbox.size();
}

/// One run per seed: the power fails at a write chosen by the seed, in the
/// middle of a transaction or of an automatic checkpoint (about 5 MB are
/// written, past SQLite's checkpoint threshold).
struct power_loss : ::testing::TestWithParam<std::tuple<std::string, int>> {
  std::size_t run(history& h) {
    auto [sync, seed] = GetParam();
    std::mt19937 rng{static_cast<unsigned>(seed)};
    vfs.power_loss_after(std::uniform_int_distribution<std::size_t>{1, 1500}(rng));
    {
      local_database db{local_db_settings{path, "alice", sync}};
      h = write_until_power_loss(db, vfs, 60, 4000);
      EXPECT_TRUE(vfs.off()) << "the power never failed: the test tests nothing";
    } // closing with the power off writes nothing
    vfs.revive();
    return check_consistent(path, h);
  }
  temp_dir dir;
  fault_vfs vfs;
  std::string path = dir.file("client.db");
};

} // namespace

TEST_P(power_loss, the_file_opens_consistent_and_goes_on) {
  history h;
  auto kept = run(h);
  if (std::get<0>(GetParam()) == "full")
    EXPECT_EQ(kept, h.appended.size()) << "a batch reported durable was lost";
  // The reopened file goes on: the next batch gets the next id and
  // survives a clean restart.
  {
    local_database db{local_db_settings{path, "alice"}};
    EXPECT_EQ(db.append({make_change(100000, 10)}), (std::vector<uint64_t>{kept + 1}));
  }
  local_database db{local_db_settings{path, "alice"}};
  EXPECT_EQ(db.load().outbox.size(), kept + 1);
}

INSTANTIATE_TEST_SUITE_P(cut_points, power_loss,
                         ::testing::Combine(::testing::Values("full", "normal"),
                                            ::testing::Range(1, 7)));

TEST(disk_faults, a_failed_write_changes_nothing_and_the_same_batch_goes_in_later) {
  temp_dir dir;
  fault_vfs vfs;
  auto path = dir.file("client.db");
  local_database db{local_db_settings{path, "alice", "full"}};
  uint64_t seq = 0;
  ASSERT_EQ(db.append({make_change(++seq, 10)}), (std::vector<uint64_t>{1}));
  std::vector<change> batch{make_change(++seq, 10), make_change(++seq, 10)};
  vfs.fail_writes(true);
  EXPECT_THROW(db.append(batch), local_db_error);
  EXPECT_THROW(db.apply_pull(make_pull(6)), local_db_error);
  EXPECT_GT(vfs.failed_writes(), 0u);
  vfs.fail_writes(false);
  // The same batch again: the ids the failed attempt would have used.
  EXPECT_EQ(db.append(batch), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(db.integrity_check(), "ok");
  EXPECT_EQ(db.load().outbox.size(), 3u);
}

TEST(disk_faults, a_full_disk_refuses_the_batch_whole_until_there_is_room) {
  temp_dir dir;
  fault_vfs vfs;
  auto path = dir.file("client.db");
  local_database db{local_db_settings{path, "alice", "full"}};
  uint64_t seq = 0;
  db.append({make_change(++seq, 10)});
  // Room for small batches, not for a large one.
  vfs.set_quota(std::filesystem::file_size(path)
                + std::filesystem::file_size(path + "-wal") + 64 * 1024);
  std::vector<change> large;
  for (int i = 0; i < 50; ++i)
    large.push_back(make_change(++seq, 8000));
  try {
    db.append(large);
    FAIL() << "a 400 KB batch fit into 64 KB";
  } catch (const local_db_error& e) {
    EXPECT_NE(std::string{e.what()}.find("full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db.append({make_change(++seq, 10)}), (std::vector<uint64_t>{2}));
  vfs.set_quota(SIZE_MAX);
  auto ids = db.append(large);
  ASSERT_EQ(ids.size(), large.size());
  EXPECT_EQ(ids.front(), 3u);
  EXPECT_EQ(db.integrity_check(), "ok");
  auto snap = db.load();
  ASSERT_EQ(snap.outbox.size(), 52u);
  EXPECT_EQ(snap.outbox.back().data, large.back().data);
}
