// The simulator's world: the actor system, the nodes and how they start and
// stop, and the actors it adds to watch them (see sim_world.hpp).
#include "tools/sim/sim_world.hpp"
#include "tools/sim/sim_world_nodes.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>

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

std::string describe(const caf::error& err) {
  return caf::to_string(err);
}

// Records the mutation ids every flush report makes durable, per client id.
struct flush_observer_state {
  const char* name = "sim_flush_observer";
};

flush_listener_actor::behavior_type
flush_observer(flush_listener_actor::stateful_pointer<flush_observer_state>,
               sim_history* hist, sim_network* net, std::size_t client,
               std::string client_id) {
  auto id = std::make_shared<std::string>(std::move(client_id));
  return {
    [=](flushed_atom, const flush_report& report) {
      if (net->frozen)
        return;
      if (!report.new_client_id.empty()) {
        // A repair moved the outbox to a new id, renumbered from 1 in
        // order: those changes are durable under their new numbers now.
        auto& old_ids = hist->flushed[*id];
        auto& new_ids = hist->flushed[report.new_client_id];
        for (std::size_t i = 0; i < report.renumbered.size(); ++i)
          if (old_ids.erase(report.renumbered[i]) != 0)
            new_ids.insert(i + 1);
        *id = report.new_client_id;
        hist->ids[client].push_back(*id);
        hist->owner[*id] = client;
      }
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
    [=](status_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      self->request(real, caf::infinite, status_atom::value)
        .then([=](std::string& error) mutable { rp.deliver(error); },
              [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
  };
}

// What a call or an applied answer does to the subscription, as the
// syncer's contract says.
void follow(scope_view& view, const scope_view::call& call) {
  auto& es = view.subscription;
  if (call.answer) {
    // The entries its request named that another one it named covers give
    // way, and the entries it names forbidden leave (unless that is all of
    // them: the subscription is never empty).
    auto in_request = [&](const std::string& e) {
      return std::find(call.asked.begin(), call.asked.end(), e) != call.asked.end();
    };
    std::vector<std::string> given_way;
    for (auto& e : es)
      if (in_request(e) && std::any_of(es.begin(), es.end(), [&](auto& f) {
            return f != e && in_request(f) && pattern_covers(f, e);
          }))
        given_way.push_back(e);
    for (auto& e : given_way)
      es.erase(std::remove(es.begin(), es.end(), e), es.end());
    auto forbidden = [&](const std::string& e) {
      return std::find(call.forbidden.begin(), call.forbidden.end(), e)
             != call.forbidden.end();
    };
    if (!std::all_of(es.begin(), es.end(), forbidden))
      es.erase(std::remove_if(es.begin(), es.end(), forbidden), es.end());
    return;
  }
  if (!call.sub) {
    es.erase(std::remove(es.begin(), es.end(), call.pattern), es.end());
    return;
  }
  // A covered pattern changes nothing; entries the new one covers give way
  // once an answer covered them all.
  if (std::any_of(es.begin(), es.end(),
                  [&](auto& e) { return pattern_covers(e, call.pattern); }))
    return;
  es.push_back(call.pattern);
}

} // namespace

std::size_t settle(scope_view& view) {
  std::size_t followed = 0;
  auto& calls = view.calls;
  while (!calls.empty() && calls.front().ok) {
    if (*calls.front().ok && !calls.front().answer)
      ++followed;
    if (*calls.front().ok)
      follow(view, calls.front());
    calls.pop_front();
    ++view.first;
  }
  return followed;
}

namespace {

// Stands between the syncer and its memory store and records the grants of
// every pull answer the store is given to apply: the scope rule judges what
// the store holds by the last one (docs/simulation.md, "Scopes"). The ok it
// hands back is the syncer's cue to apply the answer to the subscription, so
// the answer joins the view's calls there, in the syncer's order.
struct memory_tap_state {
  const char* name = "sim_memory_tap";
};

memory_store_actor::behavior_type
memory_tap(memory_store_actor::stateful_pointer<memory_tap_state> self,
           memory_store_actor real, std::shared_ptr<scope_view> seen, sim_network* net,
           std::size_t client, std::size_t* subscriptions) {
  auto ok = [=](auto&&... xs) -> caf::result<ok_atom> {
    auto rp = self->make_response_promise<ok_atom>();
    self->request(real, caf::infinite, std::forward<decltype(xs)>(xs)...)
      .then([=](ok_atom) mutable { rp.deliver(ok_atom::value); },
            [=](caf::error& err) mutable { rp.deliver(err); });
    return rp;
  };
  return {
    [=](write_atom) { self->send(real, write_atom::value); },
    [=](flushed_atom, flush_report& r) {
      self->send(real, flushed_atom::value, std::move(r));
    },
    [=](rebase_atom, pull_reply& r) -> caf::result<ok_atom> {
      seen->known = true;
      seen->granted = r.granted;
      scope_view::call applied;
      applied.answer = true;
      applied.ok = true;
      applied.asked = net->asked[client];
      applied.forbidden = r.forbidden;
      auto rp = self->make_response_promise<ok_atom>();
      self->request(real, caf::infinite, rebase_atom::value, std::move(r))
        .then(
          [=](ok_atom) mutable {
            seen->calls.push_back(applied);
            *subscriptions += settle(*seen);
            rp.deliver(ok_atom::value);
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](flush_atom) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      self->request(real, caf::infinite, flush_atom::value)
        .then([=](uint64_t seq) mutable { rp.deliver(seq); },
              [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](refused_atom, std::vector<refusal>& r) {
      self->send(real, refused_atom::value, std::move(r));
    },
    [=](hello_atom, hello_reply& r) {
      self->send(real, hello_atom::value, std::move(r));
    },
    [=](grants_atom, grants& g, scope_rules& rules) {
      self->send(real, grants_atom::value, std::move(g), std::move(rules));
    },
    [=](prune_atom, scope_rules& rules,
        std::vector<std::string>& held) -> caf::result<ok_atom> {
      return ok(prune_atom::value, std::move(rules), std::move(held));
    },
  };
}

} // namespace

std::vector<uint64_t> check_survival(const std::string& client, bool normal_sync,
                                     const std::set<uint64_t>& flushed,
                                     uint64_t confirmed, const std::set<uint64_t>& outbox,
                                     std::vector<std::string>& violations) {
  std::vector<uint64_t> lost;
  uint64_t kept = 0; // the highest flushed id that survived
  for (auto mid : flushed) {
    if (mid <= confirmed || outbox.count(mid))
      kept = mid;
    else
      lost.push_back(mid);
  }
  for (auto mid : lost) {
    if (!normal_sync)
      violations.push_back(client + " restarted without flushed mutation "
                           + std::to_string(mid));
    else if (mid < kept)
      violations.push_back(client + " restarted without flushed mutation "
                           + std::to_string(mid) + " but with the later #"
                           + std::to_string(kept) + " (a hole, not a lost tail)");
  }
  return lost;
}

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
              hist_.reported_scopes[client] = st.scopes;
              // Within one epoch of one history: a restored server starts
              // again from the copy's versions (and renews its epoch once it
              // sees a cookie it never issued).
              auto& [epoch, seen, generation] = hist_.cursor[client];
              if (st.cursor.epoch != epoch || net_.generation != generation) {
                epoch = st.cursor.epoch;
                seen = st.cursor.version;
                generation = net_.generation;
                return;
              }
              if (st.cursor.version < seen)
                hist_.violations.push_back(
                  client_name(client) + " saw the server's version go back from "
                  + std::to_string(seen) + " to " + std::to_string(st.cursor.version)
                  + " in epoch " + epoch);
              seen = std::max(seen, st.cursor.version);
            },
            [](const caf::error&) {}); // a crashed syncer answers nothing
      },
    };
  });
  // The operator's reload (SIGHUP): answered, every live session has the
  // grants of the file as it was when it was asked for.
  operator_ = sys_->spawn([this](caf::event_based_actor* self) -> caf::behavior {
    return {
      [this, self](const caf::actor& gateway,
                   std::map<std::size_t, std::size_t> written) {
        self
          ->request(caf::actor_cast<gateway_control_actor>(gateway), 10s,
                    reload_atom::value)
          .then(
            [this, written](const std::string& line) {
              for (auto& [client, version] : written)
                net_.grants_in_force[client] = std::max(net_.grants_in_force[client],
                                                        version);
              note("server: " + line);
            },
            [this](const caf::error& err) { note("reload failed: " + describe(err)); });
      },
    };
  });
  // The application's subscribe and unsubscribe calls on a client's handle.
  app_ = sys_->spawn([this](caf::event_based_actor* self) -> caf::behavior {
    // The answer to call `id` of `view`. A restart since replaced the view:
    // the subscription is its database's again.
    auto answered = [this](std::size_t i, std::shared_ptr<scope_view> view, uint64_t id,
                           bool ok) {
      if (clients_[i]->view != view)
        return;
      view->calls.at(id - view->first).ok = ok;
      result_.subscriptions += settle(*view);
    };
    auto ask = [this, self, answered](std::size_t i, bool sub, const std::string& pattern,
                                      auto request) {
      auto view = clients_[i]->view;
      if (!view)
        return;
      auto id = view->first + view->calls.size();
      view->calls.push_back({sub, pattern, std::nullopt});
      std::move(request).then(
        [=, this](ok_atom) {
          note(client_name(i) + (sub ? " subscribed to " : " unsubscribed from ")
               + pattern);
          answered(i, view, id, true);
        },
        [=, this](const caf::error& err) {
          note(client_name(i) + (sub ? " subscribe " : " unsubscribe ") + pattern + ": "
               + to_sync_error(err).describe());
          answered(i, view, id, false);
        });
    };
    return {
      [=](subscribe_atom, const caf::actor& syncer, std::size_t i,
          const std::string& pattern) {
        ask(i, true, pattern,
            self->request(caf::actor_cast<network_syncer_actor>(syncer), 10s,
                          subscribe_atom::value, pattern));
      },
      [=](unsub_atom, const caf::actor& syncer, std::size_t i,
          const std::string& pattern) {
        ask(i, false, pattern,
            self->request(caf::actor_cast<network_syncer_actor>(syncer), 10s,
                          unsub_atom::value, pattern));
      },
    };
  });
  net_.rules = sim_rules();
  auto n = opt.clients != 0 ? opt.clients : static_cast<std::size_t>(pick(2, 4));
  result_.clients = n;
  server_ = std::make_unique<server_node>();
  server_->db_path = dir_ + "/server.db";
  server_->tokens_path = dir_ + "/tokens.txt";
  server_->scopes_path = dir_ + "/scopes.txt";
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
    if (opt.faults.normal_sync && pick(0, 1) == 0) {
      c->synchronous = "normal";
      ++result_.normal_clients;
    }
    c->port = spawn_client_port(*sys_, net_, i);
    net_.grant_versions[i] = {draw_grants(*this)};
    c->configured = draw_scopes(*this);
    clients_.push_back(std::move(c));
  }
  std::ofstream scopes{server_->scopes_path};
  for (auto& r : net_.rules)
    scopes << r.type << " " << r.field << "\n";
  write_tokens_file();
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
  caf::anon_send_exit(operator_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(app_, caf::exit_reason::user_shutdown);
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
  // The files as they are now, as a node reads them at its start.
  gcfg.tokens = token_table::load(s.tokens_path);
  gcfg.tokens_file = s.tokens_path;
  gcfg.scopes_file = s.scopes_path;
  gcfg.rules = net_.rules;
  gcfg.trace = s.trace;
  for (auto& [client, versions] : net_.grant_versions)
    net_.grants_in_force[client] = versions.size() - 1;
  log_settings lcfg;
  lcfg.rules = net_.rules;
  s.log = spawn_replication_log(*sys_, std::move(backend), lcfg, false, s.trace);
  s.gateway = spawn_gateway(*sys_, s.log, gcfg);
  watch(caf::actor_cast<caf::actor>(s.log), "replication_log");
  watch(caf::actor_cast<caf::actor>(s.gateway), "gateway");
  net_.gateway = gateway_actor{s.gateway};
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
  // full: a flushed change survives power loss; normal: the last ones may
  // not (check_survival holds each to its rule).
  settings.synchronous = c.synchronous;
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
  // server confirmed it; under normal, what is lost is the newest.
  std::set<uint64_t> outbox;
  for (auto& ch : snap.outbox)
    outbox.insert(ch.mutation_id);
  bool normal = c.synchronous == "normal";
  bool lenient = normal && !opt_.strict_normal_sync;
  // A restore lowers the record the client is told (and keeps): what it
  // took is not the client's to keep.
  if (!opt_.forget_restore_losses)
    account_restores();
  auto survive = [&](const std::string& id, uint64_t confirmed,
                     const std::set<uint64_t>& kept) {
    auto& flushed = hist_.flushed[id];
    std::set<uint64_t> expected;
    auto& taken = hist_.lost_to_restores[id];
    std::set_difference(flushed.begin(), flushed.end(), taken.begin(), taken.end(),
                        std::inserter(expected, expected.end()));
    auto lost = check_survival(c.name, lenient, expected, confirmed, kept,
                               hist_.violations);
    if (normal) {
      // Lost by design: their ids will be handed out again, to other changes.
      result_.lost_to_normal_sync += lost.size();
      for (auto mid : lost) {
        flushed.erase(mid);
        hist_.lost_to_normal_sync[id].insert(mid);
      }
    }
  };
  // The ids this client used after the file's own were lost with the tail
  // (a repair's move, or the file's creation: a new file, a new id), and
  // with them all they held.
  auto& ids = hist_.ids[i];
  auto own = std::find(ids.begin(), ids.end(), snap.client_id);
  bool known = own != ids.end();
  auto abandoned = known ? own + 1 : ids.begin();
  for (auto id = abandoned; id != ids.end(); ++id)
    survive(*id, 0, {});
  ids.erase(abandoned, ids.end());
  if (!known)
    ids.push_back(snap.client_id);
  hist_.owner[snap.client_id] = i;
  survive(snap.client_id, snap.last_mutation_id, outbox);
  if (c.lost_tail && !opt_.strict_normal_sync) {
    // The cursor lost with the tail is one the client no longer shows: it
    // starts again from the file's, and goes on from there.
    hist_.cursor[i] = {snap.cursor.epoch, snap.cursor.version, net_.generation};
    c.lost_tail = false;
  }
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
  // The subscription the syncer starts with: the database's, unless it has
  // none or one made from another client.scopes.
  c.view = std::make_shared<scope_view>();
  auto configured = minimal_patterns(c.configured);
  auto& stored = snap.subscription;
  if (!stored.stored || stored.configured != configured || stored.entries.empty())
    c.view->subscription = configured;
  else
    for (auto& e : stored.entries)
      c.view->subscription.push_back(e.pattern);
  auto memory_tap_actor
    = sys_->spawn(memory_tap, c.memory, c.view, &net_, i, &result_.subscriptions);
  c.memory_tap = caf::actor_cast<caf::actor>(memory_tap_actor);
  syncer_config scfg{snap.client_id, snap.cursor, snap.last_mutation_id, snap.push_epoch,
                     c.sync};
  scfg.scopes = c.configured;
  scfg.subscription = std::move(snap.subscription);
  c.syncer = spawn_network_syncer(*sys_, std::move(scfg),
                                  caf::actor_cast<connector_actor>(c.port), c.db,
                                  memory_tap_actor, c.flusher, c.trace);
  if (!c.online)
    caf::anon_send(c.syncer, online_atom::value, false);
  c.observer = caf::actor_cast<caf::actor>(
    sys_->spawn(flush_observer, &hist_, &net_, i, c.client_id));
  caf::anon_send(c.flusher, subscribe_atom::value,
                 caf::actor_cast<flush_listener_actor>(c.observer));
  watch(caf::actor_cast<caf::actor>(c.db), c.name + "/local_db");
  watch(caf::actor_cast<caf::actor>(c.flusher), c.name + "/flush_scheduler");
  watch(caf::actor_cast<caf::actor>(c.memory), c.name + "/memory_store");
  watch(caf::actor_cast<caf::actor>(c.syncer), c.name + "/network_syncer");
  c.up = true;
  note(c.name + " up (incarnation " + std::to_string(c.incarnation) + ", " + c.client_id
       + ", synchronous=" + c.synchronous + ")");
}

void world::stop_client(std::size_t i, caf::exit_reason reason) {
  auto& c = *clients_[i];
  kill_now(caf::actor_cast<caf::actor>(c.syncer), reason);
  kill_now(caf::actor_cast<caf::actor>(c.memory), reason);
  kill_now(caf::actor_cast<caf::actor>(c.flusher), reason);
  kill_now(caf::actor_cast<caf::actor>(c.db), reason);
  kill_now(c.observer, reason);
  kill_now(c.tap, reason);
  kill_now(c.memory_tap, reason);
  check_handed_on(i, false);
  c.syncer = nullptr;
  c.memory = nullptr;
  c.flusher = nullptr;
  c.db = nullptr;
  c.observer = nullptr;
  c.tap = nullptr;
  c.memory_tap = nullptr;
  c.core = nullptr; // memory is lost
  c.subs = nullptr;
  if (c.trace)
    c.trace->close();
  c.trace = nullptr;
  c.up = false;
}

} // namespace memsync::sim
