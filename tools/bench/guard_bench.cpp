// What the network front (the guard) and TLS cost: three `syncnode server`
// children, one guarded (the default), one with server.guard=false (the
// middleman on the public port, UNSAFE, benchmarks only) and one guarded with
// TLS (certificates from tools/make_certs.sh; the client side verifies them
// through the client's TLS tunnel), measured in one run, taking turns round
// by round so a shared machine's load hits all three alike.
//   BM_guard_round_trip  a session's pull, one request at a time, from a CAF
//                        node in this process: the remote round trip (mean
//                        and median)
//   BM_guard_push        a real client node puts 2,000 changes and syncs
//                        (pushed, committed, poked, pulled back): changes/s
//   BM_guard_hop         the front alone (frame_guard, in this process) in
//                        front of a published echo actor, against the same
//                        actor directly: the hop without a server's work
// The ratios guarded / unguarded and tls / unguarded are printed as SUMMARY
// lines.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/registry.hpp"
#include "messages/remote.hpp"
#include "node/client/client_config.hpp"
#include "node/client/client_node.hpp"
#include "node/client/tls_tunnel.hpp"
#include "node/config/node_options.hpp"
#include "node/server/frame_guard.hpp"
#include "tests/support/process.hpp"
#include "tools/bench/bench_common.hpp"

namespace {

using namespace memsync;
using namespace memsync::bench;

enum setup { guarded, unguarded, tls, setups };
const char* setup_names[] = {"guarded", "unguarded", "tls"};
constexpr std::size_t changes_per_round = 2000;
constexpr int pulls_per_round = 500;

/// A `syncnode server` child of one set-up; port empty until it listens.
struct server {
  std::unique_ptr<memsync::testing::child_process> proc;
  std::string port;

  server(const temp_dir& dir, int setup) {
    auto name = std::string{"server-"} + setup_names[setup];
    std::vector<std::string> args{SYNCNODE_PATH,
                                  "server",
                                  "--config",
                                  MEMSYNC_SOURCE_DIR "/config/server.ini",
                                  "--server.port=0",
                                  "--server.db-path=" + dir.file(name + ".db"),
                                  "--server.tokens-file=" + dir.file("tokens.txt"),
                                  std::string{"--server.guard="}
                                    + (setup == unguarded ? "false" : "true")};
    if (setup == tls) {
      args.push_back("--server.tls-cert=" + dir.file("certs/server.pem"));
      args.push_back("--server.tls-key=" + dir.file("certs/server.key"));
    }
    proc = std::make_unique<memsync::testing::child_process>(args);
    std::string line;
    if (proc->read_line(line) && line.find("listening on") != std::string::npos)
      port = line.substr(line.rfind(':') + 1);
  }
  ~server() {
    kill(proc->pid(), SIGTERM);
    proc->wait();
  }
};

std::vector<std::unique_ptr<server>> start_servers(const temp_dir& dir) {
  std::ofstream{dir.file("tokens.txt")} << "bench-token bench\n";
  auto certs = std::string{MEMSYNC_SOURCE_DIR "/tools/make_certs.sh "} + dir.file("certs")
               + " localhost 127.0.0.1 >/dev/null";
  if (std::system(certs.c_str()) != 0)
    return {};
  std::vector<std::unique_ptr<server>> out;
  for (int setup = 0; setup < setups; ++setup) {
    out.push_back(std::make_unique<server>(dir, setup));
    if (out.back()->port.empty())
      return {};
  }
  return out;
}

/// Runs `rounds` rounds, each doing `step(setup)` for every set-up, the
/// first one rotating. Returns the time spent per set-up, or false.
template <class Step>
bool interleave(int rounds, std::chrono::nanoseconds (&spent)[setups], Step step) {
  for (int r = 0; r < rounds; ++r)
    for (int k = 0; k < setups; ++k) {
      auto setup = (r + k) % setups;
      auto t0 = std::chrono::steady_clock::now();
      if (!step(setup, r))
        return false;
      spent[setup] += std::chrono::steady_clock::now() - t0;
    }
  return true;
}

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  register_message_types(cfg);
  cfg.load<caf::io::middleman>();
  cfg.set("logger.console", caf::atom("none"));
  cfg.set("scheduler.policy", caf::atom("sharing"));
  return cfg;
}

void BM_guard_round_trip(benchmark::State& state) {
  temp_dir dir;
  auto servers = start_servers(dir);
  if (servers.empty())
    return state.SkipWithError("server did not start");
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  auto listener = sys.spawn([]() -> client_listener_actor::behavior_type {
    return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
  });
  // One server each, but one node (one actor system). The TLS server is
  // reached as a client node reaches it: CAF speaks plain BASP to the TLS
  // tunnel on loopback, which verifies the server's certificate and name.
  tls_tunnel tunnel{"127.0.0.1", static_cast<uint16_t>(std::stoi(servers[tls]->port)),
                    "127.0.0.1", tls_context::client(dir.file("certs/ca.pem"))};
  std::vector<session_actor> sessions;
  for (int setup = 0; setup < setups; ++setup) {
    auto port = setup == tls ? tunnel.local_port()
                             : static_cast<uint16_t>(std::stoi(servers[setup]->port));
    auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
    if (!gw)
      return state.SkipWithError("no gateway");
    hello_request req{protocol_version, "bench-0123456789abcdef", "bench-token", 0};
    self->request(*gw, std::chrono::seconds(5), hello_atom::value, req, listener)
      .receive([&](hello_reply&, session_actor& s) { sessions.push_back(s); },
               [&](caf::error&) {});
  }
  if (sessions.size() != setups)
    return state.SkipWithError("hello failed");
  std::chrono::nanoseconds spent[setups]{};
  // Each pull's own time too: the median resists a shared machine's load
  // spikes better than the mean.
  std::vector<double> samples[setups];
  for (auto _ : state) {
    bool ok = interleave(20, spent, [&](int setup, int) {
      bool fine = true;
      for (int i = 0; i < pulls_per_round && fine; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        self
          ->request(sessions[static_cast<size_t>(setup)], std::chrono::seconds(5),
                    pull_atom::value, pull_request{"bench-0123456789abcdef", {}})
          .receive([](pull_reply&) {}, [&](caf::error&) { fine = false; });
        samples[setup].push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
            .count());
      }
      return fine;
    });
    if (!ok)
      return state.SkipWithError("a pull failed");
    state.SetIterationTime(
      std::chrono::duration<double>(spent[0] + spent[1] + spent[2]).count());
  }
  double us[setups];
  for (int s = 0; s < setups; ++s) {
    us[s] = std::chrono::duration<double, std::micro>(spent[s]).count()
            / (20.0 * pulls_per_round * static_cast<double>(state.iterations()));
    state.counters[std::string{setup_names[s]} + "_us"] = us[s];
  }
  state.counters["guarded_vs_unguarded"] = us[guarded] / us[unguarded];
  state.counters["tls_vs_unguarded"] = us[tls] / us[unguarded];
  double p50[setups];
  for (int s = 0; s < setups; ++s) {
    auto& v = samples[s];
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2),
                     v.end());
    p50[s] = v[v.size() / 2];
    state.counters[std::string{setup_names[s]} + "_p50_us"] = p50[s];
  }
  state.counters["p50_guarded_vs_unguarded"] = p50[guarded] / p50[unguarded];
  state.counters["p50_tls_vs_unguarded"] = p50[tls] / p50[unguarded];
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}
BENCHMARK(BM_guard_round_trip)
  ->Iterations(1)
  ->UseManualTime()
  ->Unit(benchmark::kMillisecond);

using hop_atom = caf::atom_constant<caf::atom("hop")>;

void BM_guard_hop(benchmark::State& state) {
  // The "server": an actor system of its own (a node of its own), an echo
  // actor published on loopback and the front before it, as syncnode does.
  caf::actor_system_config server_cfg;
  caf::actor_system server{init(server_cfg)};
  auto echo = server.spawn([]() -> caf::behavior {
    return {[](hop_atom, int x) {
      return x;
    }};
  });
  auto published = server.middleman().publish(echo, 0, "127.0.0.1", true);
  if (!published)
    return state.SkipWithError("cannot publish");
  std::vector<char> node;
  caf::binary_serializer sink{server, node};
  if (sink(server.node()))
    return state.SkipWithError("cannot serialize the node id");
  guard_limits limits;
  limits.handshake_timeout = std::chrono::minutes(10); // no hello here
  frame_guard front{limits, "127.0.0.1", 0, {node.begin(), node.end()}};
  front.set_gateway(echo.id());
  front.start(*published);
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  caf::actor targets[2];
  for (int k = 0; k < 2; ++k) {
    auto h = sys.middleman().remote_actor("127.0.0.1",
                                          k == 0 ? front.port() : *published);
    if (!h)
      return state.SkipWithError("cannot connect");
    targets[k] = *h;
  }
  std::chrono::nanoseconds spent[2]{};
  std::vector<double> samples[2];
  for (auto _ : state) {
    for (int r = 0; r < 20; ++r)
      for (int k = 0; k < 2; ++k) {
        auto which = (r + k) % 2;
        for (int i = 0; i < pulls_per_round; ++i) {
          bool fine = true;
          auto t0 = std::chrono::steady_clock::now();
          self->request(targets[which], std::chrono::seconds(5), hop_atom::value, i)
            .receive([](int) {}, [&](caf::error&) { fine = false; });
          auto dt = std::chrono::steady_clock::now() - t0;
          if (!fine)
            return state.SkipWithError("a request failed");
          spent[which] += dt;
          samples[which].push_back(std::chrono::duration<double, std::micro>(dt).count());
        }
      }
    state.SetIterationTime(std::chrono::duration<double>(spent[0] + spent[1]).count());
  }
  double p50[2];
  for (int k = 0; k < 2; ++k) {
    auto& v = samples[k];
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2),
                     v.end());
    p50[k] = v[v.size() / 2];
  }
  state.counters["front_p50_us"] = p50[0];
  state.counters["direct_p50_us"] = p50[1];
  state.counters["front_vs_direct"] = p50[0] / p50[1];
  front.stop();
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}
BENCHMARK(BM_guard_hop)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

/// A client node in this process, its own actor system.
struct client {
  caf::actor_system_config sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<client_node> node;

  explicit client(std::vector<std::string> overrides) {
    auto values = load_config(client_schema(), "", overrides);
    auto cfg = make_client_config(values);
    apply_caf_settings(values, sys_cfg);
    register_message_types(sys_cfg);
    sys = std::make_unique<caf::actor_system>(sys_cfg);
    node = std::make_unique<client_node>(*sys, cfg);
  }
  ~client() {
    node->shutdown(std::chrono::seconds(10));
    node.reset();
  }
};

void BM_guard_push(benchmark::State& state) {
  temp_dir dir;
  auto servers = start_servers(dir);
  if (servers.empty())
    return state.SkipWithError("server did not start");
  std::vector<std::unique_ptr<client>> clients;
  for (int setup = 0; setup < setups; ++setup) {
    auto name = std::string{setup_names[setup]};
    std::vector<std::string> args{
      "--client.id=bench",          "--client.db-path=" + dir.file(name + ".db"),
      "--server.host=127.0.0.1",    "--server.port=" + servers[setup]->port,
      "--server.token=bench-token", "--flush.debounce=0ns",
      "--sync.push-debounce=0ns",   "--local-db.synchronous=off"};
    if (setup == tls)
      args.push_back("--server.tls-ca=" + dir.file("certs/ca.pem"));
    clients.push_back(std::make_unique<client>(std::move(args)));
  }
  std::chrono::nanoseconds spent[setups]{};
  for (auto _ : state) {
    bool ok = interleave(30, spent, [&](int setup, int round) {
      auto& c = *clients[static_cast<size_t>(setup)];
      for (std::size_t i = 0; i < changes_per_round; ++i)
        c.node->app().put_json(entity_id(i), entity_type(i),
                               entity_data(i, static_cast<size_t>(round) + 1));
      return c.node->sync(std::chrono::seconds(60));
    });
    if (!ok)
      return state.SkipWithError("a sync timed out");
    state.SetIterationTime(
      std::chrono::duration<double>(spent[0] + spent[1] + spent[2]).count());
  }
  double rate[setups];
  for (int s = 0; s < setups; ++s) {
    rate[s] = 30.0 * changes_per_round * static_cast<double>(state.iterations())
              / std::chrono::duration<double>(spent[s]).count();
    state.counters[std::string{setup_names[s]} + "_per_s"] = rate[s];
  }
  state.counters["guarded_vs_unguarded"] = rate[guarded] / rate[unguarded];
  state.counters["tls_vs_unguarded"] = rate[tls] / rate[unguarded];
  clients.clear(); // before their servers
}
BENCHMARK(BM_guard_push)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

} // namespace

int main(int argc, char** argv) {
  return run_main(argc, argv, [](const summary_reporter& r) {
    auto rt = [&](const char* c) {
      return r.counter("BM_guard_round_trip", c);
    };
    summary("remote round trip (a session's pull): guarded %s us | unguarded %s us | "
            "tls %s us | guarded/unguarded %s | tls/unguarded %s",
            fmt(rt("guarded_us"), "%.1f").c_str(),
            fmt(rt("unguarded_us"), "%.1f").c_str(), fmt(rt("tls_us"), "%.1f").c_str(),
            fmt(rt("guarded_vs_unguarded"), "%.3f").c_str(),
            fmt(rt("tls_vs_unguarded"), "%.3f").c_str());
    summary("remote round trip, median: guarded %s us | unguarded %s us | tls %s us | "
            "guarded/unguarded %s | tls/unguarded %s",
            fmt(rt("guarded_p50_us"), "%.1f").c_str(),
            fmt(rt("unguarded_p50_us"), "%.1f").c_str(),
            fmt(rt("tls_p50_us"), "%.1f").c_str(),
            fmt(rt("p50_guarded_vs_unguarded"), "%.3f").c_str(),
            fmt(rt("p50_tls_vs_unguarded"), "%.3f").c_str());
    auto hop = [&](const char* c) {
      return r.counter("BM_guard_hop", c);
    };
    summary("the front's hop alone (an echo actor), median: through the front %s us | "
            "direct %s us | front/direct %s",
            fmt(hop("front_p50_us"), "%.1f").c_str(),
            fmt(hop("direct_p50_us"), "%.1f").c_str(),
            fmt(hop("front_vs_direct"), "%.3f").c_str());
    auto push = [&](const char* c) {
      return r.counter("BM_guard_push", c);
    };
    summary("push + sync of 2,000 changes: guarded %s changes/s | unguarded %s | "
            "tls %s | guarded/unguarded %s | tls/unguarded %s",
            fmt(push("guarded_per_s"), "%.0f").c_str(),
            fmt(push("unguarded_per_s"), "%.0f").c_str(),
            fmt(push("tls_per_s"), "%.0f").c_str(),
            fmt(push("guarded_vs_unguarded"), "%.3f").c_str(),
            fmt(push("tls_vs_unguarded"), "%.3f").c_str());
  });
}
