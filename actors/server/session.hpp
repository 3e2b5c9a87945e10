// session: the per-client facade a gateway hands out. It is the only server
// actor a client ever holds: it checks that every request comes from the
// node that said hello and names its own client id, validates every change
// (ids, types, JSON, canonical size, nesting, mutation ids in 1..2^63-1,
// bytes and count per push) before anything reaches the replication log,
// allows one push and one pull in flight (a second is refused, not queued),
// and forwards the log's pokes to its client.
// It ends when its client's poke listener goes away or the log ends; it
// monitors the log and links to nothing, so an exit message a peer sends it
// (any reason) ends this session alone, never the log or another session.
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
#include "actors/server/tuning.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"
#include "messages/validation.hpp"

namespace memsync {

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
