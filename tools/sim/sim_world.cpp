#include "tools/sim/sim_world.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/client/local_database.hpp"
#include "actors/server/token_table.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "messages/registry.hpp"

namespace memsync::sim {

using namespace std::chrono_literals;

namespace {

/// How long the workload phase lasts in virtual time, per operation.
constexpr caf::timespan time_per_op = 40ms;
/// Healing: long enough for the longest backoff (retry_max) several times
/// over and a few fallback pulls; a normal sync takes milliseconds.
constexpr caf::timespan heal_time = 20s;
/// Messages one run may handle before it counts as stalled (a livelock).
constexpr std::size_t max_steps = 3'000'000;

std::string describe(const caf::error& err) {
  return caf::to_string(err);
}

// Records the mutation ids every flush report makes durable, per client id.
struct flush_observer_state {
  const char* name = "sim_flush_observer";
};

flush_listener_actor::behavior_type
flush_observer(flush_listener_actor::stateful_pointer<flush_observer_state>,
               sim_history* hist, sim_network* net, std::string client_id) {
  auto id = std::make_shared<std::string>(std::move(client_id));
  return {
    [=](flushed_atom, const flush_report& report) {
      if (net->frozen)
        return;
      if (!report.new_client_id.empty())
        *id = report.new_client_id;
      for (auto& c : report.changes)
        hist->flushed[*id].insert(c.mutation_id);
    },
  };
}

// Stands between the memory store and its flush scheduler and records the
// seq of every change the store hands on, so the checks can tell a write
// the store lost from one a crash lost.
struct flush_tap_state {
  const char* name = "sim_flush_tap";
};

flush_scheduler_actor::behavior_type
flush_tap(flush_scheduler_actor::stateful_pointer<flush_tap_state> self,
          flush_scheduler_actor real, std::shared_ptr<std::vector<uint64_t>> seen) {
  return {
    [=](write_atom, std::vector<change>& changes) {
      for (auto& c : changes)
        seen->push_back(c.seq);
      self->send(real, write_atom::value, std::move(changes));
    },
    [=](subscribe_atom, flush_listener_actor& listener) {
      self->send(real, subscribe_atom::value, std::move(listener));
    },
    [=](flush_atom) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      self->request(real, caf::infinite, flush_atom::value)
        .then([=](uint64_t seq) mutable { rp.deliver(seq); },
              [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](restored_atom, std::string& id, uint64_t record) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      self->request(real, caf::infinite, restored_atom::value, std::move(id), record)
        .then([=](std::string& now_id) mutable { rp.deliver(now_id); },
              [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
  };
}

} // namespace

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
};

struct world::server_node {
  std::string db_path;
  bool up = false;
  uint64_t incarnation = 0;
  replication_log_actor log;
  gateway_actor gateway;
  token_table tokens;
  std::shared_ptr<trace_sink> trace;
};

world::world(const sim_options& opt, const std::string& dir)
    : opt_(opt), dir_(dir), rng_(opt.seed) {
  register_message_types(cfg_);
  cfg_.set("scheduler.policy", caf::atom("testing"));
  cfg_.set("logger.console", caf::atom("none"));
  sys_ = std::make_unique<caf::actor_system>(cfg_);
  sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
  net_.rng = &rng_;
  net_.min_delay = std::chrono::microseconds(pick(50, 500));
  net_.max_delay = net_.min_delay + std::chrono::milliseconds(pick(0, 30));
  net_.drop_chance = opt.faults.drops ? 0.002 * static_cast<double>(pick(0, 10)) : 0;
  ops_ = default_ops(opt.faults);
  result_.seed = opt.seed;
  if (!opt.trace_dir.empty()) {
    trace_settings ts{trace_mode::all, opt.trace_dir + "/sim.jsonl"};
    sim_trace_ = std::make_shared<trace_sink>(ts, "sim", "sim");
  }
  // Watches the engine's actors: an end the simulator did not cause is a
  // failure of its own.
  watchdog_ = sys_->spawn([this](caf::event_based_actor* self) -> caf::behavior {
    auto names = std::make_shared<std::map<caf::actor_addr, std::string>>();
    self->set_down_handler([this, names](const caf::down_msg& msg) {
      if (expected_down_.count(msg.source) || net_.frozen)
        return;
      hist_.violations.push_back("actor " + (*names)[msg.source]
                                 + " ended unexpectedly: " + describe(msg.reason));
    });
    return {
      [=](const caf::actor& a, const std::string& what) {
        self->monitor(a);
        (*names)[a.address()] = what;
      },
    };
  });
  // Asks a syncer for its status: the cursor must never go backwards.
  prober_ = sys_->spawn([this](caf::event_based_actor* self) -> caf::behavior {
    return {
      [this, self](const caf::actor& syncer, std::size_t client) {
        self
          ->request(caf::actor_cast<network_syncer_actor>(syncer), 10s,
                    status_atom::value)
          .then(
            [this, client](const sync_status& st) {
              auto& seen = hist_.cursor[client];
              if (st.cursor.version < seen)
                hist_.violations.push_back(
                  client_name(client) + " saw the server's version go back from "
                  + std::to_string(seen) + " to " + std::to_string(st.cursor.version));
              seen = std::max(seen, st.cursor.version);
            },
            [](const caf::error&) {}); // a crashed syncer answers nothing
      },
    };
  });
  auto n = opt.clients != 0 ? opt.clients : static_cast<std::size_t>(pick(2, 4));
  result_.clients = n;
  server_ = std::make_unique<server_node>();
  server_->db_path = dir_ + "/server.db";
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<client_node>();
    c->index = i;
    c->name = "c" + std::to_string(i);
    c->token = "token-" + c->name;
    c->db_path = dir_ + "/" + c->name + ".db";
    c->flush.debounce = std::chrono::milliseconds(pick(0, 50));
    c->flush.max_batch = pick(1, 20);
    c->flush.retry_min = 10ms;
    c->flush.retry_max = 500ms;
    c->flush.db_timeout = 5s;
    c->sync.token = c->token;
    c->sync.push_debounce = std::chrono::milliseconds(pick(0, 100));
    c->sync.pull_interval = 1s;
    c->sync.retry_min = 20ms;
    c->sync.retry_max = 1s;
    c->sync.request_timeout = 2s;
    c->sync.max_push_changes = pick(1, 30);
    c->sync.jitter_seed = rng_();
    c->port = spawn_client_port(*sys_, net_, i);
    server_->tokens.add(c->token, c->name);
    clients_.push_back(std::move(c));
  }
}

world::~world() {
  for (auto& c : clients_) {
    if (c->up)
      stop_client(c->index, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(c->port, caf::exit_reason::user_shutdown);
  }
  if (server_->up)
    stop_server(caf::exit_reason::user_shutdown);
  caf::anon_send_exit(watchdog_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(prober_, caf::exit_reason::user_shutdown);
  sched_->run();
  // Links wait for a session or relay that is gone already; timers of dead
  // actors are dropped.
  while (sched_->has_pending_timeout()) {
    sched_->trigger_timeouts();
    sched_->run();
  }
  if (sim_trace_)
    sim_trace_->close();
  sys_.reset();
}

uint64_t world::pick(uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>{lo, hi}(rng_);
}

caf::timespan world::now() const {
  return sched_->clock().now().time_since_epoch();
}

store_core* world::store_of(std::size_t client) {
  auto& c = *clients_[client];
  return c.up ? c.core.get() : nullptr;
}

std::string world::client_name(std::size_t client) const {
  return clients_[client]->name;
}

void world::note(const std::string& what) {
  if (opt_.log) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now()).count();
    *opt_.log << "[" << us / 1000 << "." << (us % 1000) / 100 << " ms] " << what << "\n";
  }
  if (sim_trace_) {
    trace_event ev;
    ev.actor = "sim";
    ev.kind = "event";
    ev.from = "-";
    ev.peer = what;
    ev.start_ns = trace_now_ns();
    sim_trace_->record(std::move(ev));
  }
}

void world::at(caf::timespan when, std::function<void()> what) {
  agenda_.emplace(when, std::move(what));
}

void world::watch(const caf::actor& a, std::string what) {
  caf::anon_send(watchdog_, a, std::move(what));
}

void world::kill_now(const caf::actor& a, caf::exit_reason reason) {
  if (!a)
    return;
  expected_down_.insert(a.address());
  caf::anon_send_exit(a, reason);
  // The exit is urgent: the actor handles it first and is gone.
  for (int i = 0; i < 1000 && sched_->prioritize(a); ++i)
    sched_->run_once();
}

// -- the server -----------------------------------------------------------------

void world::start_server() {
  auto& s = *server_;
  if (s.up)
    return;
  std::unique_ptr<sqlite_backend> backend;
  try {
    backend = std::make_unique<sqlite_backend>(s.db_path);
  } catch (const std::exception& e) {
    note(std::string{"server restart failed, retrying: "} + e.what());
    at(now() + 100ms, [this] { start_server(); });
    return;
  }
  ++s.incarnation;
  if (!opt_.trace_dir.empty())
    s.trace = std::make_shared<trace_sink>(
      trace_settings{trace_mode::all, opt_.trace_dir + "/server-"
                                        + std::to_string(s.incarnation) + ".jsonl"},
      "server", "server");
  gateway_config gcfg;
  gcfg.server_id = "sim-server";
  gcfg.epoch = backend->epoch();
  gcfg.tokens = s.tokens;
  gcfg.trace = s.trace;
  s.log = spawn_replication_log(*sys_, std::move(backend), log_settings{}, false,
                                s.trace);
  s.gateway = spawn_gateway(*sys_, s.log, gcfg);
  watch(caf::actor_cast<caf::actor>(s.log), "replication_log");
  watch(caf::actor_cast<caf::actor>(s.gateway), "gateway");
  net_.gateway = s.gateway;
  s.up = true;
  note("server up");
}

void world::stop_server(caf::exit_reason reason) {
  auto& s = *server_;
  net_.gateway = nullptr;
  kill_now(caf::actor_cast<caf::actor>(s.gateway), reason);
  kill_now(caf::actor_cast<caf::actor>(s.log), reason);
  s.gateway = nullptr;
  s.log = nullptr;
  if (s.trace)
    s.trace->close();
  s.trace = nullptr;
  s.up = false;
}

// -- the clients ----------------------------------------------------------------

void world::start_client(std::size_t i) {
  auto& c = *clients_[i];
  if (c.up)
    return;
  std::unique_ptr<local_database> db;
  local_db_settings settings;
  settings.path = c.db_path;
  settings.client_name = c.name;
  // full: a flushed change survives power loss, which the checks hold it to.
  settings.synchronous = "full";
  try {
    db = std::make_unique<local_database>(settings);
  } catch (const std::exception& e) {
    note(c.name + " restart failed, retrying: " + e.what());
    at(now() + 100ms, [this, i] { start_client(i); });
    return;
  }
  auto integrity = db->integrity_check();
  if (integrity != "ok")
    hist_.violations.push_back(c.name + ": integrity_check at restart: " + integrity);
  auto snap = db->load();
  // Every change its flush scheduler reported durable is still here, or the
  // server confirmed it.
  std::set<uint64_t> outbox;
  for (auto& ch : snap.outbox)
    outbox.insert(ch.mutation_id);
  for (auto mid : hist_.flushed[snap.client_id])
    if (mid > snap.last_mutation_id && !outbox.count(mid))
      hist_.violations.push_back(c.name + " restarted without flushed mutation "
                                 + std::to_string(mid));
  ++c.incarnation;
  c.client_id = snap.client_id;
  if (!opt_.trace_dir.empty())
    c.trace = std::make_shared<trace_sink>(
      trace_settings{trace_mode::all, opt_.trace_dir + "/" + c.name + "-"
                                        + std::to_string(c.incarnation) + ".jsonl"},
      c.name, "client");
  c.core = std::make_shared<store_core>();
  c.subs = std::make_shared<subscriber_list>();
  c.core->load(std::move(snap.base), std::move(snap.outbox));
  c.db = spawn_local_db(*sys_, std::move(db), c.trace);
  c.flusher = spawn_flush_scheduler(*sys_, c.db, c.flush, c.trace);
  c.written.clear();
  c.handed_on = std::make_shared<std::vector<uint64_t>>();
  auto tap = sys_->spawn(flush_tap, c.flusher, c.handed_on);
  c.tap = caf::actor_cast<caf::actor>(tap);
  c.memory = spawn_memory_store(*sys_, c.core, c.subs, tap, c.trace);
  syncer_config scfg{snap.client_id, snap.cursor, snap.last_mutation_id, snap.push_epoch,
                     c.sync};
  c.syncer = spawn_network_syncer(*sys_, std::move(scfg),
                                  caf::actor_cast<connector_actor>(c.port), c.db,
                                  c.memory, c.flusher, c.trace);
  if (!c.online)
    caf::anon_send(c.syncer, online_atom::value, false);
  c.observer = caf::actor_cast<caf::actor>(
    sys_->spawn(flush_observer, &hist_, &net_, c.client_id));
  caf::anon_send(c.flusher, subscribe_atom::value,
                 caf::actor_cast<flush_listener_actor>(c.observer));
  watch(caf::actor_cast<caf::actor>(c.db), c.name + "/local_db");
  watch(caf::actor_cast<caf::actor>(c.flusher), c.name + "/flush_scheduler");
  watch(caf::actor_cast<caf::actor>(c.memory), c.name + "/memory_store");
  watch(caf::actor_cast<caf::actor>(c.syncer), c.name + "/network_syncer");
  c.up = true;
  note(c.name + " up (incarnation " + std::to_string(c.incarnation) + ")");
}

void world::stop_client(std::size_t i, caf::exit_reason reason) {
  auto& c = *clients_[i];
  kill_now(caf::actor_cast<caf::actor>(c.syncer), reason);
  kill_now(caf::actor_cast<caf::actor>(c.memory), reason);
  kill_now(caf::actor_cast<caf::actor>(c.flusher), reason);
  kill_now(caf::actor_cast<caf::actor>(c.db), reason);
  kill_now(c.observer, reason);
  kill_now(c.tap, reason);
  check_handed_on(i, false);
  c.syncer = nullptr;
  c.memory = nullptr;
  c.flusher = nullptr;
  c.db = nullptr;
  c.observer = nullptr;
  c.tap = nullptr;
  c.core = nullptr; // memory is lost
  c.subs = nullptr;
  if (c.trace)
    c.trace->close();
  c.trace = nullptr;
  c.up = false;
}

// -- faults and operations --------------------------------------------------------

void world::wrote(std::size_t client) {
  auto& c = *clients_[client];
  c.written.push_back(c.core->last_seq());
}

void world::check_handed_on(std::size_t i, bool every) {
  // The store hands writes on in seq order; a write below the last one
  // handed on that was not handed on was lost by the store, not by a crash.
  auto& c = *clients_[i];
  if (!c.handed_on)
    return;
  auto& seen = *c.handed_on;
  for (std::size_t k = 1; k < seen.size(); ++k)
    if (seen[k] <= seen[k - 1])
      hist_.violations.push_back(c.name + ": the store handed on write "
                                 + std::to_string(seen[k]) + " after "
                                 + std::to_string(seen[k - 1]));
  if (seen.empty() && !every)
    return;
  std::set<uint64_t> got(seen.begin(), seen.end());
  for (auto seq : c.written)
    if ((every || (!seen.empty() && seq < seen.back())) && !got.count(seq))
      hist_.violations.push_back(
        c.name + ": write " + std::to_string(seq)
        + " never reached the flush scheduler (lost by the store)");
}

void world::set_online(std::size_t client, bool online) {
  auto& c = *clients_[client];
  c.online = online;
  if (c.up)
    caf::anon_send(c.syncer, online_atom::value, online);
}

bool world::online(std::size_t client) const {
  return clients_[client]->online;
}

void world::drop(std::size_t client) {
  drop_connections(net_, client);
}

bool world::isolate(std::size_t client, caf::timespan how_long) {
  if (net_.isolated[client])
    return false;
  net_.isolated[client] = true;
  at(now() + how_long, [this, client] {
    net_.isolated[client] = false;
    // The connections that went silent are reset once the network heals.
    drop_connections(net_, client);
    note(client_name(client) + " reachable again");
  });
  return true;
}

bool world::crash_client(std::size_t client, caf::timespan down_for) {
  if (!clients_[client]->up)
    return false;
  stop_client(client, caf::exit_reason::kill);
  at(now() + down_for, [this, client] { start_client(client); });
  return true;
}

bool world::crash_server(caf::timespan down_for) {
  if (!server_->up)
    return false;
  stop_server(caf::exit_reason::kill);
  at(now() + down_for, [this] { start_server(); });
  return true;
}

bool world::power_outage(caf::timespan down_for) {
  if (!server_->up)
    return false;
  // From now until every process is gone, nothing reaches the disk and
  // nothing that happens counts: the machine is off.
  net_.frozen = true;
  vfs_.power_loss();
  for (auto& c : clients_)
    if (c->up) {
      stop_client(c->index, caf::exit_reason::kill);
      at(now() + down_for, [this, i = c->index] { start_client(i); });
    }
  stop_server(caf::exit_reason::kill);
  at(now() + down_for, [this] { start_server(); });
  vfs_.revive();
  net_.frozen = false;
  return true;
}

bool world::storage_errors(caf::timespan how_long) {
  vfs_.fail_writes(true);
  at(now() + how_long, [this] {
    vfs_.fail_writes(false);
    note("storage writes work again");
  });
  return true;
}

std::size_t world::client_of_last_ran() {
  // The client whose actor just ran: its application writes while its
  // actors are busy, which is where the interleavings that matter are.
  for (auto& c : clients_) {
    if (!c->up)
      continue;
    for (auto& a :
         {caf::actor_cast<caf::actor>(c->syncer), caf::actor_cast<caf::actor>(c->memory),
          caf::actor_cast<caf::actor>(c->flusher), caf::actor_cast<caf::actor>(c->db)})
      if (dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(a))
          == last_ran_)
        return c->index;
  }
  return static_cast<std::size_t>(pick(0, clients_.size() - 1));
}

void world::run_op(std::size_t client, bool faults) {
  unsigned total_weight = 0;
  for (auto& op : ops_)
    if (faults || !op.fault)
      total_weight += op.weight;
  auto r = pick(0, total_weight - 1);
  for (auto& op : ops_) {
    if (!faults && op.fault)
      continue;
    if (r >= op.weight) {
      r -= op.weight;
      continue;
    }
    if (op.run(*this, client)) {
      if (op.fault) {
        ++result_.faults;
        ++result_.fault_counts[op.name];
      } else {
        ++result_.writes;
      }
    }
    break;
  }
  probe(client);
}

bool world::disk_full(caf::timespan how_long) {
  vfs_.set_quota(0); // nothing may grow; overwrites in place still work
  at(now() + how_long, [this] {
    vfs_.set_quota(SIZE_MAX);
    note("the disk has room again");
  });
  return true;
}

void world::probe(std::size_t client) {
  auto& c = *clients_[client];
  if (c.up)
    caf::anon_send(prober_, caf::actor_cast<caf::actor>(c.syncer), client);
}

// -- running --------------------------------------------------------------------

bool world::step() {
  auto& jobs = sched_->jobs;
  if (jobs.empty())
    return false;
  auto i = static_cast<std::ptrdiff_t>(pick(0, jobs.size() - 1));
  if (i != 0)
    std::rotate(jobs.begin(), jobs.begin() + i, jobs.begin() + i + 1);
  last_ran_ = jobs.front();
  sched_->run_once();
  ++result_.steps;
  return true;
}

void world::run_until(caf::timespan until, bool workload) {
  for (;;) {
    if (result_.steps > max_steps) {
      hist_.violations.push_back("stalled: more than " + std::to_string(max_steps)
                                 + " messages in one run");
      return;
    }
    auto t = now();
    bool due = !agenda_.empty() && agenda_.begin()->first <= t;
    bool runnable = sched_->has_job();
    // A due event happens between any two messages, chosen from the seed.
    if (due && (!runnable || pick(0, 3) == 0)) {
      auto fn = std::move(agenda_.begin()->second);
      agenda_.erase(agenda_.begin());
      fn();
      continue;
    }
    if (runnable) {
      step();
      // Operations also happen amid the traffic, between any two messages.
      // Spread over the workload phase: one every time_per_op on average.
      if (workload && now() >= next_mid_op_ && pick(0, 3) == 0) {
        next_mid_op_ = now()
                       + caf::timespan{
                         static_cast<int64_t>(pick(0, 2 * time_per_op.count()))};
        run_op(client_of_last_ran(), false);
      }
      continue;
    }
    // Nothing to run: time moves to the next timer or event.
    auto next = until;
    if (!agenda_.empty())
      next = std::min(next, agenda_.begin()->first);
    if (sched_->has_pending_timeout())
      next = std::min(next, sched_->clock().schedule().begin()->first.time_since_epoch());
    if (next <= t) {
      if (sched_->has_pending_timeout()
          && sched_->clock().schedule().begin()->first.time_since_epoch() <= t)
        sched_->advance_time(caf::timespan{0});
      else if (t >= until)
        return;
      continue;
    }
    sched_->advance_time(next - t);
    if (next >= until && agenda_.empty() && !sched_->has_job())
      return;
  }
}

client_outcome world::capture(std::size_t i) {
  auto& c = *clients_[i];
  client_outcome out;
  out.name = c.name;
  out.client_id = c.client_id;
  out.db_path = c.db_path;
  if (!c.core)
    return out;
  for (auto& e : c.core->all())
    out.visible.push_back(e->id + "\t" + e->type + "\t" + e->data);
  std::sort(out.visible.begin(), out.visible.end());
  out.pending = c.core->counts().pending;
  return out;
}

sim_result world::run() {
  test_faults::drop_writes_in_rebase = opt_.broken_rebase;
  start_server();
  for (std::size_t i = 0; i < clients_.size(); ++i)
    start_client(i);
  // The workload: each operation at a time drawn from the seed.
  auto workload_end = time_per_op * static_cast<int64_t>(opt_.ops);
  for (std::size_t k = 0; k < opt_.ops; ++k) {
    auto when = caf::timespan{static_cast<int64_t>(pick(0, workload_end.count()))};
    at(when,
       [this] { run_op(static_cast<std::size_t>(pick(0, clients_.size() - 1)), true); });
  }
  run_until(workload_end, true);
  // Healing: the faults stop, what is pending happens now, every node is up
  // and online.
  note("healing");
  net_.drop_chance = 0;
  vfs_.fail_writes(false);
  vfs_.set_quota(SIZE_MAX);
  while (!agenda_.empty()) {
    auto fn = std::move(agenda_.begin()->second);
    agenda_.erase(agenda_.begin());
    fn();
  }
  vfs_.fail_writes(false);
  net_.isolated.clear();
  if (!server_->up)
    start_server();
  for (auto& c : clients_) {
    if (!c->up)
      start_client(c->index);
    if (!c->online)
      set_online(c->index, true);
  }
  run_until(now() + heal_time, false);
  for (std::size_t i = 0; i < clients_.size(); ++i)
    probe(i);
  run_until(now() + 1s, false);
  test_faults::drop_writes_in_rebase = false;
  // The checks read the databases closed, as the next start would.
  run_outcome outcome{&hist_, &net_.record, {}, server_->db_path, &result_.findings};
  for (std::size_t i = 0; i < clients_.size(); ++i)
    outcome.clients.push_back(capture(i));
  // Healed and quiet: every write of the last incarnations was handed on.
  for (std::size_t i = 0; i < clients_.size(); ++i)
    check_handed_on(i, true);
  for (auto& c : clients_)
    stop_client(c->index, caf::exit_reason::user_shutdown);
  stop_server(caf::exit_reason::user_shutdown);
  sched_->run();
  result_.virtual_seconds = std::chrono::duration<double>(now()).count();
  result_.failed_writes = vfs_.failed_writes();
  for (auto& w : hist_.violations)
    result_.failures.push_back(w);
  for (auto& c : default_checks()) {
    std::vector<std::string> failures;
    try {
      c.check(outcome, failures);
    } catch (const std::exception& e) {
      failures.push_back(std::string{"check failed to run: "} + e.what());
    }
    for (auto& f : failures)
      result_.failures.push_back(std::string{c.name} + ": " + f);
  }
  try {
    sqlite_backend server{server_->db_path};
    result_.server_log = server.read_log(0, SIZE_MAX).size();
  } catch (const std::exception&) {
  }
  return result_;
}

sim_result run_simulation(const sim_options& opt) {
  // tmpfs when there is one: the files are real, their fsyncs cost nothing.
  std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string pattern = base + "/memsync-sim-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("sim: cannot create a temporary directory in " + base);
  sim_result result;
  {
    world w{opt, pattern};
    result = w.run();
  }
  std::error_code ec;
  std::filesystem::remove_all(pattern, ec);
  return result;
}

} // namespace memsync::sim
