#include "node/client/client_config.hpp"

#include "messages/scopes.hpp"
#include "node/config/node_options.hpp"

namespace memsync {

using namespace std::chrono_literals;

void add_flush_options(config_schema& schema, const flush_settings& d) {
  schema
    .add_duration("flush.debounce", d.debounce, 0ns, 1h,
                  "delay after the first unflushed write before a flush")
    .add_integer("flush.max-batch", static_cast<int64_t>(d.max_batch), 1, 1000000,
                 "changes per local transaction; a fuller buffer flushes at once")
    .add_duration("flush.retry-min", d.retry_min, 1ms, 1h,
                  "first retry delay after a failed flush")
    .add_duration("flush.retry-max", d.retry_max, 1ms, 1h,
                  "longest retry delay after repeated failed flushes");
}

void add_sync_options(config_schema& schema, const sync_settings& d) {
  schema
    .add_duration("sync.push-debounce", d.push_debounce, 0ns, 1h,
                  "delay after a flush before pushing")
    .add_duration("sync.pull-interval", d.pull_interval, 1ms, 24h,
                  "fallback pull when no poke arrives")
    .add_duration("sync.retry-min", d.retry_min, 1ms, 1h, "first reconnect/retry delay")
    .add_duration("sync.retry-max", d.retry_max, 1ms, 1h, "longest reconnect/retry delay")
    .add_duration("sync.request-timeout", d.request_timeout, 1ms, 1h,
                  "how long any request to the server may take")
    .add_integer("sync.max-push-changes", static_cast<int64_t>(d.max_push_changes), 1,
                 100000, "changes per push")
    .add_integer("sync.max-push-bytes", static_cast<int64_t>(d.max_push_bytes), 1024,
                 256 << 20, "bytes of data per push (flow control)");
}

namespace {

/// retry-max below retry-min would make the backoff shrink.
void check_retry_bounds(const config_values& v, const std::string& section,
                        caf::timespan min, caf::timespan max) {
  if (max < min)
    throw config_error(v.origin(section + ".retry-max") + ": " + section
                       + ".retry-max: must not be below " + section + ".retry-min");
}

} // namespace

flush_settings read_flush_settings(const config_values& v) {
  flush_settings out;
  out.debounce = v.get_duration("flush.debounce");
  out.max_batch = static_cast<std::size_t>(v.get_integer("flush.max-batch"));
  out.retry_min = v.get_duration("flush.retry-min");
  out.retry_max = v.get_duration("flush.retry-max");
  check_retry_bounds(v, "flush", out.retry_min, out.retry_max);
  return out;
}

sync_settings read_sync_settings(const config_values& v) {
  sync_settings out;
  out.push_debounce = v.get_duration("sync.push-debounce");
  out.pull_interval = v.get_duration("sync.pull-interval");
  out.retry_min = v.get_duration("sync.retry-min");
  out.retry_max = v.get_duration("sync.retry-max");
  check_retry_bounds(v, "sync", out.retry_min, out.retry_max);
  out.request_timeout = v.get_duration("sync.request-timeout");
  out.max_push_changes = static_cast<uint64_t>(v.get_integer("sync.max-push-changes"));
  out.max_push_bytes = static_cast<uint64_t>(v.get_integer("sync.max-push-bytes"));
  return out;
}

config_schema client_schema() {
  const client_config d;
  const local_db_settings db;
  const data_limits limits;
  config_schema schema;
  schema
    .add_string("client.id", "", "client name; the local database adds a random suffix")
    .add_string("client.db-path", "client.db",
                "local SQLite file (\":memory:\" for none)")
    .add_string_list("client.scopes", d.scopes,
                     "scopes to hold: names or prefixes followed by '*' (\"*\": every "
                     "scope the token may read); subscribe/unsubscribe change it at "
                     "run time")
    .add_duration("client.sync-timeout", d.sync_timeout, 1ms, 24h,
                  "how long the 'sync' command waits")
    .add_string("local-db.synchronous", db.synchronous,
                "normal: a flushed change survives a crash of the process; "
                "full: it also survives power loss; off: neither is promised "
                "after an OS crash",
                {"off", "normal", "full"})
    .add_duration("local-db.busy-timeout", db.busy_timeout, 0ns, 1min,
                  "how long to wait for a locked database file")
    .add_integer("limits.max-data-bytes", static_cast<int64_t>(limits.max_bytes), 2,
                 64 << 20, "largest entity data (serialized JSON)")
    .add_integer("limits.max-depth", static_cast<int64_t>(limits.max_depth), 1, 1000,
                 "deepest nesting of entity data")
    .add_string("server.host", "", "server to sync with (empty: offline only)")
    .add_integer("server.port", 7878, 1, 65535, "server port")
    .add_string("server.token", "", "this client's token (see the server's tokens file)")
    .add_string("server.tls-ca", "",
                "CA file (PEM) that signed the server's certificate; set to use TLS")
    .add_string("server.tls-host", "",
                "name the server's certificate must carry (default: server.host)")
    .add_string("server.tls-cert", "",
                "client certificate (PEM), if the server asks for one")
    .add_string("server.tls-key", "", "its private key (PEM)");
  add_flush_options(schema, d.flush);
  add_sync_options(schema, d.sync);
  add_node_options(schema);
  add_trace_options(schema);
  return schema;
}

client_config make_client_config(const config_values& v) {
  client_config out;
  out.client_name = v.get_string("client.id");
  if (out.client_name.empty())
    throw config_error(v.origin("client.id")
                       + ": client.id: required (the name of this client)");
  if (auto err = validate_id(out.client_name); !err.ok())
    throw config_error(v.origin("client.id") + ": client.id: " + err.message);
  out.scopes = v.get_string_list("client.scopes");
  if (out.scopes.empty())
    throw config_error(v.origin("client.scopes")
                       + ": client.scopes: needs at least one scope (\"*\": every "
                         "scope the token may read)");
  for (auto& p : out.scopes)
    if (auto err = validate_pattern(p); !err.ok())
      throw config_error(v.origin("client.scopes") + ": client.scopes: " + err.message);
  out.db.path = v.get_string("client.db-path");
  out.db.client_name = out.client_name;
  out.db.synchronous = v.get_string("local-db.synchronous");
  out.db.busy_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
    v.get_duration("local-db.busy-timeout"));
  out.sync_timeout = v.get_duration("client.sync-timeout");
  out.flush = read_flush_settings(v);
  out.limits.max_bytes = static_cast<std::size_t>(v.get_integer("limits.max-data-bytes"));
  out.limits.max_depth = static_cast<std::size_t>(v.get_integer("limits.max-depth"));
  out.server_host = v.get_string("server.host");
  out.server_port = static_cast<uint16_t>(v.get_integer("server.port"));
  out.sync = read_sync_settings(v);
  out.tls.ca = v.get_string("server.tls-ca");
  out.tls.host = v.is_set("server.tls-host") ? v.get_string("server.tls-host")
                                             : out.server_host;
  out.tls.cert = v.get_string("server.tls-cert");
  out.tls.key = v.get_string("server.tls-key");
  check_tls_files(v, {"server.tls-ca", "server.tls-cert", "server.tls-key"});
  if (!out.tls.on() && !out.tls.cert.empty())
    throw config_error(
      v.origin("server.tls-cert")
      + ": server.tls-cert: needs server.tls-ca (TLS is off without it)");
  out.sync.token = v.get_string("server.token");
  if (!out.server_host.empty() && out.sync.token.empty())
    throw config_error(v.origin("server.token")
                       + ": server.token: required when server.host is set");
  out.trace = make_trace_settings(v);
  return out;
}

} // namespace memsync
