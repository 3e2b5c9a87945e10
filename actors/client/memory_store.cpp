#include "actors/client/memory_store.hpp"

#include <algorithm>
#include <limits>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/weak_intrusive_ptr.hpp>

namespace memsync {

namespace {

struct memory_store_state {
  std::shared_ptr<store_core> core;
  std::shared_ptr<subscriber_list> subs;
  flush_scheduler_actor flusher;
  std::shared_ptr<trace_sink> trace;
  const char* name = "memory_store";
};

using self_ptr = memory_store_actor::stateful_pointer<memory_store_state>;

void forward(self_ptr self, drained d, trace_scope& ts) {
  auto& st = self->state;
  if (ts && !d.changes.empty()) {
    auto now = trace_now_ns();
    for (auto& c : d.changes) {
      ts.item(c.trace.trace_id, c.id);
      c.trace.sent_ns = now;
    }
  }
  if (!d.changes.empty())
    self->send(st.flusher, write_atom::value, std::move(d.changes));
  st.subs->dispatch(d.events);
}

/// Drains the application's writes (the wake-up message, or start-up).
void take_writes(self_ptr self) {
  trace_scope ts{self->state.trace.get(), self, "write"};
  auto d = self->state.core->take();
  if (!d.changes.empty()) // waiting since the earliest write
    ts.sent(d.changes.front().trace.sent_ns);
  forward(self, std::move(d), ts);
}

memory_store_actor::behavior_type
memory_store_impl(self_ptr self, std::shared_ptr<store_core> core,
                  std::shared_ptr<subscriber_list> subs, flush_scheduler_actor flusher,
                  std::shared_ptr<trace_sink> trace) {
  auto& st = self->state;
  st.core = core;
  st.trace = std::move(trace);
  st.subs = std::move(subs);
  st.flusher = flusher;
  // The core wakes us through a weak reference: a strong one would keep
  // this actor alive forever and block the system's shutdown.
  caf::weak_actor_ptr weak{self->ctrl()};
  core->on_first_queued([weak] {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<memory_store_actor>(strong), write_atom::value);
  });
  self->attach_functor([core] { core->on_first_queued(nullptr); });
  self->send(flusher, subscribe_atom::value, caf::actor_cast<flush_listener_actor>(self));
  // Writes made before we were spawned are waiting in the queue.
  take_writes(self);
  return {
    [=](write_atom) { take_writes(self); },
    [=](flushed_atom, const flush_report& report) {
      trace_scope ts{self->state.trace.get(), self, "flushed"};
      auto& st = self->state;
      if (!report.new_client_id.empty())
        st.subs->dispatch(st.core->renumber(report.renumbered));
      st.subs->dispatch(st.core->mark_durable(report.changes, report.durable_seq));
    },
    [=](rebase_atom, const pull_reply& reply) {
      trace_scope ts{self->state.trace.get(), self, "rebase"};
      ts.pull_items(reply);
      forward(self, self->state.core->rebase(reply), ts);
      return ok_atom::value;
    },
    [=](refused_atom, const std::vector<refusal>& refused) {
      trace_scope ts{self->state.trace.get(), self, "refused"};
      self->state.subs->dispatch(self->state.core->refuse(refused));
    },
    [=](hello_atom, const hello_reply& hello) {
      auto clamp = [](uint64_t x) {
        return static_cast<std::size_t>(
          std::min<uint64_t>(x, std::numeric_limits<std::size_t>::max()));
      };
      self->state.core->set_server_limits({clamp(hello.max_data_bytes),
                                           clamp(hello.max_data_depth)},
                                          clamp(hello.max_push_bytes));
    },
    [=](grants_atom, grants& granted, scope_rules& rules) {
      self->state.core->set_scopes(std::move(granted), std::move(rules));
    },
    [=](prune_atom, const scope_rules& rules, const std::vector<std::string>& held) {
      trace_scope ts{self->state.trace.get(), self, "prune"};
      forward(self, self->state.core->prune(rules, held), ts);
      return ok_atom::value;
    },
    [=](flush_atom) {
      trace_scope ts{self->state.trace.get(), self, "flush"};
      // Drain first: the flush scheduler must see every write before the
      // request (messages from one sender arrive in order).
      forward(self, self->state.core->take(), ts);
      return self->delegate(self->state.flusher, flush_atom::value);
    },
  };
}

} // namespace

memory_store_actor
spawn_memory_store(caf::actor_system& sys, std::shared_ptr<store_core> core,
                   std::shared_ptr<subscriber_list> subs, flush_scheduler_actor flusher,
                   std::shared_ptr<trace_sink> trace) {
  return sys.spawn(memory_store_impl, std::move(core), std::move(subs),
                   std::move(flusher), std::move(trace));
}

} // namespace memsync
