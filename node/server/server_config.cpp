#include "node/server/server_config.hpp"

#include <fstream>
#include <sstream>

#include "actors/server/tuning.hpp"
#include "node/config/node_options.hpp"

namespace memsync {

using namespace std::chrono_literals;

config_schema server_schema() {
  config_schema schema;
  schema.add_string("server.id", "server-1", "name of this server node")
    .add_string("server.host", "127.0.0.1", "address to listen on")
    .add_integer("server.port", 7878, 0, 65535, "port to listen on (0: any free)")
    .add_string("server.backend", "sqlite",
                "storage of the replication log: sqlite (one file, one node) or "
                "postgres (several nodes may share one database)",
                {"sqlite", "postgres"})
    .add_string("server.db-path", "server.db",
                "SQLite file of the replication log (backend = sqlite)")
    .add_string("server.postgres", "",
                "libpq connection string (backend = postgres), e.g. "
                "'host=127.0.0.1 port=5432 dbname=memsync user=memsync'")
    .add_string("server.postgres-schema", "memsync",
                "schema of the tables (backend = postgres); nodes that share "
                "one history use the same")
    .add_string("server.tokens-file", "",
                "file of 'TOKEN CLIENT-NAME' lines: who may connect as whom")
    .add_integer("limits.max-data-bytes", static_cast<int64_t>(data_limits{}.max_bytes),
                 2, 64 << 20, "largest entity data (serialized JSON)")
    .add_integer("limits.max-depth", static_cast<int64_t>(data_limits{}.max_depth), 1,
                 1000, "deepest nesting of entity data")
    .add_integer("limits.max-push-changes",
                 static_cast<int64_t>(tuning::max_push_changes), 1, 100000,
                 "changes per push a client may send")
    .add_integer("limits.max-push-bytes", static_cast<int64_t>(tuning::max_push_bytes),
                 1024, 256 << 20, "bytes per push a client may send")
    .add_duration("limits.log-timeout", tuning::log_timeout, 1ms, 1h,
                  "how long a session waits for the replication log");
  add_node_options(schema);
  add_trace_options(schema);
  return schema;
}

std::map<std::string, std::string> load_tokens(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    throw config_error(path + ": cannot read tokens file");
  std::map<std::string, std::string> out;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (auto hash = line.find('#'); hash != std::string::npos)
      line.erase(hash);
    std::istringstream words{line};
    std::string token, name, extra;
    if (!(words >> token))
      continue;
    auto where = path + ":" + std::to_string(lineno) + ": ";
    if (!(words >> name) || (words >> extra))
      throw config_error(where + "expected 'TOKEN CLIENT-NAME'");
    if (auto err = validate_id(name); !err.ok())
      throw config_error(where + "client name: " + err.message);
    if (!out.emplace(token, name).second)
      throw config_error(where + "token listed twice");
  }
  return out;
}

server_config make_server_config(const config_values& v) {
  server_config out;
  out.server_id = v.get_string("server.id");
  out.host = v.get_string("server.host");
  out.port = static_cast<uint16_t>(v.get_integer("server.port"));
  out.backend = v.get_string("server.backend");
  out.db_path = v.get_string("server.db-path");
  out.postgres = v.get_string("server.postgres");
  out.postgres_schema = v.get_string("server.postgres-schema");
  if (out.backend == "postgres" && out.postgres.empty())
    throw config_error(v.origin("server.backend")
                       + ": server.postgres: required when server.backend is "
                         "postgres (a libpq connection string)");
  if (out.postgres_schema.empty() || out.postgres_schema.size() > 63)
    throw config_error(v.origin("server.postgres-schema")
                       + ": server.postgres-schema: 1 to 63 characters");
  auto tokens = v.get_string("server.tokens-file");
  if (tokens.empty())
    throw config_error(v.origin("server.tokens-file")
                       + ": server.tokens-file: required (who may connect)");
  out.tokens = load_tokens(tokens);
  out.limits.data.max_bytes = static_cast<std::size_t>(
    v.get_integer("limits.max-data-bytes"));
  out.limits.data.max_depth = static_cast<std::size_t>(v.get_integer("limits.max-depth"));
  out.limits.max_push_changes = static_cast<std::size_t>(
    v.get_integer("limits.max-push-changes"));
  out.limits.max_push_bytes = static_cast<std::size_t>(
    v.get_integer("limits.max-push-bytes"));
  out.limits.log_timeout = v.get_duration("limits.log-timeout");
  out.trace = make_trace_settings(v);
  return out;
}

} // namespace memsync
