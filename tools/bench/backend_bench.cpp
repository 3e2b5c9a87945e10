// The two storage backends side by side, in one run: changes applied per
// second with 1, 100 and 1,000 changes per push (one transaction per push,
// durable on return: SQLite synchronous=FULL, PostgreSQL synchronous_commit
// on), the latency of pulling 1,000 changes, and that of pulling one scope's
// 10 new changes on a server of 1,000 scopes x 100 entities against the "*"
// pull of 10 changes on a server that holds only them (a scoped pull's cost
// must not grow with the server's size). PostgreSQL is a throwaway local
// cluster started by this program (as the tests do), on loopback.
#include "actors/storage/postgres_backend.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tools/bench/bench_common.hpp"

using namespace memsync;
using namespace memsync::bench;

namespace {

memsync::testing::pg_cluster* pg = nullptr;

// `database`: set to PostgreSQL's database name.
std::unique_ptr<storage_backend> open_backend(int kind, temp_dir& dir,
                                              std::string* database = nullptr) {
  if (kind == 0)
    return std::make_unique<sqlite_backend>(dir.file("server.db"));
  auto db = pg->create_database();
  if (database)
    *database = db;
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

// Arg 1 = 1: 1,000 scopes of 100 entities, then 10 writes to one of them,
// pulled as that scope since the cookie before them. 0: a server of only 10
// writes, pulled as "*" (no parts: the default request); 2: the same pulled
// as their scope.
void BM_pull_scoped(benchmark::State& state) {
  temp_dir dir;
  std::string database;
  auto backend = open_backend(static_cast<int>(state.range(0)), dir, &database);
  bool big = state.range(1) == 1;
  bool scoped_pull = state.range(1) != 0;
  const scope_rules rules{{"note", "team"}};
  uint64_t mid = 0;
  auto write = [&](int scope, int first, int count) {
    // (Not `"s" + std::to_string(n)`: GCC 12 warns about it, a false -Wrestrict.)
    auto name = std::to_string(scope);
    std::vector<change> changes;
    for (int i = first; i < first + count; ++i) {
      auto id = std::string("s").append(name).append("-").append(std::to_string(i));
      auto data = std::string(R"({"team":"team-)").append(name).append(R"(","n":)");
      data.append(std::to_string(++mid)).append("}");
      changes.push_back(
        {0, mid, change_kind::put, std::move(id), "note", std::move(data), {}});
    }
    log_push push{push_request{"bench-client", backend->epoch(), std::move(changes)}, {}};
    auto r = apply_pushes(*backend, {push}, {}, rules);
    if (!r.outcomes.at(0).error.ok() || !r.outcomes[0].reply.refused.empty())
      state.SkipWithError("a setup push failed");
  };
  if (big)
    for (int scope = 0; scope < 1000; ++scope) // one push per scope
      write(scope, 0, 100);
  page_request nothing{0, SIZE_MAX, {{"nobody", 0}}, false};
  auto since = backend->pull_page("reader", {backend->epoch(), 0, 0}, nothing).next;
  write(7, 100, 10);
  // What the databases do after a bulk load anyway (PostgreSQL's autovacuum
  // and next checkpoint, SQLite's WAL checkpoint), done before measuring
  // rather than while.
  if (!database.empty()) {
    pg->query(database, "VACUUM ANALYZE");
    pg->execute("CHECKPOINT");
  } else {
    sqlite_db{dir.file("server.db"), false}.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  page_request scoped{0, SIZE_MAX, {{"team-7", since.version}}, false};
  size_t pulled = 0;
  for (auto _ : state)
    pulled = (scoped_pull ? backend->pull_page("reader", since, scoped)
                          : backend->pull("reader", since))
               .entities.size();
  if (pulled != 10)
    state.SkipWithError("the pull did not bring the 10 changes");
  state.SetLabel(backend_name(static_cast<int>(state.range(0))));
}
BENCHMARK(BM_pull_scoped)
  ->Args({0, 0})
  ->Args({0, 1})
  ->Args({0, 2})
  ->Args({1, 0})
  ->Args({1, 1})
  ->Args({1, 2})
  ->Iterations(200)
  ->UseRealTime()
  ->Unit(benchmark::kMicrosecond);

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
    auto us = [](std::optional<double> ns) {
      return ns ? std::optional<double>(*ns / 1e3) : std::nullopt;
    };
    for (int kind : {0, 1}) {
      auto small = r.ns_per_op("BM_pull_scoped/" + std::to_string(kind) + "/0");
      auto large = r.ns_per_op("BM_pull_scoped/" + std::to_string(kind) + "/1");
      auto alone = r.ns_per_op("BM_pull_scoped/" + std::to_string(kind) + "/2");
      summary(
        "%s: pull of one scope's 10 changes among 1,000 scopes x 100 entities %s us; "
        "on a server of only those 10: \"*\" pull %s us (ratio %sx), scoped pull "
        "%s us (ratio %sx)",
        backend_name(kind), fmt(us(large), "%.1f").c_str(),
        fmt(us(small), "%.1f").c_str(), fmt(ratio(large, small), "%.2f").c_str(),
        fmt(us(alone), "%.1f").c_str(), fmt(ratio(large, alone), "%.2f").c_str());
    }
  });
}
