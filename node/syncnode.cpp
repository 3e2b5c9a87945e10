// syncnode: the one program of the engine. `syncnode client --config FILE`
// runs a client node with a command prompt.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/local_database.hpp"
#include "messages/registry.hpp"
#include "node/client_cli.hpp"
#include "node/client_node.hpp"
#include "node/node_config.hpp"

namespace {

const char* usage =
  "usage: syncnode client --config FILE [--section.key=value ...]\n"
  "       syncnode client --help-options   (list every option)\n";

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

int run_client(const command_line& args) {
  using namespace memsync;
  auto schema = client_schema();
  if (args.help_options) {
    std::cout << schema.describe();
    return 0;
  }
  if (args.config_path.empty()) {
    std::cerr << usage;
    return 2;
  }
  client_config cfg;
  caf::actor_system_config sys_cfg;
  try {
    auto values = load_config(schema, args.config_path, args.overrides);
    cfg = make_client_config(values);
    apply_caf_settings(values, sys_cfg);
  } catch (const config_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 2;
  }
  register_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  try {
    client_node node{sys, cfg};
    bool interactive = isatty(STDIN_FILENO) != 0;
    if (interactive)
      std::cout << "client " << node.client_id() << " ready ("
                << node.app().size() << " entities loaded in "
                << std::chrono::duration_cast<std::chrono::milliseconds>(
                     node.load_time()).count()
                << " ms); type 'help'\n";
    auto rc = run_client_cli(node, cfg, std::cin, std::cout, interactive);
    node.shutdown(cfg.sync_timeout);
    return rc;
  } catch (const local_db_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "client")
    return run_client(parse_args(argc, argv));
  std::cerr << usage;
  return 2;
}
