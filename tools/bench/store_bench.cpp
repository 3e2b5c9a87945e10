// The hot layer (store_core) against SQLite, measured in one run:
//  1. get of random ids at 10k, 100k and 1M entities, vs a prepared point
//     SELECT on the same rows in a local_database file (default page cache,
//     and a cache large enough for the whole file, warmed up);
//  2. put throughput at 10k and 1M entities, without and with a subscriber.
//     The benchmark plays the memory_store actor: on_first_queued sets a flag
//     and every `drain_every` puts it takes the queue and dispatches events.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "actors/client/local_database.hpp"
#include "actors/hot/store_core.hpp"
#include "actors/hot/subscribers.hpp"
#include "tools/bench/bench_common.hpp"

namespace {

using namespace memsync;
using namespace memsync::bench;

std::vector<entity> make_entities(std::size_t n) {
  std::vector<entity> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({entity_id(i), entity_type(i), entity_data(i), i + 1, false});
  return out;
}

std::vector<uint32_t> shuffled_indices(std::size_t n, uint32_t seed) {
  std::vector<uint32_t> out(n);
  std::iota(out.begin(), out.end(), 0);
  std::shuffle(out.begin(), out.end(), std::mt19937{seed});
  return out;
}

// -- 1. get ------------------------------------------------------------------

/// Built once per size and shared by the hot and SQLite variants.
struct get_fixture {
  std::vector<std::string> ids; ///< every id once, shuffled
  store_core core;
  temp_dir dir;
  std::string path;
  sqlite3* db = nullptr; ///< read connection; reopened when `cached` changes
  bool cached = false;

  explicit get_fixture(std::size_t n) : path(dir.file("local.db")) {
    for (auto i : shuffled_indices(n, 42))
      ids.push_back(entity_id(i));
    auto entities = make_entities(n);
    { // the same file and schema the client uses
      local_database ldb{{path, "bench"}};
      pull_reply reply;
      reply.reset = true;
      reply.entities = entities;
      ldb.apply_pull(reply);
    } // closed: checkpointed, and its exclusive lock released
    core.load(std::move(entities), {});
  }
  ~get_fixture() { sqlite3_close_v2(db); }

  void exec(const char* sql) { raw_exec(db, sql); }

  /// A connection set up as local_database sets up its own; `whole_file`
  /// raises the page cache to 1 GiB and reads every page once.
  sqlite3* connect(bool whole_file) {
    if (db != nullptr && cached == whole_file)
      return db;
    sqlite3_close_v2(db);
    db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        nullptr)
        != SQLITE_OK)
      throw std::runtime_error("cannot open " + path);
    cached = whole_file;
    exec("PRAGMA locking_mode=EXCLUSIVE");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    if (whole_file) {
      exec("PRAGMA cache_size=-1048576");
      exec("SELECT count(*) FROM entities");          // the id index
      exec("SELECT sum(length(data)) FROM entities"); // the table
    }
    return db;
  }
};

std::map<std::size_t, std::unique_ptr<get_fixture>> get_fixtures;

get_fixture& fixture_for(std::size_t n) {
  auto& f = get_fixtures[n];
  if (!f)
    f = std::make_unique<get_fixture>(n);
  return *f;
}

void BM_get_hot(benchmark::State& state) {
  auto& f = fixture_for(static_cast<std::size_t>(state.range(0)));
  auto& ids = f.ids;
  if (!f.core.get(ids.front()) || !f.core.get(ids.back())) {
    state.SkipWithError("entity missing from the store");
    return;
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto e = f.core.get(ids[i]);
    benchmark::DoNotOptimize(e);
    if (++i == ids.size())
      i = 0;
  }
  state.counters["entities"] = static_cast<double>(ids.size());
}

void get_sqlite(benchmark::State& state, bool whole_file) {
  auto& f = fixture_for(static_cast<std::size_t>(state.range(0)));
  auto& ids = f.ids;
  auto* db = f.connect(whole_file);
  sqlite3_stmt* stmt = nullptr;
  const char* sql = "SELECT type, data, version FROM entities WHERE id = ?";
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr)
      != SQLITE_OK) {
    state.SkipWithError(sqlite3_errmsg(db));
    return;
  }
  std::string type, data; // reused: no allocation once grown
  int64_t version = 0;
  std::size_t i = 0, misses = 0;
  for (auto _ : state) {
    auto& id = ids[i];
    sqlite3_bind_text(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      type.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                  static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
      data.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)),
                  static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1)));
      version = sqlite3_column_int64(stmt, 2);
    } else {
      ++misses;
    }
    sqlite3_reset(stmt);
    benchmark::DoNotOptimize(data.data());
    benchmark::DoNotOptimize(version);
    if (++i == ids.size())
      i = 0;
  }
  sqlite3_finalize(stmt);
  if (misses != 0)
    state.SkipWithError("rows missing from the SQLite file");
  state.counters["entities"] = static_cast<double>(ids.size());
}

void BM_get_sqlite(benchmark::State& state) {
  get_sqlite(state, false);
}

void BM_get_sqlite_cached(benchmark::State& state) {
  get_sqlite(state, true);
}

// -- 2. put ------------------------------------------------------------------

constexpr std::size_t drain_every = 100;       ///< puts between two actor drains
constexpr std::size_t payload_variants = 4093; ///< prime: values keep changing

void BM_put(benchmark::State& state) {
  get_fixtures.clear(); // done with get: free their memory first
  auto n = static_cast<std::size_t>(state.range(0));
  bool with_subscriber = state.range(1) != 0;
  store_core core;
  core.load(make_entities(n), {});
  std::vector<std::string> ids;
  ids.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    ids.push_back(entity_id(i));
  auto order = shuffled_indices(n, 7);
  std::vector<std::string> payloads;
  for (std::size_t v = 0; v < payload_variants; ++v)
    payloads.push_back(entity_data(v, v + 1));

  bool queued = false; // the actor's mailbox, in effect
  core.on_first_queued([&queued] { queued = true; });
  subscriber_list subs;
  std::size_t events_seen = 0;
  subscription sub;
  if (with_subscriber)
    sub = subs.add("", [&events_seen](const std::vector<change_event>& events) {
      events_seen += events.size();
    });

  std::size_t i = 0, since_drain = 0, taken = 0;
  for (auto _ : state) {
    auto k = order[i % n];
    std::string_view json = payloads[i % payload_variants];
    auto err = core.put_json(ids[k], entity_type(k), json);
    if (!err.ok()) {
      state.SkipWithError(err.describe().c_str());
      break;
    }
    ++i;
    if (++since_drain == drain_every) {
      since_drain = 0;
      if (queued) {
        queued = false;
        auto d = core.take();
        taken += d.changes.size();
        if (with_subscriber)
          subs.dispatch(d.events);
      }
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["entities"] = static_cast<double>(n);
  state.counters["events"] = static_cast<double>(events_seen);
  state.counters["pending_end"] = static_cast<double>(core.counts().pending);
  benchmark::DoNotOptimize(taken);
}

constexpr int64_t put_iterations = 200000;

BENCHMARK(BM_get_hot)->Arg(10000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_get_sqlite)->Arg(10000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_get_sqlite_cached)->Arg(10000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_put)
  ->ArgNames({"entities", "subscriber"})
  ->Args({10000, 0})
  ->Args({1000000, 0})
  ->Args({10000, 1})
  ->Args({1000000, 1})
  ->Iterations(put_iterations)
  ->UseRealTime()
  ->Unit(benchmark::kMicrosecond);

void summarize(const summary_reporter& r) {
  for (std::string n : {"10000", "100000", "1000000"}) {
    auto hot = r.ns_per_op("BM_get_hot/" + n);
    auto sql = r.ns_per_op("BM_get_sqlite/" + n);
    auto warm = r.ns_per_op("BM_get_sqlite_cached/" + n);
    summary("get %7s entities: hot %s ns/op | sqlite %s ns/op, ratio %sx | "
            "sqlite whole-file cache %s ns/op, ratio %sx",
            n.c_str(), fmt(hot).c_str(), fmt(sql).c_str(), fmt(ratio(sql, hot)).c_str(),
            fmt(warm).c_str(), fmt(ratio(warm, hot)).c_str());
  }
  auto rate = [&](const char* n, int sub) {
    return r.counter(std::string{"BM_put/entities:"} + n
                       + "/subscriber:" + std::to_string(sub),
                     "items_per_second");
  };
  for (int sub : {0, 1}) {
    auto small = rate("10000", sub), big = rate("1000000", sub);
    summary("put %s subscriber: 10k %s changes/s | 1M %s changes/s | "
            "1M/10k %s",
            sub ? "with   " : "without", fmt(small, "%.0f").c_str(),
            fmt(big, "%.0f").c_str(), fmt(ratio(big, small), "%.2f").c_str());
  }
  for (const char* n : {"10000", "1000000"})
    summary("put %7s entities: with/without subscriber %s", n,
            fmt(ratio(rate(n, 1), rate(n, 0)), "%.2f").c_str());
  summary("targets: get at 1M >= 20x SQLite and < 150 ns; put not collapsing "
          "from 10k to 1M");
}

} // namespace

int main(int argc, char** argv) {
  return memsync::bench::run_main(argc, argv, summarize);
}
