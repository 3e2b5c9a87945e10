// The client/server protocol (Replicache-style push / pull / poke). A client
// pushes its outbox in mutation-id order; the server applies each push in one
// transaction and answers pulls from one consistent snapshot with everything
// newer than the client's cookie. The full description is in docs/protocol.md.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/scopes.hpp"
#include "messages/validation.hpp"

namespace memsync {

/// Bumped on every incompatible change of any type below. CAF has no schema
/// versioning (a type missing on one side arrives as an empty message), so
/// the handshake compares this number and refuses mismatches.
constexpr uint32_t protocol_version = 7;

/// A position in the server's history. `epoch` names the server's history
/// (created with the database, replaced when the server finds it was rolled
/// back); `commit` identifies the transaction that wrote `version`, so a
/// server restored from an older copy notices a cookie it never issued. A
/// cookie from another epoch forces a full reset. `mac` is the server's
/// signature (HMAC) of the rest: the client stores and returns it as it is.
struct cookie {
  std::string epoch;
  uint64_t version = 0;
  uint64_t commit = 0;
  std::string mac;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cookie& x) {
  return f(caf::meta::type_name("memsync::cookie"), x.epoch, x.version, x.commit, x.mac);
}

inline bool operator==(const cookie& a, const cookie& b) {
  return a.epoch == b.epoch && a.version == b.version && a.commit == b.commit
         && a.mac == b.mac;
}

/// First message of a connection.
struct hello_request {
  uint32_t protocol = protocol_version;
  std::string client_id;
  std::string token;
  int64_t client_time_us = 0; ///< for clock-offset estimation in traces
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hello_request& x) {
  return f(caf::meta::type_name("memsync::hello_request"), x.protocol, x.client_id,
           x.token, x.client_time_us);
}

/// The server's limits travel with the reply: the client sizes its pushes by
/// them (counting each change by push_bytes, as the session does) and checks
/// pulled entities against the server's data limits rather than its own.
/// The defaults state no push limit, so a reply that leaves them alone lets
/// the client's own settings decide. `grants` (the token's) and `rules` (the
/// server's scope rules) let the client refuse at once a write the server
/// would refuse; the server checks every write all the same.
struct hello_reply {
  uint32_t protocol = protocol_version;
  std::string server_id;
  std::string epoch;
  int64_t server_time_us = 0;
  uint64_t max_data_bytes = data_limits{}.max_bytes;
  uint64_t max_data_depth = data_limits{}.max_depth;
  uint64_t max_push_changes = std::numeric_limits<uint64_t>::max();
  uint64_t max_push_bytes = std::numeric_limits<uint64_t>::max();
  grants granted = all_grants();
  scope_rules rules;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hello_reply& x) {
  return f(caf::meta::type_name("memsync::hello_reply"), x.protocol, x.server_id, x.epoch,
           x.server_time_us, x.max_data_bytes, x.max_data_depth, x.max_push_changes,
           x.max_push_bytes, x.granted, x.rules);
}

/// Changes in mutation-id order, all from one client. `epoch` is the epoch
/// in which the client's last push was acknowledged: a client coming from
/// another epoch may start its ids above the server's record (a server
/// restored from an older copy lost the changes in between).
struct push_request {
  std::string client_id;
  std::string epoch;
  std::vector<change> changes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, push_request& x) {
  return f(caf::meta::type_name("memsync::push_request"), x.client_id, x.epoch,
           x.changes);
}

/// A change the server refused; its mutation id is used up all the same.
struct refusal {
  uint64_t mutation_id = 0;
  sync_error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refusal& x) {
  return f(caf::meta::type_name("memsync::refusal"), x.mutation_id, x.reason);
}

struct push_reply {
  uint64_t last_mutation_id = 0;
  std::vector<refusal> refused;
  std::string epoch; ///< the server's epoch when it acknowledged
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, push_reply& x) {
  return f(caf::meta::type_name("memsync::push_reply"), x.last_mutation_id, x.refused,
           x.epoch);
}

/// `after` resumes an answer that came in pages: the highest version of the
/// pages received so far (0 starts a new answer). The client keeps the
/// request the same for every page of one answer.
///
/// `scopes` is the client's subscription, each entry with its own progress
/// (at most `since.version`; 0: the client holds nothing of it yet); empty
/// means every readable scope, known up to `since.version`. The server
/// answers each entry with the part of it the token may read. `known_reads`
/// are the read patterns of the grants the client's data was pulled under
/// (empty: every scope); if the token may now read a scope they did not
/// cover, every entry is answered again from the start, tombstones included.
/// `since` itself names the server's history (epoch, commit, signature).
struct pull_request {
  std::string client_id;
  cookie since;
  uint64_t after = 0;
  std::vector<scope_since> scopes;
  std::vector<std::string> known_reads;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pull_request& x) {
  return f(caf::meta::type_name("memsync::pull_request"), x.client_id, x.since, x.after,
           x.scopes, x.known_reads);
}

inline bool operator==(const pull_request& a, const pull_request& b) {
  return a.client_id == b.client_id && a.since == b.since && a.after == b.after
         && a.scopes == b.scopes && a.known_reads == b.known_reads;
}

/// Every entity whose version is above the request's cookie (latest state,
/// tombstones included), or the whole state when `reset` is set, in pages
/// of at most the server's `limits.max-pull-bytes`: `complete` is false
/// while more pages follow (ask again with `after` = the page's highest
/// version). Only the union of all pages of one answer, later pages
/// winning, is a consistent state (the one at the last page's `next`), so
/// a client applies nothing before it has the last page. `total` (first
/// page only) counts the entities of the whole answer, for progress. `traces`
/// is empty, or holds per entity the trace id of the change that wrote that
/// version (0: unknown), so a traced change can be followed into the pulling
/// clients; informative only. `server_time_us` (when the server answered)
/// gives traced clients a clock-offset sample per pull. `refused` holds the
/// refusals the server keeps for the client (every page, with
/// last_mutation_id from the same snapshot): a push reply naming them may
/// have been lost, and the pull's rebase drops the refused changes.
///
/// Scopes: only entities of the readable part of the requested scopes come;
/// an entity that moved out of them since an entry's progress comes as a
/// removal: a tombstone (`deleted`, no data) with the version of the move.
/// `granted` and `rules` are the token's grants and the scope rules as the
/// server holds them now (on every page): the client drops what it may no
/// longer read, and pulls under `granted` from then on. `forbidden` names
/// the requested patterns of which the token may read nothing (they got
/// nothing).
struct pull_reply {
  cookie next;
  uint64_t last_mutation_id = 0;
  bool reset = false;
  std::vector<entity> entities;
  std::vector<uint64_t> traces;
  int64_t server_time_us = 0;
  bool complete = true;
  uint64_t total = 0;
  std::vector<refusal> refused;
  grants granted = all_grants();
  scope_rules rules;
  std::vector<std::string> forbidden;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pull_reply& x) {
  return f(caf::meta::type_name("memsync::pull_reply"), x.next, x.last_mutation_id,
           x.reset, x.entities, x.traces, x.server_time_us, x.complete, x.total,
           x.refused, x.granted, x.rules, x.forbidden);
}

/// Sent by the server after a commit that touched a scope the client holds
/// (before or after the change): something newer than `version` exists.
/// `trace_id` names one traced change of that commit (0: none), so nodes
/// that sample traces record the pokes that belong to sampled changes.
struct poke {
  uint64_t version = 0;
  uint64_t trace_id = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, poke& x) {
  return f(caf::meta::type_name("memsync::poke"), x.version, x.trace_id);
}

/// Sent by the server instead of `poke` to a client whose last pull it
/// answered: the answer to the pull it expects the client to make next
/// (`asked`: the one the client makes after taking that answer), read right
/// after the commit. It saves a round trip over the network per commit and
/// client. Only a complete answer that is no reset is sent so. The client
/// takes it in place of its next pull if that pull is exactly `asked`
/// (otherwise it counts as `poke` alone); never for a `sync` (an answer read
/// before the sync was asked may miss what was acknowledged to others
/// meanwhile), nor after a push reply newer than the answer.
struct pushed_answer {
  poke cause;
  pull_request asked;
  pull_reply answer;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pushed_answer& x) {
  return f(caf::meta::type_name("memsync::pushed_answer"), x.cause, x.asked, x.answer);
}

} // namespace memsync
