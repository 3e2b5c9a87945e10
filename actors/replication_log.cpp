#include "actors/replication_log.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

namespace memsync {

namespace {

struct queued_push {
  log_push push;
  caf::typed_response_promise<push_reply> promise;
};

struct replication_log_state {
  std::shared_ptr<storage_backend> backend;
  data_limits limits;
  std::vector<queued_push> queue;
  bool commit_scheduled = false;
  std::vector<poke_listener_actor> listeners;
  uint64_t poked_version = 0;
  log_stats stats;
  const char* name = "replication_log";
};

using self_ptr = replication_log_actor::stateful_pointer<replication_log_state>;

caf::error storage_failure(const storage_error& e) {
  return make_error(e.retryable() ? sync_errc::unavailable : sync_errc::db_error,
                    e.what());
}

// Once per version: a node hears its own commits from the database as well.
void poke_listeners(self_ptr self, uint64_t version) {
  auto& st = self->state;
  if (version <= st.poked_version)
    return;
  st.poked_version = version;
  for (auto& listener : st.listeners)
    self->send(listener, poke_atom::value, poke{version});
}

void commit(self_ptr self) {
  auto& st = self->state;
  st.commit_scheduled = false;
  auto batch = std::move(st.queue);
  st.queue.clear();
  if (batch.empty())
    return;
  std::vector<log_push> pushes;
  pushes.reserve(batch.size());
  for (auto& q : batch)
    pushes.push_back(std::move(q.push));
  try {
    auto result = apply_pushes(*st.backend, pushes, st.limits);
    ++st.stats.commits;
    st.stats.pushes += pushes.size();
    for (auto& p : pushes)
      st.stats.changes += p.request.changes.size();
    st.stats.version = result.version;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& outcome = result.outcomes[i];
      if (outcome.error.ok())
        batch[i].promise.deliver(std::move(outcome.reply));
      else
        batch[i].promise.deliver(make_error(outcome.error));
    }
    poke_listeners(self, result.version);
  } catch (const storage_error& e) {
    auto err = storage_failure(e);
    for (auto& q : batch)
      q.promise.deliver(err);
  }
}

replication_log_actor::behavior_type
replication_log_impl(self_ptr self, std::shared_ptr<storage_backend> backend,
                     data_limits limits) {
  self->state.backend = std::move(backend);
  self->state.limits = limits;
  self->state.poked_version = self->state.backend->head_version();
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& ls = self->state.listeners;
    ls.erase(std::remove_if(ls.begin(), ls.end(),
                            [&](auto& l) { return l.address() == msg.source; }),
             ls.end());
  });
  return {
    [=](push_atom, log_push& push) {
      auto& st = self->state;
      auto promise = self->make_response_promise<push_reply>();
      st.queue.push_back({std::move(push), promise});
      // Every push already in the mailbox is handled before this message,
      // so they all join the same commit.
      if (!st.commit_scheduled) {
        st.commit_scheduled = true;
        self->send(self, commit_atom::value);
      }
      return promise;
    },
    [=](pull_atom, const pull_request& req) -> caf::result<pull_reply> {
      try {
        return self->state.backend->pull(req.client_id, req.since);
      } catch (const storage_error& e) {
        return storage_failure(e);
      }
    },
    [=](subscribe_atom, poke_listener_actor& listener) {
      self->monitor(listener);
      self->state.listeners.push_back(std::move(listener));
    },
    [=](poke_atom, const poke& p) { poke_listeners(self, p.version); },
    [=](get_atom) { return self->state.stats; },
    [=](commit_atom) { commit(self); },
  };
}

} // namespace

replication_log_actor spawn_replication_log(caf::actor_system& sys,
                                            std::unique_ptr<storage_backend> backend,
                                            data_limits limits, bool detached) {
  std::shared_ptr<storage_backend> shared{std::move(backend)};
  if (detached)
    return sys.spawn<caf::detached>(replication_log_impl, shared, limits);
  return sys.spawn(replication_log_impl, shared, limits);
}

} // namespace memsync
