// The options of each node kind, their defaults and ranges, and their
// translation into the settings structs the actors take.
#pragma once

#include <chrono>
#include <string>

#include "actors/flush_scheduler.hpp"
#include "actors/local_database.hpp"
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
};

config_schema client_schema();

/// Validated typed settings. Throws config_error for cross-field problems
/// (e.g. a missing client id), naming the option.
client_config make_client_config(const config_values& values);

/// Scheduler and other CAF settings shared by every node kind.
void apply_caf_settings(const config_values& values,
                        caf::actor_system_config& cfg);

} // namespace memsync
