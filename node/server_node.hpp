// Assembles a server node: storage backend -> replication_log, gateway
// published on host:port, and a supervisor that republishes a fresh gateway
// if the published one dies (so other clients are never locked out). With
// the postgres backend, a listener hears the other nodes' commits on the
// same database so this node pokes its clients for them too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/gateway.hpp"
#include "actors/replication_log.hpp"
#include "node/config.hpp"

namespace caf {
class actor_system_config;
}

namespace memsync {

class postgres_listener;

struct server_config {
  std::string server_id;
  std::string host;
  uint16_t port = 0; ///< 0: any free port
  std::string backend;         ///< "sqlite" or "postgres"
  std::string db_path;         ///< sqlite
  std::string postgres;        ///< libpq connection string
  std::string postgres_schema; ///< postgres
  std::map<std::string, std::string> tokens; ///< token -> client name
  session_limits limits;
};

config_schema server_schema();
/// Throws config_error (also for a bad tokens file, naming file and line).
server_config make_server_config(const config_values& values);

/// Reads "TOKEN CLIENT-NAME" lines ('#' starts a comment).
std::map<std::string, std::string> load_tokens(const std::string& path);

class server_node {
public:
  /// Opens the database and publishes the gateway. Throws storage_error or
  /// std::runtime_error (e.g. the port is taken).
  server_node(caf::actor_system& sys, const server_config& cfg);
  ~server_node();

  uint16_t port() const { return port_; }

  /// Stops accepting clients and stops every actor of the node.
  void stop();

private:
  caf::actor_system& sys_;
  replication_log_actor log_;
  caf::actor supervisor_;
  std::unique_ptr<postgres_listener> listener_; // postgres only
  uint16_t port_ = 0;
  bool stopped_ = false;
};

} // namespace memsync
