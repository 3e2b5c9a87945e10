// Shared by the benchmark programs: test data, a temporary directory, the
// process's resident memory, and a console reporter that remembers every
// result so a program can print ratios against the baseline it measured in
// the same run ("SUMMARY" lines, collected by tools/bench/run.sh).
#pragma once

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include "tests/support/temp_dir.hpp"

namespace memsync::bench {

// -- test data ---------------------------------------------------------------

/// "entity-000123": 13 bytes, fits the small-string buffer like real short ids.
inline std::string entity_id(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "entity-%06zu", i);
  return buf;
}

inline const char* entity_type(std::size_t i) {
  static const char* types[] = {"task", "note", "user", "project"};
  return types[i % 4];
}

/// A canonical (compact, keys sorted) JSON object of 100-110 bytes; `rev`
/// changes the value so successive writes to one entity differ.
inline std::string entity_data(std::size_t i, std::size_t rev = 0) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "{\"done\":%s,\"n\":%zu,\"owner\":\"user-%03zu\",\"priority\":%zu,"
                "\"title\":\"benchmark item %06zu\",\"updated\":%zu}",
                rev % 2 ? "true" : "false", rev, i % 1000, i % 5, i, 1700000000 + rev);
  return buf;
}

/// Runs SQL on a raw connection (the baselines use the C API directly).
inline void raw_exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error(std::string{sql} + ": " + msg);
  }
}

// -- environment -------------------------------------------------------------

/// A fresh directory under the system's temp dir, removed with its contents.
using memsync::testing::temp_dir;

/// VmRSS of this process in bytes, -1 if unknown.
inline long long rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoll(line.substr(6)) * 1024; // "VmRSS:   1234 kB"
  return -1;
}

// -- results -----------------------------------------------------------------

/// The console reporter, plus a record of every finished run keyed by
/// "function/args" (without /iterations:N, /real_time, ... suffixes).
class summary_reporter : public benchmark::ConsoleReporter {
public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (auto& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred)
        continue;
      auto key = run.run_name.function_name;
      if (!run.run_name.args.empty())
        key += "/" + run.run_name.args;
      runs_[key] = run;
    }
  }

  /// Wall-clock nanoseconds per iteration.
  std::optional<double> ns_per_op(const std::string& key) const {
    auto it = runs_.find(key);
    if (it == runs_.end() || it->second.iterations == 0)
      return std::nullopt;
    return it->second.real_accumulated_time * 1e9
           / static_cast<double>(it->second.iterations);
  }

  /// A user counter after finalization (rates are per second).
  std::optional<double> counter(const std::string& key, const std::string& name) const {
    auto it = runs_.find(key);
    if (it == runs_.end())
      return std::nullopt;
    auto c = it->second.counters.find(name);
    if (c == it->second.counters.end())
      return std::nullopt;
    return c->second.value;
  }

private:
  std::map<std::string, Run> runs_;
};

/// Prints one "SUMMARY ..." line (printf format).
inline void summary(const char* fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  std::cout << "SUMMARY " << buf << '\n' << std::flush;
}

/// Formats an optional figure, "n/a" when the benchmark did not run.
inline std::string fmt(std::optional<double> x, const char* format = "%.1f") {
  if (!x)
    return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, *x);
  return buf;
}

/// a / b when both exist.
inline std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0)
    return std::nullopt;
  return *a / *b;
}

/// main(): runs the registered benchmarks with a summary_reporter (honouring
/// --benchmark_counters_tabular), then calls `summarize`.
inline int run_main(int argc, char** argv,
                    const std::function<void(const summary_reporter&)>& summarize) {
  bool tabular = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--benchmark_counters_tabular"
        || arg == "--benchmark_counters_tabular=true")
      tabular = true;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  int opts = benchmark::ConsoleReporter::OO_None;
  if (tabular)
    opts |= benchmark::ConsoleReporter::OO_Tabular;
  if (isatty(STDOUT_FILENO))
    opts |= benchmark::ConsoleReporter::OO_Color;
  summary_reporter reporter{static_cast<benchmark::ConsoleReporter::OutputOptions>(opts)};
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::cout << std::flush;
  std::cout << '\n';
  summarize(reporter);
  benchmark::Shutdown();
  return 0;
}

} // namespace memsync::bench
