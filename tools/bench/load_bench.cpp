// Start-up of a client with 1M entities in its local database: open the file
// (local_database), read the snapshot (load) and build the hot layer
// (store_core::load). The file is created first, in a child process, with
// local_database::apply_pull, so this process's heap is clean and resident
// memory before and after the load tells what the store costs per entity.
// One iteration: a second load in the same process would reuse freed memory.
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "actors/client/local_database.hpp"
#include "actors/hot/store_core.hpp"
#include "tools/bench/bench_common.hpp"

namespace {

using namespace memsync;
using namespace memsync::bench;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t load_entities = 1000000;

double seconds(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

local_db_settings settings_for(const std::string& path) {
  local_db_settings s;
  s.path = path;
  s.client_name = "bench";
  return s;
}

/// Writes the database in a child process; false on failure.
bool create_database(const std::string& path, std::size_t n) {
  auto pid = fork();
  if (pid < 0)
    return false;
  if (pid == 0) {
    int rc = 0;
    try {
      pull_reply reply;
      reply.reset = true;
      reply.next.version = 1;
      reply.entities.reserve(n);
      for (std::size_t i = 0; i < n; ++i)
        reply.entities.push_back(
          {entity_id(i), entity_type(i), entity_data(i), i + 1, false});
      local_database db{settings_for(path)};
      db.apply_pull(reply);
    } catch (const std::exception& e) { // closed (and checkpointed) above
      std::fprintf(stderr, "create_database: %s\n", e.what());
      rc = 1;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void BM_startup_load(benchmark::State& state) {
  auto n = static_cast<std::size_t>(state.range(0));
  temp_dir dir;
  auto path = dir.file("local.db");
  if (!create_database(path, n)) {
    state.SkipWithError("cannot create the database");
    return;
  }
  malloc_trim(0);
  for (auto _ : state) {
    auto rss_start = rss_bytes();
    auto t0 = clock_type::now();
    auto core = std::make_unique<store_core>();
    long long rss_snapshot = 0, rss_loaded = 0;
    double open_s = 0, read_s = 0, build_s = 0;
    std::size_t size = 0;
    {
      local_database db{settings_for(path)};
      auto t1 = clock_type::now();
      auto snap = db.load();
      auto t2 = clock_type::now();
      rss_snapshot = rss_bytes();
      auto t3 = clock_type::now();
      core->load(std::move(snap.base), std::move(snap.outbox));
      auto t4 = clock_type::now();
      rss_loaded = rss_bytes();
      open_s = seconds(t0, t1);
      read_s = seconds(t1, t2);
      build_s = seconds(t3, t4);
      size = core->size();
    } // the snapshot's vectors and the connection are dropped here
    auto rss_dropped = rss_bytes();
    state.SetIterationTime(open_s + read_s + build_s);
    auto per_entity = [&](long long rss) {
      return static_cast<double>(rss - rss_start) / static_cast<double>(n);
    };
    state.counters["open_s"] = open_s;
    state.counters["db_load_s"] = read_s;
    state.counters["store_load_s"] = build_s;
    state.counters["total_s"] = open_s + read_s + build_s;
    state.counters["snapshot_B_per_entity"] = per_entity(rss_snapshot);
    state.counters["after_load_B_per_entity"] = per_entity(rss_loaded);
    state.counters["store_B_per_entity"] = per_entity(rss_dropped);
    state.counters["entities"] = static_cast<double>(size);
    if (size != n)
      state.SkipWithError("the store does not hold every entity");
    core.reset(); // not timed
  }
}

BENCHMARK(BM_startup_load)
  ->Arg(static_cast<int64_t>(load_entities))
  ->Iterations(1)
  ->UseManualTime()
  ->Unit(benchmark::kMillisecond);

void summarize(const summary_reporter& r) {
  std::string key = "BM_startup_load/" + std::to_string(load_entities);
  auto c = [&](const char* name) {
    return r.counter(key, name);
  };
  summary("load 1M entities: %s s total (open %s s, local_database::load %s s, "
          "store_core::load %s s) (target < 2 s)",
          fmt(c("total_s"), "%.2f").c_str(), fmt(c("open_s"), "%.3f").c_str(),
          fmt(c("db_load_s"), "%.2f").c_str(), fmt(c("store_load_s"), "%.2f").c_str());
  summary("load 1M entities: resident memory %s B/entity with the snapshot, "
          "%s B/entity after store_core::load, %s B/entity after dropping "
          "the snapshot",
          fmt(c("snapshot_B_per_entity"), "%.0f").c_str(),
          fmt(c("after_load_B_per_entity"), "%.0f").c_str(),
          fmt(c("store_B_per_entity"), "%.0f").c_str());
}

} // namespace

int main(int argc, char** argv) {
  return memsync::bench::run_main(argc, argv, summarize);
}
