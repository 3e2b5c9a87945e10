// session: the per-client facade a gateway hands out. It is the only server
// actor a client ever holds: it checks that every request comes from the
// node that said hello and names its own client id, validates every change
// (ids, types, JSON, canonical size, nesting, mutation ids in 1..2^63-1,
// bytes and count per push) before anything reaches the replication log,
// allows one push and one pull in flight (a second is refused, not queued),
// and passes the log's pokes on to its client: as the answer to the pull
// the client makes next, read ahead (see pushed_answer), where the last
// answer it got tells that pull and the client is not pulling; as a poke
// otherwise.
// Scopes: its pushes carry the token's grants (the log refuses what they do
// not permit); a pull reads only the readable part of each requested entry
// (entries of which nothing is readable come back in `forbidden`), all
// parts from the start when the grants grew beyond what the client's data
// was pulled under, and leaves the log a poke filter of those parts. Its
// grants change only by a `grants_atom` message from its own gateway (a
// reload of the tokens file).
// It ends when its client's poke listener goes away or the log ends; it
// monitors the log and links to nothing, so an exit message a peer sends it
// (any reason) ends this session alone, never the log or another session.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <caf/actor_addr.hpp>
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

/// The session as its gateway holds it: the client's interface plus new
/// grants, accepted only from the gateway that opened it.
using session_control_actor = session_actor::extend<caf::reacts_to<grants_atom, grants>>;

struct session_config {
  std::string client_id;
  caf::node_id client_node;
  client_listener_actor listener; ///< the client's syncer (its relay)
  session_limits limits;
  std::shared_ptr<trace_sink> trace; ///< null: not tracing
  grants granted = all_grants();     ///< the token's
  caf::actor_addr gateway;           ///< the only sender of new grants
};

session_control_actor spawn_session(caf::actor_system& sys, replication_log_actor log,
                                    session_config cfg);

} // namespace memsync
