// The data model that moves between layers: entities (a typed JSON object
// under an id), local changes to them, and the trace context each change
// carries so its path through every actor and node can be reconstructed.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace memsync {

/// Identifies the originating change of a message and the span that caused
/// it. `sent_ns` is set by the local sender of the message that carries the
/// change (wall clock, ns since the epoch; 0: not stamped), so the receiver
/// can tell how long it waited in the mailbox; it is not part of the
/// identity and is not persisted.
struct trace_context {
  uint64_t trace_id = 0; ///< 0: not traced
  uint64_t span_id = 0;
  int64_t sent_ns = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, trace_context& x) {
  return f(caf::meta::type_name("memsync::trace_context"), x.trace_id, x.span_id,
           x.sent_ns);
}

/// One entity: `data` is a JSON object in canonical form (compact, keys
/// sorted), so equal values compare equal as strings on every node.
struct entity {
  std::string id;
  std::string type;
  std::string data;
  uint64_t version = 0; ///< server version that last changed it; 0: never synced
  bool deleted = false; ///< tombstone (pull results only)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entity& x) {
  return f(caf::meta::type_name("memsync::entity"), x.id, x.type, x.data, x.version,
           x.deleted);
}

enum class change_kind : uint8_t {
  put = 1,   ///< replace the entity with `data`
  patch = 2, ///< apply `data` as a JSON merge patch (RFC 7386)
  del = 3,   ///< delete (tombstone)
};

const char* to_string(change_kind x);

/// A local write. `seq` orders writes inside one client process; the
/// `mutation_id` is assigned when the change becomes durable in the local
/// outbox (0 before), so the ids a server sees are 1, 2, 3, ... without gaps
/// even though the flush scheduler coalesces writes.
struct change {
  uint64_t seq = 0;
  uint64_t mutation_id = 0;
  change_kind kind = change_kind::put;
  std::string id;
  std::string type;
  std::string data; ///< put: the new object; patch: the merge patch; del: empty
  trace_context trace;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, change& x) {
  return f(caf::meta::type_name("memsync::change"), x.seq, x.mutation_id, x.kind, x.id,
           x.type, x.data, x.trace);
}

inline bool operator==(const trace_context& a, const trace_context& b) {
  return a.trace_id == b.trace_id && a.span_id == b.span_id;
}
inline bool operator==(const entity& a, const entity& b) {
  return a.id == b.id && a.type == b.type && a.data == b.data && a.version == b.version
         && a.deleted == b.deleted;
}
inline bool operator==(const change& a, const change& b) {
  return a.seq == b.seq && a.mutation_id == b.mutation_id && a.kind == b.kind
         && a.id == b.id && a.type == b.type && a.data == b.data && a.trace == b.trace;
}

} // namespace memsync
