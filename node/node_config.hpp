// The options of each node kind, their defaults and ranges, and their
// translation into the settings structs the actors take.
#pragma once

#include <chrono>
#include <string>

#include "actors/flush_scheduler.hpp"
#include "actors/local_database.hpp"
#include "actors/network_syncer.hpp"
#include "actors/trace_sink.hpp"
#include "messages/validation.hpp"
#include "node/config.hpp"

namespace caf {
class actor_system_config;
}

namespace memsync {

struct client_config {
  std::string client_name;   ///< [client] id
  local_db_settings db;      ///< [client] db-path, [local-db] ...
  flush_settings flush;      ///< [flush] ...
  data_limits limits;        ///< [limits] ...
  std::chrono::nanoseconds sync_timeout{std::chrono::seconds(30)};
  std::string server_host;   ///< [server] host; empty: work offline only
  uint16_t server_port = 0;  ///< [server] port
  sync_settings sync;        ///< [server] token, [sync] ...
  trace_settings trace;      ///< [trace] ...
};

config_schema client_schema();

/// Validated typed settings. Throws config_error for cross-field problems
/// (e.g. a missing client id), naming the option.
client_config make_client_config(const config_values& values);

/// Declares the options every node kind has: CAF's scheduler and
/// middleman (heartbeats) settings.
void add_node_options(config_schema& schema);

/// Declares [trace] (client and server nodes).
void add_trace_options(config_schema& schema);

/// The [trace] section. Throws config_error when tracing is on without a file.
trace_settings make_trace_settings(const config_values& values);

/// Applies those options to CAF's configuration and loads the middleman.
void apply_caf_settings(const config_values& values,
                        caf::actor_system_config& cfg);

} // namespace memsync
