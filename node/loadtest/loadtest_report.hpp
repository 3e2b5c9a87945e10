// What `syncnode loadtest` measured, and its three renderings: a table for
// the terminal, a JSON document (every figure, for scripts), and an SVG
// picture (throughput and latency over time, the latency histogram).
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/layer_stats.hpp"

namespace memsync {

/// One point of the timeline, per progress interval.
struct timeline_sample {
  double at_s = 0; ///< since the workload started
  double writes_per_s = 0;
  double applied_per_s = 0; ///< remote changes that became visible
  uint64_t p99_us = 0;      ///< propagation p99 of this interval
  std::size_t connected = 0;
};

struct loadtest_report {
  std::string mode;   ///< "steady", "fixed", "drain" or "storm"
  std::string server; ///< "in-process, N node(s)" or the addresses
  std::size_t clients = 0;
  std::size_t client_systems = 1;    ///< connections to each server
  std::size_t scopes = 1;            ///< workload.scopes
  std::size_t latency_observers = 0; ///< clients that timed propagation
  double connect_s = 0;              ///< until every client was connected
  double measured_s = 0;             ///< the part of the run after the warm-up

  // -- throughput (measured part) ---------------------------------------------
  uint64_t writes = 0; ///< application writes made
  double writes_per_s = 0;
  double pushed_per_s = 0;  ///< changes acknowledged by the server
  double applied_per_s = 0; ///< remote changes that became visible, all clients
  double pulls_per_s = 0;
  double pulls_ahead_per_s = 0; ///< of them, answers the sessions read ahead
  /// Pulls the server's replication log answered per write (each write
  /// makes the sessions it pokes pull); negative: not known (the server is
  /// not in this process).
  double server_pulls_per_write = -1;
  /// Changes written in one scope that became visible on a client of
  /// another (0 when the server keeps scopes apart).
  uint64_t foreign_changes = 0;

  // -- latency, microseconds ---------------------------------------------------
  log_histogram propagation; ///< write on one client -> visible on another
  log_histogram flush_wait;  ///< write -> durable in the local database
  log_histogram push_round_trip;
  log_histogram poke_to_pull;
  log_histogram apply;

  std::map<std::string, uint64_t> errors; ///< by kind

  // -- after the run ---------------------------------------------------------
  double settle_s = 0; ///< until every client had pushed and pulled
  std::size_t clients_checked = 0;
  std::size_t clients_differing = 0;
  std::size_t server_entities = 0;
  bool changes_checked = false; ///< the server's log could be read (in-process)
  uint64_t changes_made = 0;    ///< mutations (coalesced writes) the clients made
  uint64_t changes_on_server = 0;
  uint64_t changes_lost = 0;
  /// Patches/deletes missing from the log with no refusal reported (see
  /// check_server_log): refused, most likely, in a push reply that was lost.
  uint64_t changes_unaccounted = 0;
  uint64_t changes_duplicated = 0;
  uint64_t final_values_wrong = 0; ///< entity != the last change the server accepted

  // -- fixed workload -----------------------------------------------------------
  std::size_t fixed_entities_per_client = 0;
  bool all_visible = false;
  double time_to_all_visible_s = 0;

  // -- drain workload: offline clients reconnect with many pending changes ------
  struct drain_figures {
    std::size_t offline_clients = 0;
    std::size_t pending_per_client = 0; ///< distinct entities written offline
    double write_s = 0;                 ///< making them and flushing them locally
    double drain_s = 0;                 ///< reconnect -> the server acknowledged all
    double visible_s = 0;      ///< reconnect -> every other client holds them all
    bool drained = false;      ///< within loadtest.settle-timeout
    bool all_visible = false;  ///< within loadtest.settle-timeout
    uint64_t push_batches = 0; ///< acknowledged pushes of the offline clients
    double changes_per_s = 0;  ///< acknowledged / drain_s
  } drain;

  // -- storm workload: the server is killed and restarted under every client ----
  struct storm_figures {
    double outage_s = 0;              ///< kill -> the restarted server listens
    double restart_s = 0;             ///< the new server process: exec -> listening
    uint64_t outage_writes = 0;       ///< writes made while the server was down
    double reconnect_s = 0;           ///< server back -> every client connected
    log_histogram reconnected;        ///< server back -> connected, per client (us)
    double drained_s = 0;             ///< server back -> every change acknowledged
    double reconverged_s = 0;         ///< server back -> every client pulled its head
    bool reconverged = false;         ///< within loadtest.settle-timeout
    uint64_t connects = 0;            ///< successful connects after the restart
    uint64_t outage_changes_made = 0; ///< mutations that end with an outage write
    uint64_t outage_changes_on_server = 0; ///< of them in the log (once each)
  } storm;

  // -- resources ---------------------------------------------------------------
  double bytes_per_client_connected = 0; ///< RSS growth / clients, all connected
  double bytes_per_client_end = 0;       ///< the same at the end of the run
  std::size_t threads = 0;
  std::size_t open_files = 0;
  std::size_t peak_rss_bytes = 0;        ///< this process (VmHWM), at the end
  std::size_t server_peak_rss_bytes = 0; ///< the server child (0: not a child)

  std::vector<timeline_sample> timeline;
  std::vector<std::string> notes;
};

/// Percentiles and mean of a histogram of microseconds, in milliseconds.
nlohmann::json latency_json(const log_histogram& h);

nlohmann::json to_json(const loadtest_report& r);
void print_table(const loadtest_report& r, std::ostream& out);
std::string render_svg(const loadtest_report& r);

} // namespace memsync
