// sim: the deterministic whole-system simulator (docs/simulation.md).
//   sim --seed S        replays one run: the simulator's events on stderr,
//                       the actor traces of every node on stdout (the trace
//                       sink's JSON lines; --trace-dir keeps the files for
//                       the trace tool), then the verdict
//   sim --seeds N [--from K]   runs seeds K .. K+N-1, prints each failing
//                       seed with its first failures, then a summary
// Options for both: --clients N, --ops N, --no-FAULT (drops, partitions,
// client-crashes, server-crashes, power-loss, storage-errors, full-disk,
// clock-jumps, restores, normal-sync), and
// --broken-rebase, --keep-pruned and --lax-server (deliberately broken
// builds, to see the checks catch them).
// Exits 1 if a seed failed, 2 on a usage error.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <unistd.h>

#include "tools/sim/sim_world.hpp"

namespace {

using namespace memsync::sim;

int usage(const std::string& why) {
  std::cerr << "sim: " << why << "\n"
            << "usage: sim --seed S [--trace-dir DIR] [options]\n"
            << "       sim --seeds N [--from K] [options]\n"
            << "options: --clients N --ops N --broken-rebase --keep-pruned --lax-server\n"
            << "         --no-drops --no-partitions\n"
            << "         --no-client-crashes --no-server-crashes --no-power-loss\n"
            << "         --no-storage-errors --no-full-disk --no-clock-jumps\n"
            << "         --no-restores --no-normal-sync\n";
  return 2;
}

bool parse_number(const char* text, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(text, &end, 10);
  return errno == 0 && end != text && *end == '\0';
}

void print_failures(const sim_result& r, std::size_t max) {
  for (std::size_t i = 0; i < r.failures.size() && i < max; ++i)
    std::cout << "  " << r.failures[i] << "\n";
  if (r.failures.size() > max)
    std::cout << "  ... and " << r.failures.size() - max << " more\n";
}

int replay(sim_options opt) {
  bool keep = !opt.trace_dir.empty();
  if (!keep) {
    std::string pattern = (std::filesystem::temp_directory_path()
                           / "memsync-simtrace-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr)
      return usage("cannot create a temporary directory");
    opt.trace_dir = pattern;
  }
  std::filesystem::create_directories(opt.trace_dir);
  opt.log = &std::cerr;
  auto r = run_simulation(opt);
  std::vector<std::filesystem::path> files;
  for (auto& f : std::filesystem::directory_iterator(opt.trace_dir))
    files.push_back(f.path());
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    std::ifstream in{f};
    std::cout << in.rdbuf();
  }
  if (!keep)
    std::filesystem::remove_all(opt.trace_dir);
  std::cerr << "seed " << r.seed << ": " << r.clients << " clients, " << r.writes
            << " operations, " << r.faults << " faults, " << r.steps << " messages, "
            << r.server_log << " server log entries, " << r.normal_clients
            << " clients on synchronous=normal (" << r.lost_to_normal_sync
            << " flushed changes lost to power loss), " << r.lost_to_restores
            << " acknowledged changes lost to restores, " << r.grant_changes
            << " grant changes, " << r.subscriptions << " subscription changes, "
            << r.forbidden << " writes refused at once as forbidden, " << r.scoped_answers
            << " pull answers (" << r.answers_ahead << " read ahead, " << r.scoped_entities
            << " scoped entities), "
            << r.held_checks << " held-scope checks, " << r.virtual_seconds
            << " s virtual: " << (r.failures.empty() ? "ok" : "FAILED") << "\n";
  for (auto& f : r.failures)
    std::cerr << "  " << f << "\n";
  return r.failures.empty() ? 0 : 1;
}

int campaign(const sim_options& base, uint64_t from, uint64_t count) {
  auto start = std::chrono::steady_clock::now();
  std::size_t failed = 0, faults = 0, writes = 0, steps = 0, io = 0;
  std::size_t normal_clients = 0, lost_normal = 0, lost_restores = 0;
  std::size_t grant_changes = 0, subscriptions = 0, forbidden = 0, answers = 0;
  std::size_t ahead = 0, scoped = 0, held_checks = 0;
  std::map<std::string, std::size_t> fault_counts;
  for (uint64_t seed = from; seed < from + count; ++seed) {
    auto opt = base;
    opt.seed = seed;
    auto r = run_simulation(opt);
    faults += r.faults;
    writes += r.writes;
    steps += r.steps;
    io += r.failed_writes;
    normal_clients += r.normal_clients;
    lost_normal += r.lost_to_normal_sync;
    lost_restores += r.lost_to_restores;
    grant_changes += r.grant_changes;
    subscriptions += r.subscriptions;
    forbidden += r.forbidden;
    answers += r.scoped_answers;
    ahead += r.answers_ahead;
    scoped += r.scoped_entities;
    held_checks += r.held_checks;
    for (auto& [k, v] : r.fault_counts)
      fault_counts[k] += v;
    if (!r.failures.empty()) {
      ++failed;
      std::cout << "seed " << seed << " FAILED (replay: sim --seed " << seed << ")\n";
      print_failures(r, 5);
      std::cout.flush();
    }
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                .count();
  std::cout << count << " seeds (" << from << " .. " << from + count - 1 << ") in "
            << secs << " s: " << failed << " failed; " << writes << " operations, "
            << steps << " messages, " << faults << " faults:";
  for (auto& [k, v] : fault_counts)
    std::cout << " " << k << " " << v;
  std::cout << "; " << io << " failed SQLite writes; " << normal_clients
            << " clients on synchronous=normal lost " << lost_normal
            << " flushed changes to power loss; restores took " << lost_restores
            << " acknowledged changes; " << grant_changes << " grant changes, "
            << subscriptions << " subscription changes, " << forbidden
            << " writes refused at once as forbidden, " << answers << " pull answers ("
            << ahead << " read ahead, " << scoped << " scoped entities), " << held_checks
            << " held-scope checks\n";
  return failed == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  sim_options opt;
  uint64_t seed = 0, seeds = 0, from = 1;
  bool have_seed = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto number = [&](uint64_t& out) {
      return i + 1 < argc && parse_number(argv[++i], out);
    };
    uint64_t n = 0;
    if (a == "--seed") {
      if (!number(seed))
        return usage("--seed needs a number");
      have_seed = true;
    } else if (a == "--seeds") {
      if (!number(seeds) || seeds == 0)
        return usage("--seeds needs a positive number");
    } else if (a == "--from") {
      if (!number(from))
        return usage("--from needs a number");
    } else if (a == "--clients") {
      if (!number(n) || n < 1 || n > 16)
        return usage("--clients needs a number from 1 to 16");
      opt.clients = n;
    } else if (a == "--ops") {
      if (!number(n) || n > 100000)
        return usage("--ops needs a number up to 100000");
      opt.ops = n;
    } else if (a == "--trace-dir") {
      if (i + 1 >= argc)
        return usage("--trace-dir needs a directory");
      opt.trace_dir = argv[++i];
    } else if (a == "--broken-rebase") {
      opt.broken_rebase = true;
    } else if (a == "--keep-pruned") {
      opt.keep_pruned = true;
    } else if (a == "--lax-server") {
      opt.lax_server = true;
    } else if (a == "--no-drops") {
      opt.faults.drops = false;
    } else if (a == "--no-partitions") {
      opt.faults.partitions = false;
    } else if (a == "--no-client-crashes") {
      opt.faults.client_crashes = false;
    } else if (a == "--no-server-crashes") {
      opt.faults.server_crashes = false;
    } else if (a == "--no-power-loss") {
      opt.faults.power_loss = false;
    } else if (a == "--no-storage-errors") {
      opt.faults.storage_errors = false;
    } else if (a == "--no-clock-jumps") {
      opt.faults.clock_jumps = false;
    } else if (a == "--no-full-disk") {
      opt.faults.full_disk = false;
    } else if (a == "--no-restores") {
      opt.faults.restores = false;
    } else if (a == "--no-normal-sync") {
      opt.faults.normal_sync = false;
    } else {
      return usage("unknown argument '" + a + "'");
    }
  }
  if (have_seed == (seeds != 0))
    return usage("give either --seed S or --seeds N");
  try {
    if (have_seed) {
      opt.seed = seed;
      return replay(opt);
    }
    return campaign(opt, from, seeds);
  } catch (const std::exception& e) {
    std::cerr << "sim: " << e.what() << "\n";
    return 2;
  }
}
