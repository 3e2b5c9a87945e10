// Messages that never leave a node: between the actors of one client.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/errors.hpp"
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
struct flush_report {
  std::vector<flushed_change> changes;
  uint64_t durable_seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flush_report& x) {
  return f(caf::meta::type_name("memsync::flush_report"), x.changes,
           x.durable_seq);
}

/// A push as a session hands it to the replication log. `verdicts` holds one
/// entry per change (or none): a change the session found invalid is refused
/// with that reason; its mutation id is used up all the same.
struct log_push {
  push_request request;
  std::vector<sync_error> verdicts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_push& x) {
  return f(caf::meta::type_name("memsync::log_push"), x.request, x.verdicts);
}

/// Counters of a replication log, for benchmarks and status.
struct log_stats {
  uint64_t commits = 0; ///< transactions (groups)
  uint64_t pushes = 0;
  uint64_t changes = 0;
  uint64_t version = 0; ///< head version
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_stats& x) {
  return f(caf::meta::type_name("memsync::log_stats"), x.commits, x.pushes,
           x.changes, x.version);
}

} // namespace memsync
