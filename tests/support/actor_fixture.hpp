// A deterministic actor system for unit tests: CAF's test coordinator runs
// actors only when the test says so, on virtual time (see CAF-NOTES).
#pragma once

#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include "messages/registry.hpp"

namespace memsync::testing {

struct actor_test : ::testing::Test {
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    register_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.console", caf::atom("none"));
    return cfg;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scheduler::test_coordinator& sched = dynamic_cast<
    caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::scoped_actor self{sys, true};

  /// Stops every actor handed to `keep` when the test ends: actors that hold
  /// each other's handles never end by themselves, and the actor system's
  /// destructor waits for all of them.
  template <class Handle>
  Handle keep(Handle h) {
    kept_.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  ~actor_test() override {
    for (auto& h : kept_)
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    kept_.clear();
    sched.run();
  }

  /// Moves virtual time forward, fires due timers and runs every actor
  /// until no message is left.
  void advance(caf::timespan dt) {
    sched.advance_time(dt);
    sched.run();
  }

private:
  std::vector<caf::actor> kept_;
};

/// A request a fake peer keeps without answering (a lost or late reply),
/// and who keeps it.
template <class T>
struct held {
  caf::typed_response_promise<T> promise;
  caf::strong_actor_ptr holder;
};

/// Answers a held request from the test body. (response_promise::deliver
/// enqueues with the holder's execution unit, which the test coordinator
/// only provides while the holder runs; from here it would crash.)
template <class T>
void answer(held<T>& h, T value) {
  caf::response_promise& rp = h.promise;
  auto dest = rp.next();
  if (!dest) {
    ADD_FAILURE() << "answered twice";
    return;
  }
  dest->enqueue(h.holder, rp.id().response_id(), caf::make_message(std::move(value)),
                nullptr);
}

} // namespace memsync::testing
