// gateway: the only actor a server node publishes. It checks the handshake
// (protocol version, token, and that the client id belongs to the token's
// client) and hands the client a session of its own, at most
// `max_sessions` live ones per client name; internal actors' handles never
// leave the node. It tells the network front which session belongs to which
// client node, so that only that node's connection may address it.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/server/replication_log.hpp"
#include "actors/server/session.hpp"
#include "actors/server/token_table.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"

namespace memsync {

struct gateway_config {
  std::string server_id;
  std::string epoch;  ///< informational; pulls carry the authoritative one
  token_table tokens; ///< who may connect as whom
  session_limits limits;
  std::shared_ptr<trace_sink> trace; ///< null: not tracing
  std::size_t max_sessions = 64;     ///< live sessions per client name
  /// Called on the gateway's thread with the client's node and the session's
  /// actor id before the hello is answered (opened) and after the session
  /// ended (closed). Empty: nobody to tell.
  std::function<void(const caf::node_id&, caf::actor_id)> session_opened;
  std::function<void(const caf::node_id&, caf::actor_id)> session_closed;
};

gateway_actor spawn_gateway(caf::actor_system& sys, replication_log_actor log,
                            gateway_config cfg);

} // namespace memsync
