#include "actors/client/local_db.hpp"

#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/client/local_database.hpp"

namespace memsync {

namespace {

struct local_db_state {
  std::shared_ptr<local_database> db;
  std::shared_ptr<trace_sink> trace;
  /// Prunes that failed (rules, held), oldest first: done before the next
  /// answer is stored or the next prune is done (see local_db_actor).
  std::vector<std::pair<scope_rules, std::vector<std::string>>> owed;
  const char* name = "local_db";
};

/// Does the prunes owed, oldest first; throws at the first that fails, which
/// stays owed with those after it.
void prune_owed(local_db_state& st) {
  while (!st.owed.empty()) {
    st.db->prune(st.owed.front().first, st.owed.front().second);
    st.owed.erase(st.owed.begin());
  }
}

local_db_actor::behavior_type
local_db_impl(local_db_actor::stateful_pointer<local_db_state> self,
              std::shared_ptr<local_database> db, std::shared_ptr<trace_sink> trace) {
  self->state.db = std::move(db);
  self->state.trace = std::move(trace);
  return {
    [=](flush_atom, uint64_t batch,
        const std::vector<change>& changes) -> caf::result<std::vector<uint64_t>> {
      trace_scope ts{self->state.trace.get(), self, "flush"};
      try {
        auto ids = self->state.db->append(changes, batch);
        if (ts && !changes.empty()) {
          ts.sent(changes.front().trace.sent_ns);
          for (size_t i = 0; i < changes.size() && i < ids.size(); ++i)
            ts.item(changes[i].trace.trace_id, changes[i].id, 0, ids[i]);
        }
        return ids;
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](rebase_atom, const pull_reply& reply,
        const std::vector<std::string>& progressed) -> caf::result<ok_atom> {
      trace_scope ts{self->state.trace.get(), self, "rebase"};
      ts.pull_items(reply);
      try {
        prune_owed(self->state);
        self->state.db->apply_pull(reply, progressed);
        return ok_atom::value;
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](outbox_atom, uint64_t after, uint64_t max_changes,
        uint64_t max_bytes) -> caf::result<std::vector<change>> {
      trace_scope ts{self->state.trace.get(), self, "outbox"};
      try {
        auto out = self->state.db->outbox(after, max_changes, max_bytes);
        if (!out.empty())
          self->state.db->mark_pushed(out.back().mutation_id);
        if (ts)
          for (auto& c : out)
            ts.item(c.trace.trace_id, c.id, 0, c.mutation_id);
        return out;
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](outbox_max_atom) -> caf::result<uint64_t> {
      try {
        return self->state.db->last_outbox_id();
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](pushed_atom) -> caf::result<uint64_t> {
      return self->state.db->pushed_mutation_id();
    },
    [=](restored_atom, const std::string& client_id,
        uint64_t server_record) -> caf::result<std::string, std::vector<uint64_t>> {
      trace_scope ts{self->state.trace.get(), self, "restored"};
      try {
        auto r = self->state.db->repair(client_id, server_record);
        return {std::move(r.client_id), std::move(r.old_ids)};
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](scopes_atom, const scope_subscription& sub) -> caf::result<ok_atom> {
      try {
        self->state.db->save_subscription(sub);
        return ok_atom::value;
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](prune_atom, const scope_rules& rules,
        const std::vector<std::string>& held) -> caf::result<ok_atom> {
      trace_scope ts{self->state.trace.get(), self, "prune"};
      self->state.owed.emplace_back(rules, held);
      try {
        prune_owed(self->state);
        return ok_atom::value;
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
    [=](epoch_atom, const std::string& epoch) -> caf::result<ok_atom> {
      try {
        self->state.db->set_push_epoch(epoch);
        return ok_atom::value;
      } catch (const local_db_error& e) {
        return make_error(e.error());
      }
    },
  };
}

} // namespace

local_db_actor spawn_local_db(caf::actor_system& sys, std::unique_ptr<local_database> db,
                              std::shared_ptr<trace_sink> trace) {
  // Spawn arguments must be copyable, hence the shared_ptr; the actor is the
  // only owner once spawned.
  return sys.spawn(local_db_impl, std::shared_ptr<local_database>{std::move(db)},
                   std::move(trace));
}

} // namespace memsync
