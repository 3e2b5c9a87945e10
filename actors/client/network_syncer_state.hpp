// Private to the network_syncer's sources (network_syncer.cpp: connection,
// network_syncer_push.cpp, network_syncer_pull.cpp): the actor's full
// interface with its own timers, its state, and the functions the three
// files call in each other. Nothing outside actors/client/network_syncer*
// includes it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/client/network_syncer.hpp"
#include "messages/protocol.hpp"
#include "messages/validation.hpp"

namespace memsync::network_syncer_detail {

/// The public interface plus the syncer's own timers, which nobody else may
/// send.
using network_syncer_impl_actor = network_syncer_actor::extend<
  /// The backoff after a failure elapsed: connect again, if the link of this
  /// generation is still the current one.
  caf::reacts_to<reconnect_atom, uint64_t>,
  /// The push debounce or a push backoff elapsed (timer of generation N).
  caf::reacts_to<push_due_atom, uint64_t>,
  /// The fallback pull interval elapsed (re-armed every time).
  caf::reacts_to<pull_tick_atom>,
  /// The pause after a failed pull elapsed (once).
  caf::reacts_to<pull_retry_atom>,
  /// The connection's relay got an answer read ahead from `sender`.
  caf::reacts_to<pulled_atom, pushed_answer, caf::actor_addr>>;

/// The connection, as drawn in network_syncer.hpp.
enum class link_state {
  disconnected, ///< none and none being made: at start, or until the backoff ends
  connecting,   ///< waiting for the connector to find the gateway
  handshaking,  ///< hello sent, waiting for the session
  connected,    ///< a session: pushes and pulls flow
  offline,      ///< told to stay offline: no connects until online(true)
};

/// What the one armed push timer is for.
enum class push_timer {
  none,     ///< nothing armed (or armed timers are stale)
  debounce, ///< after a flush: push when it fires
  backoff,  ///< after a failed push: no push at all until it fires
};

/// The pull in flight, if any.
enum class pull_phase {
  idle,
  in_flight, ///< one pull is on its way (request, local_db, store)
  again,     ///< ... and a poke asked for one more after it
};

/// The pages of an answer received so far. Nothing of it is applied before
/// the last page arrives (only the whole answer is a consistent state); it
/// is kept across reconnections, so the next connection resumes after
/// `after` instead of starting over.
struct pull_pages {
  bool active = false; ///< a first page that was not the last arrived
  bool reset = false;
  std::string epoch;
  uint64_t first_head = 0; ///< the first page's head: only later writes repeat ids
  uint64_t after = 0;      ///< the highest version received
  uint64_t total = 0;      ///< the answer's size, as counted at the first page
  std::vector<entity> entities;
  std::vector<uint64_t> traces; ///< empty, or one per entity
  /// The request's subscription and known reads: the same for every page.
  std::vector<scope_since> scopes;
  std::vector<std::string> known_reads;
};

struct network_syncer_state {
  network_syncer_state() = default; // not an aggregate: CAF would build it from self
  syncer_config cfg;
  connector_actor connector;
  local_db_actor db;
  memory_store_actor store;
  flush_scheduler_actor flusher;
  std::shared_ptr<trace_sink> trace;

  // -- the server's record of this client id -------------------------------------
  /// The highest mutation id local_db ever handed out for a push: the server
  /// cannot know a higher one of ours unless this database is an older copy
  /// of itself (see local_database::repair).
  uint64_t pushed_mid = 0;
  bool record_known = false; ///< pushed_mid was read: connecting may start
  /// A pull of this client id showed the server's record is ours: only then
  /// may pushes go out (a push of ids the server already has from another
  /// copy would be skipped as duplicates, or half applied).
  bool record_checked = false;
  /// The flush scheduler is having local_db move to a new client id: no
  /// pushes, and pulls of the old id confirm nothing.
  bool repairing = false;
  uint64_t identity_gen = 0; ///< bumps when the client id changes
  /// `sync` requests that came during the move, until the numbering is known.
  std::vector<caf::typed_response_promise<ok_atom>> parked_syncs;

  // -- the connection ----------------------------------------------------------
  link_state link = link_state::disconnected;
  /// Bumps when an attempt starts and when the link is dropped: replies to
  /// requests sent on an earlier link are stale (see on_link).
  uint64_t link_gen = 0;
  session_actor session;     ///< set while connected
  client_listener_actor relay; ///< this connection's listener
  uint64_t failures = 0;     ///< consecutive failures, for backoff

  // -- the server's limits, from the last hello reply ---------------------------
  /// Pushes take the smaller of these and our own settings; pulled entities
  /// are checked against `server_data`.
  uint64_t server_push_changes = hello_reply{}.max_push_changes;
  uint64_t server_push_bytes = hello_reply{}.max_push_bytes;
  data_limits server_data;

  // -- pushing -------------------------------------------------------------------
  bool push_in_flight = false; ///< an outbox read or a push request
  push_timer push_wait = push_timer::none;
  uint64_t push_timer_gen = 0; ///< bumps to make armed push timers stale
  uint64_t durable_mid = 0;    ///< highest mutation id known in the outbox
  /// Refusals of ids up to this one were reported to the store: a push
  /// reply or a pull (whichever came first) answered for them.
  uint64_t reported_mid = 0;

  // -- pulling -------------------------------------------------------------------
  pull_phase pull = pull_phase::idle;
  /// Answers on their way into local_db and the store. A new connection's
  /// pull waits for them (`pull_deferred`): asked for from the cursor they
  /// have not advanced yet, it could come from 0 (live entities only) and
  /// leave what they brought and the server deleted meanwhile in place.
  uint64_t applying = 0;
  bool pull_deferred = false;
  pull_pages pages;
  /// Answers this connection's session read ahead, oldest first: a pull
  /// asking exactly what one of them answers takes it instead of asking
  /// (see take_ahead).
  std::vector<pushed_answer> ahead;
  /// The highest version a poke of this connection named (answers read
  /// ahead included): an answer read ahead stands in for a pull only if it
  /// was read at or after it, as a pull asked now would be.
  uint64_t poked_version = 0;
  uint64_t pulls_done = 0;
  /// When the first poke not yet served by a pull arrived (layer stats).
  caf::actor_clock::time_point poked_at{};

  // -- scopes --------------------------------------------------------------------
  /// The subscription with its progress, as it is saved in local_db (see
  /// scope_subscription): `held` and `rules` say what the local data may
  /// hold, `known_reads` what it was pulled under.
  scope_subscription sub;
  /// What local_db holds of the subscription as far as this actor knows:
  /// what it was last handed to save, with the progress of the answers it
  /// stored since (none: nothing saved yet, or a save failed).
  std::optional<scope_subscription> saved;
  bool grants_known = false; ///< a hello or a pull of this run told us
  grants granted;            ///< the token's, once known
  scope_rules rules;         ///< the latest known (hello, pull, or as stored)
  /// Prunes whose store or local_db part has not answered: no sync
  /// completes meanwhile (see prune_to).
  uint64_t pruning = 0;
  /// Prunes sent so far: one sent after local_db got an answer may drop
  /// what the answer brought (see make_visible).
  uint64_t prunes_sent = 0;
  /// The entries and known reads of the answer being asked for, set at its
  /// first page's request.
  std::vector<scope_since> asking;
  std::vector<std::string> asking_reads;

  // -- what the syncer reports ---------------------------------------------------
  sync_status status; ///< status.connected is derived from `link` on request
  struct waiter {
    uint64_t target;      ///< mutation id that must be confirmed
    uint64_t after_pulls; ///< a pull must complete after this count
    caf::typed_response_promise<ok_atom> promise;
  };
  std::vector<waiter> waiters;
  int64_t clock_rtt_us = 0; ///< of the best offset sample in force; 0: none
  int64_t clock_at_us = 0;  ///< when it was taken

  std::minstd_rand rng{std::random_device{}()};
  const char* name = "network_syncer";
};

using self_ptr = network_syncer_impl_actor::stateful_pointer<network_syncer_state>;

/// True if `gen` is the current link's generation. The one check that drops
/// replies and timers of a connection that is gone.
inline bool is_current(self_ptr self, uint64_t gen) {
  return gen == self->state.link_gen;
}

/// Wraps the handler of a reply (or error): it runs only if the link of
/// generation `gen` is still the current one when the reply arrives.
template <class... Ts, class F>
auto on_link_of(self_ptr self, uint64_t gen, F f) {
  return [self, gen, f](Ts&... xs) {
    if (is_current(self, gen))
      f(xs...);
  };
}

/// on_link_of for a request sent now, on the current link.
template <class... Ts, class F>
auto on_link(self_ptr self, F f) {
  return on_link_of<Ts...>(self, self->state.link_gen, std::move(f));
}

/// The delay before the next retry: jittered backoff after `failures`.
caf::timespan retry_delay(self_ptr self);

/// Counts the error by kind and keeps its description as the last error.
void note_error(self_ptr self, const caf::error& err);

/// Microseconds of actor-clock time since `t` (0 if in the future).
uint64_t micros_since(self_ptr self, caf::actor_clock::time_point t);

/// Offers an NTP-style clock-offset sample to the trace (see the source).
void clock_sample(self_ptr self, int64_t t0, int64_t server_us, int64_t t1, bool fresh);

/// `record`: the server's last mutation id for us, from a pull or push
/// reply. True if it can be ours; false if the reply must be ignored: the
/// record is above every id this database sent (the repair starts), or a
/// repair is under way.
bool check_record(self_ptr self, uint64_t record);
/// Our next push counts as from no epoch, so that it may start above the
/// server's record of us (within one epoch a gap is refused); local_db
/// keeps that, ahead of whatever it is handed after it.
void forget_push_epoch(self_ptr self);

/// Answers `promise` once everything the outbox holds now is confirmed.
void wait_for_outbox(self_ptr self, caf::typed_response_promise<ok_atom> promise);

// -- network_syncer_push.cpp ----------------------------------------------------

/// Arms the push debounce unless a push timer is armed already.
void arm_push(self_ptr self, caf::timespan delay);
/// Pushes the next batch of the outbox, if connected, nothing is in flight,
/// no backoff runs and something is not acknowledged yet.
void try_push(self_ptr self);
/// The push timer of generation `gen` fired.
void push_due(self_ptr self, uint64_t gen);
/// From a push or pull reply that answers for every id up to `up_to`:
/// reports the refusals not reported yet to the store and the status, each
/// once. `reset`: the reply is from another epoch, whose record replaces
/// ours (see on_pulled).
void report_refusals(self_ptr self, std::vector<refusal> refused, uint64_t up_to,
                     bool reset);

// -- network_syncer_scopes.cpp --------------------------------------------------

/// Start-up: the stored subscription, or the configured list (taking the
/// progress of stored entries that cover its patterns).
void init_scopes(self_ptr self);
/// What `scopes_atom` and the status report: the entries' readable parts
/// once the grants are known, else the entries.
std::vector<std::string> current_scopes(const network_syncer_state& st);
/// The hello told the grants and rules: the store learns them.
void learn_grants(self_ptr self, const grants& granted, const scope_rules& rules);
caf::result<ok_atom> subscribe(self_ptr self, const std::string& pattern);
caf::result<ok_atom> unsubscribe(self_ptr self, const std::string& pattern);

/// What a complete answer tells about scopes, once it is applied.
struct scope_answer {
  uint64_t version = 0;           ///< the answer's next.version
  std::vector<scope_since> asked; ///< the entries of its request
  /// Those whose progress it advances: all of them, but those from 0 when a
  /// prune sent since may have dropped what they brought (see make_visible).
  std::vector<scope_since> answered;
  grants granted;
  scope_rules rules;
  std::vector<std::string> forbidden;
};
/// Advances the progress of the entries answered, drops the forbidden ones,
/// prunes if the held scopes shrank (what the data may hold: what it held
/// and every entry asked), saves the subscription. True if an entry was not
/// answered (one more pull).
bool scopes_applied(self_ptr self, const scope_answer& answer);

// -- network_syncer_pull.cpp ----------------------------------------------------

/// Pulls if connected; a pull asked for during another becomes one more
/// pull after it.
void try_pull(self_ptr self);
/// Replies to every `sync` whose changes are confirmed by a later pull.
void complete_waiters(self_ptr self);
/// The session poked: pull, unless the cursor is already there.
void poked(self_ptr self, const poke& p);
/// The session sent `a` from `sender`: kept for the next pull (if it comes
/// from this connection's session), and a poke.
void answered_ahead(self_ptr self, pushed_answer& a, const caf::actor_addr& sender);

} // namespace memsync::network_syncer_detail
