// The workload of a simulation: application operations (writes through the
// store, as an application makes them, subscriptions and offline periods),
// the operator's grant changes, and faults, each an op_generator with a
// weight. A later feature adds its operations here (compaction) and its
// guarantees to sim_checks.cpp.
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
/// Tasks every client may write, each in the scope its "team" names.
constexpr int tasks = 10;
/// The scopes tasks are in; every other entity is in `default`.
const std::vector<std::string> teams{"team-a", "team-b", "team-c"};
/// What the application subscribes to.
const std::vector<std::string> patterns{"team-a", "team-b",  "team-c",
                                        "team-*", "default", "*"};

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
  if (err.code == sync_errc::forbidden)
    w.refused_at_once();
  return err.ok();
}

const std::string& one_of(world& w, const std::vector<std::string>& xs) {
  return xs[w.pick(0, xs.size() - 1)];
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

/// A task in a team's scope, writable by the client or not (the store says
/// no at once once it knows the grants, else the server refuses it); now
/// and then without its team, which no one may write.
bool put_task(world& w, std::size_t client) {
  auto* s = w.store_of(client);
  if (!s)
    return false;
  auto id = "task-" + std::to_string(w.pick(0, tasks - 1));
  auto data = payload(w, client);
  if (w.pick(0, 9) != 0)
    data["team"] = one_of(w, teams);
  return noted(w, client, "put " + id + " " + data.dump(), s->put(id, "task", data));
}

/// A patch that moves a visible task to another team's scope.
bool move_task(world& w, std::size_t client) {
  auto* s = w.store_of(client);
  if (!s)
    return false;
  auto all = s->by_type("task");
  if (all.empty())
    return false;
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a->id < b->id; });
  auto& e = all[w.pick(0, all.size() - 1)];
  nlohmann::json p = {{"team", one_of(w, teams)}};
  return noted(w, client, "patch " + e->id + " " + p.dump(), s->patch(e->id, p));
}

bool subscribe(world& w, std::size_t client) {
  auto& pattern = one_of(w, patterns);
  w.note(w.client_name(client) + " subscribes to " + pattern);
  return w.subscribe(client, pattern);
}

bool unsubscribe(world& w, std::size_t client) {
  // Sometimes one it does not have, or its last: both are refused.
  auto sub = w.subscription_of(client);
  auto pattern = w.pick(0, 4) == 0 || sub.empty() ? one_of(w, patterns) : one_of(w, sub);
  w.note(w.client_name(client) + " unsubscribes from " + pattern);
  return w.unsubscribe(client, pattern);
}

bool change_grants(world& w, std::size_t client) {
  auto g = draw_grants(w);
  std::string text;
  for (auto& x : g)
    text += " " + to_string(x);
  w.note("the operator gives " + w.client_name(client) + text + " and reloads");
  w.set_grants(client, std::move(g));
  return true;
}

bool toggle_online(world& w, std::size_t client) {
  auto online = !w.online(client);
  w.set_online(client, online);
  w.note(w.client_name(client) + (online ? " goes online" : " goes offline"));
  return true;
}

} // namespace

scope_rules sim_rules() {
  return {{"task", "team"}};
}

grants draw_grants(world& w) {
  if (w.pick(0, 4) == 0)
    return {{"*", true}};
  grants g;
  for (auto& team : teams)
    if (auto k = w.pick(0, 3); k != 0 && k != 3)
      g.push_back({team, k == 2});
  if (w.pick(0, 4) == 0)
    g.push_back({"team-*", w.pick(0, 2) == 0});
  if (auto k = w.pick(0, 9); k != 0)
    g.push_back({std::string{default_scope}, k != 1});
  if (g.empty())
    g.push_back({teams[0], false});
  return g;
}

std::vector<std::string> draw_scopes(world& w) {
  if (w.pick(0, 1) == 0)
    return {"*"};
  std::vector<std::string> out;
  for (auto n = w.pick(1, 3); n > 0; --n)
    out.push_back(one_of(w, patterns));
  return out;
}

std::vector<op_generator> default_ops(const fault_set& faults) {
  std::vector<op_generator> ops{
    {"put", 30, false, put_own},
    {"put_hot", 15, false, put_hot},
    {"burst", 4, false, burst},
    {"patch", 20, false, patch},
    {"del", 8, false, erase},
    {"offline", 4, false, toggle_online},
    {"put_task", 20, false, put_task},
    {"move_task", 8, false, move_task},
    {"subscribe", 3, false, subscribe},
    {"unsubscribe", 3, false, unsubscribe},
    {"grants", 3, false, change_grants},
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
