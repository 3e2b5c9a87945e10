#include "tests/storage/pg_backend_factory.hpp"

#include "actors/storage/postgres_backend.hpp"
#include "tests/support/pg_cluster.hpp"

#include <map>
#include <mutex>

namespace memsync::conformance {

namespace {

using memsync::testing::pg_cluster;

struct database {
  std::string name;
  bool created = false;
};

std::mutex mutex;
std::map<std::string, database> by_dir; // of the running test

// Created on first open; a copy's target need not exist (the copy creates it).
database& database_for(const std::string& dir, bool create) {
  auto& db = by_dir[dir];
  if (db.name.empty())
    db.name = pg_cluster::shared().new_database_name();
  if (create && !db.created) {
    pg_cluster::shared().create_database(db.name);
    db.created = true;
  }
  return db;
}

// Drops the databases of a test once it is over (its backends are gone).
class drop_databases : public ::testing::EmptyTestEventListener {
public:
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard<std::mutex> guard{mutex};
    try {
      for (auto& [dir, db] : by_dir)
        pg_cluster::shared().drop_database(db.name);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot drop the test's databases: " << e.what();
    }
    by_dir.clear();
  }
};

[[maybe_unused]] const bool registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new drop_databases);
  return true;
}();

} // namespace

backend_factory postgres_factory() {
  return {"postgres",
          [](const std::string& dir) -> std::unique_ptr<storage_backend> {
            std::lock_guard<std::mutex> guard{mutex};
            auto conninfo = pg_cluster::shared().conninfo(database_for(dir, true).name);
            return std::make_unique<postgres_backend>(conninfo);
          },
          [](const std::string& from, const std::string& to) {
            std::lock_guard<std::mutex> guard{mutex};
            auto& source = database_for(from, true);
            auto& target = database_for(to, false);
            pg_cluster::shared().copy_database(source.name, target.name);
            target.created = true;
          }};
}

} // namespace memsync::conformance
