#include "node/server/server_node.hpp"

#include <cstdio>
#include <functional>

#include <caf/actor_system.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/common/tls.hpp"
#include "actors/storage/postgres_backend.hpp"
#include "actors/storage/postgres_listener.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "node/config/node_options.hpp"
#include "node/server/frame_guard.hpp"

namespace memsync {

using namespace std::chrono_literals;

namespace {

// A node id as CAF writes it in BASP frames, which is how the guard knows it.
std::string serialize_node(caf::actor_system& sys, caf::node_id node) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (auto err = sink(node))
    throw std::runtime_error("cannot serialize a node id: " + sys.render(err));
  return {buf.begin(), buf.end()};
}

// Publishes a gateway and watches it; when it dies, a new one takes the port
// (and `published` tells the guard its id).
caf::behavior gateway_supervisor(caf::event_based_actor* self, replication_log_actor log,
                                 gateway_config cfg, std::string host, uint16_t port,
                                 std::function<void(caf::actor_id)> published) {
  auto gateway = std::make_shared<gateway_control_actor>();
  auto start = [=] {
    *gateway = spawn_gateway(self->system(), log, cfg);
    self->monitor(*gateway);
    // The files as they are now: a reload before the old gateway died must
    // not be undone (a revoked token valid again).
    self->request(*gateway, caf::infinite, reload_atom::value)
      .then([](const std::string&) {}, [](const caf::error&) {});
    auto mm = self->system().middleman().actor_handle();
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(*gateway);
    // The interface travels with the publication: clients check it (and
    // see no reload).
    auto sigs = self->system().message_types<gateway_actor>();
    self
      ->request(mm, caf::infinite, caf::publish_atom::value, port, ptr, std::move(sigs),
                host, true)
      .then(
        [=](uint16_t) {
          if (published)
            published(gateway->id());
        },
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
    [=](gateway_control_actor& first) {
      *gateway = std::move(first);
      self->monitor(*gateway);
    },
    [=](caf::publish_atom) { start(); },
    [=](reload_atom) { return self->delegate(*gateway, reload_atom::value); },
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
  gateway_config gcfg{cfg.server_id, backend->epoch(), cfg.tokens,
                      cfg.limits,    trace_,           cfg.max_sessions};
  gcfg.tokens_file = cfg.tokens_file;
  gcfg.scopes_file = cfg.scopes_file;
  gcfg.rules = cfg.rules;
  if (cfg.guard) {
    // Listening first: a port in use fails before anything is spawned.
    guard_ = std::make_shared<frame_guard>(
      cfg.front, cfg.host, cfg.port, serialize_node(sys, sys.node()),
      cfg.tls.on() ? tls_context::server(cfg.tls.cert, cfg.tls.key, cfg.tls.client_ca)
                   : nullptr);
    gcfg.session_opened = [guard = guard_, sys = &sys](const caf::node_id& node,
                                                       caf::actor_id id) {
      guard->bind_session(serialize_node(*sys, node), id);
    };
    gcfg.session_closed = [guard = guard_, sys = &sys](const caf::node_id& node,
                                                       caf::actor_id id) {
      guard->unbind_session(serialize_node(*sys, node), id);
    };
  }
  log_settings lcfg;
  lcfg.data = cfg.limits.data;
  lcfg.max_pull_bytes = cfg.limits.max_pull_bytes;
  lcfg.rules = cfg.rules;
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
      [log = log_](uint64_t head, const std::optional<std::vector<std::string>>& scopes) {
        caf::anon_send(log, poke_atom::value,
                       relayed_commit{head, scopes.value_or(std::vector<std::string>{}),
                                      scopes.has_value()});
      });
  auto gateway = spawn_gateway(sys, log_, gcfg);
  // Behind the guard, the middleman listens on loopback only, on a port of
  // its own; the guard is the only peer that ever connects to it.
  auto host = guard_ ? std::string{"127.0.0.1"} : cfg.host;
  auto published = sys.middleman().publish(gateway_actor{gateway}, guard_ ? 0 : cfg.port,
                                           host.c_str(), true);
  if (!published) {
    health_->stopping.store(true);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(log_, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cannot listen on " + host + ":"
                             + std::to_string(guard_ ? 0 : cfg.port) + ": "
                             + sys.render(published.error()));
  }
  published_port_ = *published;
  port_ = published_port_;
  std::function<void(caf::actor_id)> on_published;
  if (guard_) {
    guard_->set_gateway(gateway.id());
    guard_->start(published_port_);
    port_ = guard_->port();
    on_published = [guard = guard_](caf::actor_id id) {
      guard->set_gateway(id);
    };
  }
  supervisor_ = sys.spawn(gateway_supervisor, log_, gcfg, host, published_port_,
                          std::move(on_published));
  caf::anon_send(supervisor_, gateway);
}

std::string server_node::reload() {
  caf::scoped_actor self{sys_};
  std::string out;
  self->request(supervisor_, std::chrono::seconds(10), reload_atom::value)
    .receive([&](const std::string& line) { out = line; },
             [&](const caf::error& err) {
               out = "error: reload: " + to_sync_error(err).message;
             });
  return out;
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
  if (guard_)
    guard_->stop(); // no client reaches the middleman any more
  sys_.middleman().close(published_port_);
  caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(log_, caf::exit_reason::user_shutdown);
  // A detached actor's thread waits until no handle is left: the actor
  // system can only end once this one is gone too.
  log_ = nullptr;
  if (trace_)
    trace_->close();
}

} // namespace memsync
