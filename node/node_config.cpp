#include "node/node_config.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/io/middleman.hpp>

namespace memsync {

using namespace std::chrono_literals;

void add_node_options(config_schema& schema) {
  schema
    .add_integer("scheduler.max-threads", 2, 1, 64,
                 "worker threads of the actor system")
    .add_string("scheduler.policy", "sharing",
                "'sharing' (lower latency across nodes) or 'stealing'",
                {"sharing", "stealing"})
    .add_duration("middleman.heartbeat-interval", 500ms, 0ns, 1min,
                  "heartbeat between nodes (set the same on both sides)")
    .add_duration("middleman.connection-timeout", 5s, 0ns, 1h,
                  "a peer silent this long is considered gone");
}

void add_trace_options(config_schema& schema) {
  schema
    .add_string("trace.mode", "off",
                "actor traces: off, sampled (one change in sample-every, the "
                "same ones on every node) or all",
                {"off", "sampled", "all"})
    .add_string("trace.file", "", "JSON-lines trace file (required unless off)")
    .add_integer("trace.sample-every", 100, 1, 1 << 30,
                 "sampled: record one trace id in N (use the same N on every node)")
    .add_integer("trace.buffer", 65536, 16, 1 << 24,
                 "events waiting for the trace writer; more are dropped and counted");
}

trace_settings make_trace_settings(const config_values& v) {
  trace_settings out;
  auto mode = v.get_string("trace.mode");
  out.mode = mode == "all"       ? trace_mode::all
             : mode == "sampled" ? trace_mode::sampled
                                 : trace_mode::off;
  out.file = v.get_string("trace.file");
  out.sample_every = static_cast<uint64_t>(v.get_integer("trace.sample-every"));
  out.buffer = static_cast<std::size_t>(v.get_integer("trace.buffer"));
  if (out.mode != trace_mode::off && out.file.empty())
    throw config_error(v.origin("trace.mode") + ": trace.file: required when trace.mode is "
                       + mode);
  return out;
}

config_schema client_schema() {
  config_schema schema;
  schema
    .add_string("client.id", "",
                "client name; the local database adds a random suffix")
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
    .add_integer("limits.max-depth", 64, 1, 1000,
                 "deepest nesting of entity data")
    .add_string("server.host", "", "server to sync with (empty: offline only)")
    .add_integer("server.port", 7878, 1, 65535, "server port")
    .add_string("server.token", "", "this client's token (see the server's tokens file)")
    .add_duration("sync.push-debounce", 1s, 0ns, 1h,
                  "delay after a flush before pushing")
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
  out.sync.max_push_changes = static_cast<uint64_t>(v.get_integer("sync.max-push-changes"));
  out.sync.max_push_bytes = static_cast<uint64_t>(v.get_integer("sync.max-push-bytes"));
  if (!out.server_host.empty() && out.sync.token.empty())
    throw config_error(v.origin("server.token")
                       + ": server.token: required when server.host is set");
  out.trace = make_trace_settings(v);
  return out;
}

void apply_caf_settings(const config_values& v, caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads",
          static_cast<size_t>(v.get_integer("scheduler.max-threads")));
  cfg.set("scheduler.policy", caf::atom_from_string(v.get_string("scheduler.policy")));
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{v.get_duration("middleman.heartbeat-interval")});
  cfg.set("middleman.connection-timeout",
          caf::timespan{v.get_duration("middleman.connection-timeout")});
  // Nodes print their own errors; CAF's console logger would interleave.
  cfg.set("logger.console", caf::atom("none"));
  cfg.load<caf::io::middleman>();
}

} // namespace memsync
