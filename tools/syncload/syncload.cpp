// The fixed K x M workload against one `syncnode server` process, with the
// clients in other processes: each client writes M distinct entities as fast
// as it can, and the tool measures the time until every client holds all
// K x M entities and the write-to-visible latency (each value carries the
// time its put was made on CLOCK_MONOTONIC, which every process shares).
// `syncnode loadtest` runs the same workload with the clients in one process.
//
// Two settings:
// - default: K `syncnode client` processes, one per client, each writing as
//   fast as its standard input delivers the puts; the tool reads every
//   client's `watch` output.
// - `--processes[=P]` (P = 10 if not given): the setting other engines are
//   measured in, K clients spread over P processes (this program started
//   again with `--child`), each running its K/P client nodes in one actor
//   system (one connection to the server per process). Each child reports
//   when its clients held everything, its latency histogram and, after
//   syncing, a digest of every client's state; the parent adds them up and
//   checks that all K states are identical and hold exactly the K x M writes.
//
// Local databases are files in a temporary directory, or in memory with
// `--local-db=memory` (as `syncnode loadtest` has them by default).
//
// usage: syncload SYNCNODE_BINARY CONFIG_DIR K M [PAYLOAD_BYTES] [--processes[=P]]
//                 [--local-db=files|memory]
#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <nlohmann/json.hpp>

#include "messages/layer_stats.hpp"
#include "messages/registry.hpp"
#include "node/client/client_config.hpp"
#include "node/config/config.hpp"
#include "node/config/node_options.hpp"
#include "node/loadtest/loadtest_report.hpp"
#include "node/loadtest/loadtest_sim.hpp"
#include "tests/support/process.hpp"

using namespace std::chrono;
using memsync::log_histogram;
using memsync::testing::child_process;
using memsync::testing::temp_dir;

namespace {

/// How long the clients may take to hold everything before the run fails.
constexpr auto settle_timeout = 120s;

uint64_t now_us() {
  return static_cast<uint64_t>(
    duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

struct workload {
  size_t k = 0;
  size_t m = 0;
  size_t payload = 100;
  bool memory_db = false; ///< local databases in memory instead of files
};

/// A `syncnode server` on a free port with tokens `token-I` for `lt-I`.
struct server_proc {
  std::unique_ptr<child_process> proc;
  std::string port;

  server_proc(const std::string& syncnode, const std::string& config_dir,
              const temp_dir& dir, size_t k) {
    {
      std::ofstream tokens{dir.file("tokens.txt")};
      for (size_t i = 0; i < k; ++i)
        tokens << "token-" << i << " lt-" << i << "\n";
    }
    proc = std::make_unique<child_process>(std::vector<std::string>{
      syncnode, "server", "--config", config_dir + "/server.ini", "--server.port=0",
      "--server.db-path=" + dir.file("server.db"),
      "--server.tokens-file=" + dir.file("tokens.txt"),
      // Every client process connects from 127.0.0.1.
      "--server.max-connections=" + std::to_string(k + 16),
      "--server.max-connections-per-address=" + std::to_string(k + 16)});
    std::string line;
    if (!proc->read_line(line) || line.find("listening on") == std::string::npos)
      throw std::runtime_error("server did not start: " + line);
    port = line.substr(line.rfind(':') + 1);
  }

  void stop() {
    kill(proc->pid(), SIGTERM);
    proc->wait(5s);
  }
};

void print_latency(const log_histogram& all) {
  auto lat = memsync::latency_json(all);
  std::printf("  write-to-visible latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f"
              "  max %.2f  (%llu samples)\n",
              lat["p50"].get<double>(), lat["p90"].get<double>(),
              lat["p99"].get<double>(), lat["p99_9"].get<double>(),
              lat["max"].get<double>(), static_cast<unsigned long long>(all.count));
}

nlohmann::json histogram_json(const log_histogram& h) {
  return {{"buckets", h.buckets}, {"count", h.count}, {"sum", h.sum}, {"max", h.max}};
}

log_histogram histogram_from(const nlohmann::json& j) {
  log_histogram h;
  h.buckets = j.at("buckets").get<std::vector<uint64_t>>();
  h.count = j.at("count").get<uint64_t>();
  h.sum = j.at("sum").get<uint64_t>();
  h.max = j.at("max").get<uint64_t>();
  return h;
}

// -- every client a `syncnode client` process ----------------------------------

struct client_proc {
  std::unique_ptr<child_process> proc;
  uint64_t remote_seen = 0;
  uint64_t done_at_us = 0;
  log_histogram latency;
  std::thread reader;
};

int run_separate(const std::string& syncnode, const std::string& config_dir,
                 const workload& w) {
  auto k = w.k, m = w.m, payload = w.payload;
  temp_dir dir;
  server_proc server{syncnode, config_dir, dir, k};
  std::vector<client_proc> clients(k);
  for (size_t i = 0; i < k; ++i) {
    auto name = "lt-" + std::to_string(i);
    clients[i].proc = std::make_unique<child_process>(std::vector<std::string>{
      syncnode, "client", "--config", config_dir + "/client.ini", "--client.id=" + name,
      "--client.db-path=" + (w.memory_db ? ":memory:" : dir.file(name + ".db")),
      "--server.host=127.0.0.1", "--server.port=" + server.port,
      "--server.token=token-" + std::to_string(i), "--flush.debounce=0ns",
      "--sync.push-debounce=0ns"});
  }
  for (auto& c : clients) {
    auto deadline = steady_clock::now() + 30s;
    while (c.proc->ask("status").find("\"connected\":true") == std::string::npos) {
      if (steady_clock::now() > deadline)
        throw std::runtime_error("a client did not connect");
      std::this_thread::sleep_for(20ms);
    }
    if (auto answer = c.proc->ask("watch"); answer != "ok")
      throw std::runtime_error("watch answered '" + answer + "'");
  }
  std::cout << "server and " << k << " clients up (port " << server.port << ")\n";
  const uint64_t target = (k - 1) * m;
  std::atomic<size_t> done{0};
  auto start = now_us();
  for (size_t i = 0; i < k; ++i)
    clients[i].reader = std::thread([&, i] {
      auto& c = clients[i];
      std::string l;
      memsync::loadtest::stamp s;
      while (c.remote_seen < target && c.proc->read_line(l, 60s)) {
        if (l.rfind("{\"data\"", 0) != 0 || !memsync::loadtest::read_stamp(l, s)
            || s.writer == i)
          continue; // "ok" answers and the client's own writes
        auto t = now_us();
        c.latency.record(t - std::min(t, s.t_us));
        if (++c.remote_seen == target) {
          c.done_at_us = t;
          ++done;
        }
      }
    });
  // One writer per client, all at once: each client writes as fast as it
  // reads its input.
  std::vector<std::thread> writers;
  for (size_t i = 0; i < k; ++i)
    writers.emplace_back([&, i] {
      for (size_t j = 0; j < m; ++j) {
        memsync::loadtest::stamp s{i, j + 1, now_us(), false};
        std::string line = "put f";
        line += std::to_string(i) + "-" + std::to_string(j) + " item "
                + memsync::loadtest::make_data(s, payload);
        clients[i].proc->send(line);
      }
    });
  for (auto& t : writers)
    t.join();
  for (auto& c : clients)
    c.reader.join();
  uint64_t last = 0;
  log_histogram all;
  for (auto& c : clients) {
    last = std::max(last, c.done_at_us);
    all.merge(c.latency);
  }
  bool complete = done == k;
  std::printf("== fixed workload, separate processes: K=%zu clients x M=%zu entities\n",
              k, m);
  if (complete)
    std::printf("  every client held all %zu entities after %.3f s\n", k * m,
                (last - start) / 1e6);
  else
    std::printf("  NOT every client saw every entity (%zu of %zu complete)\n",
                done.load(), k);
  print_latency(all);
  for (auto& c : clients)
    c.proc->close_stdin(); // a client flushes and exits at end of input
  for (auto& c : clients)
    c.proc->wait(10s);
  server.stop();
  return complete ? 0 : 1;
}

// -- K clients over P processes: one child ---------------------------------------

/// The id of writer `w`'s `j`-th entity (from 0), as both settings write it.
std::string entity_id(uint64_t w, uint64_t j) {
  std::string id = "f";
  id += std::to_string(w);
  id += '-';
  id += std::to_string(j);
  return id;
}

/// 64-bit FNV-1a over the client's visible state in id order, and whether
/// that state is exactly the workload's K x M writes (each entity f<W>-<J>
/// holding writer W's (J+1)-th value).
std::pair<uint64_t, bool> digest_of(memsync::store& app, const workload& w) {
  auto all = app.all();
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a->id < b->id; });
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char ch : s)
      h = (h ^ ch) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; // field separator
  };
  bool exact = all.size() == w.k * w.m;
  memsync::loadtest::stamp s;
  for (auto& e : all) {
    mix(e->id);
    mix(e->data);
    if (!exact || !memsync::loadtest::read_stamp(e->data, s)) {
      exact = false;
      continue;
    }
    exact = e->id == entity_id(s.writer, s.n - 1);
  }
  return {h, exact};
}

/// `syncload --child CONFIG_DIR PORT DB_DIR FIRST COUNT K M PAYLOAD` (DB_DIR
/// `:memory:`: local databases in memory): clients
/// lt-FIRST .. lt-(FIRST+COUNT-1). Prints `ready` once all are connected,
/// writes on `go`, then prints one JSON line with its results; exits on `quit`
/// or end of input.
int run_child(char** argv) {
  std::string config_dir = argv[0], port = argv[1], db_dir = argv[2];
  size_t first = std::stoul(argv[3]), count = std::stoul(argv[4]);
  workload w{std::stoul(argv[5]), std::stoul(argv[6]), std::stoul(argv[7])};
  auto values = memsync::load_config(
    memsync::client_schema(), config_dir + "/client.ini",
    {"--client.id=lt-" + std::to_string(first), "--server.host=127.0.0.1",
     "--server.port=" + port, "--server.token=token-" + std::to_string(first),
     "--flush.debounce=0ns", "--sync.push-debounce=0ns"});
  auto base = memsync::make_client_config(values);
  caf::actor_system_config sys_cfg;
  memsync::apply_caf_settings(values, sys_cfg);
  memsync::register_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  memsync::loadtest::run_state rs;
  // Times since the clock's epoch: stamps comparable across processes.
  rs.t0 = memsync::loadtest::clock_type::time_point{};
  rs.fixed_target = (w.k - 1) * w.m;
  std::vector<std::unique_ptr<memsync::loadtest::sim_client>> clients;
  for (size_t i = first; i < first + count; ++i) {
    auto c = std::make_unique<memsync::loadtest::sim_client>();
    c->index = i;
    c->name = "lt-" + std::to_string(i);
    c->observer = true;
    auto cc = base;
    cc.client_name = cc.db.client_name = c->name;
    cc.db.path = db_dir == ":memory:" ? db_dir : db_dir + "/" + c->name + ".db";
    cc.sync.token = "token-" + std::to_string(i);
    c->node = std::make_unique<memsync::client_node>(sys, cc);
    c->events = c->node->app().subscribe("", memsync::loadtest::on_events(c.get(), &rs));
    clients.push_back(std::move(c));
  }
  auto deadline = steady_clock::now() + 30s;
  for (auto& c : clients)
    for (;;) {
      if (auto st = c->node->sync_state(5s); st && st->connected)
        break;
      if (steady_clock::now() > deadline)
        throw std::runtime_error(c->name + " did not connect");
      std::this_thread::sleep_for(20ms);
    }
  std::cout << "ready" << std::endl;
  std::string line;
  if (!std::getline(std::cin, line) || line != "go")
    return 1;
  // One thread interleaves this process's clients so they all write at once.
  for (size_t j = 0; j < w.m; ++j)
    for (auto& c : clients) {
      memsync::loadtest::stamp s{c->index, j + 1, rs.now_us(), false};
      auto err = c->node->app().put_json(entity_id(c->index, j), "item",
                                         memsync::loadtest::make_data(s, w.payload));
      if (!err.ok())
        throw std::runtime_error("a write failed: " + err.message);
    }
  auto written_us = rs.now_us();
  auto until = steady_clock::now() + settle_timeout;
  while (rs.fixed_done.load() < clients.size() && steady_clock::now() < until)
    std::this_thread::sleep_for(200us);
  auto done_us = rs.now_us();
  bool complete = rs.fixed_done.load() == clients.size();
  // Convergence: every client synced (pushed, acknowledged, pulled back),
  // then its whole state.
  nlohmann::json digests = nlohmann::json::array();
  bool exact = true;
  for (auto& c : clients) {
    complete = c->node->sync(30s) && complete;
    auto [h, ok] = digest_of(c->node->app(), w);
    digests.push_back(std::to_string(h));
    exact = exact && ok;
  }
  nlohmann::json out{
    {"complete", complete}, {"written_us", written_us},
    {"done_us", done_us},   {"exact", exact},
    {"digests", digests},   {"latency", histogram_json(rs.propagation_all.snapshot())}};
  std::cout << out.dump() << std::endl;
  while (std::getline(std::cin, line) && line != "quit")
    ;
  for (auto& c : clients) {
    c->events.cancel();
    c->node->shutdown(5s);
  }
  return 0;
}

// -- K clients over P processes: the parent ----------------------------------------

/// The child's next line that starts with `prefix`; anything else it prints
/// (its standard error comes along) is passed on to ours. False on EOF or
/// timeout, with the last line read in `line`.
bool read_reply(child_process& child, const std::string& prefix, std::string& line,
                milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (child.read_line(
    line, duration_cast<milliseconds>(
            std::max(deadline - steady_clock::now(), steady_clock::duration{0})))) {
    if (line.rfind(prefix, 0) == 0)
      return true;
    std::cerr << "client process: " << line << "\n";
  }
  return false;
}

int run_spread(const std::string& self, const std::string& syncnode,
               const std::string& config_dir, const workload& w, size_t p) {
  p = std::max<size_t>(1, std::min(p, w.k));
  temp_dir dir;
  server_proc server{syncnode, config_dir, dir, w.k};
  std::vector<std::unique_ptr<child_process>> children;
  for (size_t n = 0, first = 0; n < p; ++n) {
    auto count = w.k / p + (n < w.k % p ? 1 : 0);
    children.push_back(std::make_unique<child_process>(std::vector<std::string>{
      self, "--child", config_dir, server.port, w.memory_db ? ":memory:" : dir.path(),
      std::to_string(first), std::to_string(count), std::to_string(w.k),
      std::to_string(w.m), std::to_string(w.payload)}));
    first += count;
  }
  std::string line;
  for (auto& c : children)
    if (!read_reply(*c, "ready", line, 60s))
      throw std::runtime_error("a client process did not start: " + line);
  std::cout << "server and " << w.k << " clients in " << p << " processes up (port "
            << server.port << ")\n";
  auto start = now_us();
  for (auto& c : children)
    c->send("go");
  bool complete = true, exact = true;
  uint64_t written = 0, done = 0;
  log_histogram all;
  std::vector<std::string> digests;
  for (auto& c : children) {
    if (!read_reply(*c, "{", line, duration_cast<milliseconds>(settle_timeout + 60s)))
      throw std::runtime_error("a client process did not report: " + line);
    auto r = nlohmann::json::parse(line);
    complete = complete && r.at("complete").get<bool>();
    exact = exact && r.at("exact").get<bool>();
    written = std::max(written, r.at("written_us").get<uint64_t>());
    done = std::max(done, r.at("done_us").get<uint64_t>());
    all.merge(histogram_from(r.at("latency")));
    for (auto& d : r.at("digests"))
      digests.push_back(d.get<std::string>());
  }
  bool identical = digests.size() == w.k
                   && std::all_of(digests.begin(), digests.end(),
                                  [&](auto& d) { return d == digests.front(); });
  auto total = w.k * w.m;
  std::printf("== fixed workload, K=%zu clients x M=%zu entities in %zu processes\n", w.k,
              w.m, p);
  if (complete)
    std::printf("  every client held all %zu entities after %.3f s (%.0f writes/s end "
                "to end; all written after %.3f s)\n",
                total, (done - start) / 1e6, total / std::max(1e-9, (done - start) / 1e6),
                (written - start) / 1e6);
  else
    std::printf("  NOT every client saw every entity within %lld s\n",
                static_cast<long long>(settle_timeout.count()));
  print_latency(all);
  std::printf("  convergence: %zu client states after sync, %s, %s\n", digests.size(),
              identical ? "identical" : "DIFFERENT",
              exact ? "each exactly the K x M writes" : "NOT exactly the K x M writes");
  for (auto& c : children)
    c->send("quit");
  for (auto& c : children)
    c->wait(30s);
  server.stop();
  return complete && identical && exact ? 0 : 1;
}

/// `text` as a number of at least `min`, or nullopt (the caller says why).
std::optional<size_t> number(const std::string& text, size_t min) {
  size_t out = 0;
  auto end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (text.empty() || ec != std::errc{} || ptr != end || out < min)
    return std::nullopt;
  return out;
}

const char* usage
  = "usage: syncload SYNCNODE_BINARY CONFIG_DIR K M [PAYLOAD_BYTES] [--processes[=P]]\n"
    "                [--local-db=files|memory]\n"
    "  K >= 2 clients each write M >= 1 distinct entities of PAYLOAD_BYTES (100)\n"
    "  --processes[=P]    spread the K clients over P >= 1 processes (default 10);\n"
    "                     without it, each client is a syncnode client process\n"
    "  --local-db=memory  local databases in memory (default: files)\n";

/// Prints what was wrong and the usage; the exit code of a bad command line.
int bad_usage(const std::string& what) {
  std::cerr << "error: " << what << "\n" << usage;
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 10 && std::string{argv[1]} == "--child")
      return run_child(argv + 2);
    std::vector<std::string> args;
    size_t processes = 0; // 0: every client its own syncnode process
    bool memory_db = false;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--processes") {
        processes = 10;
      } else if (a.rfind("--processes=", 0) == 0) {
        auto p = number(a.substr(12), 1);
        if (!p)
          return bad_usage("--processes: expected a number >= 1, got '" + a.substr(12)
                           + "'");
        processes = *p;
      } else if (a == "--local-db=memory" || a == "--local-db=files") {
        memory_db = a == "--local-db=memory";
      } else if (a.rfind("--", 0) == 0) {
        return bad_usage("unknown option '" + a + "'");
      } else {
        args.push_back(a);
      }
    }
    if (args.size() < 4 || args.size() > 5)
      return bad_usage("expected 4 or 5 arguments, got " + std::to_string(args.size()));
    auto k = number(args[2], 2), m = number(args[3], 1);
    auto payload = args.size() > 4 ? number(args[4], 0) : std::optional<size_t>{100};
    if (!k)
      return bad_usage("K: expected a number >= 2, got '" + args[2] + "'");
    if (!m)
      return bad_usage("M: expected a number >= 1, got '" + args[3] + "'");
    if (!payload)
      return bad_usage("PAYLOAD_BYTES: expected a number, got '" + args[4] + "'");
    workload w{*k, *m, *payload, memory_db};
    if (processes > 0)
      return run_spread(std::filesystem::read_symlink("/proc/self/exe").string(), args[0],
                        args[1], w, processes);
    return run_separate(args[0], args[1], w);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
