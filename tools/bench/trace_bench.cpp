// What actor tracing costs: the same workload with tracing off, sampled (one
// change in 100) and all, in one run, and the ratios to "off". The three
// set-ups live side by side and take turns, round by round, so a shared
// machine's changing load hits them alike.
//   BM_trace_local  a client without a server: put 2,000 changes, wait until
//                   they are durable (memory_store, flush_scheduler,
//                   local_db with synchronous=off, so actor work shows)
//   BM_trace_sync   a client and a `syncnode server` child over loopback:
//                   put 2,000 changes, `sync` (pushed, committed, poked,
//                   pulled back): every actor on both nodes
//   BM_trace_scope  the recording alone: one handler's scope with one change
// Both nodes of a set-up trace in the same mode. End to end, tracing also
// shifts timing and so batch sizes (a slower handler lets more writes
// queue up for one transaction): compare with BM_trace_scope.
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "messages/registry.hpp"
#include "node/client/client_config.hpp"
#include "node/client/client_node.hpp"
#include "node/config/node_options.hpp"
#include "tests/support/process.hpp"
#include "tools/bench/bench_common.hpp"

namespace {

using namespace memsync;
using namespace memsync::bench;

constexpr std::size_t changes_per_iteration = 2000;
const char* mode_names[] = {"off", "sampled", "all"};

std::vector<std::string> trace_options(int mode, const std::string& file) {
  return {std::string{"--trace.mode="} + mode_names[mode], "--trace.file=" + file,
          "--trace.sample-every=100"};
}

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

  void write_batch(std::size_t round) {
    for (std::size_t i = 0; i < changes_per_iteration; ++i)
      node->app().put_json(entity_id(i), entity_type(i), entity_data(i, round));
  }
};

/// Runs `rounds` rounds; each round does `step(mode)` once per mode, in
/// turn, so the machine's load drifts alike for all three, starting with
/// another mode each round (what one mode leaves behind, e.g. a trace
/// writer still busy, must not always slow the same next one). Reports
/// changes/s per mode and the ratios to "off".
template <class Step>
void interleave(benchmark::State& state, int rounds, Step step) {
  std::chrono::nanoseconds spent[3]{};
  for (auto _ : state) {
    for (int r = 0; r < rounds; ++r)
      for (int k = 0; k < 3; ++k) {
        auto mode = (r + k) % 3;
        auto t0 = std::chrono::steady_clock::now();
        if (!step(mode, r)) {
          state.SkipWithError("flush or sync timed out");
          return;
        }
        spent[mode] += std::chrono::steady_clock::now() - t0;
      }
    state.SetIterationTime(
      std::chrono::duration<double>(spent[0] + spent[1] + spent[2]).count());
  }
  double rate[3];
  for (int m = 0; m < 3; ++m) {
    rate[m] = static_cast<double>(rounds) * changes_per_iteration
              * static_cast<double>(state.iterations())
              / std::chrono::duration<double>(spent[m]).count();
    state.counters[std::string{mode_names[m]} + "_per_s"] = rate[m];
  }
  state.counters["sampled_vs_off"] = rate[1] / rate[0];
  state.counters["all_vs_off"] = rate[2] / rate[0];
}

void BM_trace_local(benchmark::State& state) {
  temp_dir dir;
  std::vector<std::unique_ptr<client>> clients;
  for (int mode = 0; mode < 3; ++mode) {
    auto name = std::string{mode_names[mode]};
    auto opts = trace_options(mode, dir.file(name + ".jsonl"));
    opts.insert(opts.end(),
                {"--client.id=bench", "--client.db-path=" + dir.file(name + ".db"),
                 "--local-db.synchronous=off", "--flush.debounce=0ns"});
    clients.push_back(std::make_unique<client>(opts));
  }
  interleave(state, 20, [&](int mode, int round) {
    auto& c = *clients[static_cast<size_t>(mode)];
    c.write_batch(static_cast<size_t>(round) + 1);
    return c.node->flush_now(std::chrono::seconds(60));
  });
}
BENCHMARK(BM_trace_local)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

/// A `syncnode server` child tracing in `mode`; port 0 until it listens.
struct server {
  std::unique_ptr<memsync::testing::child_process> proc;
  std::string port;

  server(const temp_dir& dir, int mode) {
    auto name = std::string{"server-"} + mode_names[mode];
    std::vector<std::string> args{SYNCNODE_PATH,
                                  "server",
                                  "--config",
                                  MEMSYNC_SOURCE_DIR "/config/server.ini",
                                  "--server.port=0",
                                  "--server.db-path=" + dir.file(name + ".db"),
                                  "--server.tokens-file=" + dir.file("tokens.txt")};
    for (auto& o : trace_options(mode, dir.file(name + ".jsonl")))
      args.push_back(o);
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

void BM_trace_sync(benchmark::State& state) {
  temp_dir dir;
  std::ofstream{dir.file("tokens.txt")} << "bench-token bench\n";
  std::vector<std::unique_ptr<server>> servers;
  std::vector<std::unique_ptr<client>> clients;
  for (int mode = 0; mode < 3; ++mode) {
    servers.push_back(std::make_unique<server>(dir, mode));
    if (servers.back()->port.empty()) {
      state.SkipWithError("server did not start");
      return;
    }
    auto name = std::string{mode_names[mode]};
    auto opts = trace_options(mode, dir.file(name + ".jsonl"));
    opts.insert(opts.end(),
                {"--client.id=bench", "--client.db-path=" + dir.file(name + ".db"),
                 "--server.host=127.0.0.1", "--server.port=" + servers.back()->port,
                 "--server.token=bench-token", "--flush.debounce=0ns",
                 "--sync.push-debounce=0ns"});
    clients.push_back(std::make_unique<client>(opts));
  }
  interleave(state, 10, [&](int mode, int round) {
    auto& c = *clients[static_cast<size_t>(mode)];
    c.write_batch(static_cast<size_t>(round) + 1);
    return c.node->sync(std::chrono::seconds(60));
  });
  clients.clear(); // before their servers
}
BENCHMARK(BM_trace_sync)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

/// The cost of recording itself: one handler's trace scope with one change
/// (what a handler of a one-change message pays), by mode. Mode off is a
/// null sink, as in a node without tracing.
void BM_trace_scope(benchmark::State& state) {
  auto mode = static_cast<int>(state.range(0));
  temp_dir dir;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::unique_ptr<trace_sink> sink;
  if (mode > 0)
    sink = std::make_unique<trace_sink>(
      trace_settings{mode == 1 ? trace_mode::sampled : trace_mode::all,
                     dir.file("scope.jsonl"), 100, 1 << 20},
      "bench", "client");
  auto id = entity_id(42);
  uint64_t trace_id = 0x9e3779b97f4a7c15ULL;
  for (auto _ : state) {
    trace_scope ts{sink.get(), self.ptr(), "write"};
    ts.item(++trace_id, id);
  }
  if (sink) {
    sink->close();
    state.counters["dropped"] = static_cast<double>(sink->dropped());
  }
  state.SetLabel(mode_names[mode]);
}
BENCHMARK(BM_trace_scope)->DenseRange(0, 2);

} // namespace

int main(int argc, char** argv) {
  return run_main(argc, argv, [](const summary_reporter& r) {
    summary(
      "one handler's trace scope with one change: off %s ns | sampled 1/100 %s ns | "
      "all %s ns",
      fmt(r.ns_per_op("BM_trace_scope/0"), "%.1f").c_str(),
      fmt(r.ns_per_op("BM_trace_scope/1"), "%.1f").c_str(),
      fmt(r.ns_per_op("BM_trace_scope/2"), "%.1f").c_str());
    for (auto name : {"BM_trace_local", "BM_trace_sync"}) {
      auto get = [&](const char* c) {
        return r.counter(name, c);
      };
      summary("%s: changes/s with tracing off %s | sampled 1/100 %s (%s of off) | "
              "all %s (%s of off)",
              std::string{name}.substr(9).c_str(), fmt(get("off_per_s"), "%.0f").c_str(),
              fmt(get("sampled_per_s"), "%.0f").c_str(),
              fmt(get("sampled_vs_off"), "%.2f").c_str(),
              fmt(get("all_per_s"), "%.0f").c_str(),
              fmt(get("all_vs_off"), "%.2f").c_str());
    }
  });
}
