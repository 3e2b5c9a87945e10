// The two storage backends side by side, in one run: changes applied per
// second with 1, 100 and 1,000 changes per push (one transaction per push,
// durable on return: SQLite synchronous=FULL, PostgreSQL synchronous_commit
// on), and the latency of pulling 1,000 changes. PostgreSQL is a throwaway
// local cluster started by this program (as the tests do), on loopback.
#include "actors/storage/postgres_backend.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tools/bench/bench_common.hpp"

using namespace memsync;
using namespace memsync::bench;

namespace {

memsync::testing::pg_cluster* pg = nullptr;

std::unique_ptr<storage_backend> open_backend(int kind, temp_dir& dir) {
  if (kind == 0)
    return std::make_unique<sqlite_backend>(dir.file("server.db"));
  auto db = pg->create_database();
  return std::make_unique<postgres_backend>(pg->conninfo(db));
}

const char* backend_name(int kind) {
  return kind == 0 ? "sqlite" : "postgres";
}

// `size` puts to distinct entities (cycling over 10,000 ids), next mids.
log_push make_push(uint64_t& mid, int64_t size) {
  std::vector<change> changes;
  for (int64_t i = 0; i < size; ++i, ++mid)
    changes.push_back({0,
                       mid + 1,
                       change_kind::put,
                       entity_id(mid % 10000),
                       "note",
                       entity_data(mid % 10000, mid),
                       {}});
  return {push_request{"bench-client", "", std::move(changes)}, {}};
}

void BM_apply(benchmark::State& state) {
  temp_dir dir;
  auto backend = open_backend(static_cast<int>(state.range(0)), dir);
  auto size = state.range(1);
  uint64_t mid = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto push = make_push(mid, size);
    push.request.epoch = backend->epoch();
    state.ResumeTiming();
    auto result = apply_pushes(*backend, {push}, {});
    if (!result.outcomes.at(0).error.ok())
      state.SkipWithError(result.outcomes[0].error.describe().c_str());
  }
  state.SetLabel(backend_name(static_cast<int>(state.range(0))));
  state.counters["changes_per_s"] = benchmark::Counter(static_cast<double>(mid),
                                                       benchmark::Counter::kIsRate);
}
// Wall-clock rates (UseRealTime): the disk sync, and PostgreSQL's work in
// its own processes, count. Iterations: enough pushes for a stable rate,
// few enough for a quick run.
BENCHMARK(BM_apply)->Args({0, 1})->Args({1, 1})->Iterations(300)->UseRealTime()->Unit(
  benchmark::kMillisecond);
BENCHMARK(BM_apply)->Args({0, 100})->Args({1, 100})->Iterations(60)->UseRealTime()->Unit(
  benchmark::kMillisecond);
BENCHMARK(BM_apply)
  ->Args({0, 1000})
  ->Args({1, 1000})
  ->Iterations(20)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);

// A client 1,000 changes behind: one pull brings it up to date.
void BM_pull_1000(benchmark::State& state) {
  temp_dir dir;
  auto backend = open_backend(static_cast<int>(state.range(0)), dir);
  uint64_t mid = 0;
  auto warm = make_push(mid, 1000);
  warm.request.epoch = backend->epoch();
  apply_pushes(*backend, {warm}, {});
  auto since = backend->pull("reader", {backend->epoch(), 0, 0}).next;
  auto next = make_push(mid, 1000);
  next.request.epoch = backend->epoch();
  apply_pushes(*backend, {next}, {});
  size_t pulled = 0;
  for (auto _ : state)
    pulled = backend->pull("reader", since).entities.size();
  if (pulled != 1000)
    state.SkipWithError("the pull did not bring 1,000 changes");
  state.SetLabel(backend_name(static_cast<int>(state.range(0))));
}
BENCHMARK(BM_pull_1000)
  ->Arg(0)
  ->Arg(1)
  ->Iterations(50)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);

} // namespace

int main(int argc, char** argv) {
  memsync::testing::pg_cluster cluster;
  pg = &cluster;
  return run_main(argc, argv, [](const summary_reporter& r) {
    for (int size : {1, 100, 1000}) {
      auto lite = r.counter("BM_apply/0/" + std::to_string(size), "changes_per_s");
      auto post = r.counter("BM_apply/1/" + std::to_string(size), "changes_per_s");
      summary("apply, %4d changes per push: sqlite %s changes/s, postgres %s "
              "changes/s, postgres/sqlite %sx",
              size, fmt(lite, "%.0f").c_str(), fmt(post, "%.0f").c_str(),
              fmt(ratio(post, lite), "%.2f").c_str());
    }
    auto lite = r.ns_per_op("BM_pull_1000/0");
    auto post = r.ns_per_op("BM_pull_1000/1");
    auto ms = [](std::optional<double> ns) {
      return ns ? std::optional<double>(*ns / 1e6) : std::nullopt;
    };
    summary("pull of 1,000 changes: sqlite %s ms, postgres %s ms, postgres/sqlite %sx",
            fmt(ms(lite), "%.2f").c_str(), fmt(ms(post), "%.2f").c_str(),
            fmt(ratio(post, lite), "%.2f").c_str());
  });
}
