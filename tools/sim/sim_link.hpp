// The simulated network between the clients and the server of one
// simulation. Each client has a port: it is the client's connector (the
// syncer asks it for the gateway) and the gateway it returns (it forwards
// the hello to the real gateway). Every accepted hello gets a connection
// link, which stands for one TCP connection: it implements session_actor
// towards the syncer and client_listener_actor towards the real session,
// delays each message by a seeded amount while keeping the order of each
// direction (as TCP does), and can be dropped (the link ends, so the syncer
// sees its session go down and the session sees its listener go) or turned
// into a black hole (a silent partition: nothing arrives, requests only
// time out).
//
// The links read and write the simulation's network model (sim_network)
// directly: the whole simulation runs on one thread under the test
// coordinator, and the model is the simulator's world, not an actor's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/client/network_syncer.hpp"
#include "messages/remote.hpp"
#include "messages/scopes.hpp"

namespace memsync::sim {

/// What the links saw the server do, for the checks after a run.
struct wire_record {
  /// Changes the server acknowledged (mutation id <= the reply's
  /// last_mutation_id and not refused), by client id and mutation id.
  std::map<std::string, std::map<uint64_t, change>> acked;
  /// The server generation (sim_network::generation) of each first ack.
  std::map<std::string, std::map<uint64_t, uint64_t>> acked_in;
  /// Refused mutation ids by client id: named in a push reply, or in a pull
  /// reply delivered to the client.
  std::map<std::string, std::set<uint64_t>> refused;
  /// By client id and server generation (sim_network::generation): the
  /// highest last_mutation_id of a push or pull reply of that generation
  /// delivered to the client.
  std::map<std::string, std::map<uint64_t, uint64_t>> told_acked;
  /// One change as a push carried it to the server, with the grants version
  /// (sim_network::grant_versions) surely in force for its client when it
  /// first arrived: the server applied it under that version or a later one.
  struct pushed_change {
    change c;
    std::size_t grants_from = 0;
  };
  /// Every change pushes delivered to a session, by client id and mutation id
  /// (an id lost to power loss under synchronous=normal is handed out again:
  /// several distinct changes may share it).
  std::map<std::string, std::map<uint64_t, std::vector<pushed_change>>> pushed;
  /// What a delivered pull answer broke of the scope rule: data of a scope
  /// its grants may not read or its request did not name, or grants that
  /// were not the client's at that point (docs/simulation.md, "Scopes").
  std::vector<std::string> scope_violations;
  /// Pull answers delivered (of them read ahead by the session), and their
  /// entities of ruled types.
  std::size_t answers = 0;
  std::size_t answers_ahead = 0;
  std::size_t scoped_entities = 0;
  std::size_t messages = 0; ///< delivered through links
  std::size_t drops = 0;    ///< connections dropped by the network
};

/// The network model the links consult. Plain data on the simulation's one
/// thread; the world changes it between messages.
struct sim_network {
  std::mt19937_64* rng = nullptr;
  gateway_actor gateway;                ///< null while the server is down
  std::map<std::size_t, bool> isolated; ///< client index -> partitioned
  /// One-way delay of a message: uniform in [min_delay, max_delay].
  caf::timespan min_delay{0};
  caf::timespan max_delay{0};
  /// Per message: the chance that the connection drops right there.
  double drop_chance = 0;
  /// Live connection links by client index.
  std::map<std::size_t, std::vector<caf::actor>> links;
  wire_record record;
  /// Set during a power outage: whatever happens now never happened.
  bool frozen = false;
  /// Restores of the server so far: a connection's replies come from the
  /// history of the generation it was opened in.
  uint64_t generation = 0;
  /// The server's scope rules (fixed for a run).
  scope_rules rules;
  /// Per client index: every grant set its token had, in order (the last is
  /// the tokens file's now), and the index of the newest one the gateway
  /// surely gave every live session (its reload was answered, or it started
  /// with it): a message a session gets from then on is served under it or a
  /// later one.
  std::map<std::size_t, std::vector<grants>> grant_versions;
  std::map<std::size_t, std::size_t> grants_in_force;
  /// Per client index: the subscription patterns of the last pull answer's
  /// request delivered to it (the answer its syncer applies next).
  std::map<std::size_t, std::vector<std::string>> asked;

  caf::timespan delay();
  bool chance(double p);
};

/// The scope the server stores an entity of `type` with `data` in: the
/// rules never change during a run, so its data decides. A ruled entity
/// without its field (the server never accepts one) counts as `default`.
std::string scope_of(const scope_rules& rules, const std::string& type,
                     const std::string& data);

/// True if `a` and `b` grant the same (in any order).
bool same_grants(const grants& a, const grants& b);

/// A client's port: its connector and the gateway that connector returns.
/// Connecting fails while the client is isolated or the server is down.
caf::actor spawn_client_port(caf::actor_system& sys, sim_network& net,
                             std::size_t client_index);

/// Drops every connection of a client (the links end).
void drop_connections(sim_network& net, std::size_t client_index);

} // namespace memsync::sim
