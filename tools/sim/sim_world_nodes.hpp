// Private to the simulator's world (sim_world.cpp: the nodes and their
// start and stop; sim_world_run.cpp: faults and the run): what the world
// holds per node.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/server/token_table.hpp"
#include "tools/sim/sim_world.hpp"

namespace memsync::sim {

/// What a client holds by the rules, as the simulator follows it in one
/// incarnation: its subscription (its database's at the start, then as
/// subscribe and unsubscribe answered and as applied answers named entries
/// forbidden) and the grants of the last answer its store was given to
/// apply (none yet: `known` false).
struct scope_view {
  std::vector<std::string> subscription;
  bool known = false;
  grants granted;
  /// What changes the subscription and is not yet followed, in the order it
  /// reached the syncer's mailbox, which is the order the syncer takes it:
  /// subscribe (`sub`) and unsubscribe calls as asked, and pull answers
  /// (`answer`) as the store's ok reached the syncer. A call is followed
  /// once answered (`ok`: how), and an unsubscribe answers only once its
  /// prune is done, so a later call may answer first; whatever comes after
  /// an unanswered call waits for it. `first` numbers the front one.
  struct call {
    bool sub = false;
    std::string pattern;
    std::optional<bool> ok;
    bool answer = false;
    std::vector<std::string> asked;     // answer: what its request named
    std::vector<std::string> forbidden; // answer: what it named forbidden
  };
  std::deque<call> calls;
  uint64_t first = 0;
};

/// Follows the calls at the front of `view` that have answered, and the
/// answers among them, as the syncer's contract says; returns how many calls
/// (not answers) it followed ok.
std::size_t settle(scope_view& view);

struct world::client_node {
  std::size_t index = 0;
  std::string name;
  std::string token;
  std::string db_path;
  bool up = false;
  bool online = true;
  uint64_t incarnation = 0;
  std::string client_id;
  std::shared_ptr<store_core> core;
  std::shared_ptr<subscriber_list> subs;
  local_db_actor db;
  flush_scheduler_actor flusher;
  memory_store_actor memory;
  network_syncer_actor syncer;
  caf::actor observer;
  caf::actor tap;
  /// This incarnation: seqs of the application's writes, and of the changes
  /// the memory store handed to the flush scheduler.
  std::vector<uint64_t> written;
  std::shared_ptr<std::vector<uint64_t>> handed_on;
  caf::actor port;
  std::shared_ptr<trace_sink> trace;
  flush_settings flush;
  sync_settings sync;
  /// The local database's setting: "full" or "normal".
  std::string synchronous = "full";
  /// Power was lost under synchronous=normal since the last start: the
  /// file may come back without its last transactions, cursor included.
  bool lost_tail = false;
  /// client.scopes, fixed for the run.
  std::vector<std::string> configured;
  std::shared_ptr<scope_view> view; ///< null while down
  caf::actor memory_tap;
};

struct world::server_node {
  std::string db_path;
  bool up = false;
  uint64_t incarnation = 0;
  std::string tokens_path;
  std::string scopes_path;
  replication_log_actor log;
  gateway_control_actor gateway;
  std::shared_ptr<trace_sink> trace;
};

} // namespace memsync::sim
