// The hot layer's data: the visible entity map that application threads read
// without locks or messages, the base (last server state) and the pending
// local changes layered on top of it. The memory_store actor owns it; the
// application handle (`store`) is its synchronous front door.
//
// Invariants, all guarded by the write lock:
// - visible(id) = pending changes of id, in seq order, applied to base(id);
// - an id has a `shadow` (its base) exactly while it has pending changes; for
//   every other id base(id) = visible(id), so base is not stored twice;
// - the write queue holds every local change not yet taken by the actor, in
//   seq order, with the events of the writes that changed a visible value.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/hot/entity_table.hpp"
#include "actors/hot/left_right.hpp"
#include "messages/client_local.hpp"
#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/protocol.hpp"
#include "messages/scopes.hpp"
#include "messages/validation.hpp"

namespace memsync {

/// True if an entity of `type` with `data` (JSON text) belongs to a scope
/// that one of `patterns` names, its scope derived by `rules`. A ruled
/// entity without its scope field (written before the rule existed) counts
/// as in the default scope, where the server keeps it until it is next
/// written. The one test of what a client holds: the memory store and the
/// local database prune by it.
bool scope_held(const scope_rules& rules, const std::vector<std::string>& patterns,
                std::string_view type, std::string_view data);

/// Test-only faults: set only by the simulator's self-check (tools/sim,
/// tests/sim), which shows that its checks catch a broken engine. The engine
/// never sets them.
namespace test_faults {
/// rebase() loses the local writes queued while it runs: they stay visible
/// but never reach the flush scheduler (the bug of an engine that skips
/// local saves while it applies remote changes).
inline std::atomic<bool> drop_writes_in_rebase{false};
/// prune() drops nothing: the store keeps the synced entities of scopes it
/// no longer holds (the bug of a client that ignores a lost grant or an
/// unsubscribe).
inline std::atomic<bool> keep_pruned{false};
} // namespace test_faults

/// A visible value changed: `value` is the new one, null if the entity is
/// gone. When `refusal` is set, the server refused a change to this entity
/// (the next pull undoes it) and `value` is what is visible now.
struct change_event {
  std::string id;
  std::string type;
  entity_ptr value;
  sync_error refusal;
};

/// A local change the server refused, and why.
struct refused_change {
  uint64_t mutation_id = 0;
  std::string id;
  sync_error reason;
};

/// What the owning actor takes out after an operation, in write order.
struct drained {
  std::vector<change> changes;      ///< local writes, for the flush scheduler
  std::vector<change_event> events; ///< for subscribers
};

struct store_counts {
  std::size_t entities = 0;
  std::size_t pending = 0;
  uint64_t last_seq = 0;
  uint64_t durable_seq = 0;
};

class store_core {
public:
  /// `limits` and `max_push_bytes` are the client's own: a local write whose
  /// data is not within `limits`, or whose change counts more than
  /// `max_push_bytes` (push_bytes(): id, type and data), is refused.
  explicit store_core(
    data_limits limits = {},
    std::size_t max_push_bytes = std::numeric_limits<std::size_t>::max());

  // -- reads: any thread, never block ---------------------------------------

  /// The visible entity, or null.
  entity_ptr get(std::string_view id) const;
  /// Visible entities of one type, in no particular order.
  std::vector<entity_ptr> by_type(std::string_view type) const;
  /// All visible entities, in no particular order.
  std::vector<entity_ptr> all() const;
  std::size_t size() const;

  // -- writes: any thread; visible to every read that starts after return ---

  /// Validates and applies a local write; on error nothing changes. The
  /// *_json variants take JSON text. A change that could never be pushed is
  /// refused here, at once, with `too_large`: a put whose id, type and data
  /// count more than the push byte limit, a patch whose merge patch does,
  /// or whose result would (a later write may fold it into a put of the
  /// result). The limits in force are the client's own, or the smaller of
  /// those and the server's once set_server_limits() was called.
  sync_error put_json(std::string_view id, std::string_view type, std::string_view json);
  sync_error put(std::string_view id, std::string_view type, const nlohmann::json& data);
  /// Merge patch (RFC 7386) on a visible entity; `not_found` if there is none.
  sync_error patch_json(std::string_view id, std::string_view json);
  sync_error patch(std::string_view id, const nlohmann::json& patch);
  /// Deletes a visible entity; `not_found` if there is none.
  sync_error erase(std::string_view id);

  // -- for the owning actor -------------------------------------------------

  /// The server's limits, from its hello reply: from now on a local write
  /// must be within the smaller of them and the client's own. Replaces the
  /// server limits set before (another server may allow more). Changes
  /// already written are not checked again.
  void set_server_limits(const data_limits& data, std::size_t max_push_bytes);

  /// The token's grants and the server's scope rules, from the hello reply
  /// and every pull: from now on a put, patch or delete is refused at once
  /// with `forbidden` if the entity's current scope (if it exists) or its
  /// resulting one is not writable under `granted`, and with
  /// `invalid_request` if a ruled entity would lack its scope field. Before
  /// the first call nothing is refused for its scope (the server checks
  /// every write all the same). Replaces what was set before.
  void set_scopes(grants granted, scope_rules rules);

  /// Drops from the base every entity whose scope (scope_held under
  /// `rules`) no pattern of `held` names. Pending changes stay until the
  /// server answers them: an entity with some keeps the value they give it
  /// on no base. Queued local writes come first in the result, then the
  /// removals.
  drained prune(const scope_rules& rules, const std::vector<std::string>& held);

  /// Called under the write lock whenever the write queue stops being empty,
  /// so the actor can drain it. Set once, before any write.
  void on_first_queued(std::function<void()> wake);

  /// Start-up: base entities and the durable outbox (mutation-id order).
  /// REQUIRES: no reader or writer yet.
  void load(std::vector<entity> base, std::vector<change> outbox);

  /// Takes the queued writes and events.
  drained take();

  /// Applies a pull: new base entities, drops pending changes the server has
  /// seen (mutation id <= last_mutation_id), re-applies the rest. Events are
  /// only for visible values that changed. Queued local writes come first in
  /// the result so subscribers see everything in order.
  drained rebase(const pull_reply& reply);

  /// Records refusals from the server; returns one event per refused change
  /// that is still pending (the next pull will undo it).
  std::vector<change_event> refuse(const std::vector<refusal>& refused);
  /// The most recent refusals (at most 100), oldest first.
  std::vector<refused_change> refusals() const;

  /// Records mutation ids of durable writes and the durable watermark. A
  /// change whose new id the last rebase already confirmed is confirmed now:
  /// the pull that confirmed it overtook its flush report (they come from
  /// different actors), and its base is already the server's result. Returns
  /// the events of the visible values this changed.
  std::vector<change_event> mark_durable(const std::vector<flushed_change>& flushed,
                                         uint64_t durable_seq);

  /// The local database moved to a new client id and renumbered its outbox:
  /// the change that had mutation id old_ids[i] has i + 1 now. A pending
  /// change with an id not among them had left the outbox, confirmed by the
  /// server under the old id, and is confirmed now. Changes with no id yet
  /// get new ones from later flush reports. Returns the events.
  std::vector<change_event> renumber(const std::vector<uint64_t>& old_ids);

  // -- waiting and inspection -----------------------------------------------

  uint64_t last_seq() const { return last_seq_.load(); }
  /// Blocks until every write up to `seq` is durable; false on timeout.
  bool wait_durable(uint64_t seq, std::chrono::nanoseconds timeout) const;
  store_counts counts() const;
  /// Pending changes in seq order (a copy).
  std::vector<change> pending() const;

private:
  struct visible_state {
    entity_table by_id;
    std::unordered_map<std::string, entity_table> by_type;
  };
  struct shadow {
    entity_ptr base;
    std::vector<uint64_t> seqs;
  };
  struct update {
    std::string id;
    entity_ptr value; ///< null: remove
  };
  using update_list = std::vector<update>;

  static void apply_update(visible_state& v, const std::string& id, uint64_t hash,
                           const entity_ptr& value);
  void publish(const update_list& updates);
  // REQUIRES: write_mtx_ held; `old` is the visible value of c.id.
  void queue_local(change c, entity_ptr old, entity_ptr value);
  entity_ptr fold_pending(const std::string& id, const shadow& sh) const;
  // REQUIRES: write_mtx_ held. Drops the pending changes `confirmed` holds
  // for, noting their ids in `touched`.
  template <class Pred>
  void drop_pending(Pred confirmed, std::vector<std::string>& touched);
  // REQUIRES: write_mtx_ held. Re-applies the pending changes of `touched`
  // on their bases and publishes those and `updates`; events for the values
  // that really changed.
  void settle(std::vector<std::string> touched, update_list updates,
              std::vector<change_event>& events);
  drained take_locked();

  struct write_limits {
    data_limits data;
    std::size_t push_bytes;
  };
  write_limits limits() const;
  struct scope_policy {
    grants granted;
    scope_rules rules;
  };
  // forbidden or invalid_request if writing `type`/`data` over `old` (null:
  // none; data null: a delete) leaves or enters a scope `p` (null: not
  // known yet) does not let us write.
  static sync_error check_scope(const scope_policy* p, const entity_ptr& old,
                                std::string_view type, const nlohmann::json* data);
  std::shared_ptr<const scope_policy> scopes() const;
  // too_large, naming `what`, if `c` counts more than `limit` push bytes.
  static sync_error check_push_bytes(const change& c, std::size_t limit,
                                     const char* what);

  const write_limits own_limits_;
  mutable std::mutex limits_mtx_;
  write_limits limits_;                        // guarded by limits_mtx_
  std::shared_ptr<const scope_policy> scopes_; // guarded by limits_mtx_; null: unknown
  left_right<visible_state> visible_;
  uint64_t trace_base_;

  mutable std::mutex write_mtx_;
  std::map<uint64_t, change> pending_; // by seq
  std::unordered_map<std::string, shadow> shadows_;
  drained queue_;
  std::function<void()> wake_;
  std::vector<refused_change> refusals_;
  uint64_t confirmed_ = 0; ///< last_mutation_id of the last rebase

  std::atomic<uint64_t> last_seq_{0};
  std::atomic<std::size_t> pending_count_{0};
  std::atomic<uint64_t> durable_seq_{0};
  mutable std::mutex durable_mtx_;
  mutable std::condition_variable durable_cv_;
};

} // namespace memsync
