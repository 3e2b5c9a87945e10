#include "node/loadtest/loadtest_check.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "actors/storage/postgres_backend.hpp"
#include "actors/storage/sqlite_backend.hpp"

namespace memsync::loadtest {

std::vector<std::string> visible_state(client_node& node) {
  std::vector<std::string> out;
  for (auto& e : node.app().all())
    out.push_back(e->id + "\t" + e->type + "\t" + e->data);
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, std::vector<std::string>>
split_by_scope(const std::vector<std::string>& state, const scope_rules& rules) {
  std::map<std::string, std::vector<std::string>> out;
  for (auto& line : state) {
    auto tab1 = line.find('\t');
    auto tab2 = line.find('\t', tab1 + 1);
    std::string scope;
    if (!derive_scope(rules, std::string_view{line}.substr(tab1 + 1, tab2 - tab1 - 1),
                      std::string_view{line}.substr(tab2 + 1), scope)
           .ok())
      scope = default_scope;
    out[scope].push_back(line);
  }
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

/// Entries of the history read at once: bounds the memory of one page.
constexpr std::size_t log_page = 10000;

} // namespace

std::unique_ptr<storage_backend> open_server_storage(const server_config& cfg) {
  if (cfg.backend == "postgres")
    return std::make_unique<postgres_backend>(cfg.postgres, cfg.postgres_schema);
  return std::make_unique<sqlite_backend>(cfg.db_path);
}

void check_server_log(storage_backend& server, const std::vector<sim_client*>& clients,
                      const std::map<std::size_t, std::set<uint64_t>>& refused,
                      loadtest_report& report) {
  std::unordered_map<std::string, sim_client*> by_id;
  for (auto& c : clients)
    by_id[c->node->client_id()] = c;
  std::unordered_map<std::string, last_change> last; // by entity id
  std::set<std::pair<sim_client*, uint64_t>> seen;
  for (uint64_t after = 0;;) {
    auto page = server.read_log(after, log_page);
    if (page.empty())
      break;
    after = page.back().version;
    for (auto& entry : page) {
      auto it = by_id.find(entry.client_id);
      if (it == by_id.end())
        continue; // another client of a shared server (e.g. the verifier)
      if (!seen.emplace(it->second, entry.mutation_id).second) {
        ++report.changes_duplicated;
        continue;
      }
      ++report.changes_on_server;
      last[entry.entity_id] = {it->second, entry.mutation_id, entry.deleted};
    }
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
      auto w = write_of(*c, mid);
      bool on_server = seen.count({c, mid}) > 0;
      if (w && w->outage) {
        ++report.storm.outage_changes_made;
        report.storm.outage_changes_on_server += on_server ? 1 : 0;
      }
      if (on_server || (r != refused.end() && r->second.count(mid) > 0))
        continue;
      // The server refuses a patch or delete of an entity another client
      // deleted; if the push reply carrying that refusal was lost, the
      // client is never told. A missing put has no such excuse.
      if (w && w->kind != change_kind::put)
        ++report.changes_unaccounted;
      else
        ++report.changes_lost;
    }
  }
  // Every entity and tombstone, as a pull from the start of this history
  // returns them (a cookie of the current epoch: no reset, so tombstones too).
  auto current = server.pull("", {server.epoch(), 0, 0});
  std::unordered_map<std::string, std::pair<std::string, bool>> state;
  for (auto& e : current.entities)
    state[e.id] = {std::move(e.data), e.deleted};
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
