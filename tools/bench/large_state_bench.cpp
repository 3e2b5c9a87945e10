// A fresh client pulling a large state (1M entities, about 100 MB of data
// by default) from a real `syncnode server` child, in pages, into a real
// `syncnode client` child: the time until its `sync` answers, and the peak
// memory of both processes. The baseline, in the same run: the same rows
// read from the server's database and loaded into a new SQLite file in one
// transaction, the least any client that stores them must do.
//   large_state_bench [entities]
// Prints SUMMARY lines (collected by tools/bench/run.sh).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "actors/storage/sqlite_backend.hpp"
#include "tests/support/e2e_helpers.hpp"
#include "tools/bench/bench_common.hpp"

namespace {

using namespace memsync;
using namespace memsync::bench;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// VmHWM (peak resident memory) of process `pid` in MiB, -1 if unknown.
double peak_mib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

/// The server's database with `n` entities, written as a client would
/// (pushes of 1,000 changes through the push rules).
void fill_server(const std::string& path, std::size_t n) {
  sqlite_backend db{path};
  uint64_t mid = 0;
  for (std::size_t start = 0; start < n;) {
    std::vector<log_push> group;
    for (int p = 0; p < 64 && start < n; ++p) {
      push_request req{"filler-0123456789abcdef", db.epoch(), {}};
      for (std::size_t i = 0; i < 1000 && start < n; ++i, ++start)
        req.changes.push_back({0,
                               ++mid,
                               change_kind::put,
                               entity_id(start),
                               entity_type(start),
                               entity_data(start),
                               {}});
      group.push_back({std::move(req), {}});
    }
    auto r = apply_pushes(db, group, data_limits{});
    for (auto& o : r.outcomes)
      if (!o.error.ok())
        throw std::runtime_error("filling the server failed: " + o.error.describe());
  }
}

/// The baseline: read every row of the server's database and load it into
/// a new SQLite file in one transaction. Returns the seconds it took.
double plain_sqlite_load(const std::string& from, const std::string& to) {
  auto t0 = clock_type::now();
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_open(to.c_str(), &dst);
  raw_exec(dst, "PRAGMA journal_mode=WAL");
  raw_exec(dst, "CREATE TABLE entities(id TEXT PRIMARY KEY, type TEXT NOT NULL, "
                "data TEXT NOT NULL, version INTEGER NOT NULL)");
  raw_exec(dst, "BEGIN");
  sqlite3_stmt* read = nullptr;
  sqlite3_stmt* write = nullptr;
  sqlite3_prepare_v2(src,
                     "SELECT id, type, data, version FROM entities WHERE deleted = 0", -1,
                     &read, nullptr);
  sqlite3_prepare_v2(dst, "INSERT INTO entities VALUES(?1, ?2, ?3, ?4)", -1, &write,
                     nullptr);
  while (sqlite3_step(read) == SQLITE_ROW) {
    for (int c = 0; c < 3; ++c)
      sqlite3_bind_text(write, c + 1,
                        reinterpret_cast<const char*>(sqlite3_column_text(read, c)),
                        sqlite3_column_bytes(read, c), SQLITE_TRANSIENT);
    sqlite3_bind_int64(write, 4, sqlite3_column_int64(read, 3));
    if (sqlite3_step(write) != SQLITE_DONE)
      throw std::runtime_error(sqlite3_errmsg(dst));
    sqlite3_reset(write);
  }
  sqlite3_finalize(read);
  sqlite3_finalize(write);
  raw_exec(dst, "COMMIT");
  sqlite3_close(src);
  sqlite3_close(dst);
  return seconds_since(t0);
}

} // namespace

int main(int argc, char** argv) {
  std::size_t n = argc > 1 ? std::stoul(argv[1]) : 1000000;
  memsync::testing::cluster c;
  std::printf("filling the server with %zu entities...\n", n);
  auto t_fill = clock_type::now();
  fill_server(c.server_db(), n);
  std::printf("  filled in %.1f s\n", seconds_since(t_fill));

  auto baseline = plain_sqlite_load(c.server_db(), c.dir().file("baseline.db"));
  std::printf("plain SQLite load of the same rows: %.2f s\n", baseline);

  if (c.start_server() == 0)
    return 1;
  auto t0 = clock_type::now();
  // The request timeout covers one page, so the default would do; a long
  // one here only keeps a slow shared machine from failing the run.
  auto client = c.start_client("bob", {"--sync.request-timeout=60s",
                                       "--client.sync-timeout=1800s"});
  auto answer = client->cmd("sync", std::chrono::minutes(30));
  auto pulled = seconds_since(t0);
  if (answer != "ok") {
    std::fprintf(stderr, "sync failed: %s\n", answer.c_str());
    return 1;
  }
  auto st = client->status();
  auto entities = st.value("entities", std::size_t{0});
  auto client_peak = peak_mib(client->process().pid());
  auto server_peak = peak_mib(c.server()->pid());
  std::printf("fresh client: sync answered after %.2f s, holding %zu entities\n", pulled,
              entities);
  std::printf("peak memory: client %.0f MiB, server %.0f MiB\n", client_peak,
              server_peak);
  std::printf("SUMMARY large_state entities=%zu pull_s=%.2f sqlite_load_s=%.2f "
              "ratio=%.2f client_peak_mib=%.0f server_peak_mib=%.0f\n",
              entities, pulled, baseline, pulled / baseline, client_peak, server_peak);
  client->quit();
  c.stop_server();
  return entities == n ? 0 : 1;
}
