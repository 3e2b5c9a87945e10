// The remote interfaces: the only actor handles that cross the network. A
// client finds the server's gateway, says hello with its listener and gets
// a session of its own; everything else it sends goes to that session.
// Server-internal actors never appear here.
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/protocol.hpp"

namespace memsync {

/// Receives pokes: a session, from the replication log.
using poke_listener_actor = caf::typed_actor<caf::reacts_to<poke_atom, poke>>;

/// A client's listener, named in its hello: pokes and pushed answers from its
/// session.
using client_listener_actor =
  poke_listener_actor::extend<caf::reacts_to<pulled_atom, pushed_answer>>;

using session_actor = caf::typed_actor<
  caf::replies_to<push_atom, push_request>::with<push_reply>,
  caf::replies_to<pull_atom, pull_request>::with<pull_reply>,
  /// From the replication log only; forwarded to the client.
  caf::reacts_to<poke_atom, poke>>;

using gateway_actor = caf::typed_actor<
  /// The client introduces itself and names the actor that receives pokes.
  caf::replies_to<hello_atom, hello_request, client_listener_actor>::with<hello_reply,
                                                                          session_actor>>;

} // namespace memsync
