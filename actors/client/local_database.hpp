// The client's SQLite file, owned by the local_db actor. Layout (schema
// version 2, application_id 'MSYN'):
//   meta(key, value)      client_id, next_mutation_id, last_mutation_id,
//                         cookie_epoch, cookie_version, cookie_commit,
//                         cookie_mac (the server's signature of the cookie),
//                         push_epoch (epoch of the last acknowledged push),
//                         pushed_mutation_id (the highest mutation id ever
//                         handed out for a push: the server cannot have seen
//                         a higher one of this client id, unless this file
//                         is an older copy of itself)
//   entities(id, type, data, version)   the base: last state pulled from the
//                                       server (deleted entities have no row)
//   outbox(mutation_id, kind, id, type, data, trace_id)
//                         local changes not yet confirmed by the server
//   scopes(pattern, since)  the subscription, each entry with the server
//                         version up to which the client holds its scopes;
//                         with meta rows scope_known_reads, scope_held,
//                         scope_rules, scope_configured (JSON arrays) and
//                         scope_stored (see scope_subscription)
// Version 1 (before scopes) is migrated in place: it gains the scopes table
// and the meta rows of "no subscription stored yet" (its data was pulled
// under every scope).
// Every write is one transaction: a batch is in the file whole or not at all,
// and next_mutation_id moves in the same transaction as the outbox rows it
// numbers, so ids are never reused. A file that is not ours, is corrupt, is
// locked by another process or comes from a newer schema is refused and never
// written to.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/client/tuning.hpp"
#include "actors/common/sqlite.hpp"
#include "messages/client_local.hpp"
#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/protocol.hpp"

namespace memsync {

constexpr int64_t local_schema_version = 2;

/// Everything the client needs to become interactive.
struct local_snapshot {
  std::string client_id;
  cookie cursor;
  uint64_t last_mutation_id = 0; ///< confirmed by the server
  uint64_t next_mutation_id = 1;
  uint64_t pushed_mutation_id = 0; ///< highest id ever handed out for a push
  std::string push_epoch;
  std::vector<entity> base;
  std::vector<change> outbox; ///< in mutation-id order
  scope_subscription subscription;
};

/// Thrown when the file cannot be used; `error()` says why and how.
class local_db_error : public std::runtime_error {
public:
  explicit local_db_error(sync_error err)
      : std::runtime_error(err.describe()), err_(std::move(err)) {}
  const sync_error& error() const { return err_; }

private:
  sync_error err_;
};

class local_database {
public:
  /// Opens or creates the database. Throws local_db_error.
  explicit local_database(const local_db_settings& settings);

  /// The sync client id: the configured name plus a random suffix chosen
  /// when the file was created, so a lost database starts a new client.
  const std::string& client_id() const { return client_id_; }
  uint64_t next_mutation_id() const { return next_mutation_id_; }

  local_snapshot load();

  /// Appends changes to the outbox in one transaction and returns the
  /// mutation id given to each, in order. Throws local_db_error; the file is
  /// then unchanged. `batch` (0: none) is the caller's number for this
  /// batch: the same nonzero number as the batch applied last is a retry of
  /// a batch that did commit (its first attempt timed out on the caller's
  /// side), so it is not applied again and gets the ids it got then. One
  /// entry is enough: the caller sends the next batch only once this one
  /// succeeded, and only this process can append (the file is locked).
  std::vector<uint64_t> append(const std::vector<change>& changes, uint64_t batch = 0);

  /// Stores a pull result in one transaction: base entities, cookie, and the
  /// outbox without what the server has seen (never a change above
  /// pushed_mutation_id(): the server cannot have seen it from us). The
  /// stored subscription's entries named in `progressed` (the patterns the
  /// answer's request named) advance to the cookie's version in the same
  /// transaction: a pull costs one transaction, and the progress is never
  /// ahead of the data it reflects.
  void apply_pull(const pull_reply& reply,
                  const std::vector<std::string>& progressed = {});

  /// Replaces the stored subscription (entries, progress, known reads, held
  /// scopes, rules) in one transaction. Throws local_db_error (file then
  /// unchanged).
  void save_subscription(const scope_subscription& sub);

  /// Deletes, in one transaction, every row of the entities table whose
  /// scope (scope_held under `rules`) no pattern of `held` names; the outbox
  /// stays as it is. Returns how many rows went. Throws local_db_error (file
  /// then unchanged).
  std::size_t prune(const scope_rules& rules, const std::vector<std::string>& held);

  /// The highest mutation id ever handed out for a push (survives restarts).
  uint64_t pushed_mutation_id() const { return pushed_mutation_id_; }

  /// Records that changes up to `mutation_id` are about to be pushed: from
  /// now on the server may know them. Written before the push leaves, only
  /// when it raises the record.
  void mark_pushed(uint64_t mutation_id);

  /// What repair() did: the client id in force and, if it just moved,
  /// the old mutation ids of the outbox in order (the change that had
  /// old_ids[i] now has i + 1).
  struct renumbering {
    std::string client_id;
    std::vector<uint64_t> old_ids;
  };

  /// `server_record`: the server's last mutation id for `client_id`. Above
  /// pushed_mutation_id() it means the server has seen ids this file never
  /// sent: the file is an older copy of itself (a backup, a VM snapshot) and
  /// its next ids were used by the newer one. Then, in one transaction, it
  /// moves to a new client id (the configured name plus a new random suffix,
  /// as a new file does), renumbers the outbox from 1 in order, and forgets
  /// the old id's server record and push epoch; base and cookie stay. Else
  /// it changes nothing. Idempotent: asked again about the id it moved away
  /// from, it answers as the first time. Throws local_db_error (file then
  /// unchanged).
  renumbering repair(const std::string& client_id, uint64_t server_record);

  /// Outbox changes with a mutation id above `after`, in order, at most
  /// `max_changes` of them and (beyond the first) at most `max_bytes`, each
  /// change counted by push_bytes as the server's session counts it.
  std::vector<change> outbox(uint64_t after, std::size_t max_changes,
                             std::size_t max_bytes);

  /// The highest mutation id in the outbox; 0 when it is empty.
  uint64_t last_outbox_id();

  /// Remembers the epoch in which the server last acknowledged a push.
  void set_push_epoch(const std::string& epoch);

  /// Runs PRAGMA integrity_check; returns "ok" or the problems found.
  std::string integrity_check();

private:
  void check_and_migrate(const local_db_settings& settings);
  scope_subscription load_subscription();
  void prepare_statements();
  void set_meta(const std::string& key, const std::string& value);
  std::string get_meta(const std::string& key);
  [[noreturn]] void fail(const sqlite_error& e, const std::string& what);

  std::string path_;
  std::unique_ptr<sqlite_db> db_;
  std::string client_name_;
  std::string client_id_;
  uint64_t next_mutation_id_ = 1;
  uint64_t pushed_mutation_id_ = 0;
  uint64_t last_batch_ = 0; ///< number of the batch applied last (0: none)
  std::vector<uint64_t> last_batch_ids_;
  std::string moved_from_; ///< the client id repair() moved away from
  std::vector<uint64_t> moved_ids_;
  sqlite_stmt insert_outbox_;
  sqlite_stmt set_meta_;
  sqlite_stmt upsert_entity_;
  sqlite_stmt delete_entity_;
  sqlite_stmt select_outbox_;
  sqlite_stmt drop_outbox_;
  sqlite_stmt set_since_;
  sqlite_stmt set_cursor_;
};

} // namespace memsync
