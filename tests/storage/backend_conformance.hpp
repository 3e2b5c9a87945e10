// The fixture of the storage_backend conformance suite: a backend factory,
// helpers that build changes and pushes, and checks every pull must pass.
// The tests are in backend_conformance_test.cpp; a backend joins the suite
// with one INSTANTIATE_TEST_SUITE_P(..., backend_conformance, ...) entry.
#pragma once

#include "actors/storage/storage_backend.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace memsync::conformance {

namespace fs = std::filesystem;

struct backend_factory {
  std::string name;
  /// Opens (creating if needed) the database kept under `dir`; called again
  /// on the same dir it must reopen the same data.
  std::function<std::unique_ptr<storage_backend>(const std::string& dir)> open;
  /// With no backend open: replaces the database under `to` by a copy of the
  /// one under `from` (used as backup and as restore).
  std::function<void(const std::string& from, const std::string& to)> copy;
};

inline void PrintTo(const backend_factory& f, std::ostream* os) {
  *os << f.name;
}

inline std::string make_temp_dir() {
  return memsync::testing::make_temp_directory("memsync-conformance");
}

inline change put(uint64_t mid, std::string id, std::string data,
                  std::string type = "note") {
  return {0, mid, change_kind::put, std::move(id), std::move(type), std::move(data), {}};
}
inline change patch(uint64_t mid, std::string id, std::string data) {
  return {0, mid, change_kind::patch, std::move(id), "note", std::move(data), {}};
}
inline change del(uint64_t mid, std::string id) {
  return {0, mid, change_kind::del, std::move(id), "note", "", {}};
}

inline log_push push(std::string client, std::string epoch, std::vector<change> changes,
                     std::vector<sync_error> verdicts = {}) {
  return {push_request{std::move(client), std::move(epoch), std::move(changes)},
          std::move(verdicts)};
}

// id -> (type, data, deleted): what a client ends up holding.
using state = std::map<std::string, std::tuple<std::string, std::string, bool>>;

inline state to_state(const std::map<std::string, entity>& xs) {
  state out;
  for (auto& [id, e] : xs)
    out[id] = {e.type, e.data, e.deleted};
  return out;
}

class backend_conformance : public ::testing::TestWithParam<backend_factory> {
protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    db = GetParam().open(dir_);
  }
  void TearDown() override {
    db.reset();
    for (auto& d : extra_dirs_)
      fs::remove_all(d);
    fs::remove_all(dir_);
  }

  void close() { db.reset(); }
  void reopen() {
    db.reset();
    db = GetParam().open(dir_);
  }
  std::string new_dir() { return extra_dirs_.emplace_back(make_temp_dir()); }

  commit_result apply(const std::vector<log_push>& pushes,
                      const data_limits& limits = {}) {
    auto r = apply_pushes(*db, pushes, limits);
    EXPECT_EQ(r.outcomes.size(), pushes.size());
    EXPECT_EQ(r.version, db->head_version());
    return r;
  }
  // One push in the current epoch, alone in its group.
  push_outcome push1(const std::string& client, std::vector<change> changes,
                     std::vector<sync_error> verdicts = {},
                     const data_limits& limits = {}) {
    auto r = apply({push(client, db->epoch(), std::move(changes), std::move(verdicts))},
                   limits);
    return r.outcomes.at(0);
  }

  // Pulls and checks what holds for every pull.
  pull_reply pull(const std::string& client, const cookie& since) {
    auto p = db->pull(client, since);
    EXPECT_EQ(p.next.epoch, db->epoch());
    EXPECT_EQ(p.next.version, db->head_version());
    std::set<std::string> seen;
    for (auto& e : p.entities) {
      EXPECT_TRUE(seen.insert(e.id).second) << e.id << " appears twice";
      EXPECT_LE(e.version, p.next.version) << e.id;
      if (p.reset)
        EXPECT_FALSE(e.deleted) << "a reset carries no tombstones: " << e.id;
      else
        EXPECT_GT(e.version, since.version) << e.id << " is not newer than the cookie";
    }
    return p;
  }
  pull_reply pull_all(const std::string& client = "reader") {
    return pull(client, {db->epoch(), 0, 0});
  }
  static std::map<std::string, entity> by_id(const pull_reply& p) {
    std::map<std::string, entity> out;
    for (auto& e : p.entities)
      out[e.id] = e;
    return out;
  }
  std::optional<entity> find(const std::string& id) {
    auto all = by_id(pull_all());
    if (auto i = all.find(id); i != all.end())
      return i->second;
    return std::nullopt;
  }
  std::string data_of(const std::string& id) {
    auto e = find(id);
    return e ? e->data : "<missing>";
  }
  uint64_t version_of(const std::string& id) {
    auto e = find(id);
    return e ? e->version : 0;
  }

  struct rollback {
    std::string old_epoch;
    cookie before_backup; // issued by the restored history too
    cookie lost;          // issued only by the history the restore threw away
  };
  // a: 1..2, b: 1; backup; a: 3..4 and a cookie; restore the backup.
  rollback restore_older_copy() {
    rollback out;
    push1("a", {put(1, "a1", "{}"), put(2, "a2", "{}")});
    push1("b", {put(1, "b1", "{}")});
    out.old_epoch = db->epoch();
    out.before_backup = pull_all().next;
    auto backup = new_dir();
    close();
    GetParam().copy(dir_, backup);
    reopen();
    push1("a", {put(3, "a3", "{}"), put(4, "a4", "{}")});
    out.lost = pull_all("a").next;
    close();
    GetParam().copy(backup, dir_);
    reopen();
    return out;
  }

  std::unique_ptr<storage_backend> db;
  std::string dir_;
  std::vector<std::string> extra_dirs_;
};

} // namespace memsync::conformance
