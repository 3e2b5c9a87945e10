// Group commit of the replication log: pushes per second with 1, 10 and 100
// clients pushing concurrently (each waits for its reply before the next
// push, as a real client does), against the same SQLite backend committing
// one transaction (one disk sync) per push, measured in the same run.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/server/replication_log.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "messages/registry.hpp"
#include "tools/bench/bench_common.hpp"

using namespace memsync;
using namespace memsync::bench;

namespace {

log_push one_change(const std::string& client, uint64_t mid) {
  change c{0,
           mid,
           change_kind::put,
           client + "-e" + std::to_string(mid % 50),
           "note",
           entity_data(mid),
           {}};
  return {push_request{client, "", {std::move(c)}}, {}};
}

// Pushes `count` single-change pushes, one at a time, then reports to `done`.
caf::behavior pusher(caf::event_based_actor* self, replication_log_actor log,
                     std::string client, uint64_t count, caf::actor done) {
  auto next = std::make_shared<uint64_t>(1);
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) {
      if (*next > count) {
        self->send(done, caf::ok_atom::value);
        self->quit();
        return;
      }
      self->request(log, caf::infinite, push_atom::value, one_change(client, (*next)++))
        .then([=](const push_reply&) { self->send(self, tick_atom::value); },
              [=](caf::error&) { self->send(self, tick_atom::value); });
    },
  };
}

void BM_group_commit(benchmark::State& state) {
  auto clients = static_cast<uint64_t>(state.range(0));
  uint64_t per_client = std::max<uint64_t>(20, 2000 / clients);
  caf::actor_system_config cfg;
  register_message_types(cfg);
  cfg.set("scheduler.max-threads", size_t{2});
  cfg.set("logger.console", caf::atom("none"));
  caf::actor_system sys{cfg};
  temp_dir dir;
  auto log = spawn_replication_log(
    sys, std::make_unique<sqlite_backend>(dir.file("server.db")), {});
  uint64_t pushes = 0;
  for (auto _ : state) {
    caf::scoped_actor self{sys};
    auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < clients; ++i)
      sys.spawn(pusher, log, "client" + std::to_string(i) + "-" + std::to_string(pushes),
                per_client, caf::actor{self});
    for (uint64_t i = 0; i < clients; ++i)
      self->receive([](caf::ok_atom) {});
    state.SetIterationTime(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    pushes += clients * per_client;
  }
  caf::scoped_actor self{sys};
  log_stats stats;
  self->request(log, caf::infinite, stats_atom::value)
    .receive([&](log_stats& s) { stats = s; }, [](caf::error&) {});
  state.counters["pushes_per_s"] = benchmark::Counter(static_cast<double>(pushes),
                                                      benchmark::Counter::kIsRate);
  state.counters["pushes_per_commit"] = static_cast<double>(stats.pushes)
                                        / std::max<uint64_t>(1, stats.commits);
  caf::anon_send_exit(log, caf::exit_reason::user_shutdown);
}
BENCHMARK(BM_group_commit)
  ->Arg(1)
  ->Arg(10)
  ->Arg(100)
  ->UseManualTime()
  ->Iterations(3)
  ->Unit(benchmark::kMillisecond);

// Baseline: the same backend, one transaction and one disk sync per push.
void BM_commit_per_push(benchmark::State& state) {
  temp_dir dir;
  sqlite_backend backend{dir.file("server.db")};
  uint64_t mid = 0;
  for (auto _ : state)
    apply_pushes(backend, {one_change("solo", ++mid)}, {});
  state.counters["pushes_per_s"] = benchmark::Counter(static_cast<double>(mid),
                                                      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_commit_per_push)
  ->Iterations(500)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);

} // namespace

int main(int argc, char** argv) {
  return run_main(argc, argv, [](const summary_reporter& r) {
    auto base = r.counter("BM_commit_per_push", "pushes_per_s");
    for (int n : {1, 10, 100}) {
      auto key = "BM_group_commit/" + std::to_string(n);
      auto rate = r.counter(key, "pushes_per_s");
      summary("group commit, %3d clients: %s pushes/s, %s pushes per commit | "
              "one commit per push %s pushes/s, ratio %sx",
              n, fmt(rate, "%.0f").c_str(),
              fmt(r.counter(key, "pushes_per_commit")).c_str(), fmt(base, "%.0f").c_str(),
              fmt(ratio(rate, base)).c_str());
    }
  });
}
