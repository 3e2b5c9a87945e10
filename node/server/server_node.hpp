// Assembles a server node: storage backend -> replication_log, gateway
// published on a private loopback port behind the guard that listens on
// host:port (docs/network-front.md), and a supervisor that republishes a fresh gateway
// if the published one dies (so other clients are never locked out). With
// the postgres backend, a listener hears the other nodes' commits on the
// same database so this node pokes its clients for them too. A watcher
// monitors the replication log: if it ends while the node runs, the node
// cannot serve anyone any more, says so on stderr and reports failed(), so
// the program exits non-zero (and a supervisor restarts it) instead of
// lingering as a zombie.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <caf/fwd.hpp>

#include "actors/server/gateway.hpp"
#include "actors/server/replication_log.hpp"
#include "node/server/server_config.hpp"

namespace caf {
class actor_system_config;
}

namespace memsync {

class frame_guard;
class postgres_listener;

class server_node {
public:
  /// Opens the database and publishes the gateway. Throws storage_error or
  /// std::runtime_error (e.g. the port is taken).
  server_node(caf::actor_system& sys, const server_config& cfg);
  ~server_node();

  uint16_t port() const { return port_; }
  /// Null when tracing is off.
  trace_sink* trace() const { return trace_.get(); }
  /// The node's replication log (for status, and for tests that end it);
  /// null once stopped.
  replication_log_actor log() const { return log_; }

  /// Re-reads the tokens file and the scopes file (live sessions get their
  /// new grants, the log the new rules) and returns the line to print:
  /// "reloaded tokens (N) and scope rules (M)", or "error: reload: " and
  /// why, naming file and line (the old tables stay in force). Blocks until
  /// the gateway answered; not on an actor's thread.
  std::string reload();

  /// Stops accepting clients and stops every actor of the node.
  void stop();

  /// True once the replication log ended while the node was running (it
  /// cannot go on: stop() and exit non-zero). Any thread.
  bool failed() const { return health_->failed.load(); }
  /// Why it failed (empty while it has not).
  std::string failure() const;

private:
  /// Shared with the watcher, which may outlive a moment of the node.
  struct health {
    std::atomic<bool> stopping{false};
    std::atomic<bool> failed{false};
    mutable std::mutex mtx;
    std::string why;
  };

  caf::actor_system& sys_;
  std::shared_ptr<health> health_ = std::make_shared<health>();
  caf::actor watcher_;
  std::shared_ptr<trace_sink> trace_;
  replication_log_actor log_;
  caf::actor supervisor_;
  std::unique_ptr<postgres_listener> listener_; // postgres only
  std::shared_ptr<frame_guard> guard_;          // null with server.guard = false
  uint16_t port_ = 0;                           // the public one
  uint16_t published_port_ = 0;                 // the middleman's
  bool stopped_ = false;
};

} // namespace memsync
