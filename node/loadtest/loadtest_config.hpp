// The settings of `syncnode loadtest`: which server(s) to load, how the
// simulated clients are built, and the workload they run. Read with the
// strict config loader (a bad key names file, line and key).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/client/tuning.hpp"
#include "node/config/config.hpp"

namespace memsync {

struct server_address {
  std::string host;
  uint16_t port = 0;
};

struct loadtest_config {
  // -- [loadtest] ------------------------------------------------------------
  std::size_t clients = 50;
  /// Actor systems the clients are spread over (round-robin). CAF carries
  /// every actor of one system to a server over one connection, so this is
  /// also how many connections the clients make to each server.
  std::size_t client_systems = 1;
  std::chrono::nanoseconds connect_interval{0}; ///< between client starts
  std::chrono::nanoseconds duration{std::chrono::seconds(5)};
  std::chrono::nanoseconds warm_up{std::chrono::seconds(1)};
  std::chrono::nanoseconds settle_timeout{std::chrono::seconds(60)};   ///< convergence
  std::chrono::nanoseconds progress_interval{std::chrono::seconds(1)}; ///< 0: silent
  std::string client_prefix = "lt";
  std::string report_json; ///< empty: none
  std::string report_svg;  ///< empty: none

  // -- [workload] ------------------------------------------------------------
  /// steady: paced writes for a duration; fixed: K clients x M entities, as
  /// fast as possible; drain: offline clients pile up pending changes and
  /// reconnect; storm: the server is killed and restarted under every client.
  enum class scenario { steady, fixed, drain, storm };
  scenario mode = scenario::steady;
  bool fixed = false;                                               ///< mode == fixed
  std::chrono::nanoseconds write_interval{std::chrono::seconds(1)}; ///< per client
  int put_percent = 70;
  int patch_percent = 25;
  int del_percent = 5;
  std::size_t entities_per_client = 20; ///< own entities (fixed mode: M)
  /// Clients are spread over this many scopes (client i in scope
  /// scope_name(i % scopes)); each writes only in its own scope, the hot
  /// entities are per scope. 1: no scopes, every client writes everywhere.
  std::size_t scopes = 1;
  std::size_t hot_entities = 10; ///< shared by every client (of a scope)
  int collision_percent = 10;    ///< share of writes to the shared ones
  std::size_t payload_bytes = 100;
  std::size_t offline_clients = 0; ///< go offline once during the run
  std::chrono::nanoseconds offline_for{std::chrono::seconds(1)};
  std::size_t latency_observers = 0;    ///< clients that time propagation; 0: all
  std::size_t pending_changes = 100000; ///< drain: writes of each offline client
  std::chrono::nanoseconds outage{std::chrono::seconds(2)}; ///< storm: server down
  std::size_t outage_writes = 1; ///< storm: writes of each client while it is down

  // -- the simulated client stack -------------------------------------------
  bool db_in_memory = true;           ///< [client] local-db = "memory" | "files"
  std::string synchronous = "normal"; ///< [local-db] synchronous
  /// [flush] and [sync] as for a client node, with defaults of their own
  /// (see the source).
  flush_settings flush = default_flush();
  sync_settings sync = default_sync();
  static flush_settings default_flush();
  static sync_settings default_sync();

  // -- [server] --------------------------------------------------------------
  bool in_process = true;
  bool child = false;         ///< mode "child": one `syncnode server` process of our own
  std::string server_program; ///< child: the syncnode binary (empty: this program)
  std::size_t in_process_nodes = 1;
  std::vector<server_address> servers; ///< address mode
  std::string tokens_file;             ///< address mode: names -> tokens
};

/// The scope of the clients with index i % cfg.scopes == k: "scope-K".
std::string loadtest_scope_name(std::size_t k);

config_schema loadtest_schema();

/// Throws config_error naming the option for cross-field problems (shares
/// that do not add up to 100, a missing address or tokens file, ...).
loadtest_config make_loadtest_config(const config_values& values);

/// "host:port[,host:port...]". Throws std::invalid_argument.
std::vector<server_address> parse_server_list(const std::string& text);

} // namespace memsync
