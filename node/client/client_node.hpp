// Assembles a client node: opens the local database, loads it into the
// memory store, and spawns memory_store -> flush_scheduler -> local_db, plus
// the network_syncer when a server is configured. The node is the parent of
// its actors: it starts them and stops them.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/client/flush_scheduler.hpp"
#include "actors/client/local_database.hpp" // local_snapshot
#include "actors/client/local_db.hpp"
#include "actors/client/memory_store.hpp"
#include "actors/client/network_syncer.hpp"
#include "node/client/client_config.hpp"
#include "node/client/tls_tunnel.hpp"

namespace memsync {

class client_node {
public:
  /// Opens the database and starts the actors. Throws local_db_error if the
  /// database cannot be used (it is then left untouched).
  client_node(caf::actor_system& sys, const client_config& cfg);
  ~client_node();

  store& app() { return app_; }
  const std::string& client_id() const { return snapshot_meta_.client_id; }
  /// Confirmed by the server, as loaded or last pulled.
  uint64_t last_mutation_id() const { return snapshot_meta_.last_mutation_id; }
  const cookie& cursor() const { return snapshot_meta_.cursor; }

  /// Time from opening the database until the store was interactive.
  std::chrono::nanoseconds load_time() const { return load_time_; }

  /// Flushes every write made so far, skipping the debounce. False on timeout
  /// or if the database keeps failing.
  bool flush_now(std::chrono::nanoseconds timeout);

  /// Flushes, then (with a server) waits until every change is pushed,
  /// acknowledged and pulled back. False on timeout.
  bool sync(std::chrono::nanoseconds timeout);

  /// Why the local database failed the last flush (e.g. a full disk), while
  /// it keeps failing; "" once a batch commits again (the failed writes stay
  /// in memory and are retried, so nothing is lost), or if the flush
  /// scheduler does not answer within `timeout`.
  std::string local_error(std::chrono::nanoseconds timeout);

  /// The syncer's view; nullopt without a server (or on timeout).
  std::optional<sync_status> sync_state(std::chrono::nanoseconds timeout);
  bool has_server() const { return static_cast<bool>(syncer_); }
  /// Why the last TLS connection to the server failed (empty: none did, or
  /// no TLS).
  std::string tls_error() const {
    return tunnel_ ? tunnel_->last_error() : std::string{};
  }
  /// Null when tracing is off.
  trace_sink* trace() const { return trace_.get(); }
  /// The syncer (invalid without a server), e.g. to ask many clients for
  /// their status at once.
  const network_syncer_actor& syncer() const { return syncer_; }

  /// Adds a scope pattern to the subscription (network_syncer's
  /// subscribe_atom) and returns at once; its entities arrive with the next
  /// pull. `unavailable` without a server, `timeout` if the syncer does not
  /// answer within `timeout`.
  sync_error subscribe(const std::string& pattern, std::chrono::nanoseconds timeout);
  /// Drops an entry of the subscription and its scopes' synced entities
  /// (pending local writes stay until answered). Errors as for subscribe.
  sync_error unsubscribe(const std::string& pattern, std::chrono::nanoseconds timeout);
  /// The scopes held (see network_syncer's scopes_atom); without a server
  /// (or on timeout) the configured list.
  std::vector<std::string> scopes(std::chrono::nanoseconds timeout);

  /// Drops the connection and stays offline (false), or connects again and
  /// pushes what accumulated (true). Writes work either way.
  void set_online(bool online);

  /// Sends `listener` a report after every batch that became durable.
  void watch_flushes(flush_listener_actor listener);

  /// Flushes (best effort within `timeout`) and stops the actors.
  void shutdown(std::chrono::nanoseconds timeout);

private:
  caf::actor_system& sys_;
  std::unique_ptr<tls_tunnel> tunnel_; // with TLS; outlives the connector's use
  local_snapshot snapshot_meta_;       // without entities and outbox
  std::shared_ptr<store_core> core_;
  std::shared_ptr<subscriber_list> subs_;
  std::shared_ptr<trace_sink> trace_;
  store app_;
  local_db_actor db_;
  flush_scheduler_actor flusher_;
  memory_store_actor memory_;
  connector_actor connector_;
  network_syncer_actor syncer_;
  std::vector<std::string> configured_scopes_;
  std::chrono::nanoseconds load_time_{0};
  bool stopped_ = false;
};

} // namespace memsync
