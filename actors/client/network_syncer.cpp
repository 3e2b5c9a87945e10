#include "actors/client/network_syncer.hpp"

#include <algorithm>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

namespace memsync {

namespace {

constexpr size_t max_kept_refusals = 100;

struct syncer_state {
  syncer_state() = default; // not an aggregate: CAF would build it from self
  syncer_config cfg;
  connector_actor connector;
  local_db_actor db;
  memory_store_actor store;
  std::shared_ptr<trace_sink> trace;

  session_actor session;
  poke_listener_actor relay; ///< this connection's poke listener
  bool offline = false;      ///< told to stay offline: no (re)connects
  bool connecting = false;
  uint64_t link = 0;        ///< bumps on every (dis)connect; stale replies are dropped
  int failures = 0;         ///< consecutive failures, for backoff
  bool push_paused = false; ///< after a failed push, until its retry timer
  uint64_t timer_gen = 0;   ///< bumps to cancel armed push timers
  bool push_armed = false;
  bool push_in_flight = false;
  bool pull_in_flight = false;
  bool pull_again = false;
  uint64_t pulls_done = 0;
  /// When the first poke not yet served by a pull arrived (layer stats).
  caf::actor_clock::time_point poked_at{};
  uint64_t durable_mid = 0; ///< highest mutation id known in the outbox
  sync_status status;
  struct waiter {
    uint64_t target;      ///< mutation id that must be confirmed
    uint64_t after_pulls; ///< a pull must complete after this count
    caf::typed_response_promise<ok_atom> promise;
  };
  std::vector<waiter> waiters;
  std::minstd_rand rng{std::random_device{}()};
  int64_t clock_rtt_us = 0; ///< of the best offset sample in force; 0: none
  int64_t clock_at_us = 0;  ///< when it was taken
  const char* name = "network_syncer";
};

using self_ptr = network_syncer_actor::stateful_pointer<syncer_state>;

// The two timers that send (pull_atom, why) to the syncer.
constexpr uint64_t fallback_pull = 0; ///< every pull_interval, re-armed
constexpr uint64_t retry_pull = 1;    ///< once, after a failed pull

void try_push(self_ptr self);
void try_pull(self_ptr self);
void connect(self_ptr self);

caf::timespan backoff(self_ptr self) {
  auto& st = self->state;
  auto& s = st.cfg.settings;
  auto delay = s.retry_min;
  for (int i = 1; i < st.failures && delay < s.retry_max; ++i)
    delay *= 2;
  delay = std::min(delay, s.retry_max);
  // Jitter: between half and all of the delay, so clients that lost the
  // same server do not all come back in the same instant.
  std::uniform_int_distribution<int64_t> pick{delay.count() / 2, delay.count()};
  return caf::timespan{pick(st.rng)};
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// An NTP-style offset sample: the server read its clock at `server_us`,
/// between our `t0` and `t1`. A sample with a shorter round trip bounds the
/// offset more tightly; one is kept at least every 30 s against drift.
void clock_sample(self_ptr self, int64_t t0, int64_t server_us, int64_t t1, bool fresh) {
  auto& st = self->state;
  if (!st.trace || server_us == 0)
    return;
  auto rtt = t1 - t0;
  if (!fresh && st.clock_rtt_us != 0 && rtt >= st.clock_rtt_us
      && t1 - st.clock_at_us < 30'000'000)
    return;
  st.clock_rtt_us = std::max<int64_t>(rtt, 1);
  st.clock_at_us = t1;
  st.trace->clock((server_us - (t0 + t1) / 2) * 1000, rtt * 1000);
}

void note_error(self_ptr self, const caf::error& err) {
  auto e = to_sync_error(err);
  ++self->state.status.layers.errors[to_string(e.code)];
  self->state.status.last_error = e.describe();
}

uint64_t micros_since(self_ptr self, caf::actor_clock::time_point t) {
  auto d = self->clock().now() - t;
  return static_cast<uint64_t>(std::max<int64_t>(
    0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

// One per connection, named as the poke listener in the hello: the session
// monitors it, so ending it tells the server this client left, as a lost
// connection would (the BASP connection itself may be shared with other
// clients of this process).
struct relay_state {
  const char* name = "poke_relay"; // the syncer's traces name it as sender
};

poke_listener_actor::behavior_type
poke_relay(poke_listener_actor::stateful_pointer<relay_state> self,
           network_syncer_actor syncer) {
  self->monitor(syncer);
  self->set_down_handler([=](const caf::down_msg&) { self->quit(); });
  return {
    [=](poke_atom, const poke& p) { self->send(syncer, poke_atom::value, p); },
  };
}

void schedule_reconnect(self_ptr self) {
  auto& st = self->state;
  ++st.failures;
  self->delayed_send(self, backoff(self), connect_atom::value, st.link);
}

/// Forgets the connection (or the attempt); stale replies are dropped.
void drop_link(self_ptr self) {
  auto& st = self->state;
  if (st.session)
    self->demonitor(st.session.address());
  if (st.relay)
    caf::anon_send_exit(st.relay, caf::exit_reason::user_shutdown);
  st.relay = nullptr;
  st.session = nullptr;
  st.status.connected = false;
  st.connecting = false;
  st.push_in_flight = false; // in-flight requests would only time out
  st.pull_in_flight = false;
  st.push_paused = false; // the new connection pushes right away
  ++st.link;
}

void disconnected(self_ptr self, const caf::error& reason) {
  auto& st = self->state;
  if (!st.session && !st.connecting)
    return;
  if (reason)
    note_error(self, reason);
  if (st.session)
    ++st.status.layers.disconnects;
  drop_link(self);
  schedule_reconnect(self);
}

void connected(self_ptr self, const hello_reply& hello, session_actor session) {
  auto& st = self->state;
  st.connecting = false;
  st.failures = 0;
  st.session = std::move(session);
  self->monitor(st.session);
  st.status.connected = true;
  st.status.server_id = hello.server_id;
  ++st.status.connects;
  try_pull(self);
  try_push(self);
}

void connect(self_ptr self) {
  auto& st = self->state;
  if (st.connecting || st.session || st.offline)
    return;
  st.connecting = true;
  auto link = ++st.link;
  st.relay = self->spawn(poke_relay, caf::actor_cast<network_syncer_actor>(self));
  auto timeout = st.cfg.settings.request_timeout;
  self->request(st.connector, timeout, connect_atom::value)
    .then(
      [=](gateway_actor& gateway) {
        auto& st = self->state;
        if (link != st.link)
          return;
        hello_request hello;
        hello.client_id = st.cfg.client_id;
        hello.token = st.cfg.settings.token;
        hello.client_time_us = now_us();
        auto hello_sent_us = hello.client_time_us;
        self->request(gateway, timeout, hello_atom::value, std::move(hello), st.relay)
          .then(
            [=](hello_reply& reply, session_actor& session) {
              auto& st = self->state;
              trace_scope ts{st.trace.get(), self, "hello_reply"};
              clock_sample(self, hello_sent_us, reply.server_time_us, now_us(), true);
              if (link == st.link)
                connected(self, reply, std::move(session));
            },
            [=](caf::error& err) {
              if (link == self->state.link)
                disconnected(self, err);
            });
      },
      [=](caf::error& err) {
        if (link == self->state.link)
          disconnected(self, err);
      });
}

void complete_waiters(self_ptr self) {
  auto& st = self->state;
  auto& ws = st.waiters;
  for (auto it = ws.begin(); it != ws.end();) {
    if (st.status.last_mutation_id >= it->target && st.pulls_done > it->after_pulls) {
      it->promise.deliver(ok_atom::value);
      it = ws.erase(it);
    } else {
      ++it;
    }
  }
}

void arm_push(self_ptr self, caf::timespan delay) {
  auto& st = self->state;
  if (st.push_armed)
    return;
  st.push_armed = true;
  self->delayed_send(self, delay, push_atom::value, st.timer_gen);
}

void on_pushed(self_ptr self, push_reply& reply, caf::actor_clock::time_point sent) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "push_reply"};
  st.push_in_flight = false;
  ++st.status.layers.pushes;
  st.status.layers.push_round_trip.record(micros_since(self, sent));
  st.failures = 0;
  st.status.acknowledged = std::max(st.status.acknowledged, reply.last_mutation_id);
  if (!reply.epoch.empty() && reply.epoch != st.cfg.push_epoch) {
    st.cfg.push_epoch = reply.epoch;
    self->request(st.db, caf::infinite, epoch_atom::value, reply.epoch)
      .then([](ok_atom) {}, [=](caf::error& err) { note_error(self, err); });
  }
  if (!reply.refused.empty()) {
    auto& kept = st.status.refused;
    kept.insert(kept.end(), reply.refused.begin(), reply.refused.end());
    for (auto& r : reply.refused)
      ++st.status.layers.errors[std::string{"refused:"} + to_string(r.reason.code)];
    if (kept.size() > max_kept_refusals)
      kept.erase(kept.begin(), kept.end() - max_kept_refusals);
    self->send(st.store, refused_atom::value, std::move(reply.refused));
  }
  // The server pokes after its commit; more outbox goes out right away.
  if (st.durable_mid > st.status.acknowledged)
    try_push(self);
}

void try_push(self_ptr self) {
  auto& st = self->state;
  if (!st.session || st.push_in_flight || st.push_paused)
    return;
  if (st.durable_mid <= st.status.acknowledged)
    return;
  st.push_in_flight = true;
  st.push_armed = false;
  ++st.timer_gen;
  auto link = st.link;
  auto& s = st.cfg.settings;
  self
    ->request(st.db, s.request_timeout, outbox_atom::value, st.status.acknowledged,
              s.max_push_changes, s.max_push_bytes)
    .then(
      [=](std::vector<change>& changes) {
        auto& st = self->state;
        if (link != st.link)
          return;
        trace_scope ts{st.trace.get(), self, "push"};
        for (auto& c : changes)
          ts.item(c.trace.trace_id, c.id, 0, c.mutation_id);
        if (changes.empty()) {
          st.push_in_flight = false;
          return;
        }
        push_request req{st.cfg.client_id, st.cfg.push_epoch, std::move(changes)};
        auto sent = self->clock().now();
        self
          ->request(st.session, st.cfg.settings.request_timeout, push_atom::value,
                    std::move(req))
          .then(
            [=](push_reply& reply) {
              if (link == self->state.link)
                on_pushed(self, reply, sent);
            },
            [=](caf::error& err) {
              auto& st = self->state;
              if (link != st.link)
                return;
              // Lost reply, busy server or a gap after a restore: pull (a
              // restored server resets us) and push again after a pause.
              st.push_in_flight = false;
              note_error(self, err);
              ++st.failures;
              st.push_paused = true;
              st.push_armed = true;
              self->delayed_send(self, backoff(self), push_atom::value, ++st.timer_gen);
              try_pull(self);
            });
      },
      [=](caf::error& err) {
        if (link != self->state.link)
          return;
        self->state.push_in_flight = false;
        note_error(self, err);
      });
}

void on_pulled(self_ptr self, pull_reply reply, caf::actor_clock::time_point poked,
               caf::actor_clock::time_point received) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "pulled"};
  st.pull_in_flight = false;
  ++st.pulls_done;
  auto& layers = st.status.layers;
  ++layers.pulls;
  layers.apply.record(micros_since(self, received));
  if (poked != caf::actor_clock::time_point{})
    layers.poke_to_pull.record(micros_since(self, poked));
  st.status.cursor = reply.next;
  st.status.last_mutation_id = reply.last_mutation_id;
  if (reply.reset) // another epoch: its record of us is what counts now
    st.status.acknowledged = reply.last_mutation_id;
  else
    st.status.acknowledged = std::max(st.status.acknowledged, reply.last_mutation_id);
  complete_waiters(self);
  if (std::exchange(st.pull_again, false))
    try_pull(self);
  try_push(self);
}

void try_pull(self_ptr self) {
  auto& st = self->state;
  if (!st.session)
    return;
  if (st.pull_in_flight) {
    st.pull_again = true; // coalesce: one more pull after this one
    return;
  }
  st.pull_in_flight = true;
  auto link = st.link;
  auto poked = std::exchange(st.poked_at, caf::actor_clock::time_point{});
  auto timeout = st.cfg.settings.request_timeout;
  auto failed = [=](caf::error& err) {
    auto& st = self->state;
    if (link != st.link)
      return;
    st.pull_in_flight = false;
    note_error(self, err);
    // Not only at the next poke or fallback tick: what this pull (and any
    // poke held back behind it) was to fetch is fetched after a pause.
    st.pull_again = false;
    self->delayed_send(self, backoff(self), pull_atom::value, retry_pull);
  };
  auto sent_us = now_us();
  self
    ->request(st.session, timeout, pull_atom::value,
              pull_request{st.cfg.client_id, st.status.cursor})
    .then(
      [=](pull_reply& reply) {
        if (link != self->state.link)
          return;
        auto received = self->clock().now();
        clock_sample(self, sent_us, reply.server_time_us, now_us(), false);
        trace_scope ts{self->state.trace.get(), self, "pull_reply"};
        ts.pull_items(reply);
        // What a server sends is checked like what a client sends: an
        // invalid entity never reaches the local database or the store.
        auto& es = reply.entities;
        auto bad = std::remove_if(es.begin(), es.end(), [](const entity& e) {
          return !validate_entity(e, data_limits{}).ok();
        });
        if (bad != es.end()) {
          self->state.status.last_error = "ignored " + std::to_string(es.end() - bad)
                                          + " invalid entities from the server";
          es.erase(bad, es.end());
        }
        // Durable first, then visible: after a crash between the two the
        // local database is the truth and is loaded again.
        self->request(self->state.db, timeout, rebase_atom::value, reply)
          .then(
            [=](ok_atom) {
              self->request(self->state.store, timeout, rebase_atom::value, reply)
                .then(
                  [=](ok_atom) {
                    if (link == self->state.link)
                      on_pulled(self, std::move(reply), poked, received);
                  },
                  failed);
            },
            failed);
      },
      failed);
}

network_syncer_actor::behavior_type
network_syncer_impl(self_ptr self, syncer_config cfg, connector_actor connector,
                    local_db_actor db, memory_store_actor store,
                    flush_scheduler_actor flusher, std::shared_ptr<trace_sink> trace) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.trace = std::move(trace);
  st.connector = std::move(connector);
  st.db = std::move(db);
  st.store = std::move(store);
  st.status.cursor = st.cfg.cursor;
  st.status.last_mutation_id = st.cfg.last_mutation_id;
  st.status.acknowledged = st.cfg.last_mutation_id;
  self->send(flusher, subscribe_atom::value, caf::actor_cast<flush_listener_actor>(self));
  self->request(st.db, caf::infinite, get_atom::value).then([=](uint64_t mid) {
    self->state.durable_mid = std::max(self->state.durable_mid, mid);
    try_push(self);
  });
  self->set_down_handler([=](const caf::down_msg& msg) {
    if (self->state.session && msg.source == self->state.session.address())
      disconnected(self, msg.reason);
  });
  connect(self);
  self->delayed_send(self, st.cfg.settings.pull_interval, pull_atom::value,
                     fallback_pull);
  return {
    [=](poke_atom, const poke& p) {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "poke"};
      ts.version(p.version);
      ts.mark(p.trace_id);
      if (p.version <= st.status.cursor.version)
        return;
      if (st.poked_at == caf::actor_clock::time_point{})
        st.poked_at = self->clock().now();
      try_pull(self);
    },
    [=](flushed_atom, const flush_report& report) {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "flushed"};
      for (auto& c : report.changes)
        st.durable_mid = std::max(st.durable_mid, c.mutation_id);
      if (st.durable_mid > st.status.acknowledged)
        arm_push(self, st.cfg.settings.push_debounce);
    },
    [=](sync_atom) -> caf::result<ok_atom> {
      auto& st = self->state;
      auto promise = self->make_response_promise<ok_atom>();
      self->request(st.db, caf::infinite, get_atom::value)
        .then([=](uint64_t mid) mutable {
          auto& st = self->state;
          st.durable_mid = std::max(st.durable_mid, mid);
          st.waiters.push_back({mid, st.pulls_done, promise});
          try_push(self);
          try_pull(self);
        });
      return promise;
    },
    [=](status_atom) { return self->state.status; },
    [=](online_atom, bool online) {
      auto& st = self->state;
      if (st.offline != online)
        return;
      st.offline = !online;
      if (online) {
        st.failures = 0;
        connect(self);
      } else {
        drop_link(self);
      }
    },
    [=](connect_atom, uint64_t link) {
      if (link == self->state.link)
        connect(self);
    },
    [=](push_atom, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.timer_gen)
        return;
      st.push_armed = false;
      st.push_paused = false;
      try_push(self);
    },
    [=](pull_atom, uint64_t why) {
      try_pull(self);
      if (why == fallback_pull) // periodic: arm the next tick
        self->delayed_send(self, self->state.cfg.settings.pull_interval, pull_atom::value,
                           fallback_pull);
    },
  };
}

// -- connector ----------------------------------------------------------------

struct connector_state {
  std::string host;
  uint16_t port = 0;
  caf::timespan timeout{};
  const char* name = "connector";
};

connector_actor::behavior_type
connector_impl(connector_actor::stateful_pointer<connector_state> self, std::string host,
               uint16_t port, caf::timespan timeout) {
  self->state.host = std::move(host);
  self->state.port = port;
  self->state.timeout = timeout;
  return {
    [=](connect_atom) -> caf::result<gateway_actor> {
      auto promise = self->make_response_promise<gateway_actor>();
      auto mm = self->system().middleman().actor_handle();
      auto& st = self->state;
      self->request(mm, st.timeout, connect_atom::value, st.host, st.port)
        .then(
          [=](const caf::node_id&, caf::strong_actor_ptr& ptr,
              const std::set<std::string>&) mutable {
            if (!ptr)
              promise.deliver(make_error(sync_errc::unavailable,
                                         "no actor published at the server port"));
            else
              promise.deliver(caf::actor_cast<gateway_actor>(std::move(ptr)));
          },
          [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
      return promise;
    },
  };
}

} // namespace

connector_actor spawn_connector(caf::actor_system& sys, std::string host, uint16_t port,
                                caf::timespan timeout) {
  return sys.spawn(connector_impl, std::move(host), port, timeout);
}

network_syncer_actor
spawn_network_syncer(caf::actor_system& sys, syncer_config cfg, connector_actor connector,
                     local_db_actor db, memory_store_actor store,
                     flush_scheduler_actor flusher, std::shared_ptr<trace_sink> trace) {
  return sys.spawn(network_syncer_impl, std::move(cfg), std::move(connector),
                   std::move(db), std::move(store), std::move(flusher), std::move(trace));
}

} // namespace memsync
