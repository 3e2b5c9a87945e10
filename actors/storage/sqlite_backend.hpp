// The replication log on one SQLite file (the embedded default). Layout:
//   meta(key, value)       epoch, head_version, head_commit
//   entities(id, type, data, version, deleted)   current state; tombstones kept
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

#include "actors/common/sqlite.hpp"
#include "actors/storage/storage_backend.hpp"

namespace memsync {

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
  sqlite_stmt append_log_;
  sqlite_stmt set_meta_;
  sqlite_stmt page_rows_;
  sqlite_stmt count_rows_;
  sqlite_stmt commit_of_;
  sqlite_stmt log_after_;
  sqlite_stmt get_refusals_;
  sqlite_stmt add_refusal_;
  sqlite_stmt drop_refusals_;
};

} // namespace memsync
