#include "node/loadtest/loadtest_config.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <stdexcept>

#include "node/client/client_config.hpp"
#include "node/config/node_options.hpp"

namespace memsync {

using namespace std::chrono_literals;

// A load run lasts seconds and measures the engine, not its debounces: the
// simulated clients flush after 5 ms and push at once (a client node waits
// 100 ms and 1 s), and come back from an offline phase or a lost server
// within 2 s (a client node backs off up to 10 s).
flush_settings loadtest_config::default_flush() {
  flush_settings s;
  s.debounce = 5ms;
  return s;
}

sync_settings loadtest_config::default_sync() {
  sync_settings s;
  s.push_debounce = 0ns;
  s.retry_min = 50ms;
  s.retry_max = 2s;
  return s;
}

config_schema loadtest_schema() {
  const loadtest_config defaults;
  config_schema schema;
  schema.add_integer("loadtest.clients", 50, 1, 100000, "simulated clients")
    .add_integer("loadtest.client-systems", 1, 1, 100000,
                 "actor systems the clients are spread over, each with its own "
                 "connection to each server (1: all clients share one "
                 "connection, as CAF sends every actor of a system over one)")
    .add_duration("loadtest.connect-interval", 0ns, 0ns, 1min,
                  "pause between starting two clients (0: all at once)")
    .add_duration("loadtest.duration", 5s, 1ms, 24h,
                  "how long the clients write (steady mode), warm-up included")
    .add_duration("loadtest.warm-up", 1s, 0ns, 24h,
                  "first part of the run left out of throughput and latency")
    .add_duration("loadtest.settle-timeout", 60s, 1ms, 24h,
                  "how long the clients may take to converge after the run "
                  "(fixed mode: to see every entity)")
    .add_duration("loadtest.progress-interval", 1s, 0ns, 1h,
                  "how often the progress line is updated (0: never)")
    .add_string("loadtest.client-prefix", "lt",
                "simulated clients are named PREFIX-1 .. PREFIX-N")
    .add_string("loadtest.report-json", "", "write the report as JSON here")
    .add_string("loadtest.report-svg", "",
                "draw throughput, latency over time and the latency histogram here")
    .add_string("workload.mode", "steady",
                "steady: paced writes for a duration; fixed: every client writes "
                "entities-per-client distinct entities as fast as it can; drain: "
                "offline-clients go offline, write pending-changes each and "
                "reconnect at once; storm: the server (mode child) is killed "
                "under every client, restarted after outage, and all reconnect",
                {"steady", "fixed", "drain", "storm"})
    .add_duration("workload.write-interval", 1s, 1us, 1h,
                  "time between two writes of one client (steady mode)")
    .add_integer("workload.put-percent", 70, 0, 100, "share of writes that are puts")
    .add_integer("workload.patch-percent", 25, 0, 100,
                 "share of writes that are merge patches")
    .add_integer("workload.del-percent", 5, 0, 100, "share of writes that are deletes")
    .add_integer("workload.entities-per-client", 20, 1, 10000000,
                 "entities each client owns (fixed mode: M)")
    .add_integer("workload.scopes", 1, 1, 100000,
                 "scopes the clients are spread over (client i in scope-(i mod "
                 "N)); each writes in its own scope, collides with the clients "
                 "of its scope and holds only that scope (1: no scopes)")
    .add_integer("workload.hot-entities", 10, 0, 10000000,
                 "entities every client (of a scope) writes to (where writes "
                 "collide)")
    .add_integer("workload.collision-percent", 10, 0, 100,
                 "share of writes that go to the shared entities")
    .add_integer("workload.payload-bytes", 100, 0, 1 << 20, "payload per put")
    .add_integer("workload.offline-clients", 0, 0, 100000,
                 "clients that go offline once during the run (and keep writing)")
    .add_duration("workload.offline-for", 1s, 1ms, 24h,
                  "how long each of them stays offline")
    .add_integer("workload.latency-observers", 0, 0, 100000,
                 "clients that time propagation (0: every client)")
    .add_integer("workload.pending-changes", 100000, 1, 10000000,
                 "drain: distinct entities each offline client writes while "
                 "offline (pending changes it then pushes)")
    .add_duration("workload.outage", 2s, 1ms, 1h,
                  "storm: how long the server stays down between kill and restart")
    .add_integer("workload.outage-writes", 1, 0, 1000000,
                 "storm: writes of each client while the server is down")
    .add_string("client.local-db", "memory",
                "each simulated client's local database: in memory or a file "
                "in a temporary directory",
                {"memory", "files"})
    .add_string("local-db.synchronous", local_db_settings{}.synchronous,
                "as for a client node", {"off", "normal", "full"})
    .add_string("server.mode", "in-process",
                "in-process: start server nodes in this process (SQLite in a "
                "temporary directory); child: run one `syncnode server` process "
                "(it can be killed and restarted: the storm workload); address: "
                "load running servers",
                {"in-process", "child", "address"})
    .add_string("server.program", "",
                "child: the syncnode program to run as the server (empty: the "
                "one running the load test)")
    .add_integer("server.nodes", 1, 1, 64,
                 "in-process: how many server nodes (each its own database)")
    .add_string("server.addresses", "",
                "address mode: host:port[,host:port...]; clients are assigned "
                "round-robin")
    .add_string("server.tokens-file", "",
                "address mode: the servers' tokens file; it must list every "
                "simulated client name");
  add_flush_options(schema, defaults.flush);
  add_sync_options(schema, defaults.sync);
  add_node_options(schema);
  return schema;
}

std::string loadtest_scope_name(std::size_t k) {
  return "scope-" + std::to_string(k);
}

std::vector<server_address> parse_server_list(const std::string& text) {
  std::vector<server_address> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos)
      end = text.size();
    auto item = text.substr(start, end - start);
    auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      throw std::invalid_argument("expected host:port, got '" + item + "'");
    auto port_text = item.substr(colon + 1);
    if (port_text.find_first_not_of("0123456789") != std::string::npos
        || port_text.size() > 5 || std::stoi(port_text) < 1
        || std::stoi(port_text) > 65535)
      throw std::invalid_argument("bad port in '" + item + "'");
    out.push_back({item.substr(0, colon), static_cast<uint16_t>(std::stoi(port_text))});
    start = end + 1;
  }
  return out;
}

loadtest_config make_loadtest_config(const config_values& v) {
  auto fail = [&](const std::string& key, const std::string& why) {
    return config_error(v.origin(key) + ": " + key + ": " + why);
  };
  loadtest_config out;
  out.clients = static_cast<size_t>(v.get_integer("loadtest.clients"));
  out.client_systems = static_cast<size_t>(v.get_integer("loadtest.client-systems"));
  if (out.client_systems > out.clients)
    throw fail("loadtest.client-systems", "more than loadtest.clients");
  out.connect_interval = v.get_duration("loadtest.connect-interval");
  out.duration = v.get_duration("loadtest.duration");
  out.warm_up = v.get_duration("loadtest.warm-up");
  if (out.warm_up >= out.duration)
    throw fail("loadtest.warm-up", "must be shorter than loadtest.duration");
  out.settle_timeout = v.get_duration("loadtest.settle-timeout");
  out.progress_interval = v.get_duration("loadtest.progress-interval");
  out.client_prefix = v.get_string("loadtest.client-prefix");
  if (auto err = validate_id(out.client_prefix + "-1"); !err.ok())
    throw fail("loadtest.client-prefix", err.message);
  out.report_json = v.get_string("loadtest.report-json");
  out.report_svg = v.get_string("loadtest.report-svg");

  auto mode = v.get_string("workload.mode");
  out.mode = mode == "fixed"   ? loadtest_config::scenario::fixed
             : mode == "drain" ? loadtest_config::scenario::drain
             : mode == "storm" ? loadtest_config::scenario::storm
                               : loadtest_config::scenario::steady;
  out.fixed = out.mode == loadtest_config::scenario::fixed;
  out.write_interval = v.get_duration("workload.write-interval");
  out.put_percent = static_cast<int>(v.get_integer("workload.put-percent"));
  out.patch_percent = static_cast<int>(v.get_integer("workload.patch-percent"));
  out.del_percent = static_cast<int>(v.get_integer("workload.del-percent"));
  if (out.put_percent + out.patch_percent + out.del_percent != 100)
    throw fail("workload.del-percent",
               "put-percent + patch-percent + del-percent must be 100");
  out.entities_per_client = static_cast<size_t>(
    v.get_integer("workload.entities-per-client"));
  out.scopes = static_cast<size_t>(v.get_integer("workload.scopes"));
  if (out.scopes > out.clients)
    throw fail("workload.scopes", "more than loadtest.clients (a scope without a "
                                  "client has nobody to write in it)");
  if (out.scopes > 1 && out.mode != loadtest_config::scenario::steady
      && out.mode != loadtest_config::scenario::fixed)
    throw fail("workload.scopes", "only the steady and fixed workloads spread the "
                                  "clients over scopes; set it to 1");
  // Every client of the fixed workload waits for the same number of
  // entities: the scopes must be of one size.
  if (out.fixed && out.clients % out.scopes != 0)
    throw fail("workload.scopes", "the fixed workload needs loadtest.clients to be a "
                                  "multiple of it (scopes of equal size)");
  out.hot_entities = static_cast<size_t>(v.get_integer("workload.hot-entities"));
  out.collision_percent = static_cast<int>(v.get_integer("workload.collision-percent"));
  if (out.collision_percent > 0 && out.hot_entities == 0)
    throw fail("workload.hot-entities",
               "must be at least 1 when collision-percent is above 0");
  out.payload_bytes = static_cast<size_t>(v.get_integer("workload.payload-bytes"));
  out.offline_clients = static_cast<size_t>(v.get_integer("workload.offline-clients"));
  if (out.offline_clients > out.clients)
    throw fail("workload.offline-clients", "more than loadtest.clients");
  out.offline_for = v.get_duration("workload.offline-for");
  if (out.fixed && out.offline_clients > 0)
    throw fail("workload.offline-clients", "not used by the fixed workload; set it to 0");
  if (out.offline_clients > 0 && out.mode == loadtest_config::scenario::steady
      && out.offline_for >= out.duration - out.warm_up)
    throw fail("workload.offline-for",
               "must be shorter than the measured part of the run");
  out.latency_observers = static_cast<size_t>(
    v.get_integer("workload.latency-observers"));
  out.pending_changes = static_cast<size_t>(v.get_integer("workload.pending-changes"));
  out.outage = v.get_duration("workload.outage");
  out.outage_writes = static_cast<size_t>(v.get_integer("workload.outage-writes"));
  // The drain scenario's offline clients are the ones that pile up changes.
  if (out.mode == loadtest_config::scenario::drain && out.offline_clients == 0)
    throw fail("workload.offline-clients",
               "the drain workload needs at least 1 (the clients that go offline)");
  if (out.mode == loadtest_config::scenario::storm && out.offline_clients > 0)
    throw fail("workload.offline-clients",
               "not used by the storm workload (the server goes away); set it to 0");

  out.db_in_memory = v.get_string("client.local-db") == "memory";
  // A client's SQLite file in WAL mode holds three descriptors.
  if (rlimit nofile{}; !out.db_in_memory && getrlimit(RLIMIT_NOFILE, &nofile) == 0
                       && nofile.rlim_cur != RLIM_INFINITY
                       && 3 * out.clients + 100 > nofile.rlim_cur)
    throw fail("client.local-db",
               "\"files\" needs about " + std::to_string(3 * out.clients + 100)
                 + " file descriptors, the limit is " + std::to_string(nofile.rlim_cur)
                 + " (raise it with ulimit -n, or use \"memory\")");
  out.synchronous = v.get_string("local-db.synchronous");
  out.flush = read_flush_settings(v);
  out.sync = read_sync_settings(v);

  auto server_mode = v.get_string("server.mode");
  out.in_process = server_mode == "in-process";
  out.child = server_mode == "child";
  out.in_process_nodes = static_cast<size_t>(v.get_integer("server.nodes"));
  out.server_program = v.get_string("server.program");
  if (out.mode == loadtest_config::scenario::storm && !out.child)
    throw fail("server.mode",
               "the storm workload restarts the server: it needs \"child\"");
  if (out.child && out.in_process_nodes != 1)
    throw fail("server.nodes", "mode \"child\" runs one server process");
  if (out.child && !out.server_program.empty()
      && access(out.server_program.c_str(), X_OK) != 0)
    throw fail("server.program", "cannot execute '" + out.server_program + "'");
  if (!out.in_process && !out.child) {
    try {
      out.servers = parse_server_list(v.get_string("server.addresses"));
    } catch (const std::invalid_argument& e) {
      throw fail("server.addresses", e.what());
    }
    out.tokens_file = v.get_string("server.tokens-file");
    if (out.tokens_file.empty())
      throw fail("server.tokens-file", "required in address mode");
  }
  return out;
}

} // namespace memsync
