#include "node/loadtest/loadtest_check.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "actors/common/sqlite.hpp"

namespace memsync::loadtest {

std::vector<std::string> visible_state(client_node& node) {
  std::vector<std::string> out;
  for (auto& e : node.app().all())
    out.push_back(e->id + "\t" + e->type + "\t" + e->data);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

struct last_change {
  sim_client* client = nullptr;
  uint64_t mutation_id = 0;
  bool deleted = false;
};

/// The write behind a mutation: the flush probe recorded which write (seq)
/// each mutation id ends with; the driver recorded each write by seq.
const write_record* write_of(sim_client& c, uint64_t mutation_id) {
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> guard{c.mtx};
    if (mutation_id == 0 || mutation_id > c.seq_of_mutation.size())
      return nullptr;
    seq = c.seq_of_mutation[mutation_id - 1];
  }
  auto it = std::lower_bound(c.log.begin(), c.log.end(), seq,
                             [](const write_record& w, uint64_t s) { return w.seq < s; });
  return it != c.log.end() && it->seq == seq ? &*it : nullptr;
}

} // namespace

void check_server_log(const std::string& db_path, const std::vector<sim_client*>& clients,
                      const std::map<std::size_t, std::set<uint64_t>>& refused,
                      loadtest_report& report) {
  std::unordered_map<std::string, sim_client*> by_id;
  for (auto& c : clients)
    by_id[c->node->client_id()] = c;
  sqlite_db db{db_path, false};
  std::unordered_map<std::string, last_change> last; // by entity id
  std::set<std::pair<sim_client*, uint64_t>> seen;
  auto rows = db.prepare(
    "SELECT client_id, mutation_id, entity_id, deleted FROM log ORDER BY version");
  while (rows.step()) {
    auto it = by_id.find(rows.column_text(0));
    if (it == by_id.end())
      continue; // another client of a shared server (e.g. the verifier)
    auto mid = static_cast<uint64_t>(rows.column_int(1));
    if (!seen.emplace(it->second, mid).second) {
      ++report.changes_duplicated;
      continue;
    }
    ++report.changes_on_server;
    last[rows.column_text(2)] = {it->second, mid, rows.column_int(3) != 0};
  }
  for (auto& [id, c] : by_id) {
    uint64_t made;
    {
      std::lock_guard<std::mutex> guard{c->mtx};
      made = c->seq_of_mutation.size();
    }
    report.changes_made += made;
    auto r = refused.find(c->index);
    for (uint64_t mid = 1; mid <= made; ++mid) {
      if (seen.count({c, mid}) > 0 || (r != refused.end() && r->second.count(mid) > 0))
        continue;
      // The server refuses a patch or delete of an entity another client
      // deleted; if the push reply carrying that refusal was lost, the
      // client is never told. A missing put has no such excuse.
      auto w = write_of(*c, mid);
      if (w && w->kind != change_kind::put)
        ++report.changes_unaccounted;
      else
        ++report.changes_lost;
    }
  }
  auto entities = db.prepare("SELECT id, data, deleted FROM entities");
  std::unordered_map<std::string, std::pair<std::string, bool>> state;
  while (entities.step())
    state[entities.column_text(0)] = {entities.column_text(1),
                                      entities.column_int(2) != 0};
  for (auto& [id, lc] : last) {
    auto w = write_of(*lc.client, lc.mutation_id);
    auto s = state.find(id);
    bool wrong;
    if (!w || s == state.end()) {
      wrong = true;
    } else if (w->kind == change_kind::del || lc.deleted) {
      wrong = !(w->kind == change_kind::del && lc.deleted && s->second.second);
    } else {
      stamp st;
      wrong = s->second.second || !read_stamp(s->second.first, st)
              || st.writer != lc.client->index || st.n != w->n;
    }
    report.final_values_wrong += wrong ? 1 : 0;
  }
}

} // namespace memsync::loadtest
