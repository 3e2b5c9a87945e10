// gateway: the only actor a server node publishes. It checks the handshake
// (protocol version, token, and that the client id belongs to the token's
// client) and hands the client a session of its own, at most
// `max_sessions` live ones per client name; internal actors' handles never
// leave the node. It tells the network front which session belongs to which
// client node, so that only that node's connection may address it.
// The hello reply carries the token's grants and the scope rules; the
// session gets the grants. On a reload (from its own node only) it re-reads
// the tokens file and the scopes file: both good, it swaps them in, sends
// every live session the grants of the token that opened it (none if that
// token is gone) and the log the new rules; either bad, it keeps the old
// ones and answers with the file's "FILE:LINE: reason".
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
#include "actors/server/scope_rules_file.hpp"
#include "actors/server/session.hpp"
#include "actors/server/token_table.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"

namespace memsync {

/// The gateway as its node holds it: what clients see plus reloads. Clients
/// get only gateway_actor (the publication carries that interface).
using gateway_control_actor = gateway_actor::extend<
  /// Re-reads the tokens and scopes files; replies "reloaded tokens (N) and
  /// scope rules (M)" or an error naming the file and line (nothing changed).
  caf::replies_to<reload_atom>::with<std::string>>;

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
  std::string tokens_file; ///< re-read on reload (empty: `tokens` stay)
  std::string scopes_file; ///< re-read on reload (empty: no rules)
  scope_rules rules;       ///< the scopes file's as loaded at start-up
};

gateway_control_actor spawn_gateway(caf::actor_system& sys, replication_log_actor log,
                                    gateway_config cfg);

} // namespace memsync
