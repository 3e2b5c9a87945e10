// Every atom the project uses, in one place. CAF 0.17 already defines get_atom,
// put_atom, flush_atom, ok_atom, delete_atom, subscribe_atom, tick_atom,
// reset_atom and others; those are reused, never redefined. Atoms hold at most
// 10 characters from [A-Za-z0-9_].
#pragma once

#include <caf/atom.hpp>

namespace memsync {

using caf::flush_atom;
using caf::get_atom;
using caf::ok_atom;
using caf::subscribe_atom;
using caf::tick_atom;

/// The application wrote: drain the store's write queue.
using write_atom = caf::atom_constant<caf::atom("write")>;
/// Changes became durable in the local database (flush_scheduler -> listeners).
using flushed_atom = caf::atom_constant<caf::atom("flushed")>;
/// Apply a pull result (server state) to a layer.
using rebase_atom = caf::atom_constant<caf::atom("rebase")>;
/// Ask for a status summary.
using status_atom = caf::atom_constant<caf::atom("status")>;

// -- protocol ----------------------------------------------------------------

/// Handshake with the gateway.
using hello_atom = caf::atom_constant<caf::atom("hello")>;
/// Push changes to the server.
using push_atom = caf::atom_constant<caf::atom("push")>;
/// Pull changes from the server.
using pull_atom = caf::atom_constant<caf::atom("pull")>;
/// The server has something new.
using poke_atom = caf::atom_constant<caf::atom("poke")>;
/// The server sends the answer to the client's next pull unasked.
using pulled_atom = caf::atom_constant<caf::atom("pulled")>;

// -- inside a node -----------------------------------------------------------

/// Read the local outbox.
using outbox_atom = caf::atom_constant<caf::atom("outbox")>;
/// Remember the epoch of the last acknowledged push.
using epoch_atom = caf::atom_constant<caf::atom("epoch")>;
/// Changes the server refused (network_syncer -> memory_store).
using refused_atom = caf::atom_constant<caf::atom("refused")>;
/// Wait until everything local is pushed, acknowledged and pulled.
using sync_atom = caf::atom_constant<caf::atom("sync")>;
/// Go offline or come back online (network_syncer).
using online_atom = caf::atom_constant<caf::atom("online")>;
/// (Re)connect to the server.
using connect_atom = caf::connect_atom;

// -- scopes ------------------------------------------------------------------

/// A client's subscription (syncer: get it, or replace it) and, towards the
/// replication log, the scopes whose commits a session's client holds.
using scopes_atom = caf::atom_constant<caf::atom("scopes")>;
/// Drop a scope from a client's subscription (subscribe_atom adds one).
using unsub_atom = caf::atom_constant<caf::atom("unsub")>;
/// New grants for a live session, or scope rules and grants for a client's
/// store (from the hello and from every pull).
using grants_atom = caf::atom_constant<caf::atom("grants")>;
/// Drop the synced entities of scopes the client no longer holds (store and
/// local_db; pending local writes stay until answered).
using prune_atom = caf::atom_constant<caf::atom("prune")>;
/// Re-read the tokens file and the scopes file (a server node, on SIGHUP).
using reload_atom = caf::atom_constant<caf::atom("reload")>;

// -- client ------------------------------------------------------------------

/// The highest mutation id in the local outbox (local_db; 0: empty).
using outbox_max_atom = caf::atom_constant<caf::atom("outbox_max")>;
/// The highest mutation id the local database ever handed out for a push.
using pushed_atom = caf::atom_constant<caf::atom("pushed")>;
/// The server has seen mutation ids of this client id that the local
/// database never sent: it was restored from an older copy (network_syncer
/// -> flush_scheduler -> local_db, which moves to a new client id).
using restored_atom = caf::atom_constant<caf::atom("restored")>;
/// Private to network_syncer: the reconnect timer (after a backoff) fired.
using reconnect_atom = caf::atom_constant<caf::atom("reconnect")>;
/// Private to network_syncer: the push timer (debounce or backoff) fired.
using push_due_atom = caf::atom_constant<caf::atom("push_due")>;
/// Private to network_syncer: the fallback pull timer (pull_interval) fired.
using pull_tick_atom = caf::atom_constant<caf::atom("pull_tick")>;
/// Private to network_syncer: retry a failed pull (after a backoff).
using pull_retry_atom = caf::atom_constant<caf::atom("pull_retry")>;

// -- inside a server node ----------------------------------------------------

/// The replication log commits its queued pushes as one group (its own timer).
using commit_atom = caf::atom_constant<caf::atom("commit")>;
/// Ask the replication log for its counters.
using stats_atom = caf::atom_constant<caf::atom("stats")>;

} // namespace memsync
