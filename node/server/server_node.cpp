#include "node/server/server_node.hpp"

#include <cstdio>
#include <functional>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/storage/postgres_backend.hpp"
#include "actors/storage/postgres_listener.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "node/config/node_options.hpp"

namespace memsync {

using namespace std::chrono_literals;

namespace {

// Publishes a gateway and watches it; when it dies, a new one takes the port.
caf::behavior gateway_supervisor(caf::event_based_actor* self, replication_log_actor log,
                                 gateway_config cfg, std::string host, uint16_t port) {
  auto gateway = std::make_shared<gateway_actor>();
  auto start = [=] {
    *gateway = spawn_gateway(self->system(), log, cfg);
    self->monitor(*gateway);
    auto mm = self->system().middleman().actor_handle();
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(*gateway);
    // The interface travels with the publication: clients check it.
    auto sigs = self->system().message_types(*gateway);
    self
      ->request(mm, caf::infinite, caf::publish_atom::value, port, ptr, std::move(sigs),
                host, true)
      .then([](uint16_t) {},
            [=](caf::error& err) {
              fprintf(stderr,
                      "warning: cannot publish the gateway yet (%s); "
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
    self->delayed_send(self, std::chrono::milliseconds(100), caf::publish_atom::value);
  });
  self->attach_functor(
    [=] { caf::anon_send_exit(*gateway, caf::exit_reason::user_shutdown); });
  // The first gateway was published by the node itself; we only watch it.
  return {
    [=](gateway_actor& first) {
      *gateway = std::move(first);
      self->monitor(*gateway);
    },
    [=](caf::publish_atom) { start(); },
  };
}

// Watches the replication log; its end while the node runs is fatal.
caf::behavior log_watcher(caf::event_based_actor* self, replication_log_actor log,
                          std::function<void(const caf::error&)> on_down) {
  self->monitor(log);
  self->set_down_handler([=](const caf::down_msg& msg) {
    on_down(msg.reason);
    self->quit();
  });
  return {[](caf::ok_atom) {
  }};
}

} // namespace

std::string server_node::failure() const {
  std::lock_guard<std::mutex> guard{health_->mtx};
  return health_->why;
}

server_node::server_node(caf::actor_system& sys, const server_config& cfg) : sys_(sys) {
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
  gateway_config gcfg{cfg.server_id, backend->epoch(), cfg.tokens, cfg.limits, trace_};
  log_settings lcfg;
  lcfg.data = cfg.limits.data;
  log_ = spawn_replication_log(sys, std::move(backend), lcfg, true, trace_);
  watcher_ = sys.spawn(log_watcher, log_, [h = health_, &sys](const caf::error& reason) {
    if (h->stopping.load())
      return;
    auto why = "the replication log stopped (" + sys.render(reason)
               + "); this server cannot serve any client";
    fprintf(stderr, "error: %s\n", why.c_str());
    {
      std::lock_guard<std::mutex> guard{h->mtx};
      h->why = std::move(why);
    }
    h->failed.store(true);
  });
  if (cfg.backend == "postgres") // other nodes' commits poke our clients too
    listener_ = std::make_unique<postgres_listener>(
      cfg.postgres, cfg.postgres_schema,
      [log = log_](uint64_t head) { caf::anon_send(log, poke_atom::value, poke{head}); });
  auto gateway = spawn_gateway(sys, log_, gcfg);
  auto published = sys.middleman().publish(gateway, cfg.port, cfg.host.c_str(), true);
  if (!published) {
    health_->stopping.store(true);
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
  health_->stopping.store(true);
  listener_.reset();
  sys_.middleman().close(port_);
  caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(log_, caf::exit_reason::user_shutdown);
  // A detached actor's thread waits until no handle is left: the actor
  // system can only end once this one is gone too.
  log_ = nullptr;
  if (trace_)
    trace_->close();
}

} // namespace memsync
