// The public interface for applications: open a client node from a config
// file and use its store. This is the one header an application includes;
// it brings no CAF actor, network or server header with it (the client node
// and its actor system live behind a pointer), and it links with
// memsync::client alone (no libpq). Values are nlohmann::json: include
// <nlohmann/json.hpp> to build them (this header only declares the type).
//
//   auto c = memsync::client::open("app.ini");       // throws on bad config
//   auto& s = c->store();
//   s.put("comment-123", "comment", {{"message", "Fixed"}});
//   auto e = s.get("comment-123");                   // memory, no round trip
//   c->flushed(std::chrono::seconds(5));             // durable locally
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/client/local_database.hpp" // local_db_error
#include "actors/hot/store.hpp"
#include "node/config/config.hpp" // config_error

namespace memsync {

struct client_config;

/// Where a client stands, as a plain value.
struct client_status {
  std::string client_id;         ///< the configured client.id plus its suffix
  bool has_server = false;       ///< a server is configured ([server] host)
  bool connected = false;        ///< the syncer holds a session now
  std::string epoch;             ///< the server history the cookie belongs to
  uint64_t cookie = 0;           ///< server version pulled up to
  uint64_t last_mutation_id = 0; ///< the highest mutation the server confirmed
  std::size_t entities = 0;      ///< visible entities
  std::size_t pending = 0;       ///< local changes the server has not confirmed
  std::size_t refused = 0;       ///< recent refusals (store().refusals())
  std::string last_error;        ///< the syncer's last error; empty if none
  /// A large answer arriving in pages (both 0 when none is): entities
  /// received so far, and the answer's size. Nothing of it is visible
  /// before the last page.
  uint64_t pull_received = 0;
  uint64_t pull_total = 0;
  /// Why the local database failed the last flush ("db_error: ...", e.g. the
  /// disk is full or an I/O error), while it keeps failing; empty once a
  /// flush succeeds again. Meanwhile writes stay visible in memory, pending,
  /// and are retried with backoff: nothing is lost once the disk has room.
  std::string local_error;
  /// The scopes this client holds: its subscription (client.scopes, then
  /// subscribe/unsubscribe) narrowed to what the token may read once the
  /// server told its grants.
  std::vector<std::string> scopes;
};

/// A client node: the local database, the memory store and its actors, and
/// (with [server] host set) the network syncer, in an actor system of its
/// own.
///
/// Thread safety: every member function may be called from any thread,
/// concurrently, except the destructor, which must not race with any other
/// call. store() is thread-safe too (see store.hpp). REQUIRES: flushed() and
/// sync() are never called from a subscription callback: callbacks run on
/// the memory store's actor, which those calls wait for, so they would only
/// time out.
class client {
public:
  /// Opens the client configured in `config_file` (INI, as for `syncnode
  /// client`; `syncnode client --help-options` lists every option), with
  /// `overrides` ("--section.key=value") applied on top. Blocks until the
  /// local database is loaded into memory (time to interactive: about 1.5 s
  /// per million entities); it never waits for a server, which is connected
  /// in the background.
  /// Throws config_error ("FILE:LINE: section.key: reason") for an invalid
  /// file or override, local_db_error if the local database cannot be used
  /// (corrupt, another program's or client's, a newer schema, locked by
  /// another process: it is then left untouched), std::runtime_error for
  /// other start-up failures (e.g. the trace file cannot be opened).
  /// Never returns null.
  static std::unique_ptr<client> open(const std::string& config_file,
                                      std::vector<std::string> overrides = {});

  /// The same from settings built in code (node/client/client_config.hpp;
  /// CAF's scheduler and heartbeat settings keep their defaults). Throws
  /// local_db_error or std::runtime_error as above.
  static std::unique_ptr<client> open(const client_config& cfg);

  /// Flushes what was written (waiting at most client.sync-timeout), stops
  /// the actors and the actor system. Changes not flushed by then are lost;
  /// call flushed() first to know.
  ~client();

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// The application's handle: reads and writes in memory, never blocking
  /// on the database or the network. Valid as long as this client.
  /// A write that could never reach the server is refused at once with
  /// sync_errc::too_large (and changes nothing): data above the data limit
  /// ([limits] max-data-bytes, max-depth: too_deep), or a change whose id,
  /// type and data count more than sync.max-push-bytes (for a patch: the
  /// patch, or the entity it leaves). Once the server's hello reply has
  /// reached the store (just after status() first shows `connected`; any
  /// sync() or flushed() after that guarantees it), the server's limits
  /// apply where they are smaller. A failing local disk never fails a write:
  /// see client_status::local_error.
  memsync::store& store();

  /// The client id: the configured client.id plus the random suffix of its
  /// local database. Constant.
  const std::string& client_id() const;

  /// Flushes every write made so far now (skipping flush.debounce) and
  /// blocks until it is durable in the local database, at most `timeout`.
  /// True once durable; false on timeout or if the database keeps failing
  /// (the writes stay in memory and are retried).
  bool flushed(std::chrono::nanoseconds timeout);

  /// Flushes, then, with a server, blocks until every change is pushed,
  /// acknowledged and pulled back, at most `timeout` in all. True when done;
  /// false on timeout (e.g. offline). Without a server: flushed(timeout).
  bool sync(std::chrono::nanoseconds timeout);

  /// A snapshot of the client's state. It asks the flush scheduler (for
  /// local_error) and, with a server, the syncer, and blocks at most
  /// `timeout` for each (usually well under a millisecond); if the syncer
  /// does not answer in time, the server fields hold what was loaded at
  /// start-up and `connected` is false.
  client_status status(std::chrono::nanoseconds timeout = std::chrono::seconds(5));

  /// Adds `scope` (a scope name, or a prefix followed by '*') to the
  /// subscription and returns at once: the scope's entities are fetched with
  /// the next pull (sync() waits for it) while the other scopes keep their
  /// progress. Subscribing to a scope already held changes nothing. Errors:
  /// invalid_request (not a scope pattern), forbidden (the token may read
  /// nothing of it, once the server told the grants), unavailable (no
  /// server configured), timeout.
  sync_error subscribe(const std::string& scope,
                       std::chrono::nanoseconds timeout = std::chrono::seconds(5));

  /// Drops `scope` (exactly as subscribed) from the subscription, and its
  /// entities from memory and the local database at once; local writes to
  /// it that are still pending stay until the server answers them.
  /// Subscribers see the removals as deletions. Errors: not_found (naming
  /// the subscription), invalid_request (the last scope: subscribe to
  /// another first), unavailable, timeout.
  sync_error unsubscribe(const std::string& scope,
                         std::chrono::nanoseconds timeout = std::chrono::seconds(5));

  /// The scopes held now (as client_status::scopes).
  std::vector<std::string>
  scopes(std::chrono::nanoseconds timeout = std::chrono::seconds(5));

  /// Without a server, does nothing. false: drops the connection and stays
  /// offline; true: connects again and pushes what accumulated. Returns at
  /// once; writes and reads work either way.
  void set_online(bool online);

private:
  struct impl;
  explicit client(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

} // namespace memsync
