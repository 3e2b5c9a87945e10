// The replication log on one SQLite file (the embedded default). Layout:
//   meta(key, value)       epoch, head_version, head_commit
//   entities(id, type, data, version, deleted, scope)
//                          current state; tombstones kept (in their scope)
//   moves(scope, id, version)
//                          per scope and entity, the latest move out of it
//   clients(client_id, last_mutation_id)
//   refusals(client_id, mutation_id, code, message)
//                          kept until the client pushes above them
//   log(version, commit_id, client_id, mutation_id, entity_id, deleted)
//                          the history; commit_id is random per transaction
// A pull whose cookie names a version this history does not have (above the
// head, or written by another commit) proves the file was replaced by an
// older copy: the epoch is renewed and every client resets.
// WAL with synchronous=FULL: a commit is on disk (one fsync for a whole group
// of pushes) before any push in it is acknowledged.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/common/sqlite.hpp"
#include "actors/storage/storage_backend.hpp"

namespace memsync {

/// The statement that reads the rows of one part of a pull whose scopes
/// `pattern` names, in version order (?1: above this version, ?2: tombstones
/// too, ?3 and ?4: the scope_range). Public so that a test can check its
/// query plan uses the (scope, version) index.
std::string sqlite_part_rows_sql(const std::string& pattern);

class sqlite_backend : public storage_backend {
public:
  /// Opens or creates the database at `path`. Throws storage_error.
  explicit sqlite_backend(const std::string& path);

  std::string epoch() override { return epoch_; }
  std::string cookie_secret() override { return cookie_secret_; }
  uint64_t head_version() override { return head_; }
  std::unique_ptr<storage_tx> begin() override;
  pull_reply pull_page(const std::string& client_id, const cookie& since,
                       const page_request& page) override;
  std::vector<log_entry> read_log(uint64_t after, std::size_t max) override;

private:
  class tx;
  // Statements of scoped pulls, by their SQL (it depends on the parts'
  // kinds): prepared once, reused; a pull may use one SQL several times.
  using stmt_pool = std::unordered_map<std::string, std::vector<sqlite_stmt>>;
  class leased_stmt { // back in the pool, reset, when done
  public:
    leased_stmt(stmt_pool& pool, std::string sql, sqlite_stmt s)
        : stmt(std::move(s)), pool_(pool), sql_(std::move(sql)) {}
    leased_stmt(leased_stmt&& other) noexcept
        : stmt(std::move(other.stmt)), pool_(other.pool_), sql_(std::move(other.sql_)) {
      other.live_ = false;
    }
    leased_stmt& operator=(leased_stmt&&) = delete;
    ~leased_stmt();
    sqlite_stmt stmt;

  private:
    stmt_pool& pool_;
    std::string sql_;
    bool live_ = true;
  };
  leased_stmt lease(std::string sql);
  /// A page of a pull with parts other than "*" alone; throws sqlite_error.
  void pull_parts(const std::vector<page_rows>& ranges, bool first_page,
                  page_filler& fill, pull_reply& out);

  bool issued(const cookie& c); // did this history hand out `c`?
  void renew_epoch();
  std::vector<refusal> refusals_of(const std::string& client_id); // throws sqlite_error

  std::unique_ptr<sqlite_db> db_;
  std::string epoch_;
  std::string cookie_secret_;
  uint64_t head_ = 0;
  uint64_t head_commit_ = 0;
  sqlite_stmt get_client_;
  sqlite_stmt set_client_;
  sqlite_stmt get_entity_;
  sqlite_stmt put_entity_;
  sqlite_stmt put_move_;
  sqlite_stmt append_log_;
  sqlite_stmt set_meta_;
  sqlite_stmt page_rows_;
  sqlite_stmt count_rows_;
  sqlite_stmt commit_of_;
  sqlite_stmt log_after_;
  sqlite_stmt get_refusals_;
  sqlite_stmt add_refusal_;
  sqlite_stmt drop_refusals_;
  stmt_pool pool_;
};

} // namespace memsync
