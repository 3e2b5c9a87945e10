// The checks after a run, one per guarantee of the design (section 4), on
// the databases the run left (closed) and what it recorded on the way. A
// later feature adds its guarantee as one more checker.
#include <algorithm>
#include <map>

#include "actors/client/local_database.hpp"
#include "actors/common/apply_change.hpp"
#include "actors/storage/sqlite_backend.hpp"
#include "tools/sim/sim_world.hpp"

namespace memsync::sim {

namespace {

std::string mid_name(const std::string& client_id, uint64_t mid) {
  return client_id + " #" + std::to_string(mid);
}

/// The server's live entities as comparable lines, sorted.
std::vector<std::string> server_state(sqlite_backend& server) {
  std::vector<std::string> out;
  for (auto& e : server.pull("sim-audit", cookie{}).entities)
    if (!e.deleted)
      out.push_back(e.id + "\t" + e.type + "\t" + e.data);
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
      if (c.kind == change_kind::patch) {
        // A patch of what is gone is refused; a refusal whose reply was lost
        // is told again by the duplicate push's reply or by a pull.
        auto& refused = out.wire->refused;
        auto r = refused.find(client);
        if (r == refused.end() || !r->second.count(mid))
          failures.push_back("refusal of " + mid_name(client, mid) + " (patch of " + c.id
                             + ") was never reported to its client");
        continue;
      }
      failures.push_back("acknowledged " + mid_name(client, mid) + " (" + c.id
                         + ") is not in the server's history");
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

// Guarantee 4: once healed and quiet, every client shows the server's state
// and has nothing pending.
void convergence(const run_outcome& out, std::vector<std::string>& failures) {
  sqlite_backend server{out.server_db};
  auto expected = server_state(server);
  for (auto& c : out.clients) {
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
    if (lines != c.visible)
      failures.push_back(c.name + ": the database's base and outbox hold "
                         + std::to_string(lines.size()) + " entities, the client showed "
                         + std::to_string(c.visible.size()));
  }
}

} // namespace

std::vector<checker> default_checks() {
  return {
    {"exactly_once_in_order", exactly_once_in_order},
    {"flushed_reached_server", flushed_reached_server},
    {"convergence", convergence},
    {"local_databases", local_databases},
  };
}

} // namespace memsync::sim
