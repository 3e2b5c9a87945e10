// Fakes shared by the server's actor tests: a storage backend in memory that
// records every transaction and fails on request (a poisoned entity id, or
// the next commit throwing any kind of exception), a replication log whose
// answers the test holds and releases, peers that record what they receive,
// and a watcher that records which actors ended and why.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/common/sqlite.hpp"
#include "actors/server/replication_log.hpp"
#include "actors/storage/storage_backend.hpp"
#include "tests/support/actor_fixture.hpp"

namespace memsync::testing {

// -- a storage backend in memory ----------------------------------------------

/// What a failing call throws.
enum class failure {
  none,
  retryable,     ///< storage_error, retryable
  fatal,         ///< storage_error, not retryable
  sqlite,        ///< sqlite_error (SQLITE_IOERR)
  out_of_memory, ///< std::bad_alloc
  other,         ///< std::runtime_error
};

[[noreturn]] inline void throw_failure(failure f, const std::string& what) {
  switch (f) {
    case failure::retryable: throw storage_error(what, true);
    case failure::fatal: throw storage_error(what, false);
    case failure::sqlite: throw sqlite_error(10, what + ": disk I/O error");
    case failure::out_of_memory: throw std::bad_alloc();
    default: throw std::runtime_error(what);
  }
}

struct fake_db {
  std::string epoch = "epoch-1";
  uint64_t head = 0;
  std::map<std::string, entity> entities;
  std::map<std::string, uint64_t> clients;
  std::map<std::string, std::vector<refusal>> refusals; ///< per client, in id order
  /// Client ids of the pushes of every committed transaction, in order.
  std::vector<std::vector<std::string>> commits;
  /// Entity ids whose write fails (as a database constraint would).
  std::set<std::string> poison;
  failure poison_kind = failure::fatal;
  /// The next commit (only) throws this.
  failure next_commit = failure::none;
  /// Every pull throws this.
  failure pulls = failure::none;
  /// What the last pull asked for (its parts and refetch).
  page_request last_page;
  /// Runs inside commit(), before it takes effect: the commit is in flight.
  std::function<void()> on_commit;
  size_t client_writes = 0; ///< set_last_mutation_id calls
  size_t entity_writes = 0;
};

class fake_tx : public storage_tx {
public:
  explicit fake_tx(std::shared_ptr<fake_db> db)
      : db_(std::move(db)), head_(db_->head), entities_(db_->entities),
        clients_(db_->clients), refusals_(db_->refusals) {}

  uint64_t last_mutation_id(const std::string& client_id) override {
    auto it = clients_.find(client_id);
    return it == clients_.end() ? 0 : it->second;
  }
  void set_last_mutation_id(const std::string& client_id, uint64_t mid) override {
    ++db_->client_writes;
    clients_[client_id] = mid;
  }
  void prefetch(const std::vector<log_push>& pushes) override {
    for (auto& p : pushes)
      group_.push_back(p.request.client_id);
  }
  bool load_entity(const std::string& id, entity& out, std::string& scope) override {
    scope = default_scope;
    auto it = entities_.find(id);
    if (it == entities_.end())
      return false;
    out = it->second;
    return true;
  }
  uint64_t write_entity(const entity& e, const std::string&, const std::string&,
                        uint64_t) override {
    if (db_->poison.count(e.id))
      throw_failure(db_->poison_kind, "constraint violated by " + e.id);
    ++db_->entity_writes;
    auto& stored = entities_[e.id] = e;
    stored.version = ++head_;
    return head_;
  }
  std::vector<refusal> refusals(const std::string& client_id) override {
    auto it = refusals_.find(client_id);
    return it == refusals_.end() ? std::vector<refusal>{} : it->second;
  }
  void add_refusal(const std::string& client_id, const refusal& r) override {
    refusals_[client_id].push_back(r);
  }
  void drop_refusals(const std::string& client_id, uint64_t below) override {
    auto& kept = refusals_[client_id];
    kept.erase(std::remove_if(kept.begin(), kept.end(),
                              [&](const refusal& r) { return r.mutation_id < below; }),
               kept.end());
  }
  void commit() override {
    if (auto f = std::exchange(db_->next_commit, failure::none); f != failure::none)
      throw_failure(f, "commit failed");
    if (auto hook = std::exchange(db_->on_commit, nullptr))
      hook();
    db_->head = head_;
    db_->entities = std::move(entities_);
    db_->clients = std::move(clients_);
    db_->refusals = std::move(refusals_);
    db_->commits.push_back(std::move(group_));
  }

private:
  std::shared_ptr<fake_db> db_;
  uint64_t head_;
  std::map<std::string, entity> entities_;
  std::map<std::string, uint64_t> clients_;
  std::map<std::string, std::vector<refusal>> refusals_;
  std::vector<std::string> group_;
};

class fake_backend : public storage_backend {
public:
  explicit fake_backend(std::shared_ptr<fake_db> db) : db_(std::move(db)) {}
  std::string epoch() override { return db_->epoch; }
  std::string cookie_secret() override { return "fake-secret"; }
  uint64_t head_version() override { return db_->head; }
  std::unique_ptr<storage_tx> begin() override { return std::make_unique<fake_tx>(db_); }
  // The log's actors never read the history (only audits do).
  std::vector<log_entry> read_log(uint64_t, std::size_t) override { return {}; }
  // One page, whatever the limit (paging is the real backends' part).
  pull_reply pull_page(const std::string& client_id, const cookie& since,
                       const page_request& page) override {
    db_->last_page = page;
    if (db_->pulls != failure::none)
      throw_failure(db_->pulls, "pull failed");
    pull_reply out;
    out.reset = since.epoch != db_->epoch;
    for (auto& [id, e] : db_->entities)
      if (out.reset ? !e.deleted : e.version > since.version)
        out.entities.push_back(e);
    auto it = db_->clients.find(client_id);
    out.last_mutation_id = it == db_->clients.end() ? 0 : it->second;
    if (auto kept = db_->refusals.find(client_id); kept != db_->refusals.end())
      out.refused = kept->second;
    out.next = {db_->epoch, db_->head, db_->head};
    return out;
  }

private:
  std::shared_ptr<fake_db> db_;
};

// -- building requests ---------------------------------------------------------

inline change put_change(uint64_t mid, std::string id, std::string data = "{}") {
  return {0, mid, change_kind::put, std::move(id), "note", std::move(data), {}};
}

inline log_push log_push_of(std::string client, std::vector<change> changes,
                            std::string epoch = "epoch-1") {
  return {push_request{std::move(client), std::move(epoch), std::move(changes)}, {}};
}

// -- recording peers -----------------------------------------------------------

/// Every answer a requester got, in arrival order; `error` is empty on success.
template <class T>
struct answer_log {
  struct entry {
    T value;
    caf::error error;
  };
  std::vector<entry> entries;
};

struct poke_record {
  std::vector<poke> pokes;
  std::vector<pushed_answer> answers;
};

/// A client's listener that records what it gets.
inline client_listener_actor spawn_client_recorder(caf::actor_system& sys,
                                                   std::shared_ptr<poke_record> rec) {
  return sys.spawn([rec]() -> client_listener_actor::behavior_type {
    return {
      [rec](poke_atom, const poke& p) { rec->pokes.push_back(p); },
      [rec](pulled_atom, const pushed_answer& a) { rec->answers.push_back(a); },
    };
  });
}

/// A poke listener (as the log sees a session) that records its pokes.
inline poke_listener_actor spawn_poke_recorder(caf::actor_system& sys,
                                               std::shared_ptr<poke_record> rec) {
  return caf::actor_cast<poke_listener_actor>(spawn_client_recorder(sys, std::move(rec)));
}

/// Which watched actors ended, and why.
struct ends {
  std::map<caf::actor_addr, caf::error> reasons;
  template <class Handle>
  bool ended(const Handle& h) const {
    return reasons.count(caf::actor_cast<caf::actor_addr>(h)) > 0;
  }
};

inline sync_errc code_of(const caf::error& err) {
  return to_sync_error(err).code;
}

/// The fixture: actor_test plus requesters and watchers that end with it.
struct server_actor_test : actor_test {
  /// Sends one request to `dest` from an actor of its own and returns where
  /// the answer will be recorded (after sched.run()).
  template <class T, class Dest, class... Ts>
  std::shared_ptr<answer_log<T>> ask(Dest dest, Ts... xs) {
    auto out = std::make_shared<answer_log<T>>();
    keep(sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      self->request(dest, caf::infinite, xs...)
        .then(
          [=](T& value) {
            out->entries.push_back({std::move(value), {}});
          },
          [=](caf::error& err) {
            out->entries.push_back({T{}, std::move(err)});
          });
      return {[](caf::ok_atom) {
      }};
    }));
    return out;
  }

  /// Records when `h` ends, and why, in `ended`.
  template <class Handle>
  void watch(Handle h) {
    auto target = caf::actor_cast<caf::actor>(h);
    auto out = ended;
    keep(sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      self->monitor(target);
      self->set_down_handler(
        [=](const caf::down_msg& msg) { out->reasons[msg.source] = msg.reason; });
      return {[](caf::ok_atom) {
      }};
    }));
  }

  std::shared_ptr<ends> ended = std::make_shared<ends>();
};

} // namespace memsync::testing
