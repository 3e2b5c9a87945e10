// A server node's options ([server], [limits], [trace]), their defaults and
// ranges, the tokens file, and their translation into the settings the
// server actors take.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "actors/common/trace_sink.hpp"
#include "actors/server/scope_rules_file.hpp"
#include "actors/server/session.hpp"
#include "actors/server/token_table.hpp"
#include "node/config/config.hpp"
#include "node/server/frame_guard.hpp"

namespace memsync {

/// TLS for clients: on when `cert` is set (the guard terminates it).
struct tls_server_settings {
  std::string cert;      ///< certificate chain (PEM)
  std::string key;       ///< its private key (PEM)
  std::string client_ca; ///< optional: clients must present a certificate it signed
  bool on() const { return !cert.empty(); }
};

struct server_config {
  std::string server_id;
  std::string host;
  uint16_t port = 0;           ///< 0: any free port
  std::string backend;         ///< "sqlite" or "postgres"
  std::string db_path;         ///< sqlite
  std::string postgres;        ///< libpq connection string
  std::string postgres_schema; ///< postgres
  token_table tokens;          ///< who may connect as whom
  std::string tokens_file;     ///< where `tokens` came from (re-read on reload)
  scope_rules rules;           ///< the scopes file's (none: all in `default`)
  std::string scopes_file;     ///< where `rules` came from (empty: none)
  tls_server_settings tls;     ///< [server] tls-*
  session_limits limits;
  std::size_t max_sessions = 64; ///< live sessions per client name
  /// false only for benchmarks: the middleman itself then listens on
  /// host:port and any peer can stall or kill the server (UNSAFE).
  bool guard = true;
  guard_limits front; ///< what the guard enforces per connection
  trace_settings trace;
};

config_schema server_schema();
/// Throws config_error (also for a bad tokens or scopes file, naming file
/// and line).
server_config make_server_config(const config_values& values);

} // namespace memsync
