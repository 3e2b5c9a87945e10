// gateway: the only actor a server node publishes. It checks the handshake
// (protocol version, token, and that the client id belongs to the token's
// client) and hands the client a session of its own; internal actors'
// handles never leave the node.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/server/replication_log.hpp"
#include "actors/server/session.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"

namespace memsync {

struct gateway_config {
  std::string server_id;
  std::string epoch; ///< informational; pulls carry the authoritative one
  std::map<std::string, std::string> tokens; ///< token -> client name
  session_limits limits;
  std::shared_ptr<trace_sink> trace; ///< null: not tracing
};

gateway_actor spawn_gateway(caf::actor_system& sys, replication_log_actor log,
                            gateway_config cfg);

} // namespace memsync
