// network_syncer alone, on virtual time, against scripted peers that
// implement the exact interfaces: a connector (fails while the "server" is
// down), a gateway (hands out a new session per hello), sessions that answer
// per script (reply, fail, or never answer), a local_db with an outbox the
// test controls, a memory store and a flush scheduler that only record.
#include "actors/client/network_syncer.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "tests/support/actor_fixture.hpp"

using namespace memsync;
using memsync::testing::answer;
using memsync::testing::held;
using namespace std::chrono_literals;

namespace {

using time_point = caf::actor_clock::time_point;

/// What a scripted peer does with the next request of a kind.
enum class mode {
  reply, ///< answer at once
  fail,  ///< answer with an error at once
  hold,  ///< keep the promise and never answer (a lost reply)
};

template <class T>
struct recorded {
  T msg;
  size_t session = 0; ///< index of the fake session that got it
  time_point at;
};

/// Shared by every fake peer and the test: the script and the record.
struct script {
  caf::actor_clock* clock = nullptr;
  time_point now() const { return clock->now(); }

  std::vector<std::string> events; ///< every request, in arrival order

  // -- connector --------------------------------------------------------------
  bool server_down = false;
  std::vector<time_point> connects;

  // -- gateway ----------------------------------------------------------------
  std::string server_id = "server-A";
  std::vector<hello_request> hellos;
  std::vector<client_listener_actor> listeners;
  std::vector<session_actor> sessions;

  // -- sessions (one fake server behind them) ----------------------------------
  cookie server_cookie{"e1", 9, 90};
  uint64_t server_lmid = 0;
  std::string server_epoch = "e1";
  std::vector<entity> server_entities;
  /// Entities per pull page (0: every answer in one page); pages are cut
  /// when asked for, from the entities above the request's `after`.
  size_t page_size = 0;
  bool answers_reset = false;
  /// As the server does: a push in its epoch whose first new id is not the
  /// one after its record is refused whole as a gap.
  bool refuses_gaps = false;
  std::map<uint64_t, sync_error> refuse; ///< mutation id -> reason
  /// The refusals the server keeps; every pull reply carries them.
  std::vector<refusal> kept_refusals;
  hello_reply hello; ///< the limits the fake gateway states
  std::deque<mode> push_script;
  std::deque<mode> pull_script;
  std::vector<recorded<push_request>> pushes;
  std::vector<recorded<pull_request>> pulls;
  std::vector<held<push_reply>> held_pushes;
  std::vector<held<pull_reply>> held_pulls;

  // -- scopes (every hello and pull reply states them) ---------------------------
  grants granted = all_grants();
  scope_rules rules;
  /// Patterns the token may read nothing of: requested ones come back in
  /// pull_reply.forbidden.
  std::vector<std::string> unreadable;
  using prune = std::pair<scope_rules, std::vector<std::string>>;
  std::vector<scope_subscription> db_saves;
  /// What local_db holds of the subscription: the last save, with the
  /// progress of the rebases stored since.
  scope_subscription db_stored;
  /// The patterns each rebase named, and those of held rebases (stored
  /// once released).
  std::vector<std::vector<std::string>> db_progressed;
  std::vector<std::pair<std::vector<std::string>, uint64_t>> held_db_progress;
  void store_progress(const std::vector<std::string>& progressed, uint64_t version) {
    for (auto& e : db_stored.entries)
      if (std::find(progressed.begin(), progressed.end(), e.pattern) != progressed.end())
        e.since = version;
  }
  std::vector<prune> db_prunes;
  std::deque<mode> db_prune_script; ///< fail: a full disk
  std::vector<prune> store_prunes;
  bool hold_store_prunes = false; ///< answered by the test (held_store_prunes)
  std::vector<held<ok_atom>> held_store_prunes;
  std::vector<grants> store_grants;

  // -- local_db ---------------------------------------------------------------
  struct outbox_read {
    uint64_t after;
    uint64_t max_changes;
    uint64_t max_bytes;
  };
  std::vector<change> outbox;
  uint64_t highest_mid = 0;
  uint64_t pushed_mid = 0; ///< highest id handed out for a push
  size_t outbox_max_requests = 0;
  std::deque<mode> outbox_max_script;
  std::vector<held<uint64_t>> held_outbox_max;
  std::vector<outbox_read> outbox_reads;
  std::vector<pull_reply> db_rebases;
  std::deque<mode> db_rebase_script;
  std::vector<held<ok_atom>> held_db_rebases;
  std::vector<std::string> db_epochs;

  // -- memory store -----------------------------------------------------------
  std::vector<pull_reply> store_rebases;
  std::vector<std::vector<refusal>> store_refused;
  std::vector<hello_reply> store_hellos; ///< handed to the memory store

  // -- flush scheduler --------------------------------------------------------
  std::vector<flush_listener_actor> flush_listeners;
  /// restored_atom requests: (client id, server record).
  std::vector<std::pair<std::string, uint64_t>> repairs;
  /// The id a repair moves to: the outbox is renumbered from 1 and the
  /// server knows nothing of the new id.
  std::string moved_id = "client-1-fresh";

  // -- a client of `sync` -----------------------------------------------------
  bool synced = false;
  size_t pulls_when_synced = 0;
  uint64_t store_lmid_when_synced = 0;
  std::string sync_failure;

  /// More requests than any test needs: the fake server stops answering.
  static constexpr size_t max_requests = 100;

  static mode next(std::deque<mode>& q) {
    if (q.empty())
      return mode::reply;
    auto m = q.front();
    q.pop_front();
    return m;
  }
};

using script_ptr = std::shared_ptr<script>;

std::string session_name(size_t index) {
  return "session" + std::to_string(index);
}

session_actor::behavior_type fake_session(session_actor::pointer self, script_ptr s,
                                          size_t index) {
  return {
    [=](push_atom, push_request& req) -> caf::result<push_reply> {
      s->events.push_back(session_name(index) + ".push");
      s->pushes.push_back({req, index, s->now()});
      // A syncer pushing in a loop fails the test instead of hanging it.
      if (s->pushes.size() > script::max_requests)
        s->push_script.push_front(mode::hold);
      switch (script::next(s->push_script)) {
        case mode::fail:
          return make_error(sync_errc::invalid_request,
                            "a push is already in flight for this client");
        case mode::hold: {
          auto rp = self->make_response_promise<push_reply>();
          s->held_pushes.push_back({rp, caf::actor_cast<caf::strong_actor_ptr>(self)});
          return rp;
        }
        case mode::reply: break;
      }
      if (s->refuses_gaps && req.epoch == s->server_epoch)
        for (auto& c : req.changes)
          if (c.mutation_id > s->server_lmid) {
            if (c.mutation_id != s->server_lmid + 1)
              return make_error(sync_errc::mutation_gap, "a gap");
            break;
          }
      push_reply reply;
      bool applied = false;
      for (auto& c : req.changes) {
        if (c.mutation_id <= s->server_lmid)
          continue; // a duplicate: skipped, acknowledged again
        s->server_lmid = c.mutation_id;
        if (auto it = s->refuse.find(c.mutation_id); it != s->refuse.end()) {
          reply.refused.push_back({c.mutation_id, it->second});
          s->kept_refusals.push_back(reply.refused.back());
        } else
          applied = true;
      }
      if (applied)
        ++s->server_cookie.version;
      reply.last_mutation_id = s->server_lmid;
      reply.epoch = s->server_epoch;
      return reply;
    },
    [=](pull_atom, pull_request& req) -> caf::result<pull_reply> {
      s->events.push_back(session_name(index) + ".pull");
      s->pulls.push_back({req, index, s->now()});
      if (s->pulls.size() > script::max_requests)
        s->pull_script.push_front(mode::hold);
      switch (script::next(s->pull_script)) {
        case mode::fail: return make_error(sync_errc::unavailable, "pull failed");
        case mode::hold: {
          auto rp = self->make_response_promise<pull_reply>();
          s->held_pulls.push_back({rp, caf::actor_cast<caf::strong_actor_ptr>(self)});
          return rp;
        }
        case mode::reply: break;
      }
      pull_reply out{s->server_cookie, s->server_lmid, s->answers_reset, {}};
      out.refused = s->kept_refusals;
      out.granted = s->granted;
      out.rules = s->rules;
      for (auto& e : req.scopes)
        if (std::count(s->unreadable.begin(), s->unreadable.end(), e.pattern))
          out.forbidden.push_back(e.pattern);
      if (s->page_size == 0) {
        out.entities = s->server_entities;
        return out;
      }
      auto rest = s->server_entities;
      std::erase_if(rest, [&](const entity& e) { return e.version <= req.after; });
      std::sort(rest.begin(), rest.end(),
                [](const entity& a, const entity& b) { return a.version < b.version; });
      if (req.after == 0)
        out.total = rest.size();
      out.complete = rest.size() <= s->page_size;
      rest.resize(std::min(rest.size(), s->page_size));
      out.entities = std::move(rest);
      return out;
    },
    [=](poke_atom, const poke&) {},
  };
}

gateway_actor::behavior_type fake_gateway(gateway_actor::pointer self, script_ptr s) {
  return {
    [=](hello_atom, hello_request& req,
        client_listener_actor& listener) -> caf::result<hello_reply, session_actor> {
      s->events.push_back("gateway.hello");
      s->hellos.push_back(req);
      s->listeners.push_back(listener);
      auto index = s->sessions.size();
      auto session = self->system().spawn(fake_session, s, index);
      s->sessions.push_back(session);
      hello_reply reply = s->hello;
      reply.granted = s->granted;
      reply.rules = s->rules;
      reply.server_id = s->server_id;
      reply.epoch = s->server_epoch;
      return caf::make_result(std::move(reply), std::move(session));
    },
  };
}

connector_actor::behavior_type fake_connector(connector_actor::pointer, script_ptr s,
                                              gateway_actor gateway) {
  return {
    [=](connect_atom) -> caf::result<gateway_actor> {
      s->events.push_back("connector.connect");
      s->connects.push_back(s->now());
      if (s->server_down)
        return make_error(sync_errc::unavailable, "server down");
      return gateway;
    },
  };
}

local_db_actor::behavior_type fake_db(local_db_actor::pointer self, script_ptr s) {
  return {
    [=](flush_atom, uint64_t, const std::vector<change>& batch) {
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < batch.size(); ++i)
        ids.push_back(++s->highest_mid);
      return ids;
    },
    [=](rebase_atom, const pull_reply& reply,
        const std::vector<std::string>& progressed) -> caf::result<ok_atom> {
      s->events.push_back("db.rebase");
      s->db_rebases.push_back(reply);
      s->db_progressed.push_back(progressed);
      if (script::next(s->db_rebase_script) == mode::hold) {
        auto rp = self->make_response_promise<ok_atom>();
        s->held_db_rebases.push_back({rp, caf::actor_cast<caf::strong_actor_ptr>(self)});
        s->held_db_progress.emplace_back(progressed, reply.next.version);
        return rp;
      }
      s->store_progress(progressed, reply.next.version);
      return ok_atom::value;
    },
    [=](outbox_atom, uint64_t after, uint64_t max_changes, uint64_t max_bytes) {
      s->events.push_back("db.outbox");
      s->outbox_reads.push_back({after, max_changes, max_bytes});
      std::vector<change> out;
      for (auto& c : s->outbox)
        if (c.mutation_id > after && out.size() < max_changes)
          out.push_back(c);
      if (!out.empty())
        s->pushed_mid = std::max(s->pushed_mid, out.back().mutation_id);
      return out;
    },
    [=](pushed_atom) { return s->pushed_mid; },
    [=](restored_atom, const std::string& id,
        uint64_t) -> caf::result<std::string, std::vector<uint64_t>> {
      return {id, std::vector<uint64_t>{}}; // the fake flusher plays the repair
    },
    [=](epoch_atom, const std::string& epoch) {
      s->db_epochs.push_back(epoch);
      return ok_atom::value;
    },
    [=](scopes_atom, const scope_subscription& sub) {
      s->db_saves.push_back(sub);
      s->db_stored = sub;
      return ok_atom::value;
    },
    [=](prune_atom, const scope_rules& rules,
        const std::vector<std::string>& held) -> caf::result<ok_atom> {
      s->events.push_back("db.prune");
      s->db_prunes.emplace_back(rules, held);
      if (script::next(s->db_prune_script) == mode::fail)
        return make_error(sync_errc::db_error, "cannot prune local database: disk full");
      return ok_atom::value;
    },
    [=](outbox_max_atom) -> caf::result<uint64_t> {
      ++s->outbox_max_requests;
      if (script::next(s->outbox_max_script) == mode::hold) {
        auto rp = self->make_response_promise<uint64_t>();
        s->held_outbox_max.push_back({rp, caf::actor_cast<caf::strong_actor_ptr>(self)});
        return rp;
      }
      return s->highest_mid;
    },
  };
}

memory_store_actor::behavior_type fake_store(memory_store_actor::pointer self,
                                             script_ptr s) {
  return {
    [=](write_atom) {},
    [=](flushed_atom, const flush_report&) {},
    [=](rebase_atom, const pull_reply& reply) {
      s->events.push_back("store.rebase");
      s->store_rebases.push_back(reply);
      return ok_atom::value;
    },
    [=](flush_atom) { return uint64_t{0}; },
    [=](hello_atom, const hello_reply& h) { s->store_hellos.push_back(h); },
    [=](refused_atom, const std::vector<refusal>& refused) {
      s->events.push_back("store.refused");
      s->store_refused.push_back(refused);
    },
    [=](grants_atom, const grants& g, const scope_rules&) {
      s->store_grants.push_back(g);
    },
    [=](prune_atom, const scope_rules& rules,
        const std::vector<std::string>& held) -> caf::result<ok_atom> {
      s->events.push_back("store.prune");
      s->store_prunes.emplace_back(rules, held);
      if (!s->hold_store_prunes)
        return ok_atom::value;
      auto rp = self->make_response_promise<ok_atom>();
      s->held_store_prunes.push_back({rp, caf::actor_cast<caf::strong_actor_ptr>(self)});
      return rp;
    },
  };
}

flush_scheduler_actor::behavior_type fake_flusher(flush_scheduler_actor::pointer self,
                                                  script_ptr s) {
  return {
    [=](write_atom, const std::vector<change>&) {},
    [=](subscribe_atom, const flush_listener_actor& listener) {
      s->flush_listeners.push_back(listener);
    },
    [=](flush_atom) { return uint64_t{0}; },
    [=](status_atom) { return std::string{}; },
    [=](restored_atom, const std::string& id, uint64_t record) {
      s->repairs.emplace_back(id, record);
      flush_report report;
      report.new_client_id = s->moved_id;
      for (auto& c : s->outbox) {
        report.renumbered.push_back(c.mutation_id);
        c.mutation_id = report.renumbered.size();
      }
      s->highest_mid = s->outbox.size();
      s->pushed_mid = 0;
      s->server_lmid = 0;
      for (auto& listener : s->flush_listeners)
        self->send(listener, flushed_atom::value, report);
      return s->moved_id;
    },
  };
}

/// Asks the syncer for `sync` and notes when (and with what around) it
/// gets the answer.
caf::behavior sync_client(caf::event_based_actor* self, network_syncer_actor syncer,
                          script_ptr s) {
  self->request(syncer, caf::infinite, sync_atom::value)
    .then(
      [=](ok_atom) {
        s->synced = true;
        s->pulls_when_synced = s->pulls.size();
        if (!s->store_rebases.empty())
          s->store_lmid_when_synced = s->store_rebases.back().last_mutation_id;
      },
      [=](caf::error& err) { s->sync_failure = to_sync_error(err).describe(); });
  return {[](int) {
  }};
}

change outbox_change(uint64_t mid) {
  change c;
  c.seq = mid;
  c.mutation_id = mid;
  c.kind = change_kind::put;
  c.id = "e" + std::to_string(mid);
  c.type = "note";
  c.data = R"({"n":)" + std::to_string(mid) + "}";
  return c;
}

std::vector<uint64_t> mids(const push_request& req) {
  std::vector<uint64_t> out;
  for (auto& c : req.changes)
    out.push_back(c.mutation_id);
  return out;
}

bool same_cookie(const cookie& a, const cookie& b) {
  return a.epoch == b.epoch && a.version == b.version && a.commit == b.commit;
}

std::string show(const cookie& c) {
  return "{" + c.epoch + "," + std::to_string(c.version) + "," + std::to_string(c.commit)
         + "}";
}

size_t index_of(const std::vector<std::string>& events, const std::string& x,
                size_t from = 0) {
  auto it = std::find(events.begin() + std::min(from, events.size()), events.end(), x);
  return static_cast<size_t>(it - events.begin());
}

long long ms(caf::timespan x) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
}

struct network_syncer_test : memsync::testing::actor_test {
  script_ptr s = std::make_shared<script>();
  network_syncer_actor syncer;
  sync_settings settings;

  network_syncer_test() {
    s->clock = &sched.clock();
    settings.token = "token-1";
    settings.push_debounce = 50ms;
    settings.pull_interval = 60s; // longer than any test: no fallback pulls
    settings.retry_min = 100ms;
    settings.retry_max = 800ms;
    settings.request_timeout = 2s;
    settings.max_push_changes = 50;
    settings.max_push_bytes = 4096;
  }

  ~network_syncer_test() override {
    s->held_pushes.clear();
    s->held_pulls.clear();
    s->held_db_rebases.clear();
    s->held_store_prunes.clear();
    s->held_outbox_max.clear();
    for (auto& session : s->sessions)
      caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
    s->listeners.clear();
    s->flush_listeners.clear();
  }

  syncer_config config() {
    syncer_config cfg;
    cfg.client_id = "client-1";
    cfg.cursor = cookie{"e1", 7, 70};
    cfg.last_mutation_id = 0;
    cfg.push_epoch = "e1";
    cfg.settings = settings;
    return cfg;
  }

  void start(syncer_config cfg) {
    auto gateway = keep(sys.spawn(fake_gateway, s));
    auto connector = keep(sys.spawn(fake_connector, s, gateway));
    auto db = keep(sys.spawn(fake_db, s));
    auto store = keep(sys.spawn(fake_store, s));
    auto flusher = keep(sys.spawn(fake_flusher, s));
    syncer = keep(
      spawn_network_syncer(sys, std::move(cfg), connector, db, store, flusher));
    sched.run();
  }

  time_point now() { return sched.clock().now(); }

  /// Advances virtual time in steps of 1 ms until `pred` holds; false if it
  /// still does not after `limit`.
  template <class Pred>
  bool advance_until(Pred pred, caf::timespan limit) {
    caf::timespan waited{0};
    while (!pred()) {
      if (waited >= limit)
        return false;
      advance(1ms);
      waited += 1ms;
    }
    return true;
  }

  /// The flush scheduler reports that these mutation ids became durable
  /// (and the outbox holds them).
  void flushed(std::vector<uint64_t> ids) {
    flush_report report;
    for (auto id : ids) {
      auto c = outbox_change(id);
      auto known = std::any_of(s->outbox.begin(), s->outbox.end(),
                               [&](const change& x) { return x.mutation_id == id; });
      if (!known)
        s->outbox.push_back(c);
      s->highest_mid = std::max(s->highest_mid, id);
      report.changes.push_back({c.id, c.seq, id});
      report.durable_seq = std::max(report.durable_seq, c.seq);
    }
    if (s->flush_listeners.empty()) {
      ADD_FAILURE() << "the syncer did not subscribe to the flush scheduler";
      return;
    }
    self->send(s->flush_listeners.back(), flushed_atom::value, report);
    sched.run();
  }

  /// The server pokes through the listener the syncer named in its hello.
  void poke_with(uint64_t version) {
    if (s->listeners.empty()) {
      ADD_FAILURE() << "no hello yet: nobody to poke";
      return;
    }
    self->send(s->listeners.back(), poke_atom::value, poke{version});
    sched.run();
  }

  sync_status status() {
    sync_status out;
    auto rh = self->request(syncer, caf::infinite, status_atom::value);
    sched.run();
    rh.receive([&](sync_status& st) { out = std::move(st); },
               [&](caf::error& err) { ADD_FAILURE() << sys.render(err); });
    return out;
  }

  void kill_session(size_t index) {
    caf::anon_send_exit(s->sessions.at(index), caf::exit_reason::kill);
    sched.run();
  }
};

} // namespace

// -- 1. connecting -------------------------------------------------------------

TEST_F(network_syncer_test,
       connects_at_start_says_hello_once_then_pulls_with_the_stored_cookie) {
  start(config());
  ASSERT_EQ(s->connects.size(), 1u);
  ASSERT_EQ(s->hellos.size(), 1u);
  EXPECT_EQ(s->hellos[0].protocol, protocol_version);
  EXPECT_EQ(s->hellos[0].client_id, "client-1");
  EXPECT_EQ(s->hellos[0].token, "token-1");
  ASSERT_EQ(s->listeners.size(), 1u);
  // The listener is this connection's relay (see the poke at the end).
  ASSERT_EQ(s->pulls.size(), 1u);
  EXPECT_EQ(s->pulls[0].session, 0u);
  EXPECT_EQ(s->pulls[0].msg.client_id, "client-1");
  EXPECT_TRUE(same_cookie(s->pulls[0].msg.since, cookie{"e1", 7, 70}))
    << show(s->pulls[0].msg.since);
  // Nothing durable: no outbox read, no push.
  EXPECT_EQ(s->events,
            (std::vector<std::string>{"connector.connect", "gateway.hello",
                                      "session0.pull", "db.rebase", "store.rebase"}));
  advance(10s);
  EXPECT_EQ(s->connects.size(), 1u);
  EXPECT_EQ(s->hellos.size(), 1u);
  EXPECT_EQ(s->pulls.size(), 1u);
  EXPECT_TRUE(s->pushes.empty());
  poke_with(s->server_cookie.version + 1); // pokes reach the syncer
  EXPECT_EQ(s->pulls.size(), 2u);
}

// -- 2. backoff ---------------------------------------------------------------

TEST_F(network_syncer_test,
       reconnect_attempts_back_off_exponentially_with_jitter_up_to_retry_max) {
  // Not a power-of-two multiple of retry_min: the cap itself must apply.
  settings.retry_max = 500ms;
  s->server_down = true;
  start(config());
  ASSERT_EQ(s->connects.size(), 1u); // the first attempt is immediate
  EXPECT_TRUE(s->hellos.empty());
  const size_t retries = 9;
  ASSERT_TRUE(advance_until([&] { return s->connects.size() == 1 + retries; }, 20s))
    << "only " << s->connects.size() << " attempts";
  // 100, 200, 400, then capped at 500 ms; each within [d/2, d].
  for (size_t k = 1; k <= retries; ++k) {
    auto expected = settings.retry_min;
    for (size_t i = 1; i < k; ++i)
      expected = std::min(expected * 2, settings.retry_max);
    caf::timespan gap = s->connects[k] - s->connects[k - 1];
    EXPECT_GE(gap, expected / 2) << "retry " << k << " after " << ms(gap) << " ms";
    EXPECT_LE(gap, expected) << "retry " << k << " after " << ms(gap) << " ms";
    EXPECT_LE(gap, settings.retry_max) << "retry " << k;
  }
  auto st = status();
  EXPECT_FALSE(st.connected);
  EXPECT_EQ(st.connects, 0u);
  EXPECT_NE(st.last_error.find("server down"), std::string::npos) << st.last_error;
  EXPECT_TRUE(s->hellos.empty());
  // The server comes back: the next attempt connects...
  s->server_down = false;
  ASSERT_TRUE(advance_until([&] { return s->hellos.size() == 1; }, settings.retry_max));
  EXPECT_TRUE(status().connected);
  // ...and the backoff starts again from retry_min after a success.
  auto attempts = s->connects.size();
  auto lost = now();
  kill_session(0);
  ASSERT_TRUE(advance_until([&] { return s->connects.size() == attempts + 1; },
                            2 * settings.retry_max));
  caf::timespan gap = s->connects.back() - lost;
  EXPECT_GE(gap, settings.retry_min / 2) << ms(gap) << " ms";
  EXPECT_LE(gap, settings.retry_min) << ms(gap) << " ms";
}

// -- 3. pull coalescing ---------------------------------------------------------

TEST_F(network_syncer_test,
       pokes_during_a_pull_cause_exactly_one_more_pull_and_stale_pokes_none) {
  s->pull_script = {mode::hold};
  start(config());
  ASSERT_EQ(s->pulls.size(), 1u);
  ASSERT_EQ(s->held_pulls.size(), 1u);
  poke_with(10);
  poke_with(11);
  poke_with(12);
  EXPECT_EQ(s->pulls.size(), 1u); // never two pulls at once
  s->server_cookie = cookie{"e1", 12, 120};
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  ASSERT_EQ(s->pulls.size(), 2u); // one more, not three
  EXPECT_TRUE(same_cookie(s->pulls[1].msg.since, cookie{"e1", 12, 120}))
    << show(s->pulls[1].msg.since);
  advance(5s);
  EXPECT_EQ(s->pulls.size(), 2u);
  // Pokes not above the cookie's version: nothing new to fetch.
  poke_with(12);
  poke_with(5);
  EXPECT_EQ(s->pulls.size(), 2u);
  // Control: a newer version does pull.
  poke_with(13);
  EXPECT_EQ(s->pulls.size(), 3u);
}

TEST_F(network_syncer_test,
       a_failed_pull_and_the_poke_behind_it_are_retried_after_a_backoff_pause) {
  s->pull_script = {mode::hold};
  start(config());
  ASSERT_EQ(s->pulls.size(), 1u);
  poke_with(s->server_cookie.version + 1); // waits behind the pull in flight
  advance(settings.request_timeout);       // the pull times out
  EXPECT_EQ(s->pulls.size(), 1u);
  EXPECT_FALSE(status().last_error.empty());
  advance(settings.retry_min / 2 - 1ms); // the earliest a jittered retry may come
  EXPECT_EQ(s->pulls.size(), 1u) << "retried without a pause";
  advance(settings.retry_min / 2 + 1ms); // long before the fallback tick (60 s)
  ASSERT_EQ(s->pulls.size(), 2u) << "the failed pull was never retried";
  advance(5s);
  EXPECT_EQ(s->pulls.size(), 2u) << "a retry is not a periodic timer";
}

// -- 4. pull results: local_db, then the memory store ----------------------------

TEST_F(network_syncer_test,
       pull_results_go_to_local_db_first_then_to_the_store_and_advance_the_cookie) {
  s->server_cookie = cookie{"e1", 12, 120};
  s->server_entities = {entity{"a", "note", R"({"v":1})", 12, false}};
  s->db_rebase_script = {mode::hold};
  start(config());
  ASSERT_EQ(s->db_rebases.size(), 1u);
  EXPECT_TRUE(same_cookie(s->db_rebases[0].next, s->server_cookie));
  EXPECT_EQ(s->db_rebases[0].entities, s->server_entities);
  EXPECT_TRUE(s->store_rebases.empty()) << "visible before it is durable";
  ASSERT_EQ(s->held_db_rebases.size(), 1u);
  answer(s->held_db_rebases[0], ok_atom{});
  sched.run();
  ASSERT_EQ(s->store_rebases.size(), 1u);
  EXPECT_TRUE(same_cookie(s->store_rebases[0].next, s->server_cookie));
  EXPECT_EQ(s->store_rebases[0].entities, s->server_entities);
  EXPECT_LT(index_of(s->events, "db.rebase"), index_of(s->events, "store.rebase"));
  EXPECT_TRUE(same_cookie(status().cursor, cookie{"e1", 12, 120}));
  // The next pull starts from the new cookie.
  poke_with(13);
  ASSERT_EQ(s->pulls.size(), 2u);
  EXPECT_TRUE(same_cookie(s->pulls[1].msg.since, cookie{"e1", 12, 120}))
    << show(s->pulls[1].msg.since);
}

TEST_F(network_syncer_test, pulled_entities_are_checked_against_the_server_data_limits) {
  // Both are far within our own defaults (1 MiB, 64 levels); the server
  // said 20 bytes and 2 levels.
  s->hello.max_data_bytes = 20;
  s->hello.max_data_depth = 2;
  entity small{"a", "note", R"({"v":1})", 12, false};
  entity big{"b", "note", R"({"text":"far more than twenty"})", 12, false};
  entity deep{"c", "note", R"({"a":{"b":{}}})", 12, false};
  s->server_cookie = cookie{"e1", 12, 120};
  s->server_entities = {small, big, deep};
  start(config());
  ASSERT_EQ(s->db_rebases.size(), 1u);
  EXPECT_EQ(s->db_rebases[0].entities, (std::vector<entity>{small}));
  EXPECT_EQ(status().last_error, "ignored 2 invalid entities from the server");
}

// -- 4b. answers in pages --------------------------------------------------------

std::vector<entity> numbered_entities(uint64_t first_version, size_t n) {
  std::vector<entity> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back({"p" + std::to_string(i), "note", R"({"i":)" + std::to_string(i) + "}",
                   first_version + i, false});
  return out;
}

TEST_F(network_syncer_test,
       a_paged_answer_is_applied_whole_after_its_last_page_and_resumes_after_a_drop) {
  s->server_entities = numbered_entities(10, 5); // versions 10..14
  s->server_cookie = cookie{"e1", 14, 140};
  s->page_size = 2;
  s->pull_script = {mode::reply, mode::hold}; // the second page is lost
  start(config());
  ASSERT_EQ(s->pulls.size(), 2u);
  EXPECT_EQ(s->pulls[0].msg.after, 0u);
  EXPECT_EQ(s->pulls[1].msg.after, 11u) << "the next page starts after the first";
  EXPECT_TRUE(same_cookie(s->pulls[1].msg.since, cookie{"e1", 7, 70}))
    << "every page of one answer asks with the same cookie";
  EXPECT_TRUE(s->db_rebases.empty()) << "a part of an answer was applied";
  auto st = status();
  EXPECT_EQ(st.pull_received, 2u);
  EXPECT_EQ(st.pull_total, 5u);
  EXPECT_TRUE(same_cookie(st.cursor, cookie{"e1", 7, 70}));
  // The connection drops with the second page in flight: the next one
  // resumes after what arrived.
  kill_session(0);
  ASSERT_TRUE(
    advance_until([&] { return !s->db_rebases.empty(); }, 2 * settings.retry_max));
  ASSERT_GE(s->pulls.size(), 4u);
  EXPECT_EQ(s->pulls[2].session, 1u);
  EXPECT_EQ(s->pulls[2].msg.after, 11u) << "the new connection started over";
  EXPECT_EQ(s->pulls[3].msg.after, 13u);
  ASSERT_EQ(s->db_rebases.size(), 1u);
  EXPECT_EQ(s->db_rebases[0].entities, s->server_entities);
  ASSERT_EQ(s->store_rebases.size(), 1u);
  EXPECT_EQ(s->store_rebases[0].entities, s->server_entities);
  st = status();
  EXPECT_TRUE(same_cookie(st.cursor, cookie{"e1", 14, 140}));
  EXPECT_EQ(st.pull_received, 0u);
  EXPECT_EQ(st.pull_total, 0u);
}

TEST_F(network_syncer_test,
       an_entity_rewritten_between_pages_arrives_once_as_its_last_copy) {
  s->server_entities = numbered_entities(10, 4); // p0..p3 at 10..13
  s->server_cookie = cookie{"e1", 13, 130};
  s->page_size = 2;
  s->pull_script = {mode::reply, mode::hold};
  start(config());
  ASSERT_EQ(s->pulls.size(), 2u);
  // After the first page (p0, p1): p0 is rewritten and p1 deleted.
  s->server_entities[0] = {"p0", "note", R"({"i":"new"})", 14, false};
  s->server_entities[1] = {"p1", "note", "", 15, true};
  s->server_cookie = cookie{"e1", 15, 150};
  kill_session(0);
  ASSERT_TRUE(
    advance_until([&] { return !s->db_rebases.empty(); }, 2 * settings.retry_max));
  std::map<std::string, entity> got;
  for (auto& e : s->db_rebases.at(0).entities)
    EXPECT_TRUE(got.emplace(e.id, e).second) << e.id << " arrived twice";
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got["p0"].data, R"({"i":"new"})");
  EXPECT_TRUE(got["p1"].deleted);
  EXPECT_EQ(got["p2"].version, 12u);
  EXPECT_TRUE(same_cookie(s->db_rebases[0].next, cookie{"e1", 15, 150}));
}

TEST_F(network_syncer_test, a_paged_answer_starts_over_when_the_server_history_changes) {
  s->server_entities = numbered_entities(10, 4);
  s->server_cookie = cookie{"e1", 13, 130};
  s->page_size = 2;
  s->pull_script = {mode::reply, mode::hold};
  start(config());
  ASSERT_EQ(s->pulls.size(), 2u);
  // The server was restored from an older copy: a new epoch, whose answer
  // is a reset. The first page of the old history must not be mixed in.
  s->server_epoch = "e2";
  s->server_cookie = cookie{"e2", 11, 110};
  s->server_entities = numbered_entities(10, 4);
  s->server_entities.resize(2);
  s->server_entities[0].data = R"({"i":"e2"})";
  s->answers_reset = true;
  kill_session(0);
  ASSERT_TRUE(
    advance_until([&] { return !s->db_rebases.empty(); }, 2 * settings.retry_max));
  auto& pulls = s->pulls;
  ASSERT_GE(pulls.size(), 4u);
  EXPECT_EQ(pulls[2].msg.after, 11u); // resumed, then found the history changed
  EXPECT_EQ(pulls[3].msg.after, 0u) << "did not start over";
  auto& applied = s->db_rebases.at(0);
  EXPECT_TRUE(applied.reset);
  EXPECT_EQ(applied.entities, s->server_entities);
}

TEST_F(network_syncer_test,
       an_answer_going_in_when_the_connection_drops_is_pulled_after_never_before) {
  s->server_entities = numbered_entities(10, 3);
  s->server_cookie = cookie{"e1", 12, 120};
  s->db_rebase_script = {mode::hold};
  auto cfg = config();
  cfg.cursor = cookie{}; // a new client: its first pull is from 0
  start(cfg);
  ASSERT_EQ(s->held_db_rebases.size(), 1u);
  kill_session(0);
  ASSERT_TRUE(
    advance_until([&] { return s->sessions.size() == 2; }, 2 * settings.retry_max));
  sched.run();
  // A pull now would ask from 0 again (live entities only) while the data
  // gets what the first answer brought: what the server deleted since would
  // stay (found by the storm load test). It waits for that answer ...
  EXPECT_EQ(s->pulls.size(), 1u);
  answer(s->held_db_rebases[0], ok_atom{});
  sched.run();
  // ... and asks from the cookie that answer brought.
  ASSERT_EQ(s->pulls.size(), 2u);
  EXPECT_TRUE(same_cookie(s->pulls[1].msg.since, s->server_cookie))
    << show(s->pulls[1].msg.since);
  ASSERT_EQ(s->pulls[1].msg.scopes.size(), 1u);
  EXPECT_EQ(s->pulls[1].msg.scopes[0].since, s->server_cookie.version);
}

TEST_F(network_syncer_test, a_slow_local_apply_is_not_a_failed_pull) {
  s->server_entities = numbered_entities(10, 3);
  s->server_cookie = cookie{"e1", 12, 120};
  s->db_rebase_script = {mode::hold};
  start(config());
  ASSERT_EQ(s->held_db_rebases.size(), 1u);
  // Local work that takes many request timeouts (a large state) is waited
  // for: no error, no second pull of the same answer.
  advance(10 * settings.request_timeout);
  EXPECT_EQ(s->pulls.size(), 1u);
  EXPECT_TRUE(status().last_error.empty()) << status().last_error;
  answer(s->held_db_rebases[0], ok_atom{});
  sched.run();
  ASSERT_EQ(s->store_rebases.size(), 1u);
  EXPECT_TRUE(same_cookie(status().cursor, cookie{"e1", 12, 120}));
}

TEST_F(network_syncer_test, pulls_again_every_pull_interval_without_pokes) {
  settings.pull_interval = 5s;
  start(config());
  ASSERT_EQ(s->pulls.size(), 1u);
  advance(5s - 1ms);
  EXPECT_EQ(s->pulls.size(), 1u);
  advance(1ms);
  EXPECT_EQ(s->pulls.size(), 2u);
  advance(5s);
  EXPECT_EQ(s->pulls.size(), 3u);
}

// -- 5. pushing -----------------------------------------------------------------

TEST_F(network_syncer_test,
       pushes_the_outbox_above_the_acknowledged_id_after_the_debounce) {
  auto cfg = config();
  cfg.last_mutation_id = 2;
  s->server_lmid = 2;
  s->outbox = {outbox_change(1), outbox_change(2)};
  s->highest_mid = 2;
  s->pushed_mid = 2; // pushed in an earlier run
  s->refuse[3] = sync_error{sync_errc::invalid_json, "bad data"};
  start(cfg);
  // Already acknowledged: nothing to push.
  flushed({1, 2});
  advance(4 * settings.push_debounce);
  EXPECT_TRUE(s->outbox_reads.empty());
  EXPECT_TRUE(s->pushes.empty());
  // New durable changes: pushed after the debounce.
  flushed({3, 4});
  advance(settings.push_debounce - 1ms);
  EXPECT_TRUE(s->outbox_reads.empty());
  EXPECT_TRUE(s->pushes.empty());
  advance(1ms);
  ASSERT_EQ(s->outbox_reads.size(), 1u);
  EXPECT_EQ(s->outbox_reads[0].after, 2u);
  EXPECT_EQ(s->outbox_reads[0].max_changes, 50u);
  EXPECT_EQ(s->outbox_reads[0].max_bytes, 4096u);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.client_id, "client-1");
  EXPECT_EQ(s->pushes[0].msg.epoch, "e1");
  EXPECT_EQ(mids(s->pushes[0].msg), (std::vector<uint64_t>{3, 4}));
  // The refusal in the reply reaches the memory store.
  ASSERT_EQ(s->store_refused.size(), 1u);
  ASSERT_EQ(s->store_refused[0].size(), 1u);
  EXPECT_EQ(s->store_refused[0][0].mutation_id, 3u);
  EXPECT_EQ(s->store_refused[0][0].reason.code, sync_errc::invalid_json);
  EXPECT_EQ(s->store_refused[0][0].reason.message, "bad data");
  EXPECT_EQ(status().acknowledged, 4u);
  // The acknowledged id moves what the next push asks for.
  flushed({5});
  advance(settings.push_debounce);
  ASSERT_EQ(s->outbox_reads.size(), 2u);
  EXPECT_EQ(s->outbox_reads[1].after, 4u);
  ASSERT_EQ(s->pushes.size(), 2u);
  EXPECT_EQ(mids(s->pushes[1].msg), (std::vector<uint64_t>{5}));
  EXPECT_EQ(s->store_refused.size(), 1u); // nothing new refused
  advance(5s);
  EXPECT_EQ(s->pushes.size(), 2u);
}

// The server refused mutation 1, but the reply naming the refusal was lost
// (the push timed out). The pull that confirms mutation 1 carries the
// refusal: the store must hear of it once, and before the rebase that drops
// the change.
TEST_F(network_syncer_test,
       a_refusal_only_in_a_pull_reaches_the_store_once_before_the_rebase) {
  start(config());
  s->push_script = {mode::hold};
  flushed({1, 2});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  // Applied by the server; its reply never arrives.
  sync_error gone{sync_errc::not_found, "patch of a missing entity"};
  s->server_lmid = 2;
  s->kept_refusals = {{1, gone}};
  ++s->server_cookie.version;
  auto rebases = s->store_rebases.size();
  ASSERT_TRUE(advance_until([&] { return s->store_rebases.size() > rebases; },
                            settings.request_timeout + settings.retry_max))
    << "no pull after the lost push reply";
  ASSERT_EQ(s->store_refused.size(), 1u);
  ASSERT_EQ(s->store_refused[0].size(), 1u);
  EXPECT_EQ(s->store_refused[0][0].mutation_id, 1u);
  EXPECT_EQ(s->store_refused[0][0].reason, gone);
  // Reported before the rebase that confirms mutation 1, never after it.
  auto refused_at = index_of(s->events, "store.refused");
  auto rebases_before = static_cast<size_t>(
    std::count(s->events.begin(), s->events.begin() + refused_at, "store.rebase"));
  ASSERT_LT(rebases_before, s->store_rebases.size());
  for (size_t i = 0; i < rebases_before; ++i)
    EXPECT_EQ(s->store_rebases[i].last_mutation_id, 0u);
  EXPECT_EQ(s->store_rebases[rebases_before].last_mutation_id, 2u);
  auto st = status();
  ASSERT_EQ(st.refused.size(), 1u);
  EXPECT_EQ(st.refused[0].mutation_id, 1u);
  // Later pulls carry it until the next push starts above it: not again.
  auto pulls = s->pulls.size();
  poke_with(s->server_cookie.version + 1);
  poke_with(s->server_cookie.version + 2);
  EXPECT_EQ(s->pulls.size(), pulls + 2);
  EXPECT_EQ(s->store_refused.size(), 1u);
  EXPECT_EQ(status().refused.size(), 1u);
}

TEST_F(network_syncer_test,
       a_refusal_reported_by_one_reply_is_not_reported_by_the_other) {
  start(config());
  sync_error bad{sync_errc::invalid_json, "bad data"};
  // First by the push reply, then carried by a pull.
  s->refuse[1] = bad;
  flushed({1});
  advance(settings.push_debounce);
  ASSERT_EQ(s->store_refused.size(), 1u);
  auto pulls = s->pulls.size();
  poke_with(++s->server_cookie.version);
  ASSERT_EQ(s->pulls.size(), pulls + 1);
  EXPECT_EQ(s->store_refused.size(), 1u) << "the pull reported it again";
  // First by a pull (the push reply is late), then by the push reply.
  s->push_script = {mode::hold};
  flushed({2});
  advance(settings.push_debounce);
  ASSERT_EQ(s->held_pushes.size(), 1u);
  s->server_lmid = 2;
  s->kept_refusals.push_back({2, bad});
  poke_with(++s->server_cookie.version);
  ASSERT_EQ(s->store_refused.size(), 2u);
  ASSERT_EQ(s->store_refused[1].size(), 1u) << "only the new one";
  EXPECT_EQ(s->store_refused[1][0].mutation_id, 2u);
  answer(s->held_pushes[0], push_reply{2, {{2, bad}}, "e1"});
  sched.run();
  EXPECT_EQ(status().acknowledged, 2u);
  EXPECT_EQ(s->store_refused.size(), 2u) << "the push reply reported it again";
  EXPECT_EQ(status().refused.size(), 2u);
}

TEST_F(network_syncer_test, pushes_are_sized_by_the_server_limits_when_they_are_smaller) {
  s->hello.max_push_changes = 2;
  s->hello.max_push_bytes = 1000;
  start(config()); // our own: 50 changes, 4096 bytes
  flushed({1, 2, 3, 4, 5});
  advance(settings.push_debounce);
  ASSERT_TRUE(advance_until([&] { return status().acknowledged == 5; }, 1s));
  ASSERT_FALSE(s->outbox_reads.empty());
  for (auto& r : s->outbox_reads) {
    EXPECT_EQ(r.max_changes, 2u);
    EXPECT_EQ(r.max_bytes, 1000u);
  }
  ASSERT_EQ(s->pushes.size(), 3u);
  EXPECT_EQ(mids(s->pushes[0].msg), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(mids(s->pushes[1].msg), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(mids(s->pushes[2].msg), (std::vector<uint64_t>{5}));
}

TEST_F(network_syncer_test, pushes_keep_our_own_limits_when_the_server_allows_more) {
  s->hello.max_push_changes = 1000;
  s->hello.max_push_bytes = 1 << 20;
  start(config());
  flushed({1});
  advance(settings.push_debounce);
  ASSERT_EQ(s->outbox_reads.size(), 1u);
  EXPECT_EQ(s->outbox_reads[0].max_changes, 50u);
  EXPECT_EQ(s->outbox_reads[0].max_bytes, 4096u);
}

// The store refuses writes the server could never take: it needs the
// server's limits as soon as the hello is answered.
TEST_F(network_syncer_test, the_servers_limits_reach_the_memory_store_with_its_hello) {
  s->hello.max_data_bytes = 2048;
  s->hello.max_data_depth = 8;
  s->hello.max_push_bytes = 4096;
  start(config());
  ASSERT_EQ(s->store_hellos.size(), 1u);
  EXPECT_EQ(s->store_hellos[0].max_data_bytes, 2048u);
  EXPECT_EQ(s->store_hellos[0].max_data_depth, 8u);
  EXPECT_EQ(s->store_hellos[0].max_push_bytes, 4096u);
}

TEST_F(network_syncer_test,
       a_change_alone_over_the_server_push_byte_limit_is_named_and_not_pushed) {
  auto c = outbox_change(1);
  s->hello.max_push_bytes = push_bytes(c) - 1;
  start(config());
  flushed({1});
  advance(settings.push_debounce);
  EXPECT_TRUE(s->pushes.empty());
  auto err = status().last_error;
  EXPECT_NE(err.find("mutation 1 counts " + std::to_string(push_bytes(c)) + " bytes"),
            std::string::npos)
    << err;
  EXPECT_NE(err.find("limit of " + std::to_string(push_bytes(c) - 1) + " bytes"),
            std::string::npos)
    << err;
  // Looked at again only after backoff pauses, never pushed.
  auto reads = s->outbox_reads.size();
  advance(2 * settings.retry_min);
  EXPECT_TRUE(s->pushes.empty());
  EXPECT_LE(s->outbox_reads.size(), reads + 2);
  EXPECT_EQ(status().acknowledged, 0u);
}

TEST_F(network_syncer_test, a_change_that_fits_the_server_limit_exactly_is_pushed) {
  auto c = outbox_change(1);
  s->hello.max_push_bytes = push_bytes(c);
  start(config());
  flushed({1});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(status().acknowledged, 1u);
}

TEST_F(network_syncer_test,
       a_new_push_epoch_from_the_server_is_stored_and_used_next_time) {
  s->server_epoch = "e2";
  start(config());
  flushed({1});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.epoch, "e1");
  EXPECT_EQ(s->db_epochs, (std::vector<std::string>{"e2"}));
  flushed({2});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 2u);
  EXPECT_EQ(s->pushes[1].msg.epoch, "e2");
  EXPECT_EQ(s->db_epochs.size(), 1u); // unchanged epoch: not stored again
}

TEST_F(network_syncer_test,
       a_reset_back_into_the_epoch_of_the_last_acknowledged_push_forgets_that_epoch) {
  // Pushes 3 to 5 were acknowledged in e1; the server was restored from a
  // copy of e1, renewed to e2, and we were reset into e2 (its record of us:
  // 2) without pushing; then it was restored from the copy of e1 again.
  // Its record (2) is what e2 acknowledged, but pushing 6 as from e1 would
  // be refused as a gap for good.
  auto cfg = config();
  cfg.cursor = cookie{"e2", 4, 40};
  cfg.last_mutation_id = 2;
  s->pushed_mid = 5;
  s->server_cookie = cookie{"e1", 3, 30};
  s->server_lmid = 2;
  s->answers_reset = true;
  start(cfg);
  EXPECT_EQ(s->db_epochs, (std::vector<std::string>{""}));
  flushed({6});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.epoch, "");
}

TEST_F(network_syncer_test,
       a_record_below_the_acknowledged_one_in_the_push_epoch_forgets_that_epoch) {
  // Restored from a copy of e1 that lacks mutations 3 to 5, and no cookie
  // revealed it (they wrote no version): the server's record of us went
  // back within e1. Pushing 6 as from e1 would be refused as a gap for good.
  auto cfg = config();
  cfg.last_mutation_id = 5;
  s->pushed_mid = 5;
  s->server_lmid = 2;
  start(cfg);
  EXPECT_EQ(s->db_epochs, (std::vector<std::string>{""}));
  flushed({6});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.epoch, "");
}

TEST_F(network_syncer_test,
       changes_acknowledged_above_a_record_that_went_back_are_pushed_again) {
  start(config());
  flushed({1, 2});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u); // acknowledged, still in the outbox
  // The server is restored from a copy without them before any pull
  // confirmed them; no cookie reveals it. They must reach it again, even if
  // the client writes nothing more.
  s->server_lmid = 0;
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->pushes.size(), 2u);
  ASSERT_EQ(s->pushes[1].msg.changes.size(), 2u);
  EXPECT_EQ(s->pushes[1].msg.changes[0].mutation_id, 1u);
  EXPECT_EQ(s->pushes[1].msg.epoch, "");
}

TEST_F(network_syncer_test, a_gap_in_the_push_epoch_forgets_that_epoch) {
  // Simulator, seed 6350: 17 to 32 were acknowledged in e1, then the client
  // restarted, which forgets what was acknowledged, and the server was
  // restored from a copy of e1 whose record of us is 0; our cookie is one
  // that copy issued. A pull had confirmed 1 to 16, which left the outbox:
  // within e1, pushing 17 is a gap, refused every time.
  auto cfg = config();
  s->pushed_mid = 32;
  s->refuses_gaps = true;
  start(cfg);
  EXPECT_TRUE(s->db_epochs.empty()); // nothing showed the copy yet
  flushed({17, 18});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.epoch, "e1");
  EXPECT_EQ(s->db_epochs, (std::vector<std::string>{""}));
  ASSERT_TRUE(advance_until([&] { return s->pushes.size() == 2; }, settings.retry_max));
  EXPECT_EQ(s->pushes[1].msg.epoch, "");
  EXPECT_EQ(s->pushes[1].msg.changes.front().mutation_id, 17u);
  EXPECT_EQ(s->server_lmid, 18u);
}

TEST_F(network_syncer_test, a_record_as_acknowledged_keeps_the_push_epoch) {
  auto cfg = config();
  cfg.last_mutation_id = 5;
  s->pushed_mid = 5;
  s->server_lmid = 5;
  start(cfg);
  flushed({6});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.epoch, "e1");
  EXPECT_TRUE(s->db_epochs.empty());
}

TEST_F(network_syncer_test, a_reset_into_another_epoch_keeps_the_push_epoch) {
  auto cfg = config();
  cfg.last_mutation_id = 5;
  s->pushed_mid = 5;
  s->server_cookie = cookie{"e3", 3, 30};
  s->server_epoch = "e3";
  s->server_lmid = 2;
  s->answers_reset = true;
  start(cfg);
  flushed({6});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.epoch, "e1"); // another epoch already: a gap is allowed
}

// -- 6. lost push reply ----------------------------------------------------------

TEST_F(network_syncer_test,
       a_push_whose_reply_is_lost_is_sent_again_after_the_request_timeout) {
  start(config());
  s->push_script = {mode::hold};
  flushed({1, 2});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  auto sent = s->pushes[0].at;
  advance(settings.request_timeout - 1ms);
  EXPECT_EQ(s->pushes.size(), 1u) << "pushed again before the timeout";
  ASSERT_TRUE(
    advance_until([&] { return s->pushes.size() == 2; }, settings.retry_min + 1ms));
  caf::timespan gap = s->pushes[1].at - sent;
  EXPECT_GE(gap, settings.request_timeout);
  EXPECT_LE(gap, settings.request_timeout + settings.retry_min);
  EXPECT_EQ(mids(s->pushes[1].msg), mids(s->pushes[0].msg));
  EXPECT_EQ(mids(s->pushes[1].msg), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(s->pushes[1].msg.epoch, s->pushes[0].msg.epoch);
  EXPECT_EQ(s->pushes[1].session, 0u); // same session, no reconnect
  EXPECT_EQ(s->connects.size(), 1u);
  advance(5s);
  EXPECT_EQ(s->pushes.size(), 2u);
  EXPECT_EQ(status().acknowledged, 2u);
}

TEST_F(network_syncer_test, a_failed_push_is_retried_only_after_a_backoff_pause) {
  // E.g. the session refuses a push while the previous one is still in the
  // server's log: retrying at once only hammers the server.
  start(config());
  s->push_script = {mode::fail, mode::fail};
  flushed({1});
  advance(settings.push_debounce);
  ASSERT_GE(s->pushes.size(), 1u);
  auto failed = s->pushes[0].at;
  EXPECT_EQ(s->pushes.size(), 1u)
    << "pushed " << s->pushes.size() << " times at the instant of the first failure";
  ASSERT_TRUE(advance_until([&] { return s->pushes.size() >= 3; }, 2s));
  caf::timespan first = s->pushes[1].at - failed;
  caf::timespan second = s->pushes[2].at - s->pushes[1].at;
  EXPECT_GE(first, settings.retry_min / 2) << ms(first) << " ms";
  EXPECT_LE(first, settings.retry_min) << ms(first) << " ms";
  EXPECT_GE(second, settings.retry_min) << ms(second) << " ms";
  EXPECT_LE(second, 2 * settings.retry_min) << ms(second) << " ms";
  EXPECT_EQ(mids(s->pushes[2].msg), (std::vector<uint64_t>{1}));
  EXPECT_EQ(status().acknowledged, 1u);
}

// -- 7. reconnecting -------------------------------------------------------------

TEST_F(network_syncer_test,
       a_dead_session_means_reconnect_after_backoff_then_pull_and_push_again) {
  start(config());
  ASSERT_EQ(s->sessions.size(), 1u);
  s->push_script = {mode::hold};
  flushed({1, 2});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  ASSERT_TRUE(status().connected);
  auto lost = now();
  auto events_before = s->events.size();
  kill_session(0);
  auto st = status();
  EXPECT_FALSE(st.connected);
  EXPECT_FALSE(st.last_error.empty());
  EXPECT_EQ(s->connects.size(), 1u); // not at once
  ASSERT_TRUE(
    advance_until([&] { return s->connects.size() == 2; }, 2 * settings.retry_max));
  caf::timespan gap = s->connects[1] - lost;
  EXPECT_GE(gap, settings.retry_min / 2) << ms(gap) << " ms";
  EXPECT_LE(gap, settings.retry_min) << ms(gap) << " ms";
  ASSERT_EQ(s->hellos.size(), 2u);
  EXPECT_EQ(s->hellos[1].client_id, "client-1");
  ASSERT_EQ(s->sessions.size(), 2u);
  // connect, hello, then a pull on the new session from the current cookie.
  std::vector<std::string> after(s->events.begin() + events_before, s->events.end());
  ASSERT_GE(after.size(), 3u);
  EXPECT_EQ(after[0], "connector.connect");
  EXPECT_EQ(after[1], "gateway.hello");
  EXPECT_EQ(after[2], "session1.pull");
  auto pull = std::find_if(s->pulls.begin(), s->pulls.end(),
                           [](auto& p) { return p.session == 1; });
  ASSERT_NE(pull, s->pulls.end());
  EXPECT_TRUE(same_cookie(pull->msg.since, cookie{"e1", 9, 90})) << show(pull->msg.since);
  // The push that was in flight goes again, on the new session.
  ASSERT_EQ(s->pushes.size(), 2u);
  EXPECT_EQ(s->pushes[1].session, 1u);
  EXPECT_EQ(mids(s->pushes[1].msg), (std::vector<uint64_t>{1, 2}));
  st = status();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.connects, 2u);
  EXPECT_EQ(st.acknowledged, 2u);
  // The old push's timeout changes nothing.
  advance(2 * settings.request_timeout);
  EXPECT_EQ(s->pushes.size(), 2u);
  EXPECT_EQ(s->connects.size(), 2u);
}

TEST_F(network_syncer_test,
       push_failures_on_a_healthy_connection_do_not_slow_down_the_next_reconnect) {
  // Three refused pushes, then one acknowledged: the connection is healthy
  // again, so losing it later is a first failure.
  start(config());
  s->push_script = {mode::fail, mode::fail, mode::fail};
  flushed({1});
  ASSERT_TRUE(advance_until([&] { return status().acknowledged == 1; }, 5s));
  EXPECT_EQ(s->pushes.size(), 4u);
  advance(1s); // all good for a while
  auto lost = now();
  kill_session(0);
  ASSERT_TRUE(
    advance_until([&] { return s->connects.size() == 2; }, 2 * settings.retry_max));
  caf::timespan gap = s->connects[1] - lost;
  // The first failure since the last success: [retry_min / 2, retry_min].
  EXPECT_GE(gap, settings.retry_min / 2) << ms(gap) << " ms";
  EXPECT_LE(gap, settings.retry_min) << ms(gap) << " ms";
}

// -- 8. sync -----------------------------------------------------------------

TEST_F(network_syncer_test,
       sync_replies_only_after_a_pull_confirms_every_durable_mutation) {
  start(config());
  ASSERT_EQ(s->pulls.size(), 1u);
  // Durable before the request, not yet reported by the flush scheduler.
  s->outbox = {outbox_change(1), outbox_change(2), outbox_change(3)};
  s->highest_mid = 3;
  s->push_script = {mode::hold};
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  ASSERT_EQ(s->pushes.size(), 1u); // no debounce for a sync
  EXPECT_EQ(mids(s->pushes[0].msg), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_FALSE(s->synced) << "replied before the push was acknowledged";
  // The server applies the push and acknowledges it.
  s->server_lmid = 3;
  s->server_cookie.version = 10;
  ASSERT_EQ(s->held_pushes.size(), 1u);
  answer(s->held_pushes[0], push_reply{3, {}, "e1"});
  sched.run();
  EXPECT_EQ(status().acknowledged, 3u);
  EXPECT_FALSE(s->synced) << "replied before a pull confirmed the push";
  auto pulls = s->pulls.size();
  // The server pokes after its commit; the pull brings last_mutation_id 3.
  poke_with(10);
  ASSERT_EQ(s->pulls.size(), pulls + 1);
  EXPECT_TRUE(s->synced);
  EXPECT_EQ(s->pulls_when_synced, pulls + 1);
  EXPECT_EQ(s->store_lmid_when_synced, 3u);
  EXPECT_EQ(status().last_mutation_id, 3u);
  EXPECT_TRUE(s->sync_failure.empty()) << s->sync_failure;
}

TEST_F(network_syncer_test, sync_with_everything_confirmed_still_waits_for_one_pull) {
  start(config());
  s->pull_script = {mode::hold};
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  ASSERT_EQ(s->held_pulls.size(), 1u);
  EXPECT_TRUE(s->pushes.empty());
  EXPECT_FALSE(s->synced);
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  EXPECT_TRUE(s->synced);
}

TEST_F(network_syncer_test, a_pull_under_way_when_sync_is_asked_does_not_complete_it) {
  start(config());
  s->pull_script = {mode::hold, mode::hold};
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->held_pulls.size(), 1u); // asked for before the sync
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  // Its answer may predate what other clients had acknowledged when the
  // sync was asked: the sync waits for the pull asked for after it.
  EXPECT_FALSE(s->synced);
  ASSERT_EQ(s->held_pulls.size(), 2u);
  answer(s->held_pulls[1], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  EXPECT_TRUE(s->synced);
}

// -- 9. status ---------------------------------------------------------------

TEST_F(network_syncer_test, status_reports_connection_cookie_ids_and_refusals) {
  auto cfg = config();
  cfg.last_mutation_id = 2;
  s->pushed_mid = 2; // pushed in an earlier run
  s->server_down = true;
  start(cfg);
  auto st = status();
  EXPECT_FALSE(st.connected);
  EXPECT_TRUE(same_cookie(st.cursor, cookie{"e1", 7, 70})) << show(st.cursor);
  EXPECT_EQ(st.last_mutation_id, 2u);
  EXPECT_EQ(st.acknowledged, 2u);
  EXPECT_EQ(st.connects, 0u);
  EXPECT_TRUE(st.refused.empty());
  EXPECT_NE(st.last_error.find("server down"), std::string::npos) << st.last_error;

  s->server_down = false;
  s->server_lmid = 2;
  ASSERT_TRUE(advance_until([&] { return s->hellos.size() == 1; }, settings.retry_max));
  st = status();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.server_id, "server-A");
  EXPECT_TRUE(same_cookie(st.cursor, cookie{"e1", 9, 90})) << show(st.cursor);
  EXPECT_EQ(st.last_mutation_id, 2u);
  EXPECT_EQ(st.acknowledged, 2u);
  EXPECT_EQ(st.connects, 1u);

  s->refuse[3] = sync_error{sync_errc::too_large, "too big"};
  flushed({3, 4});
  advance(settings.push_debounce);
  ASSERT_EQ(s->pushes.size(), 1u);
  st = status();
  EXPECT_EQ(st.acknowledged, 4u);
  EXPECT_EQ(st.last_mutation_id, 2u); // not pulled back yet
  ASSERT_EQ(st.refused.size(), 1u);
  EXPECT_EQ(st.refused[0].mutation_id, 3u);
  EXPECT_EQ(st.refused[0].reason.code, sync_errc::too_large);
  EXPECT_EQ(st.refused[0].reason.message, "too big");

  poke_with(s->server_cookie.version);
  st = status();
  EXPECT_EQ(st.last_mutation_id, 4u);
  EXPECT_TRUE(same_cookie(st.cursor, s->server_cookie)) << show(st.cursor);
  EXPECT_EQ(st.cursor.version, 10u);

  kill_session(0);
  st = status();
  EXPECT_FALSE(st.connected);
  EXPECT_EQ(st.connects, 1u);
  EXPECT_EQ(st.refused.size(), 1u); // kept across the disconnect
}

// -- going offline on request (load tests) ----------------------------------

TEST_F(network_syncer_test,
       going_offline_drops_the_connection_and_stops_reconnecting_until_back_online) {
  start(config());
  ASSERT_EQ(s->hellos.size(), 1u);
  ASSERT_EQ(s->pulls.size(), 1u);
  auto old_listener = s->listeners.back();
  self->send(syncer, online_atom::value, false);
  sched.run();
  EXPECT_FALSE(status().connected);
  // The connection's poke listener is gone, so its session learns that the
  // client left, and pokes no longer cause pulls.
  poke_with(s->server_cookie.version + 1);
  EXPECT_EQ(s->pulls.size(), 1u);
  // Writes keep becoming durable offline; nothing is pushed, no reconnects.
  flushed({1, 2});
  advance(30s);
  EXPECT_EQ(s->connects.size(), 1u);
  EXPECT_TRUE(s->pushes.empty());
  EXPECT_EQ(s->pulls.size(), 1u);
  // Back online: one new connection with a new listener, then pull and push.
  self->send(syncer, online_atom::value, true);
  sched.run();
  ASSERT_EQ(s->hellos.size(), 2u);
  EXPECT_NE(s->listeners.back().address(), old_listener.address());
  EXPECT_EQ(s->pulls.size(), 2u);
  ASSERT_EQ(s->pushes.size(), 1u);
  std::vector<uint64_t> pushed;
  for (auto& c : s->pushes[0].msg.changes)
    pushed.push_back(c.mutation_id);
  EXPECT_EQ(pushed, (std::vector<uint64_t>{1, 2}));
  auto st = status();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.connects, 2u);
  EXPECT_EQ(st.layers.pushes, 1u);
  EXPECT_EQ(st.layers.pulls, 2u);
  EXPECT_EQ(st.layers.disconnects, 0u); // going offline is not a lost connection
  EXPECT_EQ(st.layers.push_round_trip.count, 1u);
}

TEST_F(network_syncer_test,
       going_offline_while_waiting_to_reconnect_cancels_the_pending_attempt) {
  s->server_down = true;
  start(config());
  ASSERT_EQ(s->connects.size(), 1u); // failed: a reconnect is armed
  self->send(syncer, online_atom::value, false);
  sched.run();
  s->server_down = false;
  advance(30s); // the armed reconnect fires while offline: no attempt
  EXPECT_EQ(s->connects.size(), 1u);
  EXPECT_TRUE(s->hellos.empty());
  EXPECT_FALSE(status().connected);
  // Back online: one attempt at once, and it connects.
  self->send(syncer, online_atom::value, true);
  sched.run();
  EXPECT_EQ(s->connects.size(), 2u);
  EXPECT_EQ(s->hellos.size(), 1u);
  EXPECT_TRUE(status().connected);
}

TEST_F(network_syncer_test, layer_stats_count_errors_by_kind_and_pulls_caused_by_pokes) {
  start(config());
  s->pull_script = {mode::hold};
  poke_with(s->server_cookie.version + 1); // the pull it causes is never answered
  advance(settings.request_timeout + 1ms);
  auto st = status();
  EXPECT_EQ(st.layers.errors["timeout"], 1u) << st.last_error;
  EXPECT_EQ(st.layers.pulls, 1u); // the one at start
  EXPECT_EQ(st.layers.poke_to_pull.count, 0u);
  poke_with(s->server_cookie.version + 2);
  st = status();
  EXPECT_EQ(st.layers.pulls, 2u);
  EXPECT_EQ(st.layers.poke_to_pull.count, 1u);
  EXPECT_EQ(st.layers.apply.count, 2u);
}

// -- 10. a database restored from an older copy ----------------------------------

// The database was restored: it pushed up to 5, then a newer copy of it
// pushed 6 and 7, and since the restore it wrote two changes that got 6 and
// 7 again. The first pull shows the server's record 7: nothing is pushed or
// confirmed under the old id; the flush scheduler has local_db move to a new
// id and renumber; the syncer reconnects as the new id, pushes the two
// changes as 1 and 2, and a `sync` asked before completes on them.
TEST_F(network_syncer_test,
       a_record_above_every_pushed_id_moves_to_a_new_client_id_and_pushes_all_again) {
  auto cfg = config();
  cfg.last_mutation_id = 5;
  s->pushed_mid = 5;
  s->outbox = {outbox_change(6), outbox_change(7)};
  s->highest_mid = 7;
  s->server_lmid = 7;
  s->pull_script = {mode::hold};
  start(cfg);
  ASSERT_EQ(s->held_pulls.size(), 1u);
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  EXPECT_TRUE(s->pushes.empty()) << "pushed before the server's record was checked";
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 7, false, {}});
  sched.run();
  ASSERT_EQ(s->repairs.size(), 1u);
  EXPECT_EQ(s->repairs[0], (std::pair<std::string, uint64_t>{"client-1", 7}));
  // Only pulls of the new id were applied (the server knows nothing of it).
  for (auto& r : s->db_rebases)
    EXPECT_EQ(r.last_mutation_id, 0u) << "a pull that drops 6 and 7 was applied";
  for (auto& r : s->store_rebases)
    EXPECT_EQ(r.last_mutation_id, 0u) << "a pull that drops 6 and 7 was applied";
  for (auto& p : s->pushes)
    EXPECT_NE(p.msg.client_id, "client-1") << "pushed under the old id";
  ASSERT_EQ(s->hellos.size(), 2u);
  EXPECT_EQ(s->hellos[1].client_id, "client-1-fresh");
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.client_id, "client-1-fresh");
  EXPECT_EQ(mids(s->pushes[0].msg), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(s->pushes[0].msg.changes[0].id, "e6");
  EXPECT_EQ(s->pushes[0].msg.changes[1].id, "e7");
  auto st = status();
  EXPECT_EQ(st.client_id, "client-1-fresh");
  EXPECT_EQ(st.acknowledged, 2u);
  EXPECT_NE(st.last_error.find("older copy"), std::string::npos) << st.last_error;
  EXPECT_FALSE(s->synced);
  poke_with(s->server_cookie.version);
  EXPECT_TRUE(s->synced) << s->sync_failure;
  ASSERT_FALSE(s->pulls.empty());
  EXPECT_EQ(s->pulls.back().msg.client_id, "client-1-fresh");
  EXPECT_EQ(s->store_lmid_when_synced, 2u);
  EXPECT_EQ(s->repairs.size(), 1u);
}

// Replies whose record the database can explain never start a repair.
TEST_F(network_syncer_test, a_record_at_or_below_the_pushed_ids_changes_nothing) {
  auto cfg = config();
  cfg.last_mutation_id = 3;
  s->pushed_mid = 5; // 4 and 5 went out, their replies were lost
  s->outbox = {outbox_change(4), outbox_change(5)};
  s->highest_mid = 5;
  s->server_lmid = 5;
  start(cfg);
  EXPECT_TRUE(s->repairs.empty());
  ASSERT_FALSE(s->db_rebases.empty());
  EXPECT_EQ(s->db_rebases[0].last_mutation_id, 5u);
  EXPECT_EQ(status().client_id, "client-1");
}

// A `sync` whose outbox reading may be in either numbering (it arrives while
// the move is under way, here already renumbered: 2) waits until the
// numbering is known, and completes only once the renumbered changes are
// pushed and confirmed under the new id, not at once.
TEST_F(network_syncer_test, a_sync_during_the_move_waits_for_the_renumbered_changes) {
  auto cfg = config();
  cfg.last_mutation_id = 5;
  s->pushed_mid = 5;
  s->outbox = {outbox_change(6), outbox_change(7)};
  s->highest_mid = 7;
  s->server_lmid = 7;
  s->pull_script = {mode::hold};
  start(cfg);
  ASSERT_EQ(s->held_pulls.size(), 1u);
  s->outbox_max_script = {mode::hold};
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  ASSERT_EQ(s->held_outbox_max.size(), 1u);
  // The pull that reveals the restore, then the outbox reading, in that order.
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 7, false, {}});
  answer(s->held_outbox_max[0], uint64_t{2});
  sched.run();
  ASSERT_EQ(s->repairs.size(), 1u);
  ASSERT_EQ(s->pushes.size(), 1u);
  EXPECT_EQ(s->pushes[0].msg.client_id, "client-1-fresh");
  EXPECT_FALSE(s->synced) << "synced before the renumbered changes were confirmed";
  poke_with(s->server_cookie.version);
  EXPECT_TRUE(s->synced) << s->sync_failure;
  EXPECT_EQ(s->store_lmid_when_synced, 2u);
}

// -- scopes ----------------------------------------------------------------------

namespace {

std::vector<std::string> patterns(const std::vector<scope_since>& xs) {
  std::vector<std::string> out;
  for (auto& x : xs)
    out.push_back(x.pattern);
  return out;
}

uint64_t since_of(const std::vector<scope_since>& xs, const std::string& pattern) {
  for (auto& x : xs)
    if (x.pattern == pattern)
      return x.since;
  ADD_FAILURE() << pattern << " is not in the request";
  return 0;
}

using strings = std::vector<std::string>;

} // namespace

struct network_syncer_scopes_test : network_syncer_test {
  syncer_config scoped(std::vector<std::string> scopes) {
    auto cfg = config();
    cfg.scopes = std::move(scopes);
    return cfg;
  }

  /// subscribe_atom or unsub_atom with `pattern`: the syncer's answer.
  template <class Atom>
  sync_error ask(Atom atom, const std::string& pattern) {
    sync_error out{sync_errc::timeout, "no answer"};
    auto rh = self->request(syncer, caf::infinite, atom, pattern);
    sched.run();
    rh.receive([&](ok_atom) { out = {}; },
               [&](caf::error& err) { out = to_sync_error(err); });
    return out;
  }

  strings scopes() {
    strings out;
    auto rh = self->request(syncer, caf::infinite, scopes_atom::value);
    sched.run();
    rh.receive([&](strings& xs) { out = std::move(xs); },
               [&](caf::error& err) { ADD_FAILURE() << sys.render(err); });
    return out;
  }

  void stop_syncer() {
    caf::anon_send_exit(syncer, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Started on team-a, then subscribed to `pattern`: the answer of its
  /// pull from 0 is held on its way into local_db.
  void subscribed_with_answer_held(const std::string& pattern) {
    start(scoped({"team-a"}));
    s->db_rebase_script = {mode::hold};
    EXPECT_TRUE(ask(subscribe_atom::value, pattern).ok());
    EXPECT_EQ(s->held_db_rebases.size(), 1u);
  }
};

TEST_F(network_syncer_scopes_test,
       the_configured_scopes_are_pulled_with_the_progress_of_the_cookie_at_first) {
  start(scoped({"team-a", "team-b"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  auto& req = s->pulls[0].msg;
  // A database from before scopes held every scope up to its cookie.
  EXPECT_EQ(patterns(req.scopes), (strings{"team-a", "team-b"}));
  EXPECT_EQ(since_of(req.scopes, "team-a"), 7u);
  EXPECT_EQ(since_of(req.scopes, "team-b"), 7u);
  EXPECT_TRUE(req.known_reads.empty()); // "every scope"
  EXPECT_EQ(scopes(), (strings{"team-a", "team-b"}));
  EXPECT_EQ(status().scopes, (strings{"team-a", "team-b"}));
}

TEST_F(network_syncer_scopes_test,
       subscribe_fetches_the_new_scope_from_0_while_the_others_keep_their_progress) {
  start(scoped({"team-a"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  // The data of before (every scope) was narrowed to team-a after that pull.
  ASSERT_EQ(s->store_prunes.size(), 1u);
  EXPECT_EQ(s->store_prunes[0].second, (strings{"team-a"}));
  EXPECT_TRUE(ask(subscribe_atom::value, "team-b").ok());
  ASSERT_EQ(s->pulls.size(), 2u); // the subscribe pulled at once
  auto& req = s->pulls[1].msg;
  EXPECT_EQ(patterns(req.scopes), (strings{"team-a", "team-b"}));
  EXPECT_EQ(since_of(req.scopes, "team-a"), s->server_cookie.version);
  EXPECT_EQ(since_of(req.scopes, "team-b"), 0u);
  EXPECT_EQ(s->store_prunes.size(), 1u); // nothing was lost, nothing pruned
  // Once that answer is applied, both are at its version; no third pull.
  auto& saved = s->db_stored.entries;
  EXPECT_EQ(since_of(saved, "team-a"), s->server_cookie.version);
  EXPECT_EQ(since_of(saved, "team-b"), s->server_cookie.version);
  EXPECT_EQ(s->pulls.size(), 2u);
  // Already covered: nothing changes, no pull.
  EXPECT_TRUE(ask(subscribe_atom::value, "team-a").ok());
  EXPECT_EQ(s->pulls.size(), 2u);
  // Not a pattern: refused, nothing changes.
  auto bad = ask(subscribe_atom::value, "team a");
  EXPECT_EQ(bad.code, sync_errc::invalid_request) << bad.describe();
  EXPECT_EQ(scopes(), (strings{"team-a", "team-b"}));
}

TEST_F(network_syncer_scopes_test,
       a_covering_subscription_keeps_the_covered_entry_until_an_answer_covered_both) {
  start(scoped({"team-a"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  EXPECT_TRUE(ask(subscribe_atom::value, "team-*").ok());
  ASSERT_EQ(s->pulls.size(), 2u);
  // team-* from 0 brings live entities only: team-a's progress is what
  // brings what was deleted in team-a since (found by the simulator, seed 6).
  auto& req = s->pulls[1].msg;
  EXPECT_EQ(patterns(req.scopes), (strings{"team-a", "team-*"}));
  EXPECT_EQ(since_of(req.scopes, "team-a"), s->server_cookie.version);
  EXPECT_EQ(since_of(req.scopes, "team-*"), 0u);
  // That answer applied, both are at its version and team-a gives way.
  EXPECT_EQ(patterns(s->db_stored.entries), (strings{"team-*"}));
  EXPECT_EQ(since_of(s->db_stored.entries, "team-*"), s->server_cookie.version);
  EXPECT_EQ(scopes(), (strings{"team-*"}));
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->pulls.size(), 3u);
  EXPECT_EQ(patterns(s->pulls[2].msg.scopes), (strings{"team-*"}));
}

TEST_F(network_syncer_scopes_test,
       dropping_an_entry_a_new_one_covers_before_it_caught_up_drops_its_data) {
  start(scoped({"team-a", "team-b"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  s->pull_script = {mode::hold};
  EXPECT_TRUE(ask(subscribe_atom::value, "team-*").ok());
  ASSERT_EQ(s->held_pulls.size(), 1u);
  auto prunes = s->store_prunes.size();
  // team-* is still at 0: it holds nothing yet, and its answer will bring
  // team-a's live entities only. So team-a's data goes now, and that
  // answer brings it back whole; team-b keeps its own.
  EXPECT_TRUE(ask(unsub_atom::value, "team-a").ok());
  ASSERT_EQ(s->store_prunes.size(), prunes + 1);
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-b"}));
  EXPECT_EQ(s->db_prunes.back().second, (strings{"team-b"}));
  EXPECT_EQ(scopes(), (strings{"team-*"}));
}

TEST_F(network_syncer_scopes_test,
       a_scope_added_while_a_pull_is_in_flight_stays_at_0_and_a_second_pull_follows) {
  s->pull_script = {mode::hold};
  start(scoped({"team-a"}));
  ASSERT_EQ(s->held_pulls.size(), 1u);
  EXPECT_TRUE(ask(subscribe_atom::value, "team-b").ok());
  EXPECT_EQ(s->pulls.size(), 1u); // coalesced behind the one in flight
  EXPECT_EQ(since_of(s->db_stored.entries, "team-b"), 0u); // saved at once
  s->pull_script = {mode::hold};
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  ASSERT_EQ(s->pulls.size(), 2u);
  auto& req = s->pulls[1].msg;
  EXPECT_EQ(since_of(req.scopes, "team-a"), s->server_cookie.version);
  EXPECT_EQ(since_of(req.scopes, "team-b"), 0u); // not in the answered request
  // The first answer's progress, stored with it, never claimed team-b.
  ASSERT_EQ(s->db_progressed.size(), 1u);
  EXPECT_EQ(s->db_progressed[0], (strings{"team-a"}));
  EXPECT_EQ(since_of(s->db_stored.entries, "team-a"), s->server_cookie.version);
  EXPECT_EQ(since_of(s->db_stored.entries, "team-b"), 0u);
  // The second answer brings team-b to the version.
  ASSERT_EQ(s->held_pulls.size(), 2u);
  answer(s->held_pulls[1], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  ASSERT_EQ(s->db_progressed.size(), 2u);
  EXPECT_EQ(since_of(s->db_stored.entries, "team-b"), s->server_cookie.version);
  EXPECT_EQ(s->pulls.size(), 2u);
}

TEST_F(network_syncer_scopes_test, unsubscribe_prunes_at_once_and_drops_the_entry) {
  start(scoped({"team-a", "team-b"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  auto prunes = s->store_prunes.size(); // narrowed from every scope, at start
  EXPECT_TRUE(ask(unsub_atom::value, "team-b").ok());
  ASSERT_EQ(s->store_prunes.size(), prunes + 1);
  ASSERT_EQ(s->db_prunes.size(), prunes + 1);
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"}));
  EXPECT_EQ(s->db_prunes.back().second, (strings{"team-a"}));
  EXPECT_EQ(s->pulls.size(), 1u); // no pull needed
  EXPECT_EQ(scopes(), (strings{"team-a"}));
  EXPECT_EQ(patterns(s->db_stored.entries), (strings{"team-a"}));
  EXPECT_EQ(s->db_stored.held, (strings{"team-a"}));
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->pulls.size(), 2u);
  EXPECT_EQ(patterns(s->pulls[1].msg.scopes), (strings{"team-a"}));
  EXPECT_EQ(s->store_prunes.size(), prunes + 1); // that pull narrowed nothing
  // Only an entry of the set; never the last one.
  auto missing = ask(unsub_atom::value, "team-*");
  EXPECT_EQ(missing.code, sync_errc::not_found);
  EXPECT_NE(missing.message.find(R"(["team-a"])"), std::string::npos) << missing.message;
  auto last = ask(unsub_atom::value, "team-a");
  EXPECT_EQ(last.code, sync_errc::invalid_request) << last.describe();
  EXPECT_EQ(scopes(), (strings{"team-a"}));
  EXPECT_EQ(s->store_prunes.size(), prunes + 1);
}

TEST_F(network_syncer_scopes_test,
       an_unsubscribe_whose_local_prune_fails_takes_effect_and_the_next_answer_prunes) {
  start(scoped({"team-a", "team-b"}));
  auto prunes = s->db_prunes.size();
  s->db_prune_script = {mode::fail};
  // An error would tell the application the scope is still subscribed.
  EXPECT_TRUE(ask(unsub_atom::value, "team-b").ok());
  EXPECT_EQ(scopes(), (strings{"team-a"}));
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"})) << "gone from memory";
  EXPECT_NE(status().last_error.find("disk full"), std::string::npos);
  EXPECT_EQ(s->db_stored.held, (strings{"*"})) << "the file may hold anything yet";
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->db_prunes.size(), prunes + 2);
  EXPECT_EQ(s->db_prunes.back().second, (strings{"team-a"})) << "pruned again";
  EXPECT_EQ(s->db_stored.held, (strings{"team-a"}));
}

TEST_F(network_syncer_scopes_test,
       an_unsubscribe_while_a_new_entrys_answer_goes_in_has_that_entry_asked_again) {
  subscribed_with_answer_held("team-*");
  ASSERT_EQ(s->pulls.size(), 2u);
  ASSERT_EQ(s->held_db_rebases.size(), 1u);
  EXPECT_EQ(since_of(s->pulls.back().msg.scopes, "team-*"), 0u);
  // team-* holds nothing yet: dropping team-a prunes every scope, after
  // the answer that brings team-*'s entities went to local_db.
  ASSERT_TRUE(ask(unsub_atom::value, "team-a").ok());
  EXPECT_EQ(s->store_prunes.back().second, (strings{}));
  auto pulls = s->pulls.size();
  answer(s->held_db_rebases[0], ok_atom::value);
  sched.run();
  // What it brought was pruned after it: team-* is asked from 0 again,
  // never counted as held at the answer's version.
  ASSERT_EQ(s->pulls.size(), pulls + 1);
  EXPECT_EQ(patterns(s->pulls.back().msg.scopes), (strings{"team-*"}));
  EXPECT_EQ(since_of(s->pulls.back().msg.scopes, "team-*"), 0u);
  EXPECT_EQ(since_of(s->db_stored.entries, "team-*"), s->server_cookie.version)
    << "and its answer from 0 is stored";
}

TEST_F(network_syncer_scopes_test,
       a_new_entry_dropped_while_its_answer_goes_in_is_pruned_again_after_it) {
  subscribed_with_answer_held("team-b");
  ASSERT_EQ(s->held_db_rebases.size(), 1u);
  // Dropped before its answer reached the store: the prune goes first
  // there, the answer's team-b entities after it.
  ASSERT_TRUE(ask(unsub_atom::value, "team-b").ok());
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"}));
  auto prunes = s->store_prunes.size();
  answer(s->held_db_rebases[0], ok_atom::value);
  sched.run();
  ASSERT_EQ(s->store_prunes.size(), prunes + 1) << "team-b's entities stay in memory";
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"}));
  EXPECT_LT(index_of(s->events, "store.rebase", index_of(s->events, "db.rebase")),
            s->events.size());
  EXPECT_EQ(scopes(), (strings{"team-a"}));
}

TEST_F(network_syncer_scopes_test,
       a_file_that_may_hold_more_than_its_entries_is_pruned_before_the_first_answer) {
  // A prune failed on a full disk, then the process died: the file says it
  // may hold anything, and team-b was subscribed but holds nothing yet.
  auto cfg = scoped({"team-a", "team-b"});
  cfg.subscription.stored = true;
  cfg.subscription.configured = {"team-a", "team-b"};
  cfg.subscription.entries = {{"team-a", 7}, {"team-b", 0}};
  cfg.subscription.held = {"*"};
  start(cfg);
  ASSERT_FALSE(s->db_prunes.empty());
  EXPECT_EQ(s->db_prunes.front().second, (strings{"team-a"}));
  EXPECT_EQ(s->store_prunes.front().second, (strings{"team-a"}));
  // Before team-b's answer from 0 goes in beside rows it would never delete.
  EXPECT_LT(index_of(s->events, "db.prune"), index_of(s->events, "db.rebase"));
  EXPECT_LT(index_of(s->events, "store.prune"), index_of(s->events, "store.rebase"));
}

TEST_F(network_syncer_scopes_test,
       an_answer_for_a_scope_dropped_during_its_pull_is_pruned_once_applied) {
  s->pull_script = {mode::hold};
  start(scoped({"team-a", "team-b"}));
  ASSERT_EQ(s->held_pulls.size(), 1u);
  auto prunes = s->store_prunes.size(); // narrowed from every scope, at start
  EXPECT_TRUE(ask(unsub_atom::value, "team-b").ok());
  ASSERT_EQ(s->store_prunes.size(), prunes + 1);
  answer(s->held_pulls[0], pull_reply{s->server_cookie, 0, false, {}});
  sched.run();
  // The answer brought team-b's entities back in: pruned again after it.
  ASSERT_EQ(s->store_prunes.size(), prunes + 2);
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"}));
  auto rebase = index_of(s->events, "store.rebase");
  EXPECT_LT(index_of(s->events, "store.prune", rebase), s->events.size());
}

TEST_F(network_syncer_scopes_test,
       forbidden_scopes_in_the_reply_are_dropped_pruned_and_reported) {
  s->granted = {grant{"team-*", true}};
  s->unreadable = {"secret"};
  start(scoped({"team-a", "secret"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  EXPECT_EQ(scopes(), (strings{"team-a"}));
  auto st = status();
  EXPECT_EQ(st.last_error.rfind("forbidden: ", 0), 0u) << st.last_error;
  EXPECT_NE(st.last_error.find("secret"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.scopes, (strings{"team-a"}));
  // What the data held ("*", from before) shrank: to the configured
  // scopes at start, to team-a once the answer forbade the other.
  ASSERT_EQ(s->store_prunes.size(), 2u);
  EXPECT_EQ(s->store_prunes[0].second, (strings{"secret", "team-a"}));
  EXPECT_EQ(s->store_prunes[1].second, (strings{"team-a"}));
  EXPECT_EQ(s->db_prunes.size(), 2u);
  EXPECT_EQ(patterns(s->db_saves.back().entries), (strings{"team-a"}));
  // The grants are known now: a scope the token cannot read is refused at
  // once, with no pull.
  auto refused = ask(subscribe_atom::value, "secret");
  EXPECT_EQ(refused.code, sync_errc::forbidden) << refused.describe();
  EXPECT_EQ(s->pulls.size(), 1u);
  // Readable in part: subscribed, and held as that part.
  EXPECT_TRUE(ask(subscribe_atom::value, "*").ok());
  EXPECT_EQ(scopes(), (strings{"team-*"}));
}

TEST_F(network_syncer_scopes_test,
       a_lost_grant_prunes_once_and_later_pulls_prune_nothing) {
  start(scoped({"*"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  EXPECT_TRUE(s->store_prunes.empty()); // every scope, as before
  EXPECT_EQ(s->db_saves.back().known_reads, (strings{"*"}));
  s->granted = {grant{"team-a", true}, grant{"team-b", false}};
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->pulls.size(), 2u);
  // The request still states what the data was pulled under.
  EXPECT_EQ(s->pulls[1].msg.known_reads, (strings{"*"}));
  ASSERT_EQ(s->store_prunes.size(), 1u);
  EXPECT_EQ(s->store_prunes[0].second, (strings{"team-a", "team-b"}));
  ASSERT_EQ(s->db_prunes.size(), 1u);
  EXPECT_EQ(s->db_saves.back().known_reads, (strings{"team-a", "team-b"}));
  EXPECT_EQ(scopes(), (strings{"team-a", "team-b"}));
  poke_with(s->server_cookie.version + 1);
  ASSERT_EQ(s->pulls.size(), 3u);
  EXPECT_EQ(s->pulls[2].msg.known_reads, (strings{"team-a", "team-b"}));
  EXPECT_EQ(s->store_prunes.size(), 1u); // not on every pull
  // Changed rules: what the data holds is judged again.
  s->rules = {scope_rule{"note", "team"}};
  poke_with(s->server_cookie.version + 1);
  EXPECT_EQ(s->store_prunes.size(), 2u);
  EXPECT_EQ(s->store_prunes[1].first.size(), 1u);
}

// The application reads the store directly: a sync that replied while the
// store still had a scope's data to drop let it see data of a grant it had
// lost (seen in the end-to-end test of a revoked grant, once in a while).
TEST_F(network_syncer_scopes_test,
       a_sync_completes_only_once_the_store_dropped_what_its_pull_no_longer_holds) {
  start(scoped({"*"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  s->granted = {grant{"team-a", false}};
  s->hold_store_prunes = true;
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  ASSERT_EQ(s->pulls.size(), 2u);
  ASSERT_EQ(s->held_store_prunes.size(), 1u);
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"}));
  EXPECT_FALSE(s->synced) << "replied while the store still held a lost scope";
  answer(s->held_store_prunes[0], ok_atom{});
  sched.run();
  EXPECT_TRUE(s->synced);
}

TEST_F(network_syncer_scopes_test,
       unsubscribe_replies_once_the_store_dropped_the_scope) {
  start(scoped({"team-a", "team-b"}));
  s->hold_store_prunes = true;
  auto replied = std::make_shared<bool>(false);
  keep(sys.spawn([target = syncer, replied](caf::event_based_actor* client) -> caf::behavior {
    client->request(target, caf::infinite, unsub_atom::value, std::string{"team-b"})
      .then([=](ok_atom) { *replied = true; },
            [=](caf::error& err) { ADD_FAILURE() << to_sync_error(err).describe(); });
    return {[](int) {}};
  }));
  sched.run();
  ASSERT_EQ(s->held_store_prunes.size(), 1u);
  EXPECT_EQ(s->store_prunes.back().second, (strings{"team-a"}));
  EXPECT_FALSE(*replied) << "replied while the store still held team-b";
  answer(s->held_store_prunes[0], ok_atom{});
  sched.run();
  EXPECT_TRUE(*replied);
}

TEST_F(network_syncer_scopes_test,
       the_grants_and_rules_reach_the_memory_store_with_the_hello_and_every_pull) {
  s->granted = {grant{"team-a", true}};
  start(scoped({"*"}));
  // One with the hello, one with the pull.
  ASSERT_EQ(s->store_grants.size(), 2u);
  EXPECT_EQ(s->store_grants[0].at(0).pattern, "team-a");
  EXPECT_EQ(s->store_grants[1].at(0).pattern, "team-a");
}

TEST_F(network_syncer_scopes_test,
       a_pull_that_only_advances_progress_stores_it_with_the_answer_alone) {
  start(scoped({"team-a", "team-b"}));
  ASSERT_EQ(s->pulls.size(), 1u);
  auto saves = s->db_saves.size();
  for (uint64_t i = 1; i <= 3; ++i) {
    poke_with(s->server_cookie.version + 1);
    ASSERT_EQ(s->pulls.size(), 1 + i);
    EXPECT_EQ(s->db_progressed.back(), (strings{"team-a", "team-b"}));
    EXPECT_EQ(since_of(s->db_stored.entries, "team-a"), s->server_cookie.version);
    EXPECT_EQ(since_of(s->db_stored.entries, "team-b"), s->server_cookie.version);
  }
  // One transaction per pull: the rebase's, never a save besides it.
  EXPECT_EQ(s->db_saves.size(), saves);
  // What changes besides progress is still saved: an unsubscribe says the
  // file may hold anything before its prune (a crash between the two
  // prunes again at start), then what it holds.
  ASSERT_TRUE(ask(unsub_atom::value, "team-b").ok());
  ASSERT_EQ(s->db_saves.size(), saves + 2);
  EXPECT_EQ(s->db_saves[saves].held, (strings{"*"}));
  EXPECT_EQ(patterns(s->db_saves[saves].entries), (strings{"team-a"}));
  EXPECT_EQ(s->db_stored.held, (strings{"team-a"}));
  EXPECT_EQ(patterns(s->db_stored.entries), (strings{"team-a"}));
}

TEST_F(network_syncer_scopes_test,
       progress_is_saved_after_the_answer_is_applied_and_taken_up_after_a_restart) {
  s->db_rebase_script = {mode::hold};
  start(scoped({"team-a"}));
  ASSERT_EQ(s->held_db_rebases.size(), 1u);
  // Not stored yet: nothing claims the answer's version.
  for (auto& saved : s->db_saves)
    EXPECT_LT(since_of(saved.entries, "team-a"), s->server_cookie.version);
  for (auto& e : s->db_stored.entries)
    EXPECT_LT(e.since, s->server_cookie.version) << e.pattern;
  // Stored: the progress with it, in its transaction.
  ASSERT_EQ(s->held_db_progress.size(), 1u);
  EXPECT_EQ(s->held_db_progress[0].first, (strings{"team-a"}));
  s->store_progress(s->held_db_progress[0].first, s->held_db_progress[0].second);
  answer(s->held_db_rebases[0], ok_atom::value);
  sched.run();
  auto saved = s->db_stored;
  EXPECT_EQ(since_of(saved.entries, "team-a"), s->server_cookie.version);
  EXPECT_EQ(saved.configured, (strings{"team-a"}));
  ASSERT_TRUE(ask(subscribe_atom::value, "team-b").ok());
  saved = s->db_stored;
  stop_syncer();
  // Restart with what local_db stored (the cookie with it), same config:
  // the run-time subscription and the progress are taken up again.
  saved.stored = true;
  auto pulls = s->pulls.size();
  auto cfg = scoped({"team-a"});
  cfg.cursor = s->server_cookie;
  cfg.subscription = saved;
  start(cfg);
  ASSERT_EQ(s->pulls.size(), pulls + 1);
  auto& req = s->pulls.back().msg;
  EXPECT_EQ(patterns(req.scopes), (strings{"team-a", "team-b"}));
  EXPECT_EQ(since_of(req.scopes, "team-a"), s->server_cookie.version);
  // A changed client.scopes replaces the subscription; what it keeps keeps
  // its progress.
  stop_syncer();
  saved = s->db_stored;
  saved.stored = true;
  cfg = scoped({"team-a", "team-c"});
  cfg.cursor = s->server_cookie;
  cfg.subscription = saved;
  start(cfg);
  auto& req2 = s->pulls.back().msg;
  EXPECT_EQ(patterns(req2.scopes), (strings{"team-a", "team-c"}));
  EXPECT_EQ(since_of(req2.scopes, "team-a"), s->server_cookie.version);
  EXPECT_EQ(since_of(req2.scopes, "team-c"), 0u);
}

// -- 12. answers read ahead ------------------------------------------------------

namespace {

struct network_syncer_ahead_test : network_syncer_test {
  /// Started and caught up at the server's cookie; returns the pull the
  /// syncer makes there (a poke shows it: its answer leaves the cursor).
  pull_request caught_up() {
    start(config());
    poke_with(s->server_cookie.version + 1);
    return s->pulls.back().msg;
  }

  /// Caught up, then poked into a pull that is held until `release()`;
  /// returns the pull made when caught up.
  pull_request pulling() {
    auto asked = caught_up();
    s->pull_script = {mode::hold};
    poke_with(s->server_cookie.version + 1);
    EXPECT_EQ(s->held_pulls.size(), 1u);
    return asked;
  }

  /// Answers the held pull, leaving the cursor where it is.
  void release() {
    answer(s->held_pulls.at(0), pull_reply{s->server_cookie, 0, false, {}});
    sched.run();
  }

  /// The session's answer to `asked`, read ahead at `version` for a poke of
  /// it: one entity written there.
  pushed_answer ahead_of(pull_request asked, uint64_t version) {
    pull_reply r{cookie{"e1", version, version * 10, "mac"}, s->server_lmid, false,
                 {entity{"ahead-" + std::to_string(version), "note", "{}", version, false}}};
    r.granted = s->granted;
    r.rules = s->rules;
    return {poke{version, 0}, std::move(asked), std::move(r)};
  }

  /// As the connection's session sends it (the syncer takes answers from
  /// its session alone).
  void from_session(pushed_answer a) {
    caf::send_as(caf::actor_cast<caf::actor>(s->sessions.back()), s->listeners.back(),
                 pulled_atom::value, std::move(a));
    sched.run();
  }

  /// True if local_db stored the entity of the answer read ahead at `version`.
  bool stored(uint64_t version) {
    auto id = "ahead-" + std::to_string(version);
    return std::any_of(s->db_rebases.begin(), s->db_rebases.end(), [&](const pull_reply& r) {
      return std::any_of(r.entities.begin(), r.entities.end(),
                         [&](const entity& e) { return e.id == id; });
    });
  }
};

} // namespace

TEST_F(network_syncer_ahead_test, an_answer_to_the_next_pull_is_taken_without_asking) {
  auto asked = caught_up();
  auto pulls = s->pulls.size();
  from_session(ahead_of(asked, 10));
  EXPECT_EQ(s->pulls.size(), pulls) << "no round trip";
  ASSERT_TRUE(stored(10));
  EXPECT_EQ(s->store_rebases.back().next.version, 10u) << "durable, then visible";
  auto st = status();
  EXPECT_EQ(st.cursor.version, 10u);
  EXPECT_EQ(st.layers.pulls_ahead, 1u);
  EXPECT_EQ(st.layers.poke_to_pull.count, 2u) << "timed like the pull of a poke";
  // The next one is read ahead of that answer's cookie.
  asked.since = cookie{"e1", 10, 100, "mac"};
  for (auto& e : asked.scopes)
    e.since = 10;
  from_session(ahead_of(asked, 11));
  EXPECT_EQ(s->pulls.size(), pulls);
  EXPECT_EQ(status().cursor.version, 11u);
}

TEST_F(network_syncer_ahead_test, an_answer_to_another_pull_is_only_a_poke) {
  auto asked = caught_up();
  auto pulls = s->pulls.size();
  auto stale = asked;
  stale.since.version = 8; // read ahead of an answer this client never took
  from_session(ahead_of(stale, 10));
  EXPECT_EQ(s->pulls.size(), pulls + 1) << "the poke it stands for";
  EXPECT_FALSE(stored(10));
  EXPECT_EQ(status().layers.pulls_ahead, 0u);
}

TEST_F(network_syncer_ahead_test, an_answer_from_anyone_but_the_session_is_ignored) {
  auto asked = caught_up();
  auto pulls = s->pulls.size();
  self->send(s->listeners.back(), pulled_atom::value, ahead_of(asked, 10));
  sched.run();
  EXPECT_EQ(s->pulls.size(), pulls);
  EXPECT_FALSE(stored(10)) << "data injected by a peer that learned the listener";
}

TEST_F(network_syncer_ahead_test, an_answer_that_comes_during_a_pull_is_taken_after_it) {
  auto asked = pulling();
  auto pulls = s->pulls.size();
  // Read ahead of the answer under way (it leaves the cursor where it is).
  from_session(ahead_of(asked, 10));
  EXPECT_FALSE(stored(10)) << "not before the pull under way is in";
  release();
  EXPECT_TRUE(stored(10));
  EXPECT_EQ(s->pulls.size(), pulls);
  EXPECT_EQ(status().cursor.version, 10u);
}

TEST_F(network_syncer_ahead_test, of_two_answers_to_one_pull_the_later_read_is_taken) {
  // Found by multi_node_pg_test: the client took the earlier of two answers
  // to its pull, read before the commit that poked it with the later one,
  // and the commit never reached it.
  auto asked = pulling();
  auto pulls = s->pulls.size();
  // Both read ahead of the answer under way (it leaves the cursor where it
  // is), the second for a later commit.
  from_session(ahead_of(asked, 10));
  from_session(ahead_of(asked, 11));
  release();
  EXPECT_TRUE(stored(11));
  EXPECT_EQ(status().cursor.version, 11u);
  EXPECT_EQ(s->pulls.size(), pulls);
}

TEST_F(network_syncer_ahead_test, an_answer_read_before_a_poke_heard_since_is_not_taken) {
  auto asked = pulling();
  auto pulls = s->pulls.size();
  from_session(ahead_of(asked, 10));
  poke_with(12); // a commit the answer's read did not see
  release();
  EXPECT_FALSE(stored(10));
  EXPECT_EQ(s->pulls.size(), pulls + 1) << "asked, to be served the poke";
}

TEST_F(network_syncer_ahead_test, a_sync_never_counts_an_answer_read_ahead) {
  auto asked = pulling();
  auto pulls = s->pulls.size();
  from_session(ahead_of(asked, 10)); // kept behind the pull under way
  keep(sys.spawn(sync_client, syncer, s));
  sched.run();
  release();
  // Read before the sync was asked, the answer may miss what others had
  // acknowledged by then: the sync needs a pull asked after it.
  EXPECT_TRUE(s->synced);
  EXPECT_EQ(s->pulls.size(), pulls + 1) << "the sync's pull";
  EXPECT_FALSE(stored(10));
}

TEST_F(network_syncer_ahead_test, an_answer_read_before_a_push_was_acknowledged_is_not_taken) {
  auto asked = caught_up();
  auto before = ahead_of(asked, 10); // read when the record was 0
  flushed({1, 2});
  advance(settings.push_debounce + 1ms);
  ASSERT_EQ(s->pushes.size(), 1u);
  ASSERT_EQ(status().acknowledged, 2u);
  auto pulls = s->pulls.size();
  from_session(before);
  EXPECT_FALSE(stored(10)) << "its record would look like a restored server's";
  EXPECT_EQ(s->pulls.size(), pulls + 1);
  EXPECT_EQ(status().acknowledged, 2u);
}
