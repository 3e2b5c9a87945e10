// syncnode: the one program of the engine.
//   syncnode client --config FILE   a client node with a command prompt
//   syncnode server --config FILE   a server node, until SIGINT/SIGTERM
//                                   (SIGHUP: re-read tokens and scopes files)
//   syncnode loadtest --config FILE many simulated clients against servers
//   syncnode hash-token [TOKEN]     the tokens-file form of a token (sha256:...)
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/server/token_table.hpp"
#include "messages/registry.hpp"
#include "node/client/client_config.hpp"
#include "node/client/client_node.hpp"
#include "node/client_cli.hpp"
#include "node/config/node_options.hpp"
#include "node/loadtest/loadtest.hpp"
#include "node/server/server_node.hpp"

namespace {

using namespace memsync;

const char* usage
  = "usage: syncnode client --config FILE [--section.key=value ...] [--timeout=DUR]\n"
    "       syncnode server --config FILE [--section.key=value ...]\n"
    "       syncnode loadtest --config FILE [--section.key=value ...]\n"
    "       syncnode client|server|loadtest --help-options   (list every option)\n"
    "       syncnode hash-token [TOKEN]   (reads TOKEN from standard input if not "
    "given)\n";

struct command_line {
  std::string config_path;
  std::vector<std::string> overrides;
  bool help_options = false;
};

command_line parse_args(int argc, char** argv) {
  command_line out;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc)
      out.config_path = argv[++i];
    else if (arg.rfind("--config=", 0) == 0)
      out.config_path = arg.substr(9);
    else if (arg == "--help-options")
      out.help_options = true;
    else if (arg.rfind("--timeout=", 0) == 0)
      out.overrides.push_back("--client.sync-timeout=" + arg.substr(10));
    else
      out.overrides.push_back(arg);
  }
  return out;
}

/// Loads and validates the config; prints the problem and returns nullopt
/// (exit code in `rc`) when the program should stop.
std::optional<config_values> load(const config_schema& schema, const command_line& args,
                                  int& rc) {
  if (args.help_options) {
    std::cout << schema.describe();
    rc = 0;
    return std::nullopt;
  }
  if (args.config_path.empty()) {
    std::cerr << usage;
    rc = 2;
    return std::nullopt;
  }
  try {
    return load_config(schema, args.config_path, args.overrides);
  } catch (const config_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    rc = 2;
    return std::nullopt;
  }
}

/// Loads the config, builds the node's settings with `make` and CAF's
/// settings; returns false (with the exit code in `rc`) when the program
/// should stop.
template <class Config, class Make>
bool prepare(const config_schema& schema, const command_line& args, Make make,
             Config& cfg, caf::actor_system_config& sys_cfg, int& rc) {
  auto values = load(schema, args, rc);
  if (!values)
    return false;
  try {
    cfg = make(*values);
    apply_caf_settings(*values, sys_cfg);
  } catch (const config_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    rc = 2;
    return false;
  }
  register_message_types(sys_cfg);
  return true;
}

/// Drops are reported where the user sees them, not only in the file.
void report_trace(const trace_sink* trace) {
  if (trace)
    std::cerr << "trace: " << trace->recorded() << " events written to " << trace->file()
              << ", " << trace->dropped() << " dropped (buffer full)\n";
}

int run_client(const command_line& args) {
  int rc = 0;
  client_config cfg;
  caf::actor_system_config sys_cfg;
  if (!prepare(client_schema(), args, make_client_config, cfg, sys_cfg, rc))
    return rc;
  caf::actor_system sys{sys_cfg};
  try {
    client_node node{sys, cfg};
    bool interactive = isatty(STDIN_FILENO) != 0;
    if (interactive)
      std::cout
        << "client " << node.client_id() << " ready (" << node.app().size()
        << " entities loaded in "
        << std::chrono::duration_cast<std::chrono::milliseconds>(node.load_time()).count()
        << " ms); type 'help'\n";
    rc = run_client_cli(node, cfg, std::cin, std::cout, interactive);
    node.shutdown(cfg.sync_timeout);
    report_trace(node.trace());
    return rc;
  } catch (const std::runtime_error& e) { // local_db_error, the trace file
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}

volatile std::sig_atomic_t stop_requested = 0;
// SIGHUP: re-read the tokens and scopes files. The handler only sets the
// flag; the main loop does the work.
volatile std::sig_atomic_t reload_requested = 0;

int run_server(const command_line& args) {
  int rc = 0;
  server_config cfg;
  caf::actor_system_config sys_cfg;
  if (!prepare(server_schema(), args, make_server_config, cfg, sys_cfg, rc))
    return rc;
  caf::actor_system sys{sys_cfg};
  try {
    server_node node{sys, cfg};
    std::signal(SIGINT, [](int) { stop_requested = 1; });
    std::signal(SIGTERM, [](int) { stop_requested = 1; });
    std::signal(SIGHUP, [](int) { reload_requested = 1; });
    // One line a script can wait for (the port matters when 0 was asked).
    std::cout << "server " << cfg.server_id << " listening on " << cfg.host << ":"
              << node.port() << std::endl;
    while (!stop_requested && !node.failed()) {
      if (reload_requested) {
        reload_requested = 0; // a SIGHUP during the reload asks for another
        auto line = node.reload();
        (line.rfind("error:", 0) == 0 ? std::cerr : std::cout) << line << std::endl;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    node.stop();
    report_trace(node.trace());
    if (node.failed()) { // a supervisor restarts us; lingering would serve nobody
      std::cerr << "error: server " << cfg.server_id << " exits: " << node.failure()
                << std::endl;
      return 1;
    }
    std::cout << "server " << cfg.server_id << " stopped" << std::endl;
    return 0;
  } catch (const std::runtime_error& e) { // storage_error, a taken port
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}

int run_loadtest_command(const command_line& args) {
  int rc = 0;
  auto values = load(loadtest_schema(), args, rc);
  if (!values)
    return rc;
  try {
    auto cfg = make_loadtest_config(*values);
    auto report = run_loadtest(cfg, *values, &std::cerr);
    print_table(report, std::cout);
    if (!cfg.report_json.empty()) {
      std::ofstream out{cfg.report_json};
      out << to_json(report).dump(2) << '\n';
      if (!out)
        throw std::runtime_error("cannot write " + cfg.report_json);
    }
    if (!cfg.report_svg.empty()) {
      std::ofstream out{cfg.report_svg};
      out << render_svg(report);
      if (!out)
        throw std::runtime_error("cannot write " + cfg.report_svg);
    }
    // Not converged, or changes lost: the deployment did not hold up.
    bool ok = report.clients_differing == 0 && report.changes_lost == 0
              && report.changes_duplicated == 0 && report.final_values_wrong == 0
              && (report.mode != "fixed" || report.all_visible)
              && (report.mode != "drain"
                  || (report.drain.drained && report.drain.all_visible))
              && (report.mode != "storm" || report.storm.reconverged);
    return ok ? 0 : 1;
  } catch (const config_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "client")
    return run_client(parse_args(argc, argv));
  if (cmd == "server")
    return run_server(parse_args(argc, argv));
  if (cmd == "loadtest")
    return run_loadtest_command(parse_args(argc, argv));
  if (cmd == "hash-token") {
    // From standard input by default: an argument shows in `ps` and shell history.
    std::string token;
    if (argc > 2)
      token = argv[2];
    else
      std::getline(std::cin, token);
    if (token.empty() || token.find_first_of(" \t#") != std::string::npos) {
      std::cerr << "error: a token is one word without '#'\n";
      return 2;
    }
    std::cout << token_table::hash_line(token) << '\n';
    return 0;
  }
  std::cerr << usage;
  return 2;
}
