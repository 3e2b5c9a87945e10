// session: the per-client facade a gateway hands out. It is the only server
// actor a client ever holds: it checks that every request comes from the
// node that said hello and names its own client id, validates every change
// (ids, types, JSON, size, nesting, bytes and count per push) before anything
// reaches the replication log, allows one push in flight, and forwards the
// log's pokes to its client. It ends when its client goes away.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/node_id.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "actors/common/trace_sink.hpp"
#include "actors/server/replication_log.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"
#include "messages/validation.hpp"

namespace memsync {

/// Per-client limits, from the server config.
struct session_limits {
  data_limits data;
  std::size_t max_push_changes = 1000;
  std::size_t max_push_bytes = 8 << 20;
  caf::timespan log_timeout = std::chrono::seconds(30);
};

struct session_config {
  std::string client_id;
  caf::node_id client_node;
  poke_listener_actor listener; ///< the client's syncer
  session_limits limits;
  std::shared_ptr<trace_sink> trace; ///< null: not tracing
};

session_actor spawn_session(caf::actor_system& sys, replication_log_actor log,
                            session_config cfg);

} // namespace memsync
