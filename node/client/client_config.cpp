#include "node/client/client_config.hpp"

#include "node/config/node_options.hpp"

namespace memsync {

using namespace std::chrono_literals;

config_schema client_schema() {
  config_schema schema;
  schema
    .add_string("client.id", "", "client name; the local database adds a random suffix")
    .add_string("client.db-path", "client.db",
                "local SQLite file (\":memory:\" for none)")
    .add_duration("client.sync-timeout", 30s, 1ms, 24h,
                  "how long the 'sync' command waits")
    .add_string("local-db.synchronous", "normal",
                "normal: a flushed change survives a crash of the process; "
                "full: it also survives power loss; off: neither is promised "
                "after an OS crash",
                {"off", "normal", "full"})
    .add_duration("local-db.busy-timeout", 1s, 0ns, 1min,
                  "how long to wait for a locked database file")
    .add_duration("flush.debounce", 100ms, 0ns, 1h,
                  "delay after the first unflushed write before a flush")
    .add_integer("flush.max-batch", 1000, 1, 1000000,
                 "changes per local transaction; a fuller buffer flushes at once")
    .add_duration("flush.retry-min", 100ms, 1ms, 1h,
                  "first retry delay after a failed flush")
    .add_duration("flush.retry-max", 5s, 1ms, 1h,
                  "longest retry delay after repeated failed flushes")
    .add_integer("limits.max-data-bytes", 1 << 20, 2, 64 << 20,
                 "largest entity data (serialized JSON)")
    .add_integer("limits.max-depth", 64, 1, 1000, "deepest nesting of entity data")
    .add_string("server.host", "", "server to sync with (empty: offline only)")
    .add_integer("server.port", 7878, 1, 65535, "server port")
    .add_string("server.token", "", "this client's token (see the server's tokens file)")
    .add_duration("sync.push-debounce", 1s, 0ns, 1h, "delay after a flush before pushing")
    .add_duration("sync.pull-interval", 5s, 1ms, 24h,
                  "fallback pull when no poke arrives")
    .add_duration("sync.retry-min", 100ms, 1ms, 1h, "first reconnect/retry delay")
    .add_duration("sync.retry-max", 10s, 1ms, 1h, "longest reconnect/retry delay")
    .add_duration("sync.request-timeout", 10s, 1ms, 1h,
                  "how long any request to the server may take")
    .add_integer("sync.max-push-changes", 500, 1, 100000, "changes per push")
    .add_integer("sync.max-push-bytes", 1 << 20, 1024, 256 << 20,
                 "bytes of data per push (flow control)");
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
  out.db.path = v.get_string("client.db-path");
  out.db.client_name = out.client_name;
  out.db.synchronous = v.get_string("local-db.synchronous");
  out.db.busy_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
    v.get_duration("local-db.busy-timeout"));
  out.sync_timeout = v.get_duration("client.sync-timeout");
  out.flush.debounce = v.get_duration("flush.debounce");
  out.flush.max_batch = static_cast<std::size_t>(v.get_integer("flush.max-batch"));
  out.flush.retry_min = v.get_duration("flush.retry-min");
  out.flush.retry_max = v.get_duration("flush.retry-max");
  if (out.flush.retry_max < out.flush.retry_min)
    throw config_error(v.origin("flush.retry-max")
                       + ": flush.retry-max: must not be below flush.retry-min");
  out.limits.max_bytes = static_cast<std::size_t>(v.get_integer("limits.max-data-bytes"));
  out.limits.max_depth = static_cast<std::size_t>(v.get_integer("limits.max-depth"));
  out.server_host = v.get_string("server.host");
  out.server_port = static_cast<uint16_t>(v.get_integer("server.port"));
  out.sync.token = v.get_string("server.token");
  out.sync.push_debounce = v.get_duration("sync.push-debounce");
  out.sync.pull_interval = v.get_duration("sync.pull-interval");
  out.sync.retry_min = v.get_duration("sync.retry-min");
  out.sync.retry_max = v.get_duration("sync.retry-max");
  out.sync.request_timeout = v.get_duration("sync.request-timeout");
  out.sync.max_push_changes = static_cast<uint64_t>(
    v.get_integer("sync.max-push-changes"));
  out.sync.max_push_bytes = static_cast<uint64_t>(v.get_integer("sync.max-push-bytes"));
  if (!out.server_host.empty() && out.sync.token.empty())
    throw config_error(v.origin("server.token")
                       + ": server.token: required when server.host is set");
  out.trace = make_trace_settings(v);
  return out;
}

} // namespace memsync
