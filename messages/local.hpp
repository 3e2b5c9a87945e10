// Messages that never leave a node: between the actors of one client.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

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

} // namespace memsync
