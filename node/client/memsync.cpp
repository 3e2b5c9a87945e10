// The public client: an actor system of its own with one client_node in it,
// behind a pointer so that applications compile none of CAF's actor headers.
#include "node/client/memsync.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "messages/registry.hpp"
#include "node/client/client_config.hpp"
#include "node/client/client_node.hpp"
#include "node/config/node_options.hpp"

namespace memsync {

struct client::impl {
  // Declared in start-up order: destroyed node first, then the system.
  client_config cfg;
  caf::actor_system_config sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<client_node> node;

  impl(client_config settings, const config_values& values) : cfg(std::move(settings)) {
    apply_caf_settings(values, sys_cfg);
    register_message_types(sys_cfg);
    sys = std::make_unique<caf::actor_system>(sys_cfg);
    node = std::make_unique<client_node>(*sys, cfg);
  }
};

std::unique_ptr<client> client::open(const std::string& config_file,
                                     std::vector<std::string> overrides) {
  auto values = load_config(client_schema(), config_file, overrides);
  return std::unique_ptr<client>{
    new client{std::make_unique<impl>(make_client_config(values), values)}};
}

std::unique_ptr<client> client::open(const client_config& cfg) {
  // The defaults of the options every node shares (scheduler, heartbeats).
  auto values = load_config(client_schema(), "");
  return std::unique_ptr<client>{new client{std::make_unique<impl>(cfg, values)}};
}

client::client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

client::~client() {
  impl_->node->shutdown(impl_->cfg.sync_timeout);
}

store& client::store() {
  return impl_->node->app();
}

const std::string& client::client_id() const {
  return impl_->node->client_id();
}

bool client::flushed(std::chrono::nanoseconds timeout) {
  return impl_->node->flush_now(timeout);
}

bool client::sync(std::chrono::nanoseconds timeout) {
  return impl_->node->sync(timeout);
}

client_status client::status(std::chrono::nanoseconds timeout) {
  auto& node = *impl_->node;
  auto counts = node.app().counts();
  client_status out;
  out.client_id = node.client_id();
  out.has_server = node.has_server();
  out.epoch = node.cursor().epoch;
  out.cookie = node.cursor().version;
  out.last_mutation_id = node.last_mutation_id();
  if (auto st = node.sync_state(timeout)) {
    out.client_id = st->client_id; // a restored database moves to a new one
    out.connected = st->connected;
    out.epoch = st->cursor.epoch;
    out.cookie = st->cursor.version;
    out.last_mutation_id = st->last_mutation_id;
    out.last_error = st->last_error;
    out.pull_received = st->pull_received;
    out.pull_total = st->pull_total;
    out.scopes = st->scopes;
  } else {
    out.scopes = node.scopes(timeout);
  }
  out.local_error = node.local_error(timeout);
  out.entities = counts.entities;
  out.pending = counts.pending;
  out.refused = node.app().refusals().size();
  return out;
}

sync_error client::subscribe(const std::string& scope, std::chrono::nanoseconds timeout) {
  return impl_->node->subscribe(scope, timeout);
}

sync_error client::unsubscribe(const std::string& scope,
                               std::chrono::nanoseconds timeout) {
  return impl_->node->unsubscribe(scope, timeout);
}

std::vector<std::string> client::scopes(std::chrono::nanoseconds timeout) {
  return impl_->node->scopes(timeout);
}

void client::set_online(bool online) {
  impl_->node->set_online(online);
}

} // namespace memsync
