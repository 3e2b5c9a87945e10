// A whole deployment in one actor system on CAF's deterministic test
// coordinator: one server (gateway, sessions, replication log on the SQLite
// backend) and N clients (memory store, flush scheduler, local database,
// network syncer), the real actors with their real SQLite files on the
// fault-injecting VFS, talking through simulated links (sim_link.hpp).
// Every choice is drawn from one seed: which runnable actor runs next, each
// message's delay, when a connection drops, the workload, every fault and
// when it happens. The same seed replays the same run.
//
// A run has three phases: the workload (ops and faults at seeded virtual
// times), healing (faults off, every node up and online, time runs until
// the clients are quiet), and the checks (sim_checks.hpp) on what the run
// left behind and what it recorded on the way (sim_history).
//
// Extending it: a new operation or fault is one more op_generator
// (sim_workload.cpp), a new guarantee one more checker (sim_checks.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/client/flush_scheduler.hpp"
#include "actors/client/local_db.hpp"
#include "actors/client/memory_store.hpp"
#include "actors/client/network_syncer.hpp"
#include "actors/common/trace_sink.hpp"
#include "actors/hot/store_core.hpp"
#include "actors/hot/subscribers.hpp"
#include "actors/server/gateway.hpp"
#include "actors/server/replication_log.hpp"
#include "tests/support/fault_vfs.hpp"
#include "tools/sim/sim_link.hpp"

namespace memsync::sim {

/// Which faults a run may draw (all on by default).
struct fault_set {
  bool drops = true;          ///< a connection drops at a message
  bool partitions = true;     ///< a client is cut off silently, then healed
  bool client_crashes = true; ///< kill -9 of a client, restart later
  bool server_crashes = true; ///< kill -9 of the server, restart later
  bool power_loss = true;     ///< every node at once, unsynced data lost
  bool storage_errors = true; ///< every write fails for a while (both sides)
  bool full_disk = true;      ///< no file may grow for a while (both sides)
  bool clock_jumps = true;    ///< every node's wall clock jumps (back or ahead)
  /// The server's file is replaced by a copy taken earlier in the run.
  bool restores = true;
  /// Some clients run their local database with synchronous=normal: power
  /// loss may take their last flushed transactions (never a hole).
  bool normal_sync = true;
};

struct sim_options {
  uint64_t seed = 1;
  /// 0: drawn from the seed (2 to 4).
  std::size_t clients = 0;
  /// Operations and faults of the workload phase (application writes,
  /// offline periods, faults), spread over virtual time.
  std::size_t ops = 150;
  fault_set faults;
  /// Test-only: switch on the store's deliberate rebase bug (see
  /// test_faults in store_core.hpp), to show the checks catch it.
  bool broken_rebase = false;
  /// Test-only: the checks are not told which acknowledged changes a
  /// restore took from the server, to show they see every one of them.
  bool forget_restore_losses = false;
  /// Test-only: clients on synchronous=normal are held to the survival
  /// check of synchronous=full, to show power loss does take their flushes.
  bool strict_normal_sync = false;
  /// Test-only: the client's memory store keeps what a prune should drop
  /// (test_faults::keep_pruned in store_core.hpp), to show the scope checks
  /// catch a client that holds data it may no longer read.
  bool keep_pruned = false;
  /// Test-only: the server's tokens file gives every token write:* while
  /// the checks hold each client to its drawn grants: a server that
  /// enforces nothing, to show the checks of writes and answers catch it.
  bool lax_server = false;
  /// Non-empty: every node writes an actor trace (mode all) into this
  /// directory, one file per node plus the simulator's own events.
  std::string trace_dir;
  /// Non-null: one line per simulator event (virtual time, what happened).
  std::ostream* log = nullptr;
};

struct sim_result {
  uint64_t seed = 0;
  std::vector<std::string> failures; ///< empty: every check passed
  std::size_t clients = 0;
  std::size_t steps = 0;  ///< messages handled by actors
  std::size_t writes = 0; ///< application writes that returned ok
  std::size_t faults = 0; ///< faults injected
  std::map<std::string, std::size_t> fault_counts;
  std::size_t server_log = 0;     ///< entries in the server's history
  std::size_t failed_writes = 0;  ///< SQLite writes the VFS failed (errors, full disk)
  std::size_t normal_clients = 0; ///< clients on synchronous=normal
  /// Flushed changes clients on synchronous=normal lost to power loss.
  std::size_t lost_to_normal_sync = 0;
  /// Acknowledged changes restores took from the server (legitimately: the
  /// client had been told of the acknowledgement before the restore).
  std::size_t lost_to_restores = 0;
  std::size_t grant_changes = 0;   ///< reloads of the tokens file with new grants
  std::size_t subscriptions = 0;   ///< subscribe and unsubscribe calls answered ok
  std::size_t forbidden = 0;       ///< writes the store refused at once as forbidden
  std::size_t scoped_answers = 0;  ///< pull answers delivered
  std::size_t answers_ahead = 0;   ///< of them, read ahead by the session
  std::size_t scoped_entities = 0; ///< entities of ruled types they carried
  std::size_t held_checks = 0;     ///< client states judged by the scope rule
  double virtual_seconds = 0;
};

/// Runs one seed. Throws only for a broken environment (no temp directory).
sim_result run_simulation(const sim_options& opt);

/// What one run observed on the way, for the checks.
struct sim_history {
  /// Mutation ids reported durable by each client's flush scheduler.
  std::map<std::string, std::set<uint64_t>> flushed;
  /// Problems seen while running (a crash that lost a flushed change, a
  /// cursor going backwards, an actor that died unexpectedly, a database
  /// that failed its integrity check at a restart).
  std::vector<std::string> violations;
  /// Per client index: the client ids it used, in order (a repair moves
  /// it to a new one).
  std::map<std::size_t, std::vector<std::string>> ids;
  /// Every client id a client ever used (lost ones too), to its index.
  std::map<std::string, std::size_t> owner;
  /// What a client's syncer reported of its cursor: versions compare only
  /// within one epoch of one server history (a restore starts another, and
  /// may bring back the name of an epoch the server had left).
  struct cursor_seen {
    std::string epoch;
    uint64_t version = 0;    ///< the highest in that epoch and history
    uint64_t generation = 0; ///< sim_network::generation: restores before
  };
  /// Per client index.
  std::map<std::size_t, cursor_seen> cursor;
  /// Per restore, in order: the mutation ids, by client id, in the history
  /// of the copy the server was restored from.
  std::vector<std::map<std::string, std::set<uint64_t>>> restores;
  /// Acknowledged changes a restore may have taken from the server, by
  /// client id: the client was told of the acknowledgement (a reply the
  /// server sent before the restore reached it, so it drops the change from
  /// its outbox, as it must), or it lost them to power loss under
  /// synchronous=normal, and the copy restored did not hold them.
  std::map<std::string, std::set<uint64_t>> lost_to_restores;
  /// Flushed changes clients on synchronous=normal lost to power loss, by
  /// client id (their ids may be handed out again).
  std::map<std::string, std::set<uint64_t>> lost_to_normal_sync;
  /// Per client index: the scopes its syncer's last status said it holds.
  std::map<std::size_t, std::vector<std::string>> reported_scopes;
};

/// What a restarted client kept of what its flush scheduler reported
/// durable (`flushed`): the ids in neither its outbox nor at or below its
/// confirmed record (`confirmed`) are lost. Under synchronous=full nothing
/// may be lost; under normal the lost ones must be the newest (what
/// survived is a prefix, in mutation-id order). Returns the lost ids and
/// appends a line to `violations` per broken rule.
std::vector<uint64_t> check_survival(const std::string& client, bool normal_sync,
                                     const std::set<uint64_t>& flushed,
                                     uint64_t confirmed, const std::set<uint64_t>& outbox,
                                     std::vector<std::string>& violations);

class world;

/// One kind of operation or fault the workload may draw: `weight` against
/// the others; `run` does it for the client drawn (some ignore it) and
/// returns false if it could not apply now (it is then not counted).
struct op_generator {
  const char* name;
  unsigned weight;
  bool fault;
  std::function<bool(world&, std::size_t client)> run;
};
/// The workload's operations and faults (sim_workload.cpp).
std::vector<op_generator> default_ops(const fault_set& faults);
/// The scope rules of every run: tasks belong to the scope their "team"
/// names; every other type to `default` (sim_workload.cpp).
scope_rules sim_rules();
/// A token's grants, drawn from the seed (sim_workload.cpp).
grants draw_grants(world& w);
/// A client's client.scopes, drawn from the seed (sim_workload.cpp).
std::vector<std::string> draw_scopes(world& w);

/// The final state of one client, captured after healing.
struct client_outcome {
  std::size_t index = 0;
  std::string name;
  std::string client_id;
  std::string db_path;
  std::vector<std::string> visible; ///< "id\ttype\tdata", sorted
  std::size_t pending = 0;
  /// The scopes it should hold: its subscription's readable parts under its
  /// token's grants at the end.
  std::vector<std::string> held;
  /// The scopes its syncer said it holds (`status`).
  std::vector<std::string> reported;
};

/// Everything the checks read: the history, the wire record, each client's
/// final state, and the paths of the databases (all closed by then).
struct run_outcome {
  const sim_history* history;
  const wire_record* wire;
  std::vector<client_outcome> clients;
  std::string server_db;
  scope_rules rules;
  /// Per client index: its token's grant sets in order (sim_network's).
  const std::map<std::size_t, std::vector<grants>>* grant_versions;
};

/// One guarantee checked after a run; appends a line per failure.
struct checker {
  const char* name;
  std::function<void(const run_outcome&, std::vector<std::string>& failures)> check;
};
/// The design's guarantees as checks (sim_checks.cpp).
std::vector<checker> default_checks();

/// The simulation of one seed. Public for the op generators.
class world {
public:
  world(const sim_options& opt, const std::string& dir);
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  sim_result run();

  // -- for the op generators ------------------------------------------------
  std::mt19937_64& rng() { return rng_; }
  std::size_t client_count() const { return clients_.size(); }
  /// The client's store, or null while it is down.
  store_core* store_of(std::size_t client);
  std::string client_name(std::size_t client) const;
  void note(const std::string& what);
  /// The application's write on `client` just returned ok.
  void wrote(std::size_t client);
  uint64_t pick(uint64_t lo, uint64_t hi); ///< uniform in [lo, hi]
  caf::timespan now() const;

  void set_online(std::size_t client, bool online);
  bool online(std::size_t client) const;
  void drop(std::size_t client);
  bool isolate(std::size_t client, caf::timespan how_long);
  bool crash_client(std::size_t client, caf::timespan down_for);
  bool crash_server(caf::timespan down_for);
  bool power_outage(caf::timespan down_for);
  bool storage_errors(caf::timespan how_long);
  bool disk_full(caf::timespan how_long);
  /// Takes a consistent copy of the server's database (SQLite's backup
  /// API, while the server runs: its committed state, all durable).
  void copy_server();
  /// Stops the server, replaces its files by a copy taken earlier (one of
  /// them, drawn), restarts it later. False if there is no copy yet.
  bool restore_server(caf::timespan down_for);

  // -- scopes ---------------------------------------------------------------
  const scope_rules& rules() const { return net_.rules; }
  /// The client's token's grants now (the tokens file's).
  const grants& grants_of(std::size_t client) const;
  /// The operator changes the client's grants: the tokens file is written
  /// again and the server told to reload it (SIGHUP); live sessions get the
  /// new grants once the gateway has read it.
  void set_grants(std::size_t client, grants g);
  /// The client's subscription as it answered so far (empty while down).
  std::vector<std::string> subscription_of(std::size_t client) const;
  /// The application subscribes to or unsubscribes from `pattern` (the
  /// answer comes later; ok answers change subscription_of). False while
  /// the client is down.
  bool subscribe(std::size_t client, const std::string& pattern);
  bool unsubscribe(std::size_t client, const std::string& pattern);
  /// The application's write was refused at once as forbidden.
  void refused_at_once() { ++result_.forbidden; }

private:
  struct client_node;
  struct server_node;
  struct server_copy {
    std::string path;
    std::map<std::string, std::set<uint64_t>> log; ///< mutation ids by client id
  };

  void start_server();
  void stop_server(caf::exit_reason reason);
  void start_client(std::size_t i);
  void stop_client(std::size_t i, caf::exit_reason reason);
  /// `every`: the store has handed on all its writes by now.
  void check_handed_on(std::size_t client, bool every);
  void kill_now(const caf::actor& a, caf::exit_reason reason);
  void watch(const caf::actor& a, std::string what);
  /// Runs one runnable actor, chosen from the seed. False: nothing to run.
  bool step();
  /// Runs actors and due events until virtual time `until`.
  void run_until(caf::timespan until, bool workload);
  void at(caf::timespan when, std::function<void()> what);
  /// Draws one operation (or fault, if `faults`) and does it (on `client`,
  /// if it needs one).
  void run_op(std::size_t client, bool faults);
  std::size_t client_of_last_ran();
  void probe(std::size_t client);
  client_outcome capture(std::size_t i);
  /// Fills hist_.lost_to_restores from the restores and the wire record.
  void account_restores();
  void write_tokens_file();
  /// The scope rule at a quiet point: every synced entity a client's store
  /// holds is in a scope the grants of the last answer it applied may read
  /// and its subscription names.
  void check_held(std::size_t client);
  /// The subscription's readable parts under `g`.
  std::vector<std::string> held_under(std::size_t client, const grants& g) const;

  sim_options opt_;
  std::string dir_;
  std::mt19937_64 rng_;
  testing::fault_vfs vfs_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  sim_network net_;
  sim_history hist_;
  sim_result result_;
  std::vector<op_generator> ops_;
  std::unique_ptr<server_node> server_;
  std::vector<std::unique_ptr<client_node>> clients_;
  std::vector<server_copy> copies_;
  std::multimap<caf::timespan, std::function<void()>> agenda_;
  caf::actor watchdog_;
  caf::actor prober_;
  caf::actor operator_; ///< asks the gateway to reload, as SIGHUP does
  caf::actor app_;      ///< the application's subscribe and unsubscribe calls
  std::shared_ptr<trace_sink> sim_trace_;
  /// Addresses of actors the simulator ended on purpose.
  std::set<caf::actor_addr> expected_down_;
  caf::resumable* last_ran_ = nullptr;
  std::set<std::string> held_reported_; ///< check_held's findings, once each
  caf::timespan next_mid_op_{0};        ///< the next operation amid traffic, not before
};

} // namespace memsync::sim
