// The replication log's storage behind one narrow interface, implemented by
// the SQLite backend (embedded default) and the PostgreSQL backend. The push
// rules live once, in apply_pushes(), written against the few primitives a
// write transaction offers; backends only store and fetch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/protocol.hpp"
#include "messages/server_local.hpp"
#include "messages/validation.hpp"

namespace memsync {

/// Thrown by backends. A retryable error (lost connection, busy database)
/// leaves nothing applied and the client may simply push again.
class storage_error : public std::runtime_error {
public:
  storage_error(const std::string& what, bool retryable)
      : std::runtime_error(what), retryable_(retryable) {}
  bool retryable() const { return retryable_; }

private:
  bool retryable_;
};

/// One write transaction; destroying it without commit() rolls back.
class storage_tx {
public:
  virtual ~storage_tx() = default;
  /// 0 for a client never seen.
  virtual uint64_t last_mutation_id(const std::string& client_id) = 0;
  virtual void set_last_mutation_id(const std::string& client_id, uint64_t mutation_id)
    = 0;
  /// A hint: the entities of these changes are about to be loaded. A backend
  /// that pays a network round trip per statement reads them all at once.
  virtual void prefetch(const std::vector<log_push>& pushes) { (void)pushes; }
  /// The current entity or tombstone and the scope it is stored in; false
  /// if the id was never written.
  virtual bool load_entity(const std::string& id, entity& out, std::string& scope) = 0;
  /// Stores `e` (a tombstone when e.deleted) in `scope` under the next
  /// server version, appends the change to the log, and returns that
  /// version. If the entity was stored in another scope, that scope keeps a
  /// record of the move at this version (what pulls of it send as a
  /// removal); a tombstone keeps the scope the entity was in.
  virtual uint64_t write_entity(const entity& e, const std::string& scope,
                                const std::string& client_id, uint64_t mutation_id)
    = 0;
  /// The refusals kept for `client_id`, in mutation-id order.
  virtual std::vector<refusal> refusals(const std::string& client_id) = 0;
  /// Keeps `r` with the client's record (its id is new: never kept before).
  virtual void add_refusal(const std::string& client_id, const refusal& r) = 0;
  /// Forgets the client's refusals with a mutation id below `below`.
  virtual void drop_refusals(const std::string& client_id, uint64_t below) = 0;
  virtual void commit() = 0;
};

/// One entry of the history: mutation `mutation_id` of `client_id` wrote
/// `entity_id` (a tombstone when `deleted`) as `version`.
struct log_entry {
  uint64_t version = 0;
  std::string client_id;
  uint64_t mutation_id = 0;
  std::string entity_id;
  bool deleted = false;
};

/// Where a page of a pull starts, how large it may grow and which scopes it
/// reads. `parts` are patterns the client may read, each with its own
/// progress (see scope_since; overlapping parts read their union); empty:
/// every scope, from the cookie's version. `refetch`: the client may hold
/// entities of the parts it has not been told about (its grants grew), so
/// parts from 0 get tombstones and removals too.
struct page_request {
  uint64_t after = 0; ///< the last version of the pages received; 0: a new pull
  std::size_t max_bytes = std::numeric_limits<std::size_t>::max();
  std::vector<scope_since> parts;
  bool refetch = false;
};

class storage_backend {
public:
  virtual ~storage_backend() = default;
  /// Names this database; created with it, never changes.
  virtual std::string epoch() = 0;
  /// A random secret created with the database (or when an older database
  /// is first opened), the same for every server node on it; never
  /// changes. The server signs its cookies with it.
  virtual std::string cookie_secret() = 0;
  /// The highest version committed.
  virtual uint64_t head_version() = 0;
  virtual std::unique_ptr<storage_tx> begin() = 0;
  /// One page of the answer to a pull, from one consistent snapshot: the
  /// entities (tombstones included) of the page's parts, each with a version
  /// above its part's progress and above `page.after`, and the removals
  /// (tombstones with no data and the version of the move) of entities that
  /// moved out of a part since its progress into a scope no part names, in
  /// version order, as many as fit in
  /// `page.max_bytes` counted by pull_bytes() (at least one, so any entity
  /// fits a page); `complete` is false when more follow. A cookie from
  /// another epoch gets `reset` and the live entities instead (tombstones
  /// too on pages after the first: an entity sent on an earlier page may
  /// have been deleted since). Also the head as `next` and the client's
  /// last_mutation_id with its kept refusals (on every page, from that
  /// page's snapshot, as last_mutation_id); `total` (on a first page only,
  /// `after` = 0) counts
  /// the entities of the whole answer. Why the union of the pages, later
  /// ones winning, is the state at the last page's `next`: a write after
  /// an earlier page gives its entity a version above that page's, so a
  /// later page (or the last) carries it.
  virtual pull_reply
  pull_page(const std::string& client_id, const cookie& since, const page_request& page)
    = 0;
  /// The whole answer in one page.
  pull_reply pull(const std::string& client_id, const cookie& since) {
    return pull_page(client_id, since, page_request{});
  }
  /// Up to `max` entries of the history with a version above `after`, in
  /// version order, from one consistent snapshot. For audits of a server's
  /// state (the load tester's check), never on a client's path: clients
  /// only ever get entities. Throws storage_error.
  virtual std::vector<log_entry> read_log(uint64_t after, std::size_t max) = 0;
};

// -- helpers for backends' pull_page() -------------------------------------------

/// The rows a page reads of one part: versions above `after`, tombstones
/// (and removals) included except on the first page of a part from 0
/// (reset: every part is from 0), unless `refetch` (a client that holds
/// nothing of it needs no tombstones; on later pages they undo what an
/// earlier page sent).
struct page_rows {
  std::string pattern;
  uint64_t after = 0;
  bool tombstones = true;
};
/// One per part; a request without parts reads "*" from the cookie.
std::vector<page_rows> page_ranges(bool reset, const cookie& since,
                                   const page_request& page);

/// How a backend's SQL selects the scopes `pattern` names, so that an index
/// on (scope, version) serves it: every scope, one scope (`lo`), or the
/// byte strings in [lo, hi) (a prefix: `hi` is it with its last byte
/// incremented; compare bytewise, e.g. COLLATE "C" in PostgreSQL).
struct scope_range {
  enum kind_t { all, exact, prefix } kind = all;
  std::string lo;
  std::string hi;
};
scope_range scope_range_of(const std::string& pattern);

/// True if a part that gets tombstones names every scope: it brings what
/// became of every entity, so no removal is needed.
bool every_scope_with_tombstones(const std::vector<page_rows>& ranges);

/// A candidate removal as a backend reads it from its moves record: the
/// entity `id` (now of `type`, stored in `scope`, `deleted` or not) moved
/// out of a part's scope at `version` (the latest such move of the entity in
/// the parts).
struct moved_out {
  std::string id;
  std::string type;
  std::string scope;
  uint64_t version = 0;
  bool deleted = false;
};
/// The removals of `candidates`: tombstones (no data, the move's version) of
/// those no part brings as they are now, in version order. A part that
/// names the current scope brings a live entity; a deleted one only if the
/// part gets tombstones (a part from 0 brings live entities alone, and the
/// client would keep the copy from before the move).
std::vector<entity> removals(std::vector<moved_out> candidates,
                             const std::vector<page_rows>& ranges);

/// Fills a page, in version order, up to its byte limit.
class page_filler {
public:
  page_filler(pull_reply& out, std::size_t max_bytes) : out_(out), room_(max_bytes) {}
  /// Adds `e` if it fits (the first entity always does); otherwise marks
  /// the page incomplete and returns false: stop reading.
  bool add(entity e);

private:
  pull_reply& out_;
  std::size_t room_;
};

/// One stream of a page's rows in version order: puts the next row in `out`
/// and returns true, or returns false when there is no more.
using row_stream = std::function<bool(entity& out)>;
/// Fills the page from several streams (one per part, the removals) in one
/// version order, until it is full or they end. An entity that overlapping
/// parts both read comes once: its rows carry the same version.
void fill_merged(page_filler& fill, std::vector<row_stream> streams);

/// The largest mutation id every backend stores as it is (a signed 64-bit
/// column); ids run from 1 to this.
constexpr uint64_t max_mutation_id = 0x7fffffffffffffffULL;

/// What became of one push: `error` set means the whole push was rejected
/// (nothing of it applied); otherwise `reply` is the answer for the client.
struct push_outcome {
  sync_error error;
  push_reply reply;
};

/// Applies every push in one transaction (group commit) and returns one
/// outcome per push plus the head version after the commit. The rules:
/// - a change whose mutation id is not above the client's last is a
///   duplicate: skipped, acknowledged again;
/// - the first new id must be last + 1 (else the push is rejected as a gap),
///   except when the push names another epoch than the server's (its last
///   push was acknowledged by another history, or it never pushed): then
///   the first new id is taken as the client's new start;
/// - put replaces the entity, patch merges into the current one (refused if
///   there is none, or if the result breaks `limits`), del writes a
///   tombstone (deleting what does not exist changes nothing);
/// - a refused change still uses up its id, and its refusal is kept with the
///   client's record: a duplicate of it is answered with it again (its first
///   reply may have been lost), and pulls carry it. A push whose first
///   change has id M shows the client was answered for every id below M:
///   its refusals below M are forgotten;
/// - a push with a mutation id outside 1..max_mutation_id is rejected
///   (invalid_request) before the backend sees it;
/// - a push that writes nothing new (empty, or only duplicates) writes
///   nothing to the database, except forgetting refusals as above.
/// Never throws for a failing backend: if the group's transaction fails,
/// each push is tried again in a transaction of its own, so a push that
/// fails by itself (a constraint, a full disk for its size) fails alone with
/// `unavailable` (retryable: push again) or `db_error`, and the others commit.
/// Which change got which version: changes[change] of pushes[push].
struct written_change {
  uint32_t push = 0;
  uint32_t change = 0;
  uint64_t version = 0;
};
/// Scopes (`rules` derive each entity's from its data): a change is refused
/// with `forbidden` unless its push's grants may write the entity's scope
/// both before and after it, and a change that leaves a ruled entity
/// without a scope is refused with `invalid_request` naming the field.
/// `scopes`: every scope a written change touched (before or after it),
/// sorted, without duplicates: who must be poked.
struct commit_result {
  std::vector<push_outcome> outcomes;
  std::vector<written_change> written; ///< in version order
  uint64_t version = 0;
  std::vector<std::string> scopes;
};
commit_result apply_pushes(storage_backend& backend, const std::vector<log_push>& pushes,
                           const data_limits& limits, const scope_rules& rules = {});

/// A backend's exception as the error a client gets: a retryable
/// storage_error or std::bad_alloc is `unavailable`, anything else `db_error`.
sync_error storage_failure(const std::exception& e);

} // namespace memsync
