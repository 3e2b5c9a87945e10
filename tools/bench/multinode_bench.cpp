// Propagation through one server node vs through two nodes on one
// PostgreSQL database, in one run: alice writes through node A; bob (also on
// A) and carol (on node B) watch. Each write is timed at one watcher, in
// turn, from alice's "ok" until the watcher prints the change. Real
// `syncnode` processes over loopback; PostgreSQL is a throwaway cluster.
//
// usage: multinode_bench SYNCNODE_BINARY CONFIG_DIR [CHANGES]
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tests/support/pg_cluster.hpp"
#include "tests/support/process.hpp"
#include "tools/bench/bench_common.hpp"

using namespace std::chrono;
using memsync::testing::child_process;

namespace {

struct setup {
  std::string syncnode;
  std::string config_dir;
  memsync::bench::temp_dir dir;
  memsync::testing::pg_cluster pg;
  std::string db = pg.create_database();
  std::vector<std::unique_ptr<child_process>> nodes;

  uint16_t start_node(const std::string& name, const std::string& tokens) {
    auto& node = nodes.emplace_back(std::make_unique<child_process>(
      std::vector<std::string>{syncnode, "server", "--config",
                               config_dir + "/server-node-" + name + ".ini",
                               "--server.port=0", "--server.postgres=" + pg.conninfo(db),
                               "--server.tokens-file=" + tokens}));
    std::string line;
    if (!node->read_line(line) || line.find("listening on") == std::string::npos)
      throw std::runtime_error("node " + name + " did not start: " + line);
    return static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }

  std::unique_ptr<child_process> start_client(const std::string& name,
                                              const std::string& token, uint16_t port) {
    auto c = std::make_unique<child_process>(std::vector<std::string>{
      syncnode, "client", "--config", config_dir + "/client-alice.ini",
      "--client.id=" + name, "--server.token=" + token,
      "--client.db-path=" + dir.file(name + ".db"),
      "--server.port=" + std::to_string(port), "--flush.debounce=0ns",
      "--sync.push-debounce=0ns"});
    c->send("watch");
    return c;
  }

  ~setup() {
    for (auto& n : nodes) {
      kill(n->pid(), SIGTERM);
      n->wait();
    }
  }
};

// Waits for `c` to print `want`, skipping change events.
void expect(child_process& c, const std::string& want) {
  std::string got;
  while (c.read_line(got) && got.find("\"event\"") != std::string::npos)
    ;
  if (got != want)
    throw std::runtime_error("expected '" + want + "', got '" + got + "'");
}

void wait_for_event(child_process& c, const std::string& id) {
  std::string line;
  while (c.read_line(line, seconds(10)))
    if (line.find("\"event\"") != std::string::npos
        && nlohmann::json::parse(line)["id"] == id)
      return;
  throw std::runtime_error("the change to " + id + " never arrived");
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1) + 0.5)];
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: multinode_bench SYNCNODE_BINARY CONFIG_DIR [CHANGES]\n";
    return 2;
  }
  int changes = argc > 3 ? std::stoi(argv[3]) : 400;
  try {
    setup s{argv[1], argv[2]};
    auto tokens = s.dir.file("tokens.txt");
    std::ofstream{tokens} << "t-alice alice\nt-bob bob\nt-carol carol\n";
    auto a = s.start_node("a", tokens);
    auto b = s.start_node("b", tokens);
    auto alice = s.start_client("alice", "t-alice", a);
    auto bob = s.start_client("bob", "t-bob", a);
    auto carol = s.start_client("carol", "t-carol", b);
    for (auto* c : {alice.get(), bob.get(), carol.get()})
      expect(*c, "ok");
    std::vector<double> same_node, other_node;
    for (int i = 0; i < changes; ++i) {
      auto id = "doc-" + std::to_string(i % 50);
      auto start = steady_clock::now();
      alice->send("put " + id + " note {\"n\":" + std::to_string(i) + "}");
      expect(*alice, "ok");
      auto& watcher = i % 2 ? *carol : *bob;
      wait_for_event(watcher, id);
      auto ms = duration<double, std::milli>(steady_clock::now() - start).count();
      (i % 2 ? other_node : same_node).push_back(ms);
    }
    for (auto* v : {&same_node, &other_node}) {
      auto name = v == &same_node ? "same node (A -> A)" : "other node (A -> B)";
      memsync::bench::summary("propagation via %-20s p50 %.2f ms  p90 %.2f ms  "
                              "p99 %.2f ms  max %.2f ms  (%zu changes)",
                              name, percentile(*v, 0.5), percentile(*v, 0.9),
                              percentile(*v, 0.99), percentile(*v, 1.0), v->size());
    }
    memsync::bench::summary("other node / same node, p50: %.2fx",
                            percentile(other_node, 0.5) / percentile(same_node, 0.5));
    for (auto* c : {alice.get(), bob.get(), carol.get()}) {
      c->send("quit");
      c->wait();
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}
