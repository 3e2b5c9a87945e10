// The replication log in a PostgreSQL database, for servers that share one
// database. The tables live in one schema (default "memsync") and mirror the
// SQLite backend:
//   meta(key, value)       epoch, head_version, head_commit, schema_version
//   entities(id, type, data, version, deleted, scope)
//                          current state; tombstones kept (in their scope)
//   moves(scope, id, version)
//                          per scope and entity, the latest move out of it
//   clients(client_id, last_mutation_id)
//   refusals(client_id, mutation_id, code, message)
//                          kept until the client pushes above them
//   log(version, commit_id, client_id, mutation_id, entity_id, deleted)
//                          the history; commit_id is random per transaction
// Several server processes may write to one database: every write
// transaction first locks the meta row head_version (SELECT ... FOR UPDATE)
// and only then reads the head, so writers are serialised and versions are
// handed out in commit order: a reader never sees version n+1 committed
// before version n. Pulls read one REPEATABLE READ snapshot. A cookie of the
// current epoch that this history never issued renews the epoch (the
// database was replaced by an older copy), as with SQLite.
// Every commit that wrote something sends NOTIFY on a channel named like the
// schema, with the new head version and the scopes the commit touched as
// payload, so the other server nodes can poke the clients of those scopes
// (see postgres_listener).
// synchronous_commit stays on: a push is acknowledged only once its commit
// is durable. A lost connection or a serialization failure throws a
// retryable storage_error; the next call reconnects. (A connection lost
// during COMMIT may hide a commit that happened: pushing again is safe, the
// duplicates are skipped.)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/storage/storage_backend.hpp"

struct pg_conn;
struct pg_result;

namespace memsync {

/// `name` as a quoted SQL identifier (a schema, a LISTEN channel).
std::string quote_identifier(const std::string& name);

class postgres_backend : public storage_backend {
public:
  /// Connects with the libpq connection string `conninfo` and creates the
  /// schema (with a new epoch) if it is missing. Throws storage_error.
  explicit postgres_backend(std::string conninfo, std::string schema = "memsync");
  ~postgres_backend() override;

  postgres_backend(const postgres_backend&) = delete;
  postgres_backend& operator=(const postgres_backend&) = delete;

  /// As last seen by this process; a write transaction that finds the epoch
  /// renewed by another process fails (retryable) and updates it.
  std::string epoch() override { return epoch_; }
  std::string cookie_secret() override { return cookie_secret_; }
  /// The highest version this process has seen committed.
  uint64_t head_version() override { return head_; }
  std::unique_ptr<storage_tx> begin() override;
  pull_reply pull_page(const std::string& client_id, const cookie& since,
                       const page_request& page) override;
  std::vector<log_entry> read_log(uint64_t after, std::size_t max) override;

private:
  class tx;
  using result = std::unique_ptr<pg_result, void (*)(pg_result*)>;
  struct meta_row {
    std::string epoch;
    uint64_t head = 0;
    uint64_t head_commit = 0;
    uint64_t schema = 0; ///< schema_version
  };

  void connect();     // (re)connects, creates the schema, prepares statements
  void ensure_open(); // reconnects after a lost connection
  void create_schema();
  void prepare(const char* name, const std::string& sql);
  /// Runs a prepared statement with text parameters; throws on failure.
  result run(const char* name, const std::vector<std::string>& params,
             const std::string& what);
  /// Runs SQL text with text parameters, prepared on first use (the SQL of
  /// a scoped pull depends on the kinds of its parts: a few shapes).
  result run_text(const std::string& sql, const std::vector<std::string>& params,
                  const std::string& what);
  /// A page of a pull with parts other than "*" alone, in the open snapshot.
  void pull_parts(const std::vector<page_rows>& ranges, bool first_page,
                  page_filler& fill, pull_reply& out);
  /// Runs SQL text without parameters (may hold several statements).
  result run_sql(const std::string& sql, const std::string& what);
  [[noreturn]] void fail(const pg_result* res, const std::string& what);
  void commit_tx(const std::string& what); // throws if it did not commit
  void rollback_quietly();
  meta_row read_meta(const pg_result* rows);   // also updates head_
  bool issued(const cookie& c, uint64_t head); // did this history hand out `c`?
  void renew_epoch(const cookie& since);
  /// The kept refusals of these clients, each in mutation-id order.
  std::map<std::string, std::vector<refusal>>
  refusals_of(const std::vector<std::string>& clients);
  /// BEGIN, lock the head row, then read meta; the caller owns the tx.
  meta_row begin_write();

  std::string conninfo_;
  std::string schema_;                          // quoted identifier
  std::string channel_;                         // of NOTIFY: the schema's name
  std::map<std::string, std::string> per_call_; // name -> SQL, not prepared
  std::map<std::string, std::string> shapes_;   // SQL -> name, prepared
  pg_conn* conn_ = nullptr;
  bool in_tx_ = false;
  std::string epoch_;
  std::string cookie_secret_;
  uint64_t head_ = 0;
  uint64_t head_commit_ = 0;
};

} // namespace memsync
