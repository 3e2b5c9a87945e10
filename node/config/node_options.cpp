#include "node/config/node_options.hpp"

#include <fstream>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/io/middleman.hpp>

namespace memsync {

using namespace std::chrono_literals;

void add_node_options(config_schema& schema) {
  schema
    .add_integer("scheduler.max-threads", 2, 1, 64, "worker threads of the actor system")
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
    throw config_error(v.origin("trace.mode")
                       + ": trace.file: required when trace.mode is " + mode);
  return out;
}

void check_tls_files(const config_values& v, std::initializer_list<const char*> files) {
  for (auto key : files)
    if (auto path = v.get_string(key); !path.empty() && !std::ifstream{path})
      throw config_error(v.origin(key) + ": " + key + ": cannot read " + path);
  auto cert = v.get_string("server.tls-cert");
  if (cert.empty() != v.get_string("server.tls-key").empty())
    throw config_error(v.origin(cert.empty() ? "server.tls-key" : "server.tls-cert")
                       + ": server.tls-cert and server.tls-key go together");
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
