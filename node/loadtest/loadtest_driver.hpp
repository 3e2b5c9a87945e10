// The load test's driver, shared by its sources: loadtest.cpp (set-up, the
// steady and fixed workloads, settling, checks) and loadtest_outage.cpp (the
// drain and storm workloads: clients or the server going away). One thread
// runs it; the clients' callbacks feed `run_state` from actor threads.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "node/loadtest/loadtest_config.hpp"
#include "node/loadtest/loadtest_report.hpp"
#include "node/loadtest/loadtest_server.hpp"
#include "node/loadtest/loadtest_sim.hpp"
#include "node/server/server_config.hpp"
#include "node/server/server_node.hpp"

namespace memsync::loadtest {

double seconds(std::chrono::nanoseconds d);

/// Resident memory of this process now, in bytes.
std::size_t rss_bytes();

/// A temporary directory, removed with its contents at the end.
struct scratch_dir {
  std::string path;
  scratch_dir();
  ~scratch_dir();
};

/// A server node in an actor system of its own: clients reach it over
/// loopback TCP exactly as they would reach another process.
struct server_host {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<server_node> node;
};

class driver {
public:
  driver(const loadtest_config& cfg, const config_values& values, std::ostream* progress)
      : cfg_(cfg), values_(values), progress_(progress) {}

  loadtest_report run();

private:
  void start_servers();
  void start_child_server();
  void start_clients();
  bool wait_connected(std::chrono::nanoseconds timeout);
  void write_one(sim_client& c);
  /// Puts `id` with data stamped `s`; counts an error or notes the write.
  bool put_stamped(sim_client& c, const std::string& id, const stamp& s);
  /// Books a write that succeeded, to be checked on the server later.
  void note_write(sim_client& c, const stamp& s, change_kind kind);
  void run_steady();
  void run_fixed();
  void run_drain();
  void run_storm();
  /// Waits until every client's flush probe has seen all its writes
  /// durable (the mutation ids of every write are known). False on timeout.
  bool wait_flushed(std::chrono::nanoseconds timeout);
  void sample(double at_s);
  /// Pulls answered so far by the replication logs of the in-process
  /// servers; -1 when the server is elsewhere (its log cannot be asked).
  int64_t server_pulls();
  void settle();
  void check();
  void stop();

  const loadtest_config& cfg_;
  const config_values& values_;
  std::ostream* progress_;
  scratch_dir dir_;
  std::vector<std::unique_ptr<server_host>> servers_;
  std::unique_ptr<child_server> child_;
  /// Servers whose storage the checks read directly (in-process and child),
  /// by node index.
  std::vector<server_config> storage_;
  std::vector<server_address> addresses_;
  /// The checks' fresh client: a token that reads every scope.
  std::string verifier_name_;
  std::string verifier_token_;
  /// With workload.scopes > 1: an item's scope is its field "scope".
  scope_rules rules_;
  /// What the token of `c` may do: write its scope (without scopes:
  /// everything, as a tokens line without grants).
  static grants grants_of(const sim_client& c);
  caf::actor_system_config client_cfg_;
  std::unique_ptr<caf::actor_system> sys_; ///< the first clients' and the checks'
  /// Systems of their own for the other clients (loadtest.client-systems).
  std::vector<std::unique_ptr<caf::actor_system_config>> more_cfgs_;
  std::vector<std::unique_ptr<caf::actor_system>> more_systems_;
  std::vector<std::unique_ptr<sim_client>> clients_;
  run_state rs_;
  std::minstd_rand rng_{42};
  std::map<std::string, uint64_t> write_errors_;
  loadtest_report report_;
  std::size_t rss_start_ = 0;
  bool in_outage_ = false; ///< writes now are marked as made during an outage
  // timeline bookkeeping
  uint64_t last_writes_ = 0;
  uint64_t last_applied_ = 0;
  double last_at_ = 0;
  log_histogram last_propagation_;
  uint64_t total_writes_ = 0;
};

} // namespace memsync::loadtest
