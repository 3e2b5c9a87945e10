// What actor tracing costs: the same workload with tracing off, sampled (one
// change in 100) and all, in one run, and the ratios to "off".
//   BM_trace_local/M  a client without a server: put N changes, wait until
//                     they are durable (memory_store, flush_scheduler,
//                     local_db with synchronous=off, so actor work shows)
//   BM_trace_sync/M   a client and a `syncnode server` child over loopback:
//                     put N changes, `sync` (pushed, committed, poked,
//                     pulled back): every actor on both nodes
// M: 0 off, 1 sampled, 2 all. Both nodes trace in the same mode.
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "bench_common.hpp"
#include "messages/registry.hpp"
#include "node/client_node.hpp"
#include "node/node_config.hpp"
#include "process.hpp"

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

void BM_trace_local(benchmark::State& state) {
  auto mode = static_cast<int>(state.range(0));
  temp_dir dir;
  auto opts = trace_options(mode, dir.file("client.jsonl"));
  opts.insert(opts.end(), {"--client.id=bench", "--client.db-path=" + dir.file("c.db"),
                           "--local-db.synchronous=off", "--flush.debounce=0ns"});
  client c{opts};
  std::size_t round = 0;
  for (auto _ : state) {
    c.write_batch(++round);
    if (!c.node->flush_now(std::chrono::seconds(60))) {
      state.SkipWithError("flush timed out");
      return;
    }
  }
  state.counters["changes_per_s"] = benchmark::Counter(
    static_cast<double>(round * changes_per_iteration), benchmark::Counter::kIsRate);
  state.SetLabel(mode_names[mode]);
}
BENCHMARK(BM_trace_local)->DenseRange(0, 2)->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_trace_sync(benchmark::State& state) {
  auto mode = static_cast<int>(state.range(0));
  temp_dir dir;
  std::ofstream{dir.file("tokens.txt")} << "bench-token bench\n";
  std::vector<std::string> server_args{
    SYNCNODE_PATH, "server", "--config", MEMSYNC_SOURCE_DIR "/config/server.ini",
    "--server.port=0", "--server.db-path=" + dir.file("server.db"),
    "--server.tokens-file=" + dir.file("tokens.txt")};
  for (auto& o : trace_options(mode, dir.file("server.jsonl")))
    server_args.push_back(o);
  memsync::testing::child_process server{server_args};
  std::string line;
  if (!server.read_line(line) || line.find("listening on") == std::string::npos) {
    state.SkipWithError("server did not start");
    return;
  }
  auto port = line.substr(line.rfind(':') + 1);
  auto opts = trace_options(mode, dir.file("client.jsonl"));
  opts.insert(opts.end(),
              {"--client.id=bench", "--client.db-path=" + dir.file("c.db"),
               "--server.host=127.0.0.1", "--server.port=" + port,
               "--server.token=bench-token", "--flush.debounce=0ns",
               "--sync.push-debounce=0ns"});
  {
    client c{opts};
    std::size_t round = 0;
    for (auto _ : state) {
      c.write_batch(++round);
      if (!c.node->sync(std::chrono::seconds(60))) {
        state.SkipWithError("sync timed out");
        return;
      }
    }
    state.counters["changes_per_s"] = benchmark::Counter(
      static_cast<double>(round * changes_per_iteration), benchmark::Counter::kIsRate);
    state.SetLabel(mode_names[mode]);
  }
  kill(server.pid(), SIGTERM);
  server.wait();
}
BENCHMARK(BM_trace_sync)->DenseRange(0, 2)->Iterations(10)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

int main(int argc, char** argv) {
  return run_main(argc, argv, [](const summary_reporter& r) {
    for (auto name : {"BM_trace_local", "BM_trace_sync"}) {
      auto key = [&](int m) { return std::string{name} + "/" + std::to_string(m); };
      auto off = r.counter(key(0), "changes_per_s");
      auto sampled = r.counter(key(1), "changes_per_s");
      auto all = r.counter(key(2), "changes_per_s");
      summary("%s: tracing off %s changes/s | sampled 1/100 %s (%s of off) | "
              "all %s (%s of off)",
              std::string{name}.substr(9).c_str(), fmt(off, "%.0f").c_str(),
              fmt(sampled, "%.0f").c_str(), fmt(ratio(sampled, off), "%.2f").c_str(),
              fmt(all, "%.0f").c_str(), fmt(ratio(all, off), "%.2f").c_str());
    }
  });
}
