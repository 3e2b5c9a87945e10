// The fixed workload with every client a separate process: a `syncnode
// server` and K `syncnode client` processes over loopback. Each client
// writes M distinct entities as fast as its standard input delivers them;
// the tool reads every client's `watch` output and measures the time until
// every client holds all K x M entities and the write-to-visible latency
// (each value carries the time its put was sent; CLOCK_MONOTONIC is shared
// by all processes). `syncnode loadtest` runs the same workload with the
// clients in one process.
//
// usage: syncload SYNCNODE_BINARY CONFIG_DIR K M [PAYLOAD_BYTES]
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "messages/layer_stats.hpp"
#include "node/loadtest/loadtest_report.hpp"
#include "node/loadtest/loadtest_sim.hpp"
#include "tests/support/process.hpp"

using namespace std::chrono;
using memsync::log_histogram;
using memsync::testing::child_process;
using memsync::testing::temp_dir;

namespace {

uint64_t now_us() {
  return static_cast<uint64_t>(
    duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

struct client_proc {
  std::unique_ptr<child_process> proc;
  uint64_t remote_seen = 0;
  uint64_t done_at_us = 0;
  log_histogram latency;
  std::thread reader;
};

int run(const std::string& syncnode, const std::string& config_dir, size_t k, size_t m,
        size_t payload) {
  temp_dir dir;
  {
    std::ofstream tokens{dir.file("tokens.txt")};
    for (size_t i = 0; i < k; ++i)
      tokens << "token-" << i << " lt-" << i << "\n";
  }
  child_process server{{syncnode, "server", "--config", config_dir + "/server.ini",
                        "--server.port=0", "--server.db-path=" + dir.file("server.db"),
                        "--server.tokens-file=" + dir.file("tokens.txt")}};
  std::string line;
  if (!server.read_line(line) || line.find("listening on") == std::string::npos)
    throw std::runtime_error("server did not start: " + line);
  auto port = line.substr(line.rfind(':') + 1);
  std::vector<client_proc> clients(k);
  for (size_t i = 0; i < k; ++i) {
    auto name = "lt-" + std::to_string(i);
    clients[i].proc = std::make_unique<child_process>(std::vector<std::string>{
      syncnode, "client", "--config", config_dir + "/client.ini", "--client.id=" + name,
      "--client.db-path=" + dir.file(name + ".db"), "--server.host=127.0.0.1",
      "--server.port=" + port, "--server.token=token-" + std::to_string(i),
      "--flush.debounce=0ns", "--sync.push-debounce=0ns"});
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
  std::cout << "server and " << k << " clients up (port " << port << ")\n";
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
  for (auto& w : writers)
    w.join();
  for (auto& c : clients)
    c.reader.join();
  uint64_t last = 0;
  log_histogram all;
  for (auto& c : clients) {
    last = std::max(last, c.done_at_us);
    all.merge(c.latency);
  }
  bool complete = done == k;
  auto lat = memsync::latency_json(all);
  std::printf("== fixed workload, separate processes: K=%zu clients x M=%zu entities\n",
              k, m);
  if (complete)
    std::printf("  every client held all %zu entities after %.3f s\n", k * m,
                (last - start) / 1e6);
  else
    std::printf("  NOT every client saw every entity (%zu of %zu complete)\n",
                done.load(), k);
  std::printf("  write-to-visible latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f"
              "  max %.2f  (%llu samples)\n",
              lat["p50"].get<double>(), lat["p90"].get<double>(),
              lat["p99"].get<double>(), lat["p99_9"].get<double>(),
              lat["max"].get<double>(), static_cast<unsigned long long>(all.count));
  for (auto& c : clients)
    c.proc->close_stdin(); // a client flushes and exits at end of input
  for (auto& c : clients)
    c.proc->wait(10s);
  kill(server.pid(), SIGTERM);
  server.wait(5s);
  return complete ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: syncload SYNCNODE_BINARY CONFIG_DIR K M [PAYLOAD_BYTES]\n";
    return 2;
  }
  try {
    return run(argv[1], argv[2], std::stoul(argv[3]), std::stoul(argv[4]),
               argc > 5 ? std::stoul(argv[5]) : 100);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
