// A client node's options ([client], [local-db], [flush], [limits],
// [server], [sync], [trace]), their defaults and ranges, and their
// translation into the settings structs the client actors take.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/client/tuning.hpp"
#include "actors/common/trace_sink.hpp"
#include "messages/validation.hpp"
#include "node/config/config.hpp"

namespace memsync {

/// TLS towards the server: on when `ca` is set.
struct tls_client_settings {
  std::string ca;   ///< CA file that signed the server's certificate
  std::string host; ///< the name the certificate must carry
  std::string cert; ///< optional client certificate
  std::string key;  ///< its key
  bool on() const { return !ca.empty(); }
};

struct client_config {
  std::string client_name; ///< [client] id
  /// [client] scopes: the subscription at start-up (scope names or
  /// prefixes followed by '*'; "*": every scope the token may read).
  std::vector<std::string> scopes{"*"};
  local_db_settings db; ///< [client] db-path, [local-db] ...
  flush_settings flush; ///< [flush] ...
  data_limits limits;   ///< [limits] ...
  std::chrono::nanoseconds sync_timeout{std::chrono::seconds(30)};
  std::string server_host;  ///< [server] host; empty: work offline only
  tls_client_settings tls;  ///< [server] tls-*
  uint16_t server_port = 0; ///< [server] port
  sync_settings sync;       ///< [server] token, [sync] ...
  trace_settings trace;     ///< [trace] ...
};

config_schema client_schema();

/// Declares [flush] debounce, max-batch, retry-min and retry-max with the
/// values of `defaults` as defaults. The one declaration of these options:
/// a client node passes flush_settings{}, the load test its own.
void add_flush_options(config_schema& schema, const flush_settings& defaults = {});

/// Declares [sync] push-debounce, pull-interval, retry-min, retry-max,
/// request-timeout, max-push-changes and max-push-bytes, as above. (The
/// token is a [server] option of the client node.)
void add_sync_options(config_schema& schema, const sync_settings& defaults = {});

/// The options add_flush_options declared. Throws config_error naming the
/// option if flush.retry-max is below flush.retry-min.
flush_settings read_flush_settings(const config_values& values);

/// The options add_sync_options declared (token empty). Throws config_error
/// naming the option if sync.retry-max is below sync.retry-min.
sync_settings read_sync_settings(const config_values& values);

/// Validated typed settings. Throws config_error for cross-field problems
/// (e.g. a missing client id), naming the option.
client_config make_client_config(const config_values& values);

} // namespace memsync
