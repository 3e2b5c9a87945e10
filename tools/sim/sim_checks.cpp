// The checks after a run, one per guarantee of the design (section 4), on
// the databases the run left (closed) and what it recorded on the way. A
// later feature adds its guarantee as one more checker.
#include <algorithm>
#include <iterator>
#include <map>

#include <nlohmann/json.hpp>

#include "actors/client/local_database.hpp"
#include "actors/common/apply_change.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "tools/sim/sim_world.hpp"

namespace memsync::sim {

namespace {

std::string mid_name(const std::string& client_id, uint64_t mid) {
  return client_id + " #" + std::to_string(mid);
}

/// The server's live entities in scopes one of `held` names, as comparable
/// lines, sorted.
std::vector<std::string> server_state(sqlite_backend& server, const scope_rules& rules,
                                      const std::vector<std::string>& held) {
  std::vector<std::string> out;
  for (auto& e : server.pull("sim-audit", cookie{}).entities) {
    auto scope = scope_of(rules, e.type, e.data);
    if (!e.deleted && std::any_of(held.begin(), held.end(), [&](auto& p) {
          return pattern_matches(p, scope);
        }))
      out.push_back(e.id + "\t" + e.type + "\t" + e.data);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string first_difference(const std::vector<std::string>& a,
                             const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    auto x = i < a.size() ? a[i] : "(nothing)";
    auto y = i < b.size() ? b[i] : "(nothing)";
    if (x != y)
      return "'" + x + "' vs the server's '" + y + "'";
  }
  return "";
}

// Guarantee 3: each change applied at most once, in its client's order; and
// every change the server acknowledged is in its history (a delete of what
// does not exist writes nothing, so deletes may be absent).
void exactly_once_in_order(const run_outcome& out, std::vector<std::string>& failures) {
  sqlite_backend server{out.server_db};
  std::map<std::string, uint64_t> last;
  std::map<std::string, std::map<uint64_t, std::size_t>> seen;
  for (auto& e : server.read_log(0, SIZE_MAX)) {
    if (++seen[e.client_id][e.mutation_id] == 2)
      failures.push_back(mid_name(e.client_id, e.mutation_id) + " applied twice");
    auto& l = last[e.client_id];
    if (e.mutation_id < l)
      failures.push_back(mid_name(e.client_id, e.mutation_id) + " applied after #"
                         + std::to_string(l));
    l = std::max(l, e.mutation_id);
  }
  auto& lost = out.history->lost_to_restores;
  for (auto& [client, changes] : out.wire->acked)
    for (auto& [mid, c] : changes) {
      if (c.kind == change_kind::del || seen[client].count(mid))
        continue;
      // Acknowledged after the copy was taken, and its client told so
      // before the restore: it dropped the change, the restore took it.
      if (auto l = lost.find(client); l != lost.end() && l->second.count(mid))
        continue;
      // A refused change is not in the history (a patch of what is gone, a
      // write outside the token's scopes); a refusal whose reply was lost is
      // told again by the duplicate push's reply or by a pull. A duplicate
      // push after the refusal was told acknowledges it without one.
      auto& refused = out.wire->refused;
      if (auto r = refused.find(client); r != refused.end() && r->second.count(mid))
        continue;
      if (c.kind == change_kind::patch) {
        failures.push_back("refusal of " + mid_name(client, mid) + " (patch of " + c.id
                           + ") was never reported to its client");
        continue;
      }
      failures.push_back("acknowledged " + mid_name(client, mid) + " (" + c.id
                         + ") is not in the server's history, and no refusal of it "
                           "reached its client");
    }
}

// Guarantees 2 and 12: every change a client's flush reported durable reached
// the server, crashes, power loss and storage errors notwithstanding.
void flushed_reached_server(const run_outcome& out, std::vector<std::string>& failures) {
  sqlite_backend server{out.server_db};
  auto& lost = out.history->lost_to_restores;
  for (auto& [client, mids] : out.history->flushed) {
    // The highest flushed id a restore did not legitimately take.
    auto l = lost.find(client);
    auto highest = std::find_if(mids.rbegin(), mids.rend(), [&](uint64_t mid) {
      return l == lost.end() || !l->second.count(mid);
    });
    if (highest == mids.rend())
      continue;
    auto record = server.pull(client, cookie{}).last_mutation_id;
    if (record < *highest)
      failures.push_back("flushed " + mid_name(client, *highest)
                         + " never reached the server (its record: #"
                         + std::to_string(record) + ")");
  }
}

// Guarantee 4, per scope: once healed and quiet, every client shows exactly
// the server's live entities of the scopes it subscribes to and may read,
// and has nothing pending.
void convergence(const run_outcome& out, std::vector<std::string>& failures) {
  sqlite_backend server{out.server_db};
  for (auto& c : out.clients) {
    auto expected = server_state(server, out.rules, c.held);
    auto sorted = [](std::vector<std::string> v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    if (sorted(c.reported) != sorted(c.held))
      failures.push_back(c.name + " says it holds " + nlohmann::json(c.reported).dump()
                         + ", its subscription under its grants names "
                         + nlohmann::json(c.held).dump());
    if (c.visible != expected)
      failures.push_back(c.name + " did not converge (" + std::to_string(c.visible.size())
                         + " entities, the server " + std::to_string(expected.size())
                         + "): " + first_difference(c.visible, expected));
    if (c.pending != 0)
      failures.push_back(c.name + " still has " + std::to_string(c.pending)
                         + " pending changes after healing");
  }
}

// Guarantee 9: each local database passes integrity_check, and its base with
// its outbox applied is what the client showed.
void local_databases(const run_outcome& out, std::vector<std::string>& failures) {
  for (auto& c : out.clients) {
    local_db_settings s;
    s.path = c.db_path;
    s.client_name = c.name;
    local_database db{s};
    auto integrity = db.integrity_check();
    if (integrity != "ok")
      failures.push_back(c.name + ": integrity_check: " + integrity);
    auto snap = db.load();
    std::map<std::string, entity> state;
    for (auto& e : snap.base)
      state[e.id] = e;
    for (auto& ch : snap.outbox) {
      auto i = state.find(ch.id);
      auto applied = apply_change(i != state.end() ? &i->second : nullptr, ch);
      if (!applied.error.ok() || !applied.writes)
        continue;
      if (applied.next.deleted)
        state.erase(ch.id);
      else
        state[ch.id] = applied.next;
    }
    std::vector<std::string> lines;
    for (auto& [id, e] : state)
      lines.push_back(id + "\t" + e.type + "\t" + e.data);
    if (lines != c.visible) {
      // Both sorted by id: name the first line only one of them has.
      std::vector<std::string> only_db, only_shown;
      std::set_difference(lines.begin(), lines.end(), c.visible.begin(), c.visible.end(),
                          std::back_inserter(only_db));
      std::set_difference(c.visible.begin(), c.visible.end(), lines.begin(), lines.end(),
                          std::back_inserter(only_shown));
      failures.push_back(c.name + ": the database's base and outbox hold "
                         + std::to_string(lines.size()) + " entities, the client showed "
                         + std::to_string(c.visible.size()) + " (only in the database: '"
                         + (only_db.empty() ? "" : only_db[0]) + "', only shown: '"
                         + (only_shown.empty() ? "" : only_shown[0]) + "')");
    }
  }
}

// Scopes: no change reached the server's state unless its client's token
// could write the entity's scope before it (if the entity was live) and
// after it, under grants the token had once the change reached the server.
// The server's history, replayed in version order with the changes as they
// were pushed, gives each entity's scope before and after each write.
void writes_within_grants(const run_outcome& out, std::vector<std::string>& failures) {
  auto& index_of = out.history->owner;
  sqlite_backend server{out.server_db};
  std::map<std::string, entity> state;
  for (auto& e : server.read_log(0, SIZE_MAX)) {
    auto who = mid_name(e.client_id, e.mutation_id);
    auto client = index_of.find(e.client_id);
    auto pushed = out.wire->pushed.find(e.client_id);
    const std::vector<wire_record::pushed_change>* candidates = nullptr;
    if (pushed != out.wire->pushed.end())
      if (auto m = pushed->second.find(e.mutation_id); m != pushed->second.end())
        candidates = &m->second;
    if (client == index_of.end() || !candidates) {
      failures.push_back(who + " is in the server's history but was never pushed");
      continue;
    }
    auto i = state.find(e.entity_id);
    const entity* before = i != state.end() && !i->second.deleted ? &i->second : nullptr;
    // The change this entry is (a reused id may name several pushed ones).
    const wire_record::pushed_change* p = nullptr;
    change_result applied;
    for (auto& cand : *candidates) {
      if (cand.c.id != e.entity_id)
        continue;
      applied = apply_change(before, cand.c);
      if (applied.error.ok() && applied.writes && applied.next.deleted == e.deleted) {
        p = &cand;
        break;
      }
    }
    if (!p) {
      failures.push_back(
        who + " (" + e.entity_id
        + ") in the server's history matches no change its client pushed");
      continue;
    }
    std::vector<std::string> touched;
    if (before)
      touched.push_back(scope_of(out.rules, before->type, before->data));
    if (!applied.next.deleted)
      touched.push_back(scope_of(out.rules, applied.next.type, applied.next.data));
    auto& versions = out.grant_versions->at(client->second);
    bool allowed = false;
    for (auto k = p->grants_from; k < versions.size() && !allowed; ++k)
      allowed = std::all_of(touched.begin(), touched.end(),
                            [&](auto& scope) { return can_write(versions[k], scope); });
    if (!allowed)
      failures.push_back(
        who + " wrote " + e.entity_id + " in scope '"
        + (touched.empty() ? "" : touched.front())
        + (touched.size() > 1 ? "' -> '" + touched.back() : std::string{})
        + "', which its token could not write once the change arrived");
    state[e.entity_id] = applied.next;
  }
}

} // namespace

std::vector<checker> default_checks() {
  return {
    {"exactly_once_in_order", exactly_once_in_order},
    {"flushed_reached_server", flushed_reached_server},
    {"convergence", convergence},
    {"local_databases", local_databases},
    {"writes_within_grants", writes_within_grants},
  };
}

} // namespace memsync::sim
