// Messages that never leave a client node: between its actors, and the
// syncer's status for the node and the application.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/errors.hpp"
#include "messages/layer_stats.hpp"
#include "messages/protocol.hpp"

namespace memsync {

/// A coalesced write became durable: every pending change of `id` with a seq
/// up to `last_seq` and no mutation id yet now has `mutation_id`.
struct flushed_change {
  std::string id;
  uint64_t last_seq = 0;
  uint64_t mutation_id = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flushed_change& x) {
  return f(caf::meta::type_name("memsync::flushed_change"), x.id, x.last_seq,
           x.mutation_id);
}

/// Sent by the flush scheduler after each durable batch. `durable_seq`: every
/// write with a seq up to it is in the local database.
///
/// After the local database found it was restored from an older copy (see
/// local_database::repair), one report with `new_client_id` set and no
/// changes: the client is now `new_client_id`, and the outbox change that
/// had mutation id `renumbered[i]` now has i + 1. Every report before it
/// uses the old numbering, every report after it the new one (the flush
/// scheduler sends both and orders them).
struct flush_report {
  std::vector<flushed_change> changes;
  uint64_t durable_seq = 0;
  std::string new_client_id;
  std::vector<uint64_t> renumbered;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flush_report& x) {
  return f(caf::meta::type_name("memsync::flush_report"), x.changes, x.durable_seq,
           x.new_client_id, x.renumbered);
}

/// Where this client stands, for `status`.
struct sync_status {
  std::string client_id; ///< in force now (a restored database moves to a new one)
  bool connected = false;
  std::string server_id;
  cookie cursor;
  uint64_t last_mutation_id = 0; ///< confirmed by the last pull
  uint64_t acknowledged = 0;     ///< by the last push reply
  uint64_t connects = 0;
  std::vector<refusal> refused; ///< most recent refusals, oldest first
  std::string last_error;
  layer_stats layers; ///< counters and time spent per layer
  /// An answer arriving in pages: the entities received so far and the
  /// answer's size as the server counted it at the first page (both 0 when
  /// no paged answer is under way).
  uint64_t pull_received = 0;
  uint64_t pull_total = 0;
  /// The scopes this client holds: its subscription's readable parts once
  /// the grants are known, else the subscription as configured.
  std::vector<std::string> scopes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_status& x) {
  return f(caf::meta::type_name("memsync::sync_status"), x.client_id, x.connected,
           x.server_id, x.cursor, x.last_mutation_id, x.acknowledged, x.connects,
           x.refused, x.last_error, x.layers, x.pull_received, x.pull_total, x.scopes);
}

/// A client's subscription as its local database keeps it (network_syncer
/// <-> local_db). `entries` carry their progress; `known_reads` are the read
/// patterns of the grants the data was pulled under (empty: every scope);
/// `held` names the scopes the local data may hold (the data was pruned to
/// them under `rules`); `configured` is the client.scopes list of the start
/// that set `entries` (a changed list replaces them at the next start).
/// `stored` is false for a database that has none yet.
struct scope_subscription {
  std::vector<scope_since> entries;
  std::vector<std::string> known_reads;
  std::vector<std::string> held{"*"};
  scope_rules rules;
  std::vector<std::string> configured;
  bool stored = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scope_subscription& x) {
  return f(caf::meta::type_name("memsync::scope_subscription"), x.entries, x.known_reads,
           x.held, x.rules, x.configured, x.stored);
}

} // namespace memsync
