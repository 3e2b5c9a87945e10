#include "node/client/client_node.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/client/local_database.hpp"

namespace memsync {

client_node::client_node(caf::actor_system& sys, const client_config& cfg)
    : sys_(sys), core_(std::make_shared<store_core>(cfg.limits, cfg.sync.max_push_bytes)),
      subs_(std::make_shared<subscriber_list>()), app_(core_, subs_),
      configured_scopes_(cfg.scopes) {
  auto start = std::chrono::steady_clock::now();
  auto db = std::make_unique<local_database>(cfg.db);
  auto snapshot = db->load();
  core_->load(std::move(snapshot.base), std::move(snapshot.outbox));
  load_time_ = std::chrono::steady_clock::now() - start;
  snapshot_meta_ = std::move(snapshot);
  if (cfg.trace.mode != trace_mode::off)
    trace_ = std::make_shared<trace_sink>(cfg.trace, snapshot_meta_.client_id, "client");
  db_ = spawn_local_db(sys, std::move(db), trace_);
  flusher_ = spawn_flush_scheduler(sys, db_, cfg.flush, trace_);
  memory_ = spawn_memory_store(sys, core_, subs_, flusher_, trace_);
  if (!cfg.server_host.empty()) {
    if (cfg.tls.on()) {
      // CAF speaks plain BASP to the tunnel, the tunnel TLS to the server.
      tunnel_ = std::make_unique<tls_tunnel>(
        cfg.server_host, cfg.server_port, cfg.tls.host,
        tls_context::client(cfg.tls.ca, cfg.tls.cert, cfg.tls.key));
      connector_ = spawn_connector(sys, "127.0.0.1", tunnel_->local_port(),
                                   cfg.sync.request_timeout);
    } else {
      connector_ = spawn_connector(sys, cfg.server_host, cfg.server_port,
                                   cfg.sync.request_timeout);
    }
    syncer_config scfg{snapshot_meta_.client_id,
                       snapshot_meta_.cursor,
                       snapshot_meta_.last_mutation_id,
                       snapshot_meta_.push_epoch,
                       cfg.sync,
                       cfg.scopes,
                       snapshot_meta_.subscription};
    syncer_ = spawn_network_syncer(sys, std::move(scfg), connector_, db_, memory_,
                                   flusher_, trace_);
  }
}

client_node::~client_node() {
  shutdown(std::chrono::seconds(5));
}

bool client_node::flush_now(std::chrono::nanoseconds timeout) {
  auto target = core_->last_seq();
  caf::scoped_actor self{sys_};
  bool ok = false;
  self->request(memory_, timeout, flush_atom::value)
    .receive([&](uint64_t) { ok = true; }, [&](caf::error&) { ok = false; });
  // The memory store learns of the flush right after our reply was sent.
  return ok && core_->wait_durable(target, timeout);
}

bool client_node::sync(std::chrono::nanoseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!flush_now(timeout))
    return false;
  if (!syncer_)
    return true;
  caf::scoped_actor self{sys_};
  bool ok = false;
  auto left = std::chrono::duration_cast<caf::timespan>(
    deadline - std::chrono::steady_clock::now());
  self->request(syncer_, std::max(left, caf::timespan{1}), sync_atom::value)
    .receive([&](ok_atom) { ok = true; }, [&](caf::error&) { ok = false; });
  return ok;
}

std::optional<sync_status> client_node::sync_state(std::chrono::nanoseconds timeout) {
  if (!syncer_)
    return std::nullopt;
  caf::scoped_actor self{sys_};
  std::optional<sync_status> out;
  self->request(syncer_, timeout, status_atom::value)
    .receive([&](sync_status& st) { out = std::move(st); }, [&](caf::error&) {});
  return out;
}

std::string client_node::local_error(std::chrono::nanoseconds timeout) {
  caf::scoped_actor self{sys_};
  std::string out;
  self->request(flusher_, timeout, status_atom::value)
    .receive([&](std::string& err) { out = std::move(err); }, [&](caf::error&) {});
  return out;
}

namespace {

template <class Atom>
sync_error ask_scope(caf::actor_system& sys, const network_syncer_actor& syncer,
                     Atom atom, const std::string& pattern,
                     std::chrono::nanoseconds timeout) {
  if (!syncer)
    return {sync_errc::unavailable,
            "no server configured ([server] host): there are no scopes to sync"};
  caf::scoped_actor self{sys};
  sync_error out{sync_errc::timeout, "the syncer did not answer"};
  self->request(syncer, timeout, atom, pattern)
    .receive([&](ok_atom) { out = {}; },
             [&](caf::error& err) { out = to_sync_error(err); });
  return out;
}

} // namespace

sync_error client_node::subscribe(const std::string& pattern,
                                  std::chrono::nanoseconds timeout) {
  return ask_scope(sys_, syncer_, subscribe_atom::value, pattern, timeout);
}

sync_error client_node::unsubscribe(const std::string& pattern,
                                    std::chrono::nanoseconds timeout) {
  return ask_scope(sys_, syncer_, unsub_atom::value, pattern, timeout);
}

std::vector<std::string> client_node::scopes(std::chrono::nanoseconds timeout) {
  if (!syncer_)
    return configured_scopes_;
  caf::scoped_actor self{sys_};
  auto out = configured_scopes_;
  self->request(syncer_, timeout, scopes_atom::value)
    .receive([&](std::vector<std::string>& xs) { out = std::move(xs); },
             [&](caf::error&) {});
  return out;
}

void client_node::set_online(bool online) {
  if (syncer_)
    caf::anon_send(syncer_, online_atom::value, online);
}

void client_node::watch_flushes(flush_listener_actor listener) {
  caf::anon_send(flusher_, subscribe_atom::value, std::move(listener));
}

void client_node::shutdown(std::chrono::nanoseconds timeout) {
  if (stopped_)
    return;
  stopped_ = true;
  flush_now(timeout);
  for (auto& handle :
       {caf::actor_cast<caf::actor>(syncer_), caf::actor_cast<caf::actor>(connector_),
        caf::actor_cast<caf::actor>(memory_), caf::actor_cast<caf::actor>(flusher_),
        caf::actor_cast<caf::actor>(db_)})
    if (handle)
      caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
  // What the actors record while they stop is not written.
  if (trace_)
    trace_->close();
}

} // namespace memsync
