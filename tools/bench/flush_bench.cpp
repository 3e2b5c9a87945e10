// Flush throughput into SQLite, measured in one run:
//  - local_database::append with batches of 1000 puts to distinct entities;
//  - the baselines: a raw batched upsert of the same rows into the entities
//    table (BEGIN; prepared INSERT ... ON CONFLICT x1000; COMMIT), and a raw
//    batched insert into a table shaped like the outbox (what append writes);
//    both on a connection set up like local_database's (exclusive locking,
//    WAL, synchronous=NORMAL);
//  - with coalescing: 10,000 writes to 1,000 entities folded with
//    memsync::coalesce, then appended; counted as input writes. Variant
//    "patches": the first write of each entity is a put, the rest are merge
//    patches (so coalesce parses, merges and dumps JSON).
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sqlite3.h>

#include "actors/client/local_database.hpp"
#include "actors/common/merge_patch.hpp"
#include "tools/bench/bench_common.hpp"

namespace {

using namespace memsync;
using namespace memsync::bench;

constexpr std::size_t batch_size = 1000;
constexpr std::size_t batch_pool = 16; ///< batches cycled through (16k ids)

/// batch_pool batches of batch_size puts; every id distinct within a batch.
std::vector<std::vector<change>> make_batches() {
  std::vector<std::vector<change>> out(batch_pool);
  uint64_t seq = 0;
  for (std::size_t b = 0; b < batch_pool; ++b)
    for (std::size_t j = 0; j < batch_size; ++j) {
      auto i = b * batch_size + j;
      change c;
      c.seq = ++seq;
      c.kind = change_kind::put;
      c.id = entity_id(i);
      c.type = entity_type(i);
      c.data = entity_data(i, seq);
      c.trace.trace_id = 0x9e3779b97f4a7c15ULL + seq;
      out[b].push_back(std::move(c));
    }
  return out;
}

local_db_settings settings_for(const temp_dir& dir) {
  local_db_settings s;
  s.path = dir.file("local.db");
  s.client_name = "bench";
  s.synchronous = "normal";
  return s;
}

void BM_append(benchmark::State& state) {
  temp_dir dir;
  local_database db{settings_for(dir)};
  auto batches = make_batches();
  std::size_t b = 0;
  for (auto _ : state) {
    auto ids = db.append(batches[b]);
    benchmark::DoNotOptimize(ids.data());
    b = (b + 1) % batch_pool;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
}

/// A raw connection configured like local_database's.
struct raw_db {
  temp_dir dir;
  sqlite3* db = nullptr;

  raw_db() {
    auto path = dir.file("raw.db");
    if (sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr)
        != SQLITE_OK)
      throw std::runtime_error("cannot open " + path);
    exec("PRAGMA locking_mode=EXCLUSIVE");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE entities(id TEXT PRIMARY KEY, type TEXT NOT NULL, "
         "data TEXT NOT NULL, version INTEGER NOT NULL)");
    exec("CREATE TABLE outbox(mutation_id INTEGER PRIMARY KEY, kind INTEGER "
         "NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, "
         "trace_id INTEGER NOT NULL)");
  }
  ~raw_db() { sqlite3_close_v2(db); }

  void exec(const char* sql) { raw_exec(db, sql); }

  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr)
        != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    return stmt;
  }

  void step(sqlite3_stmt* stmt) {
    if (sqlite3_step(stmt) != SQLITE_DONE)
      throw std::runtime_error(sqlite3_errmsg(db));
    sqlite3_reset(stmt);
  }
};

void bind_text(sqlite3_stmt* stmt, int index, const std::string& s) {
  sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}

void BM_raw_upsert(benchmark::State& state) {
  raw_db raw;
  auto* stmt = raw.prepare(
    "INSERT INTO entities VALUES(?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE "
    "SET type = excluded.type, data = excluded.data, version = excluded.version");
  auto batches = make_batches();
  std::size_t b = 0;
  for (auto _ : state) {
    raw.exec("BEGIN IMMEDIATE");
    for (auto& c : batches[b]) {
      bind_text(stmt, 1, c.id);
      bind_text(stmt, 2, c.type);
      bind_text(stmt, 3, c.data);
      sqlite3_bind_int64(stmt, 4, static_cast<int64_t>(c.seq));
      raw.step(stmt);
    }
    raw.exec("COMMIT");
    b = (b + 1) % batch_pool;
  }
  sqlite3_finalize(stmt);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
}

void BM_raw_outbox_insert(benchmark::State& state) {
  raw_db raw;
  auto* stmt = raw.prepare("INSERT INTO outbox VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  auto batches = make_batches();
  std::size_t b = 0;
  int64_t next = 1;
  for (auto _ : state) {
    raw.exec("BEGIN IMMEDIATE");
    for (auto& c : batches[b]) {
      sqlite3_bind_int64(stmt, 1, next++);
      sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(c.kind));
      bind_text(stmt, 3, c.id);
      bind_text(stmt, 4, c.type);
      bind_text(stmt, 5, c.data);
      sqlite3_bind_int64(stmt, 6, static_cast<int64_t>(c.trace.trace_id));
      raw.step(stmt);
    }
    raw.exec("COMMIT");
    b = (b + 1) % batch_pool;
  }
  sqlite3_finalize(stmt);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
}

constexpr std::size_t coalesce_entities = 1000;
constexpr std::size_t coalesce_rounds = 10; ///< writes per entity

/// Round r writes every entity once, in a shuffled order, so an entity's
/// first write is in round 0. `patches`: rounds after 0 write merge patches.
std::vector<change> make_writes(bool patches) {
  std::vector<std::size_t> order(coalesce_entities);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng{11};
  std::vector<change> out;
  uint64_t seq = 0;
  for (std::size_t r = 0; r < coalesce_rounds; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    for (auto i : order) {
      change c;
      c.seq = ++seq;
      c.id = entity_id(i);
      c.type = entity_type(i);
      c.trace.trace_id = seq;
      if (r > 0 && patches) {
        c.kind = change_kind::patch;
        c.data = "{\"done\":" + std::string{r % 2 ? "true" : "false"}
                 + ",\"n\":" + std::to_string(r) + "}";
      } else {
        c.kind = change_kind::put;
        c.data = entity_data(i, seq);
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

void BM_append_coalesced(benchmark::State& state) {
  bool patches = state.range(0) != 0;
  temp_dir dir;
  local_database db{settings_for(dir)};
  auto writes = make_writes(patches);
  std::size_t rows = 0, separate = 0;
  for (auto _ : state) {
    // As the flush scheduler folds its buffer: one change per entity while
    // coalesce allows, kept in write order of the first write.
    std::vector<change> batch;
    batch.reserve(coalesce_entities);
    std::unordered_map<std::string_view, std::size_t> latest;
    latest.reserve(coalesce_entities);
    for (auto& w : writes) {
      auto [it, added] = latest.try_emplace(w.id, batch.size());
      if (added) {
        batch.push_back(w);
      } else if (!coalesce(batch[it->second], w)) {
        it->second = batch.size();
        batch.push_back(w);
        ++separate;
      }
    }
    auto ids = db.append(batch);
    benchmark::DoNotOptimize(ids.data());
    rows = batch.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * writes.size()));
  state.counters["rows_per_batch"] = static_cast<double>(rows);
  state.counters["not_coalesced"] = static_cast<double>(separate);
}

// Wall-clock rates (UseRealTime): waiting for the disk counts. Two seconds
// each so several WAL checkpoints fall into every measurement.
constexpr double flush_min_time = 2.0;

BENCHMARK(BM_append)
  ->MinTime(flush_min_time)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_upsert)
  ->MinTime(flush_min_time)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_outbox_insert)
  ->MinTime(flush_min_time)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_append_coalesced)
  ->ArgName("patches")
  ->Arg(0)
  ->Arg(1)
  ->MinTime(flush_min_time)
  ->UseRealTime()
  ->Unit(benchmark::kMillisecond);

std::optional<double> percent(std::optional<double> x) {
  if (!x)
    return std::nullopt;
  return *x * 100;
}

void summarize(const summary_reporter& r) {
  auto rate = [&](const std::string& key) {
    return r.counter(key, "items_per_second");
  };
  auto append = rate("BM_append");
  auto upsert = rate("BM_raw_upsert");
  auto outbox = rate("BM_raw_outbox_insert");
  summary("flush append %s changes/s | raw upsert %s changes/s | append/raw "
          "upsert %s%% (target >= 80%%)",
          fmt(append, "%.0f").c_str(), fmt(upsert, "%.0f").c_str(),
          fmt(percent(ratio(append, upsert)), "%.0f").c_str());
  summary("flush append vs raw insert into an outbox-shaped table %s changes/s: "
          "%s%%",
          fmt(outbox, "%.0f").c_str(),
          fmt(percent(ratio(append, outbox)), "%.0f").c_str());
  for (int p : {0, 1})
    summary(
      "flush with coalescing (10,000 writes -> 1,000 rows, %s): %s "
      "input writes/s",
      p ? "put + 9 patches each" : "puts only",
      fmt(rate("BM_append_coalesced/patches:" + std::to_string(p)), "%.0f").c_str());
}

} // namespace

int main(int argc, char** argv) {
  return memsync::bench::run_main(argc, argv, summarize);
}
