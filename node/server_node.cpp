#include "node/server_node.hpp"

#include <fstream>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/postgres_backend.hpp"
#include "actors/postgres_listener.hpp"
#include "actors/sqlite_backend.hpp"
#include "node/node_config.hpp"

namespace memsync {

using namespace std::chrono_literals;

config_schema server_schema() {
  config_schema schema;
  schema
    .add_string("server.id", "server-1", "name of this server node")
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
    .add_integer("limits.max-data-bytes", 1 << 20, 2, 64 << 20,
                 "largest entity data (serialized JSON)")
    .add_integer("limits.max-depth", 64, 1, 1000, "deepest nesting of entity data")
    .add_integer("limits.max-push-changes", 1000, 1, 100000,
                 "changes per push a client may send")
    .add_integer("limits.max-push-bytes", 8 << 20, 1024, 256 << 20,
                 "bytes per push a client may send")
    .add_duration("limits.log-timeout", 30s, 1ms, 1h,
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
  out.limits.data.max_bytes
    = static_cast<std::size_t>(v.get_integer("limits.max-data-bytes"));
  out.limits.data.max_depth
    = static_cast<std::size_t>(v.get_integer("limits.max-depth"));
  out.limits.max_push_changes
    = static_cast<std::size_t>(v.get_integer("limits.max-push-changes"));
  out.limits.max_push_bytes
    = static_cast<std::size_t>(v.get_integer("limits.max-push-bytes"));
  out.limits.log_timeout = v.get_duration("limits.log-timeout");
  out.trace = make_trace_settings(v);
  return out;
}

namespace {

// Publishes a gateway and watches it; when it dies, a new one takes the port.
caf::behavior gateway_supervisor(caf::event_based_actor* self,
                                 replication_log_actor log, gateway_config cfg,
                                 std::string host, uint16_t port) {
  auto gateway = std::make_shared<gateway_actor>();
  auto start = [=] {
    *gateway = spawn_gateway(self->system(), log, cfg);
    self->monitor(*gateway);
    auto mm = self->system().middleman().actor_handle();
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(*gateway);
    // The interface travels with the publication: clients check it.
    auto sigs = self->system().message_types(*gateway);
    self->request(mm, caf::infinite, caf::publish_atom::value, port, ptr,
                  std::move(sigs), host, true)
      .then([](uint16_t) {},
            [=](caf::error& err) {
              fprintf(stderr, "warning: cannot publish the gateway yet (%s); "
                              "trying again\n",
                      self->system().render(err).c_str());
              self->delayed_send(self, std::chrono::milliseconds(200),
                                 caf::publish_atom::value);
            });
  };
  self->set_down_handler([=](const caf::down_msg& msg) {
    if (msg.source != gateway->address())
      return;
    fprintf(stderr, "warning: gateway died (%s); publishing a new one\n",
            self->system().render(msg.reason).c_str());
    // Close the old listening socket, then listen again with the new one.
    // Closing completes asynchronously on the I/O thread and is keyed by
    // port, so the new socket is opened a moment later.
    auto mm = self->system().middleman().actor_handle();
    self->send(mm, caf::close_atom::value, port);
    self->delayed_send(self, std::chrono::milliseconds(100),
                       caf::publish_atom::value);
  });
  self->attach_functor([=] { caf::anon_send_exit(*gateway, caf::exit_reason::user_shutdown); });
  // The first gateway was published by the node itself; we only watch it.
  return {
    [=](gateway_actor& first) {
      *gateway = std::move(first);
      self->monitor(*gateway);
    },
    [=](caf::publish_atom) { start(); },
  };
}

} // namespace

server_node::server_node(caf::actor_system& sys, const server_config& cfg)
  : sys_(sys) {
  // CAF's built-in remote spawning and configuration services would let any
  // peer spawn actors or read our settings.
  sys.registry().erase(caf::atom("SpawnServ"));
  sys.registry().erase(caf::atom("ConfigServ"));
  std::unique_ptr<storage_backend> backend;
  if (cfg.backend == "postgres")
    backend = std::make_unique<postgres_backend>(cfg.postgres, cfg.postgres_schema);
  else
    backend = std::make_unique<sqlite_backend>(cfg.db_path);
  if (cfg.trace.mode != trace_mode::off)
    trace_ = std::make_shared<trace_sink>(cfg.trace, cfg.server_id, "server");
  gateway_config gcfg{cfg.server_id, backend->epoch(), cfg.tokens, cfg.limits,
                      trace_};
  log_ = spawn_replication_log(sys, std::move(backend), cfg.limits.data, true,
                               trace_);
  if (cfg.backend == "postgres") // other nodes' commits poke our clients too
    listener_ = std::make_unique<postgres_listener>(
      cfg.postgres, cfg.postgres_schema,
      [log = log_](uint64_t head) { caf::anon_send(log, poke_atom::value, poke{head}); });
  auto gateway = spawn_gateway(sys, log_, gcfg);
  auto published = sys.middleman().publish(gateway, cfg.port, cfg.host.c_str(), true);
  if (!published) {
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(log_, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cannot listen on " + cfg.host + ":"
                             + std::to_string(cfg.port) + ": "
                             + sys.render(published.error()));
  }
  port_ = *published;
  supervisor_ = sys.spawn(gateway_supervisor, log_, gcfg, cfg.host, port_);
  caf::anon_send(supervisor_, gateway);
}

server_node::~server_node() {
  stop();
}

void server_node::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  listener_.reset();
  sys_.middleman().close(port_);
  caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(log_, caf::exit_reason::user_shutdown);
  if (trace_)
    trace_->close();
}

} // namespace memsync
