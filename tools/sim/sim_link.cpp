#include "tools/sim/sim_link.hpp"

#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace memsync::sim {

namespace {

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using server_atom = caf::atom_constant<caf::atom("server")>;

/// How long a link waits for the real server: beyond any request timeout of
/// the syncer, so the syncer's own timeouts decide what a stall means.
constexpr caf::timespan server_timeout = std::chrono::seconds(60);

using conn_link_actor = session_actor::extend<
  /// From the real session: an answer read ahead.
  caf::reacts_to<pulled_atom, pushed_answer>,
  /// A message of direction up or down is due (its key in `due`).
  caf::reacts_to<deliver_atom, uint64_t>,
  /// The real session this connection talks to, from the port.
  caf::reacts_to<server_atom, session_actor>>;

struct conn_link_state {
  sim_network* net = nullptr;
  std::size_t client = 0;
  uint64_t generation = 0; ///< of the server this connection reaches
  session_actor server;
  client_listener_actor listener; ///< the syncer's relay
  /// The grants version the last answer's check started from. A session
  /// reads ahead only under the grants of its last answer (it stops at new
  /// grants), so an answer read ahead is checked from there.
  std::size_t answer_grants_from = 0;
  /// When the last message of each direction arrives: a later one never
  /// overtakes it (TCP order per direction).
  caf::actor_clock::time_point last_up{};
  caf::actor_clock::time_point last_down{};
  uint64_t next = 0;
  std::map<uint64_t, std::function<void()>> due;
  const char* name = "sim_link";
};

using link_ptr = conn_link_actor::stateful_pointer<conn_link_state>;

enum class direction { up, down };

/// Puts `fn` on the wire: it runs after the network's delay, never before
/// an earlier message of the same direction. A dropping network ends the
/// connection here instead; a partitioned one loses the message.
void on_wire(link_ptr self, direction dir, std::function<void()> fn) {
  auto& st = self->state;
  auto& net = *st.net;
  if (net.frozen || net.isolated[st.client])
    return;
  if (net.chance(net.drop_chance)) {
    ++net.record.drops;
    self->quit(caf::exit_reason::remote_link_unreachable);
    return;
  }
  auto now = self->clock().now();
  auto& last = dir == direction::up ? st.last_up : st.last_down;
  last = std::max(last, now + net.delay());
  auto id = st.next++;
  st.due.emplace(id, std::move(fn));
  self->delayed_send(self, last - now, deliver_atom::value, id);
}

void record_ack(sim_network& net, uint64_t generation, const push_request& req,
                const push_reply& rep) {
  std::set<uint64_t> refused;
  for (auto& r : rep.refused)
    refused.insert(r.mutation_id);
  for (auto& c : req.changes) {
    if (c.mutation_id > rep.last_mutation_id)
      continue;
    if (refused.count(c.mutation_id))
      net.record.refused[req.client_id].insert(c.mutation_id);
    else if (net.record.acked[req.client_id].emplace(c.mutation_id, c).second)
      net.record.acked_in[req.client_id][c.mutation_id] = generation;
  }
}

/// The changes of a push now reach the server, under grants of version
/// `grants_from` or later.
void record_pushed(sim_network& net, const push_request& req, std::size_t grants_from) {
  for (auto& c : req.changes) {
    auto& seen = net.record.pushed[req.client_id][c.mutation_id];
    bool known = std::any_of(seen.begin(), seen.end(), [&](auto& p) {
      return p.c.id == c.id && p.c.kind == c.kind && p.c.type == c.type
             && p.c.data == c.data;
    });
    if (!known)
      seen.push_back({c, grants_from});
  }
}

std::string describe(const grants& g) {
  std::string out;
  for (auto& x : g)
    out += (out.empty() ? "" : " ") + to_string(x);
  return "[" + out + "]";
}

/// A pull answer reaches the client: its grants must be its token's at that
/// point (one in force between the request's arrival and now), and it may
/// hold data only of scopes those grants read and its request named.
void check_answer(sim_network& net, std::size_t client, const pull_request& req,
                  const pull_reply& rep, std::size_t grants_from) {
  auto& record = net.record;
  ++record.answers;
  auto& versions = net.grant_versions[client];
  bool current = false;
  for (auto k = grants_from; k < versions.size() && !current; ++k)
    current = same_grants(versions[k], rep.granted);
  if (!current)
    record.scope_violations.push_back(
      "c" + std::to_string(client) + " got a pull answer under grants "
      + describe(rep.granted) + ", not its token's since the request arrived ("
      + describe(versions.empty() ? grants{} : versions.back()) + " now)");
  for (auto& e : rep.entities) {
    if (e.deleted)
      continue;
    if (scope_field(net.rules, e.type))
      ++record.scoped_entities;
    auto scope = scope_of(net.rules, e.type, e.data);
    bool named = req.scopes.empty()
                 || std::any_of(req.scopes.begin(), req.scopes.end(), [&](auto& s) {
                      return pattern_matches(s.pattern, scope);
                    });
    if (!can_read(rep.granted, scope) || !named)
      record.scope_violations.push_back(
        "c" + std::to_string(client) + " received " + e.id + " of scope '" + scope
        + "', which "
        + (named ? "its answer's grants " + describe(rep.granted) + " may not read"
                 : std::string{"its request did not name"}));
  }
}

/// A reply naming `last_mutation_id` reached the client: it now drops what
/// it has pushed up to there from its outbox.
void record_told(link_ptr self, const std::string& client_id, uint64_t last_mutation_id) {
  auto& told = self->state.net->record.told_acked[client_id][self->state.generation];
  told = std::max(told, last_mutation_id);
}

/// A pull answer reached the client, asked or read ahead: checked, and
/// what it tells the client recorded. The patterns a client asked for are
/// those of its own requests: one an answer read ahead answers asks what
/// the one before asked (or the client does not take the answer).
void deliver_answer(link_ptr self, const pull_request& req, const pull_reply& rep,
                    std::size_t grants_from, bool read_ahead) {
  auto& st = self->state;
  check_answer(*st.net, st.client, req, rep, grants_from);
  if (read_ahead) {
    ++st.net->record.answers_ahead;
  } else {
    auto& asked = st.net->asked[st.client];
    asked.clear();
    for (auto& s : req.scopes)
      asked.push_back(s.pattern);
  }
  st.answer_grants_from = grants_from;
  // Answers carry the refusals whose push reply was lost.
  auto& refused = st.net->record.refused[req.client_id];
  for (auto& r : rep.refused)
    refused.insert(r.mutation_id);
  // Told even if the client does not take an answer read ahead: a loss it
  // excuses then never happens (the change stays in the outbox).
  record_told(self, req.client_id, rep.last_mutation_id);
}

conn_link_actor::behavior_type conn_link(link_ptr self, sim_network* net,
                                         std::size_t client, uint64_t generation,
                                         client_listener_actor listener) {
  auto& st = self->state;
  st.net = net;
  st.client = client;
  st.generation = generation;
  st.listener = listener;
  // The connection closes when either end goes away.
  self->monitor(listener);
  self->set_down_handler(
    [=](const caf::down_msg&) { self->quit(caf::exit_reason::remote_link_unreachable); });
  net->links[client].push_back(caf::actor_cast<caf::actor>(self));
  self->attach_functor([net, client, addr = self->address()] {
    auto& v = net->links[client];
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const caf::actor& a) { return a.address() == addr; }),
            v.end());
  });
  return {
    [=](push_atom, push_request& req) -> caf::result<push_reply> {
      auto rp = self->make_response_promise<push_reply>();
      on_wire(self, direction::up, [=]() mutable {
        auto& net = *self->state.net;
        record_pushed(net, req, net.grants_in_force[self->state.client]);
        self->request(self->state.server, server_timeout, push_atom::value, req)
          .then(
            [=](push_reply& rep) mutable {
              record_ack(*self->state.net, self->state.generation, req, rep);
              on_wire(self, direction::down, [=]() mutable {
                record_told(self, req.client_id, rep.last_mutation_id);
                rp.deliver(rep);
              });
            },
            [=](caf::error& err) mutable {
              on_wire(self, direction::down, [=]() mutable { rp.deliver(err); });
            });
      });
      return rp;
    },
    [=](pull_atom, pull_request& req) -> caf::result<pull_reply> {
      auto rp = self->make_response_promise<pull_reply>();
      on_wire(self, direction::up, [=]() mutable {
        auto grants_from = self->state.net->grants_in_force[self->state.client];
        self->request(self->state.server, server_timeout, pull_atom::value, req)
          .then(
            [=](pull_reply& rep) mutable {
              on_wire(self, direction::down, [=]() mutable {
                deliver_answer(self, req, rep, grants_from, false);
                rp.deliver(rep);
              });
            },
            [=](caf::error& err) mutable {
              on_wire(self, direction::down, [=]() mutable { rp.deliver(err); });
            });
      });
      return rp;
    },
    [=](poke_atom, const poke& p) {
      on_wire(self, direction::down,
              [=] { self->send(self->state.listener, poke_atom::value, p); });
    },
    [=](pulled_atom, pushed_answer& a) {
      on_wire(self, direction::down, [=]() mutable {
        deliver_answer(self, a.asked, a.answer, self->state.answer_grants_from, true);
        self->send(self->state.listener, pulled_atom::value, std::move(a));
      });
    },
    [=](deliver_atom, uint64_t id) {
      auto& st = self->state;
      auto i = st.due.find(id);
      if (i == st.due.end())
        return;
      auto fn = std::move(i->second);
      st.due.erase(i);
      if (st.net->frozen || st.net->isolated[st.client])
        return; // lost in the partition
      ++st.net->record.messages;
      fn();
    },
    [=](server_atom, session_actor& s) {
      self->state.server = s;
      self->monitor(s);
    },
  };
}

using port_actor = caf::typed_actor<
  caf::replies_to<connect_atom>::with<gateway_actor>,
  caf::replies_to<hello_atom, hello_request, client_listener_actor>::with<hello_reply,
                                                                          session_actor>>;

struct port_state {
  const char* name = "sim_port";
};

port_actor::behavior_type port(port_actor::stateful_pointer<port_state> self,
                               sim_network* net, std::size_t client) {
  auto refused = [=]() -> bool {
    return !net->gateway || net->isolated[client];
  };
  return {
    [=](connect_atom) -> caf::result<gateway_actor> {
      if (refused())
        return caf::make_error(caf::sec::cannot_connect_to_node, "sim: unreachable");
      return caf::actor_cast<gateway_actor>(self);
    },
    [=](hello_atom, hello_request& req,
        client_listener_actor& listener) -> caf::result<hello_reply, session_actor> {
      if (refused())
        return caf::make_error(caf::sec::cannot_connect_to_node, "sim: unreachable");
      // The hello goes to the gateway of this generation: so do the
      // connection's requests.
      auto conn = self->spawn(conn_link, net, client, net->generation, listener);
      auto rp = self->make_response_promise<hello_reply, session_actor>();
      self
        ->request(net->gateway, server_timeout, hello_atom::value, std::move(req),
                  caf::actor_cast<client_listener_actor>(conn))
        .then(
          [=](hello_reply& rep, session_actor& s) mutable {
            self->send(conn, server_atom::value, s);
            rp.deliver(rep, caf::actor_cast<session_actor>(conn));
          },
          [=](caf::error& err) mutable {
            caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
            rp.deliver(err);
          });
      return rp;
    },
  };
}

} // namespace

std::string scope_of(const scope_rules& rules, const std::string& type,
                     const std::string& data) {
  std::string scope;
  if (!derive_scope(rules, type, data, scope).ok())
    return std::string{default_scope};
  return scope;
}

bool same_grants(const grants& a, const grants& b) {
  std::set<std::string> x, y;
  for (auto& g : a)
    x.insert(to_string(g));
  for (auto& g : b)
    y.insert(to_string(g));
  return x == y;
}

caf::timespan sim_network::delay() {
  if (max_delay <= min_delay)
    return min_delay;
  std::uniform_int_distribution<int64_t> pick{min_delay.count(), max_delay.count()};
  return caf::timespan{pick(*rng)};
}

bool sim_network::chance(double p) {
  if (p <= 0)
    return false;
  return std::uniform_real_distribution<double>{0, 1}(*rng) < p;
}

caf::actor spawn_client_port(caf::actor_system& sys, sim_network& net,
                             std::size_t client_index) {
  return caf::actor_cast<caf::actor>(sys.spawn(port, &net, client_index));
}

void drop_connections(sim_network& net, std::size_t client_index) {
  for (auto& link : net.links[client_index])
    caf::anon_send_exit(link, caf::exit_reason::remote_link_unreachable);
}

} // namespace memsync::sim
