// network_syncer: the connection (the state machine drawn in the header),
// the behavior, and the connector. Pushing and pulling live in
// network_syncer_push.cpp and network_syncer_pull.cpp.
#include "actors/client/network_syncer.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/send.hpp>

#include "actors/client/network_syncer_state.hpp"
#include "actors/common/backoff.hpp"
#include "actors/common/clock.hpp"

namespace memsync {

namespace network_syncer_detail {

caf::timespan retry_delay(self_ptr self) {
  auto& st = self->state;
  auto& s = st.cfg.settings;
  return jittered_backoff(s.retry_min, s.retry_max, st.failures, st.rng);
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

/// `sync`: waits until what the outbox holds now is confirmed. The target
/// is a mutation id, so it is taken only when the numbering is known: a
/// reply that may straddle a move to a new client id (sent or received
/// while it is under way, or a move happened in between) is asked again.
void wait_for_outbox(self_ptr self, caf::typed_response_promise<ok_atom> promise) {
  auto& st = self->state;
  if (st.repairing) {
    st.parked_syncs.push_back(std::move(promise));
    return;
  }
  auto identity = st.identity_gen;
  self->request(st.db, caf::infinite, outbox_max_atom::value)
    .then([=](uint64_t mid) mutable {
      auto& st = self->state;
      if (st.repairing || identity != st.identity_gen)
        return wait_for_outbox(self, std::move(promise));
      st.durable_mid = std::max(st.durable_mid, mid);
      // A pull under way was asked for before this sync: its answer may
      // predate changes acknowledged to other clients meanwhile, so only a
      // pull after it counts (try_pull asks for that one).
      auto after = st.pulls_done + (st.pull == pull_phase::idle ? 0 : 1);
      st.waiters.push_back({mid, after, promise});
      try_push(self);
      try_pull(self);
    });
}

void forget_push_epoch(self_ptr self) {
  auto& st = self->state;
  st.cfg.push_epoch.clear();
  self->request(st.db, caf::infinite, epoch_atom::value, std::string{})
    .then([](ok_atom) {}, [=](caf::error& err) { note_error(self, err); });
}

bool check_record(self_ptr self, uint64_t record) {
  auto& st = self->state;
  if (st.repairing)
    return false;
  if (record <= st.pushed_mid)
    return true;
  st.repairing = true;
  ++st.status.layers.errors["restored_copy"];
  st.status.last_error = "the server has seen mutation " + std::to_string(record) + " of "
                         + st.cfg.client_id + ", above any this database sent ("
                         + std::to_string(st.pushed_mid)
                         + "): it is an older copy; moving to a new client id";
  // No timeout: the flush scheduler always answers (it retries a failing
  // local_db), and nothing may be pushed under the old id meanwhile.
  self->request(st.flusher, caf::infinite, restored_atom::value, st.cfg.client_id, record)
    .then([=](std::string& client_id) {
      auto& st = self->state;
      st.repairing = false;
      for (auto& promise : std::exchange(st.parked_syncs, {}))
        wait_for_outbox(self, std::move(promise));
      if (client_id != st.cfg.client_id) // the report of the move came first
        return;
      // local_db has handed out ids up to the record for pushes (a batch read
      // whose reply we dropped): the record is ours after all.
      st.pushed_mid = std::max(st.pushed_mid, record);
      try_pull(self);
    });
  return false;
}

} // namespace network_syncer_detail

namespace {

using namespace network_syncer_detail;

// One per connection, named as the poke listener in the hello: the session
// monitors it, so ending it tells the server this client left, as a lost
// connection would (the BASP connection itself may be shared with other
// clients of this process).
struct poke_relay_state {
  const char* name = "poke_relay"; // the syncer's traces name it as sender
};

client_listener_actor::behavior_type
poke_relay(client_listener_actor::stateful_pointer<poke_relay_state> self,
           network_syncer_impl_actor syncer) {
  self->monitor(syncer);
  self->set_down_handler([=](const caf::down_msg&) { self->quit(); });
  return {
    [=](poke_atom, const poke& p) { self->send(syncer, poke_atom::value, p); },
    [=](pulled_atom, pushed_answer& a) {
      // With its sender: an answer is data, taken from the session alone.
      auto sender = self->current_sender();
      self->send(syncer, pulled_atom::value, std::move(a),
                 sender ? sender->address() : caf::actor_addr{});
    },
  };
}

/// Forgets the connection (or the attempt) and enters `next`: disconnected
/// or offline. Requests in flight would only time out; their replies are
/// stale from now on.
void drop_link(self_ptr self, link_state next) {
  auto& st = self->state;
  if (st.session)
    self->demonitor(st.session.address());
  if (st.relay)
    caf::anon_send_exit(st.relay, caf::exit_reason::user_shutdown);
  st.relay = nullptr;
  st.session = nullptr;
  st.link = next;
  ++st.link_gen;
  st.push_in_flight = false;
  st.pull = pull_phase::idle;
  st.ahead.clear();
  st.poked_version = 0;
  // The new connection pushes right away; a pending debounce still fires.
  if (st.push_wait == push_timer::backoff)
    st.push_wait = push_timer::debounce;
}

void connect(self_ptr self);

/// local_db moved to a new client id and renumbered its outbox (see
/// flush_report): the server knows nothing of the new id, so everything is
/// pushed again from 1 on a new connection; base and cookie stay.
void moved(self_ptr self, const flush_report& report) {
  auto& st = self->state;
  auto& old = report.renumbered;
  st.cfg.client_id = report.new_client_id;
  st.status.client_id = report.new_client_id;
  st.cfg.push_epoch.clear();
  ++st.identity_gen;
  st.pushed_mid = 0;
  st.record_checked = false;
  st.status.acknowledged = 0;
  st.reported_mid = 0;
  st.status.last_mutation_id = 0;
  st.durable_mid = old.size();
  for (auto& w : st.waiters) // the same changes, under their new ids
    w.target = static_cast<uint64_t>(std::upper_bound(old.begin(), old.end(), w.target)
                                     - old.begin());
  if (st.link == link_state::offline)
    return;
  drop_link(self, link_state::disconnected);
  connect(self);
}

/// connecting, handshaking or connected -> disconnected, with a reconnect
/// after the backoff.
void link_lost(self_ptr self, const caf::error& reason) {
  auto& st = self->state;
  if (st.link == link_state::disconnected || st.link == link_state::offline)
    return;
  if (reason)
    note_error(self, reason);
  if (st.link == link_state::connected)
    ++st.status.layers.disconnects;
  drop_link(self, link_state::disconnected);
  ++st.failures;
  self->delayed_send(self, retry_delay(self), reconnect_atom::value, st.link_gen);
}

/// handshaking -> connected.
void connected(self_ptr self, const hello_reply& hello, session_actor session) {
  auto& st = self->state;
  st.link = link_state::connected;
  st.failures = 0;
  st.session = std::move(session);
  self->monitor(st.session);
  st.status.server_id = hello.server_id;
  st.server_push_changes = hello.max_push_changes;
  st.server_push_bytes = hello.max_push_bytes;
  st.server_data.max_bytes = hello.max_data_bytes;
  st.server_data.max_depth = hello.max_data_depth;
  // So that a local write that could never be pushed, or that the token may
  // not make, is refused at once.
  self->send(st.store, hello_atom::value, hello);
  learn_grants(self, hello.granted, hello.rules);
  ++st.status.connects;
  try_pull(self);
  try_push(self);
}

/// connecting -> handshaking: hello to the gateway, naming this link's relay.
void handshake(self_ptr self, const gateway_actor& gateway) {
  auto& st = self->state;
  st.link = link_state::handshaking;
  hello_request hello;
  hello.client_id = st.cfg.client_id;
  hello.token = st.cfg.settings.token;
  hello.client_time_us = wall_clock_us();
  auto sent_us = hello.client_time_us;
  self
    ->request(gateway, st.cfg.settings.request_timeout, hello_atom::value,
              std::move(hello), st.relay)
    .then(on_link<hello_reply, session_actor>(
            self,
            [=](hello_reply& reply, session_actor& session) {
              trace_scope ts{self->state.trace.get(), self, "hello_reply"};
              clock_sample(self, sent_us, reply.server_time_us, wall_clock_us(), true);
              connected(self, reply, std::move(session));
            }),
          on_link<caf::error>(self, [=](caf::error& err) { link_lost(self, err); }));
}

/// disconnected -> connecting: ask the connector for the gateway.
void connect(self_ptr self) {
  auto& st = self->state;
  st.link = link_state::connecting;
  ++st.link_gen;
  st.relay = self->spawn(poke_relay, caf::actor_cast<network_syncer_impl_actor>(self));
  self->request(st.connector, st.cfg.settings.request_timeout, connect_atom::value)
    .then(on_link<gateway_actor>(
            self, [=](gateway_actor& gateway) { handshake(self, gateway); }),
          on_link<caf::error>(self, [=](caf::error& err) { link_lost(self, err); }));
}

network_syncer_impl_actor::behavior_type
network_syncer_impl(self_ptr self, syncer_config cfg, connector_actor connector,
                    local_db_actor db, memory_store_actor store,
                    flush_scheduler_actor flusher, std::shared_ptr<trace_sink> trace) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.trace = std::move(trace);
  st.connector = std::move(connector);
  st.db = std::move(db);
  st.store = std::move(store);
  st.flusher = flusher;
  st.status.client_id = st.cfg.client_id;
  st.status.cursor = st.cfg.cursor;
  st.status.last_mutation_id = st.cfg.last_mutation_id;
  st.status.acknowledged = st.cfg.last_mutation_id;
  st.reported_mid = st.cfg.last_mutation_id;
  init_scopes(self);
  if (st.cfg.settings.jitter_seed != 0)
    st.rng.seed(static_cast<std::minstd_rand::result_type>(
      st.cfg.settings.jitter_seed % 2147483646 + 1));
  self->send(flusher, subscribe_atom::value, caf::actor_cast<flush_listener_actor>(self));
  self->request(st.db, caf::infinite, outbox_max_atom::value).then([=](uint64_t mid) {
    self->state.durable_mid = std::max(self->state.durable_mid, mid);
    try_push(self);
  });
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& st = self->state;
    if (st.link == link_state::connected && msg.source == st.session.address())
      link_lost(self, msg.reason);
  });
  // The first reply is only checked against the record once it is known.
  self->request(st.db, caf::infinite, pushed_atom::value).then([=](uint64_t mid) {
    auto& st = self->state;
    st.pushed_mid = std::max(st.pushed_mid, mid);
    st.record_known = true;
    if (st.link == link_state::disconnected)
      connect(self);
  });
  self->delayed_send(self, st.cfg.settings.pull_interval, pull_tick_atom::value);
  return {
    [=](poke_atom, const poke& p) { poked(self, p); },
    [=](pulled_atom, pushed_answer& a, const caf::actor_addr& sender) {
      answered_ahead(self, a, sender);
    },
    [=](flushed_atom, const flush_report& report) {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "flushed"};
      if (!report.new_client_id.empty())
        moved(self, report);
      for (auto& c : report.changes)
        st.durable_mid = std::max(st.durable_mid, c.mutation_id);
      if (st.durable_mid > st.status.acknowledged)
        arm_push(self, st.cfg.settings.push_debounce);
    },
    [=](sync_atom) -> caf::result<ok_atom> {
      auto promise = self->make_response_promise<ok_atom>();
      wait_for_outbox(self, promise); // a copy: both refer to one request
      return promise;
    },
    [=](status_atom) {
      auto out = self->state.status;
      out.connected = self->state.link == link_state::connected;
      return out;
    },
    [=](online_atom, bool online) {
      auto& st = self->state;
      if (online == (st.link != link_state::offline))
        return; // already so
      if (online) {
        st.failures = 0;
        if (st.record_known)
          connect(self);
        else
          st.link = link_state::disconnected; // connects once it is known
      } else {
        drop_link(self, link_state::offline);
      }
    },
    [=](subscribe_atom, const std::string& pattern) { return subscribe(self, pattern); },
    [=](unsub_atom, const std::string& pattern) { return unsubscribe(self, pattern); },
    [=](scopes_atom) { return current_scopes(self->state); },
    [=](reconnect_atom, uint64_t gen) {
      if (is_current(self, gen))
        connect(self);
    },
    [=](push_due_atom, uint64_t gen) { push_due(self, gen); },
    [=](pull_tick_atom) {
      try_pull(self);
      self->delayed_send(self, self->state.cfg.settings.pull_interval,
                         pull_tick_atom::value);
    },
    [=](pull_retry_atom) { try_pull(self); },
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
