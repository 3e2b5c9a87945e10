// The demo: a server node on the embedded SQLite backend and two client
// nodes (alice, bob) as real processes over loopback, playing a code review.
// It prints what each client sees and how long each change took to reach the
// other client, checks that both end with the server's state, measures the
// propagation latency alice -> bob over many changes, stops everything it
// started, and exits non-zero if the clients did not converge. With
// --trace DIR every node records actor traces (mode all) into
// DIR/<node>.jsonl, for the trace tool.
//
// usage: syncdemo SYNCNODE_BINARY CONFIG_DIR [CHANGES] [--trace DIR]
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/storage/sqlite_backend.hpp"
#include "tests/support/process.hpp"

using namespace std::chrono;
using memsync::testing::child_process;
using memsync::testing::temp_dir;

namespace {

using clock_type = steady_clock;

struct demo {
  std::string syncnode;
  std::string config_dir;
  std::string trace_dir; ///< empty: no tracing
  temp_dir dir;
  std::unique_ptr<child_process> server;
  std::unique_ptr<child_process> alice;
  std::unique_ptr<child_process> bob;
  uint16_t port = 0;

  /// Options that make `node` write its trace file.
  std::vector<std::string> with_trace(std::vector<std::string> args,
                                      const std::string& node) const {
    if (!trace_dir.empty()) {
      args.push_back("--trace.mode=all");
      args.push_back("--trace.file=" + trace_dir + "/" + node + ".jsonl");
    }
    return args;
  }

  std::unique_ptr<child_process> start_client(const std::string& name) {
    auto c = std::make_unique<child_process>(
      with_trace({syncnode, "client", "--config", config_dir + "/client-" + name + ".ini",
                  "--client.db-path=" + dir.file(name + ".db"),
                  "--server.port=" + std::to_string(port), "--flush.debounce=0ns",
                  "--sync.push-debounce=0ns"},
                 name));
    expect(*c, "watch", "ok");
    return c;
  }

  void start() {
    server = std::make_unique<child_process>(
      with_trace({syncnode, "server", "--config", config_dir + "/server.ini",
                  "--server.port=0", "--server.db-path=" + dir.file("server.db"),
                  "--server.tokens-file=" + config_dir + "/tokens.txt"},
                 "server"));
    std::string line;
    if (!server->read_line(line) || line.find("listening on") == std::string::npos)
      throw std::runtime_error("server did not start: " + line);
    port = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
    std::cout << "server: " << line << "\n";
    alice = start_client("alice");
    bob = start_client("bob");
  }

  /// Sends a command and checks its answer, skipping change events (a
  /// client watching also sees its own writes).
  static void expect(child_process& c, const std::string& cmd, const std::string& want) {
    c.send(cmd);
    std::string got;
    while (c.read_line(got) && got.find("\"event\"") != std::string::npos)
      ;
    if (got != want)
      throw std::runtime_error("'" + cmd + "' answered '" + got + "'");
  }

  /// Sends a write to `from` and waits until `to` prints the event for `id`.
  microseconds propagate(child_process& from, child_process& to, const std::string& cmd,
                         const std::string& id) {
    auto start = clock_type::now();
    expect(from, cmd, "ok");
    std::string line;
    while (to.read_line(line, seconds(10))) {
      if (line.find("\"event\"") == std::string::npos)
        continue;
      auto ev = nlohmann::json::parse(line);
      if (ev["id"] == id)
        return duration_cast<microseconds>(clock_type::now() - start);
    }
    throw std::runtime_error("the change to " + id + " never arrived");
  }

  static std::vector<std::string> listing(child_process& c) {
    c.send("ls");
    c.send("status");
    std::vector<std::string> out;
    std::string line;
    while (c.read_line(line)) {
      if (line.rfind("{\"client_id\"", 0) == 0)
        return out;
      if (line.find("\"event\"") == std::string::npos)
        out.push_back(line);
    }
    throw std::runtime_error("no answer to ls");
  }

  void drain_events(child_process& c) {
    expect(c, "sync", "ok");
    c.send("status");
    std::string line;
    while (c.read_line(line) && line.rfind("{\"client_id\"", 0) != 0)
      ; // events that arrived meanwhile
  }
};

void print_step(const std::string& who, const std::string& what, microseconds took) {
  printf("  %-6s %-58s reached the other client in %7.2f ms\n", who.c_str(), what.c_str(),
         took.count() / 1000.0);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto idx = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[idx];
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args{argv + 1, argv + argc};
  std::string trace_dir;
  for (auto it = args.begin(); it != args.end(); ++it)
    if (*it == "--trace" && it + 1 != args.end()) {
      trace_dir = *(it + 1);
      args.erase(it, it + 2);
      break;
    }
  if (args.size() < 2) {
    std::cerr << "usage: syncdemo SYNCNODE_BINARY CONFIG_DIR [CHANGES] [--trace DIR]\n";
    return 2;
  }
  int changes = args.size() > 2 ? std::stoi(args[2]) : 200;
  demo d{args[0], args[1], trace_dir, {}, nullptr, nullptr, nullptr};
  try {
    d.start();
    std::cout << "\n== the review of src/review.cpp\n";
    struct step {
      bool by_alice;
      std::string cmd;
      std::string id;
    };
    std::vector<step> script{
      {true,
       R"(put c1 comment {"file":"src/review.cpp","line":12,"author":"alice","text":"Use a span here"})",
       "c1"},
      {true,
       R"(put c2 comment {"file":"src/review.cpp","line":40,"author":"alice","text":"Typo in the name"})",
       "c2"},
      {true,
       R"(put c3 comment {"file":"src/review.cpp","line":41,"author":"alice","text":"Same typo"})",
       "c3"},
      {true, R"(patch c1 {"text":"Use std::span here"})", "c1"},
      {true, R"(del c3)", "c3"},
      {false,
       R"(put c4 comment {"file":"src/review.cpp","line":57,"author":"bob","text":"Why not reserve()?"})",
       "c4"},
      {false, R"(patch c2 {"resolved":true})", "c2"},
    };
    for (auto& s : script) {
      auto& from = s.by_alice ? *d.alice : *d.bob;
      auto& to = s.by_alice ? *d.bob : *d.alice;
      auto took = d.propagate(from, to, s.cmd, s.id);
      auto shown = s.cmd.size() > 58 ? s.cmd.substr(0, 55) + "..." : s.cmd;
      print_step(s.by_alice ? "alice" : "bob", shown, took);
    }
    d.drain_events(*d.alice);
    d.drain_events(*d.bob);
    auto seen_by_alice = demo::listing(*d.alice);
    auto seen_by_bob = demo::listing(*d.bob);
    std::cout << "\n== what alice sees\n";
    for (auto& l : seen_by_alice)
      std::cout << "  " << l << "\n";
    std::cout << "== what bob sees\n";
    for (auto& l : seen_by_bob)
      std::cout << "  " << l << "\n";

    std::cout << "\n== propagation latency alice -> bob over " << changes
              << " changes (debounces 0)\n";
    std::vector<double> ms;
    for (int i = 0; i < changes; ++i) {
      std::string id = "line-";
      id += std::to_string(i % 20);
      std::string cmd = "put " + id + " note {\"n\":" + std::to_string(i) + "}";
      ms.push_back(d.propagate(*d.alice, *d.bob, cmd, id).count() / 1000.0);
    }
    printf("  p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms\n",
           percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99),
           percentile(ms, 1.0));

    d.drain_events(*d.alice);
    d.drain_events(*d.bob);
    seen_by_alice = demo::listing(*d.alice);
    seen_by_bob = demo::listing(*d.bob);
    for (auto* c : {d.alice.get(), d.bob.get()}) {
      c->send("quit");
      c->wait();
    }
    kill(d.server->pid(), SIGTERM);
    d.server->wait();
    // The server's state, read from its database.
    memsync::sqlite_backend backend{d.dir.file("server.db")};
    auto state = backend.pull("", {});
    std::vector<std::string> server_view;
    for (auto& e : state.entities) {
      nlohmann::json j;
      j["id"] = e.id;
      j["type"] = e.type;
      j["version"] = e.version;
      j["data"] = nlohmann::json::parse(e.data);
      server_view.push_back(j.dump());
    }
    // Compare as sets of lines: clients list by id, the server by version.
    for (auto* view : {&seen_by_alice, &seen_by_bob, &server_view})
      std::sort(view->begin(), view->end());
    bool converged = seen_by_alice == seen_by_bob && seen_by_alice == server_view;
    if (!d.trace_dir.empty()) {
      // The server's file is complete once it has stopped (above).
      std::cout << "\n== traces of every node in " << d.trace_dir << "/"
                << " (see the README: build/tools/trace stats|path|chrome|svg)\n";
    }
    std::cout << "\n== convergence: alice " << seen_by_alice.size() << " entities, bob "
              << seen_by_bob.size() << ", server " << server_view.size() << ": "
              << (converged ? "identical" : "DIFFERENT") << "\n";
    return converged ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "demo failed: " << e.what() << "\n";
    return 1;
  }
}
