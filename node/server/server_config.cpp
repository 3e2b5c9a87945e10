#include "node/server/server_config.hpp"

#include <algorithm>
#include <fstream>

#include "actors/server/tuning.hpp"
#include "node/config/node_options.hpp"

namespace memsync {

using namespace std::chrono_literals;

config_schema server_schema() {
  config_schema schema;
  schema.add_string("server.id", "server-1", "name of this server node")
    .add_string("server.host", "127.0.0.1", "address to listen on")
    .add_integer("server.port", 7878, 0, 65535, "port to listen on (0: any free)")
    .add_string("server.backend", "sqlite",
                "storage of the replication log: sqlite (one file, one node) or "
                "postgres (several nodes may share one database)",
                {"sqlite", "postgres"})
    .add_string("server.db-path", "server.db",
                "SQLite file of the replication log (backend = sqlite)")
    .add_string("server.postgres", "",
                "libpq connection string (backend = postgres), e.g. "
                "'host=127.0.0.1 port=5432 dbname=memsync user=memsync'")
    .add_string("server.postgres-schema", "memsync",
                "schema of the tables (backend = postgres); nodes that share "
                "one history use the same")
    .add_string("server.tokens-file", "",
                "file of 'TOKEN CLIENT-NAME [GRANT...]' lines: who may connect as "
                "whom, and which scopes each token may read or write (GRANT: "
                "read:PATTERN or write:PATTERN; none: write:*); re-read on SIGHUP")
    .add_string("server.scopes-file", "",
                "file of 'TYPE FIELD' lines: an entity of TYPE belongs to the scope "
                "its top-level string field FIELD names (other types: 'default'); "
                "empty: every entity in 'default'; re-read on SIGHUP")
    .add_integer("limits.max-data-bytes", static_cast<int64_t>(data_limits{}.max_bytes),
                 2, 64 << 20, "largest entity data (serialized JSON)")
    .add_integer("limits.max-depth", static_cast<int64_t>(data_limits{}.max_depth), 1,
                 1000, "deepest nesting of entity data")
    .add_integer("limits.max-push-changes",
                 static_cast<int64_t>(tuning::max_push_changes), 1, 100000,
                 "changes per push a client may send")
    .add_integer("limits.max-push-bytes", static_cast<int64_t>(tuning::max_push_bytes),
                 1024, 256 << 20, "bytes per push a client may send")
    .add_integer("limits.max-pull-bytes", static_cast<int64_t>(tuning::max_pull_bytes),
                 1024, 256 << 20,
                 "bytes of entities per pull reply; a larger answer comes in pages")
    .add_duration("limits.log-timeout", tuning::log_timeout, 1ms, 1h,
                  "how long a session waits for the replication log")
    // A person's devices plus reconnections whose old session has not ended
    // yet; far below what would exhaust the server (50,000 hellos once did).
    .add_integer("limits.max-sessions", 64, 1, 100000,
                 "live sessions per client name; a further hello is refused")
    // The guard (docs/network-front.md). Its defaults leave room for the
    // largest push (limits.max-push-bytes plus per-change overhead) and for
    // a full pull reply towards a slow reader on a busy machine.
    .add_boolean("server.guard", true,
                 "read every frame before CAF does; false is UNSAFE (any peer can "
                 "stall or kill the server) and only meant for benchmarks")
    .add_integer("server.max-frame-bytes", 32 << 20, 64 << 10, int64_t{1} << 30,
                 "largest frame a client may send; a larger header closes the "
                 "connection before anything is allocated")
    .add_duration("server.handshake-timeout", 10s, 10ms, 10min,
                  "a connection that has not said a successful hello by then is "
                  "closed")
    .add_integer("server.max-connections", 256, 1, 100000,
                 "client connections in all (each costs three descriptors)")
    .add_integer("server.max-connections-per-address", 64, 1, 100000,
                 "client connections from one source address")
    .add_integer("server.max-queued-bytes", 64 << 20, 64 << 10, int64_t{4} << 30,
                 "bytes waiting for a client that does not read; beyond them it "
                 "is disconnected");
  schema
    .add_string("server.tls-cert", "",
                "certificate chain (PEM) for TLS; set to require TLS from every "
                "client (tools/make_certs.sh makes a private CA and one)")
    .add_string("server.tls-key", "", "the certificate's private key (PEM)")
    .add_string("server.tls-client-ca", "",
                "optional: clients must present a certificate this CA signed "
                "(tokens authenticate clients either way)");
  add_node_options(schema);
  add_trace_options(schema);
  return schema;
}

server_config make_server_config(const config_values& v) {
  server_config out;
  out.server_id = v.get_string("server.id");
  out.host = v.get_string("server.host");
  out.port = static_cast<uint16_t>(v.get_integer("server.port"));
  out.backend = v.get_string("server.backend");
  out.db_path = v.get_string("server.db-path");
  out.postgres = v.get_string("server.postgres");
  out.postgres_schema = v.get_string("server.postgres-schema");
  if (out.backend == "postgres" && out.postgres.empty())
    throw config_error(v.origin("server.backend")
                       + ": server.postgres: required when server.backend is "
                         "postgres (a libpq connection string)");
  if (out.postgres_schema.empty() || out.postgres_schema.size() > 63)
    throw config_error(v.origin("server.postgres-schema")
                       + ": server.postgres-schema: 1 to 63 characters");
  auto tokens = v.get_string("server.tokens-file");
  if (tokens.empty())
    throw config_error(v.origin("server.tokens-file")
                       + ": server.tokens-file: required (who may connect)");
  out.tokens_file = tokens;
  out.scopes_file = v.get_string("server.scopes-file");
  try {
    out.tokens = token_table::load(tokens);
  } catch (const std::invalid_argument& e) {
    throw config_error(e.what());
  }
  if (!out.scopes_file.empty() && !std::ifstream{out.scopes_file})
    throw config_error(v.origin("server.scopes-file")
                       + ": server.scopes-file: cannot read '" + out.scopes_file + "'");
  try {
    if (!out.scopes_file.empty())
      out.rules = load_scope_rules(out.scopes_file);
  } catch (const std::invalid_argument& e) {
    throw config_error(e.what());
  }
  out.limits.data.max_bytes = static_cast<std::size_t>(
    v.get_integer("limits.max-data-bytes"));
  out.limits.data.max_depth = static_cast<std::size_t>(v.get_integer("limits.max-depth"));
  out.limits.max_push_changes = static_cast<std::size_t>(
    v.get_integer("limits.max-push-changes"));
  out.limits.max_push_bytes = static_cast<std::size_t>(
    v.get_integer("limits.max-push-bytes"));
  out.limits.max_pull_bytes = static_cast<std::size_t>(
    v.get_integer("limits.max-pull-bytes"));
  out.limits.log_timeout = v.get_duration("limits.log-timeout");
  out.max_sessions = static_cast<std::size_t>(v.get_integer("limits.max-sessions"));
  out.guard = v.get_boolean("server.guard");
  out.front.max_frame_bytes = static_cast<std::size_t>(
    v.get_integer("server.max-frame-bytes"));
  out.front.handshake_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
    v.get_duration("server.handshake-timeout"));
  out.front.max_connections = static_cast<std::size_t>(
    v.get_integer("server.max-connections"));
  out.front.max_connections_per_address = static_cast<std::size_t>(
    v.get_integer("server.max-connections-per-address"));
  out.front.max_queued_bytes = static_cast<std::size_t>(
    v.get_integer("server.max-queued-bytes"));
  if (out.front.max_frame_bytes < out.limits.max_push_bytes + (1 << 20))
    throw config_error(v.origin(v.is_set("server.max-frame-bytes")
                                  ? "server.max-frame-bytes"
                                  : "limits.max-push-bytes")
                       + ": server.max-frame-bytes: must exceed limits.max-push-bytes "
                         "by at least 1 MiB (a push's frame carries more than its "
                         "data)");
  // A page holds up to max-pull-bytes, or one entity if that is larger.
  auto largest_page = std::max(out.limits.max_pull_bytes, out.limits.data.max_bytes);
  if (out.guard && out.front.max_queued_bytes < largest_page + (1 << 20))
    throw config_error(v.origin(v.is_set("server.max-queued-bytes")
                                  ? "server.max-queued-bytes"
                                  : "limits.max-pull-bytes")
                       + ": server.max-queued-bytes: must exceed limits.max-pull-bytes "
                         "(and limits.max-data-bytes) by at least 1 MiB, or no pull "
                         "reply could be sent");
  if (out.front.max_connections_per_address > out.front.max_connections)
    throw config_error(v.origin("server.max-connections-per-address")
                       + ": server.max-connections-per-address: must not exceed "
                         "server.max-connections");
  out.tls.cert = v.get_string("server.tls-cert");
  out.tls.key = v.get_string("server.tls-key");
  out.tls.client_ca = v.get_string("server.tls-client-ca");
  check_tls_files(v, {"server.tls-cert", "server.tls-key", "server.tls-client-ca"});
  if (!out.tls.on() && !out.tls.client_ca.empty())
    throw config_error(v.origin("server.tls-client-ca")
                       + ": server.tls-client-ca: needs server.tls-cert (TLS is off)");
  if (out.tls.on() && !out.guard)
    throw config_error(
      v.origin("server.guard")
      + ": server.guard: TLS is terminated by the guard; it cannot be off");
  out.trace = make_trace_settings(v);
  return out;
}

} // namespace memsync
