// A client node's options ([client], [local-db], [flush], [limits],
// [server], [sync], [trace]), their defaults and ranges, and their
// translation into the settings structs the client actors take.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "actors/client/flush_scheduler.hpp"
#include "actors/client/local_database.hpp"
#include "actors/client/network_syncer.hpp"
#include "actors/common/trace_sink.hpp"
#include "messages/validation.hpp"
#include "node/config/config.hpp"

namespace memsync {

struct client_config {
  std::string client_name; ///< [client] id
  local_db_settings db;    ///< [client] db-path, [local-db] ...
  flush_settings flush;    ///< [flush] ...
  data_limits limits;      ///< [limits] ...
  std::chrono::nanoseconds sync_timeout{std::chrono::seconds(30)};
  std::string server_host;  ///< [server] host; empty: work offline only
  uint16_t server_port = 0; ///< [server] port
  sync_settings sync;       ///< [server] token, [sync] ...
  trace_settings trace;     ///< [trace] ...
};

config_schema client_schema();

/// Validated typed settings. Throws config_error for cross-field problems
/// (e.g. a missing client id), naming the option.
client_config make_client_config(const config_values& values);

} // namespace memsync
