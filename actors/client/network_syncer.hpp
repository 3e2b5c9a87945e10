// network_syncer: connects a client node to a server and keeps it in sync.
// It connects without blocking (every request has a timeout), says hello to
// the gateway and talks to the session it gets back; pushes the durable
// outbox in bounded batches, one push in flight (after `push_debounce`);
// pulls on poke, after reconnecting and every `pull_interval`, never stacking
// pulls; hands each pull to local_db and then to the memory store's rebase.
// A dead or frozen server (down_msg, heartbeats) means reconnecting with
// exponential backoff and jitter; until then writes simply accumulate.
//
// The connection is one state machine (link_state in
// network_syncer_state.hpp); connecting and handshaking always end, as
// every request has a timeout:
//
//          +------------ online(false), from any other state ------------+
//          v                                                             |
//       offline                                                          |
//          | online(true)                                                |
//          v                                                             |
// start -> connecting --gateway--> handshaking --hello reply--> connected -+
//          ^    |                      |                            |
//          |    +--- error, timeout ---+--> disconnected <----------+
//          |                                 |            session down
//          +-------- reconnect timer --------+
//                   (after the backoff)
//
// Pushes and pulls run only while connected; dropping the connection forgets
// the requests in flight (their replies are stale and ignored), and the new
// connection pulls and pushes again at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "actors/client/local_db.hpp"
#include "actors/client/memory_store.hpp"
#include "actors/client/tuning.hpp"
#include "actors/common/trace_sink.hpp"
#include "messages/atoms.hpp"
#include "messages/client_local.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"

namespace memsync {

/// Finds the server's gateway: the middleman in a real node, a local actor
/// in unit tests.
using connector_actor = caf::typed_actor<
  caf::replies_to<connect_atom>::with<gateway_actor>>;

/// Connects through CAF's middleman to host:port.
connector_actor spawn_connector(caf::actor_system& sys, std::string host, uint16_t port,
                                caf::timespan timeout);

using network_syncer_actor = caf::typed_actor<
  /// From the server: something new exists.
  caf::reacts_to<poke_atom, poke>,
  /// From the flush scheduler: the outbox grew.
  caf::reacts_to<flushed_atom, flush_report>,
  /// Replies once every change in the outbox at the time of the request is
  /// pushed, acknowledged and pulled back, by a pull asked for after the
  /// request (in any case: one under way then does not count), and once the
  /// data of scopes no longer held is gone from the store and local_db.
  caf::replies_to<sync_atom>::with<ok_atom>,
  caf::replies_to<status_atom>::with<sync_status>,
  /// false: drop the connection and stay offline (writes keep accumulating);
  /// true: connect again and push what accumulated.
  caf::reacts_to<online_atom, bool>,
  /// Adds a scope pattern to the subscription and pulls: the new entry is
  /// fetched from the start while the others keep their progress. A pattern
  /// an entry already covers changes nothing; entries the new one covers
  /// give way to it once an answer covered them all (until then their
  /// progress brings the deletions in their scopes, which a pull from the
  /// start does not). Errors: invalid_request (not a pattern), forbidden
  /// (the grants are known and the token may read nothing of it).
  caf::replies_to<subscribe_atom, std::string>::with<ok_atom>,
  /// Drops an entry of the subscription (exactly as subscribed) and, at
  /// once, the synced entities of the scopes no longer held, from the
  /// memory store and the local database (replying once both answered);
  /// pending local writes stay until answered. A prune that fails (a full
  /// disk) is no error of the unsubscribe, which took effect: it is noted in
  /// status, and the next answer prunes again. Errors: not_found (naming
  /// the subscription), invalid_request (the last entry: the subscription
  /// is never empty).
  caf::replies_to<unsub_atom, std::string>::with<ok_atom>,
  /// The scopes held: the entries' readable parts once the grants are
  /// known, else the entries.
  caf::replies_to<scopes_atom>::with<std::vector<std::string>>>;

struct syncer_config {
  std::string client_id;
  cookie cursor;                 ///< as stored locally
  uint64_t last_mutation_id = 0; ///< as stored locally
  std::string push_epoch;        ///< as stored locally
  sync_settings settings;
  /// client.scopes: the subscription at start-up. Entries of the stored
  /// subscription keep their progress; the stored subscription (with what
  /// was subscribed and unsubscribed at run time) stays in force as long as
  /// this list is the one it was made from.
  std::vector<std::string> scopes{"*"};
  scope_subscription subscription; ///< as stored locally
};

network_syncer_actor spawn_network_syncer(caf::actor_system& sys, syncer_config cfg,
                                          connector_actor connector, local_db_actor db,
                                          memory_store_actor store,
                                          flush_scheduler_actor flusher,
                                          std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
