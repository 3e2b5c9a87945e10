// The workload of a simulation: application operations (writes through the
// store, as an application makes them, and offline periods) and faults,
// each an op_generator with a weight. A later feature adds its operations
// here (scoped subscriptions, compaction) and its guarantees to
// sim_checks.cpp.
#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "actors/common/clock.hpp"
#include "tools/sim/sim_world.hpp"

namespace memsync::sim {

namespace {

using namespace std::chrono_literals;

/// Hot entities every client writes: the collisions of a shared document.
constexpr int hot_entities = 3;
/// Entities per client of its own.
constexpr int own_entities = 8;

caf::timespan millis(world& w, uint64_t lo, uint64_t hi) {
  return std::chrono::milliseconds(w.pick(lo, hi));
}

nlohmann::json payload(world& w, std::size_t client) {
  return {{"by", w.client_name(client)}, {"n", w.pick(0, 1000000)}};
}

/// A visible entity of the client, chosen from the seed (sorted first: the
/// store's iteration order is none).
entity_ptr visible_one(world& w, store_core& s) {
  auto all = s.all();
  if (all.empty())
    return nullptr;
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a->id < b->id; });
  return all[w.pick(0, all.size() - 1)];
}

/// Notes the write `what` of `client` and its outcome; true if it succeeded.
bool noted(world& w, std::size_t client, const std::string& what, const sync_error& err) {
  w.note(w.client_name(client) + " " + what + (err.ok() ? "" : ": " + err.describe()));
  if (err.ok())
    w.wrote(client);
  return err.ok();
}

bool put(world& w, std::size_t client, std::string id, const char* type) {
  auto* s = w.store_of(client);
  if (!s)
    return false;
  return noted(w, client, "put " + id, s->put(id, type, payload(w, client)));
}

bool put_own(world& w, std::size_t client) {
  auto id = w.client_name(client) + "-" + std::to_string(w.pick(0, own_entities - 1));
  return put(w, client, id, "note");
}

bool put_hot(world& w, std::size_t client) {
  return put(w, client, "hot-" + std::to_string(w.pick(0, hot_entities - 1)), "hot");
}

bool burst(world& w, std::size_t client) {
  auto n = w.pick(5, 20);
  bool any = false;
  for (uint64_t i = 0; i < n; ++i)
    any = (w.pick(0, 3) == 0 ? put_hot(w, client) : put_own(w, client)) || any;
  return any;
}

bool patch(world& w, std::size_t client) {
  auto* s = w.store_of(client);
  if (!s)
    return false;
  auto e = visible_one(w, *s);
  if (!e)
    return false;
  auto field = "f" + std::to_string(w.pick(0, 3));
  nlohmann::json p = {{field, nullptr}};
  if (w.pick(0, 3) != 0)
    p[field] = w.pick(0, 1000);
  return noted(w, client, "patch " + e->id + " " + p.dump(), s->patch(e->id, p));
}

bool erase(world& w, std::size_t client) {
  auto* s = w.store_of(client);
  if (!s)
    return false;
  auto e = visible_one(w, *s);
  if (!e)
    return false;
  return noted(w, client, "del " + e->id, s->erase(e->id));
}

bool toggle_online(world& w, std::size_t client) {
  auto online = !w.online(client);
  w.set_online(client, online);
  w.note(w.client_name(client) + (online ? " goes online" : " goes offline"));
  return true;
}

} // namespace

std::vector<op_generator> default_ops(const fault_set& faults) {
  std::vector<op_generator> ops{
    {"put", 30, false, put_own}, {"put_hot", 15, false, put_hot},
    {"burst", 4, false, burst},  {"patch", 20, false, patch},
    {"del", 8, false, erase},    {"offline", 4, false, toggle_online},
  };
  if (faults.drops)
    ops.push_back({"drop", 6, true, [](world& w, std::size_t c) {
                     w.note("network drops " + w.client_name(c) + "'s connection");
                     w.drop(c);
                     return true;
                   }});
  if (faults.partitions)
    ops.push_back({"partition", 3, true, [](world& w, std::size_t c) {
                     auto d = millis(w, 100, 3000);
                     w.note(w.client_name(c) + " partitioned for "
                            + std::to_string(d.count() / 1000000) + " ms");
                     return w.isolate(c, d);
                   }});
  if (faults.client_crashes)
    ops.push_back({"client_crash", 4, true, [](world& w, std::size_t c) {
                     w.note(w.client_name(c) + " crashes");
                     return w.crash_client(c, millis(w, 10, 1000));
                   }});
  if (faults.server_crashes)
    ops.push_back({"server_crash", 2, true, [](world& w, std::size_t) {
                     w.note("server crashes");
                     return w.crash_server(millis(w, 10, 1000));
                   }});
  if (faults.power_loss)
    ops.push_back({"power_loss", 1, true, [](world& w, std::size_t) {
                     w.note("power loss: every node down, unsynced writes lost");
                     return w.power_outage(millis(w, 10, 500));
                   }});
  if (faults.storage_errors)
    ops.push_back({"storage_errors", 2, true, [](world& w, std::size_t) {
                     auto d = millis(w, 10, 300);
                     w.note("every storage write fails for "
                            + std::to_string(d.count() / 1000000) + " ms");
                     return w.storage_errors(d);
                   }});
  if (faults.full_disk)
    ops.push_back({"disk_full", 2, true, [](world& w, std::size_t) {
                     auto d = millis(w, 10, 300);
                     w.note("the disk is full for " + std::to_string(d.count() / 1000000)
                            + " ms");
                     return w.disk_full(d);
                   }});
  if (faults.restores)
    ops.push_back({"restore", 1, true, [](world& w, std::size_t) {
                     return w.restore_server(millis(w, 10, 1000));
                   }});
  if (faults.clock_jumps)
    ops.push_back({"clock_jump", 2, true, [](world& w, std::size_t) {
                     // Back or ahead by up to a day: traces and clock-offset
                     // samples see it; no ordering or timer may depend on it.
                     auto jump = static_cast<int64_t>(w.pick(1, 86'400'000)) * 1000
                                 * (w.pick(0, 1) == 0 ? -1 : 1);
                     test_faults::wall_clock_jump_us += jump;
                     w.note("every wall clock jumps by " + std::to_string(jump / 1000)
                            + " ms");
                     return true;
                   }});
  return ops;
}

} // namespace memsync::sim
