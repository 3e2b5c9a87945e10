// The simulator's faults and its run: the workload phase, healing and the
// checks (see sim_world.hpp).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <caf/send.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "actors/storage/sqlite_backend.hpp"
#include "tools/sim/sim_world.hpp"
#include "tools/sim/sim_world_nodes.hpp"

namespace memsync::sim {

using namespace std::chrono_literals;

namespace {

/// How long the workload phase lasts in virtual time, per operation.
constexpr caf::timespan time_per_op = 40ms;
/// Healing: long enough for the longest backoff (retry_max) several times
/// over and a few fallback pulls; a normal sync takes milliseconds.
constexpr caf::timespan heal_time = 20s;
/// Messages one run may handle before it counts as stalled (a livelock).
constexpr std::size_t max_steps = 3'000'000;

} // namespace

// -- faults and operations --------------------------------------------------------

void world::wrote(std::size_t client) {
  auto& c = *clients_[client];
  c.written.push_back(c.core->last_seq());
}

void world::check_handed_on(std::size_t i, bool every) {
  // The store hands writes on in seq order; a write below the last one
  // handed on that was not handed on was lost by the store, not by a crash.
  auto& c = *clients_[i];
  if (!c.handed_on)
    return;
  auto& seen = *c.handed_on;
  for (std::size_t k = 1; k < seen.size(); ++k)
    if (seen[k] <= seen[k - 1])
      hist_.violations.push_back(c.name + ": the store handed on write "
                                 + std::to_string(seen[k]) + " after "
                                 + std::to_string(seen[k - 1]));
  if (seen.empty() && !every)
    return;
  std::set<uint64_t> got(seen.begin(), seen.end());
  for (auto seq : c.written)
    if ((every || (!seen.empty() && seq < seen.back())) && !got.count(seq))
      hist_.violations.push_back(
        c.name + ": write " + std::to_string(seq)
        + " never reached the flush scheduler (lost by the store)");
}

void world::set_online(std::size_t client, bool online) {
  auto& c = *clients_[client];
  c.online = online;
  if (c.up)
    caf::anon_send(c.syncer, online_atom::value, online);
}

bool world::online(std::size_t client) const {
  return clients_[client]->online;
}

void world::drop(std::size_t client) {
  drop_connections(net_, client);
}

bool world::isolate(std::size_t client, caf::timespan how_long) {
  if (net_.isolated[client])
    return false;
  net_.isolated[client] = true;
  at(now() + how_long, [this, client] {
    net_.isolated[client] = false;
    // The connections that went silent are reset once the network heals.
    drop_connections(net_, client);
    note(client_name(client) + " reachable again");
  });
  return true;
}

bool world::crash_client(std::size_t client, caf::timespan down_for) {
  if (!clients_[client]->up)
    return false;
  stop_client(client, caf::exit_reason::kill);
  at(now() + down_for, [this, client] { start_client(client); });
  return true;
}

bool world::crash_server(caf::timespan down_for) {
  if (!server_->up)
    return false;
  stop_server(caf::exit_reason::kill);
  at(now() + down_for, [this] { start_server(); });
  return true;
}

bool world::power_outage(caf::timespan down_for) {
  if (!server_->up)
    return false;
  // From now until every process is gone, nothing reaches the disk and
  // nothing that happens counts: the machine is off.
  net_.frozen = true;
  vfs_.power_loss();
  for (auto& c : clients_)
    if (c->up) {
      c->lost_tail = c->synchronous == "normal";
      stop_client(c->index, caf::exit_reason::kill);
      at(now() + down_for, [this, i = c->index] { start_client(i); });
    }
  stop_server(caf::exit_reason::kill);
  at(now() + down_for, [this] { start_server(); });
  vfs_.revive();
  net_.frozen = false;
  return true;
}

bool world::storage_errors(caf::timespan how_long) {
  vfs_.fail_writes(true);
  at(now() + how_long, [this] {
    vfs_.fail_writes(false);
    note("storage writes work again");
  });
  return true;
}

void world::copy_server() {
  if (!server_->up) {
    note("no copy of the server taken: it is down");
    return;
  }
  // The backup API reads the committed state through a second connection
  // (the server's own is between two messages: no transaction open). The
  // copy is written past the fault VFS: an operator's backup elsewhere.
  server_copy copy;
  copy.path = dir_ + "/server-copy-" + std::to_string(copies_.size()) + ".db";
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  bool ok = sqlite3_open_v2(server_->db_path.c_str(), &src, SQLITE_OPEN_READONLY, nullptr)
              == SQLITE_OK
            && sqlite3_open_v2(copy.path.c_str(), &dst,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "unix")
                 == SQLITE_OK;
  if (ok) {
    auto* backup = sqlite3_backup_init(dst, "main", src, "main");
    ok = backup != nullptr && sqlite3_backup_step(backup, -1) == SQLITE_DONE;
    ok = sqlite3_backup_finish(backup) == SQLITE_OK && ok;
  }
  // One file, nothing in a WAL beside it: what a restore copies back.
  ok = ok
       && sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr)
            == SQLITE_OK;
  sqlite3_stmt* stmt = nullptr;
  ok = ok
       && sqlite3_prepare_v2(dst, "SELECT client_id, mutation_id FROM log", -1, &stmt,
                             nullptr)
            == SQLITE_OK;
  while (ok && sqlite3_step(stmt) == SQLITE_ROW)
    copy.log[reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))].insert(
      static_cast<uint64_t>(sqlite3_column_int64(stmt, 1)));
  sqlite3_finalize(stmt);
  std::string why = ok ? "" : (dst ? sqlite3_errmsg(dst) : "cannot open");
  sqlite3_close(src);
  sqlite3_close(dst);
  if (!ok) {
    // Nothing here is a fault of the engine: the simulator's own copy failed.
    hist_.violations.push_back("sim: copying the server's database failed: " + why);
    return;
  }
  std::size_t entries = 0;
  for (auto& [client, mids] : copy.log)
    entries += mids.size();
  note("copy " + std::to_string(copies_.size()) + " of the server taken ("
       + std::to_string(entries) + " log entries)");
  copies_.push_back(std::move(copy));
}

bool world::restore_server(caf::timespan down_for) {
  if (!server_->up || copies_.empty())
    return false;
  auto k = static_cast<std::size_t>(pick(0, copies_.size() - 1));
  note("server restored from copy " + std::to_string(k));
  stop_server(caf::exit_reason::kill);
  // The operator replaces the whole file set. Deleting through the fault
  // VFS (SQLite's default now) also forgets what it knew of the old files'
  // unsynced content; the copy is put in place fully written.
  auto* vfs = sqlite3_vfs_find(nullptr);
  for (auto* suffix : {"", "-wal", "-shm"})
    vfs->xDelete(vfs, (server_->db_path + suffix).c_str(), 0);
  std::filesystem::copy_file(copies_[k].path, server_->db_path);
  ++net_.generation;
  hist_.restores.push_back(copies_[k].log);
  at(now() + down_for, [this] { start_server(); });
  return true;
}

void world::account_restores() {
  auto& record = net_.record;
  for (std::size_t k = 0; k < hist_.restores.size(); ++k) {
    // Restore k ended generation k: what the client heard from a server of
    // generation k or before was acknowledged before it.
    auto& copy = hist_.restores[k];
    for (auto& [client, by_generation] : record.told_acked) {
      uint64_t told = 0;
      for (auto& [generation, last] : by_generation)
        if (generation <= k)
          told = std::max(told, last);
      // The changes the server acknowledged in a push reply, and those the
      // client flushed (a pull may have told it of them).
      std::set<uint64_t> mids = hist_.flushed[client];
      for (auto& [mid, c] : record.acked[client])
        mids.insert(mid);
      auto in_copy = copy.find(client);
      auto& acked_in = record.acked_in[client];
      auto& normal_lost = hist_.lost_to_normal_sync[client];
      for (auto mid : mids) {
        if (in_copy != copy.end() && in_copy->second.count(mid))
          continue;
        // Acknowledged before the restore, and no longer held by its client:
        // it was told so and dropped it, or power loss took it from its file
        // under synchronous=normal before it could push it again.
        auto a = acked_in.find(mid);
        bool before = a != acked_in.end() && a->second <= k;
        if (mid <= told || (before && normal_lost.count(mid)))
          hist_.lost_to_restores[client].insert(mid);
      }
    }
  }
}

// -- scopes -----------------------------------------------------------------------

const grants& world::grants_of(std::size_t client) const {
  return net_.grant_versions.at(client).back();
}

void world::write_tokens_file() {
  std::ofstream out{server_->tokens_path, std::ios::trunc};
  for (auto& c : clients_) {
    out << c->token << " " << c->name;
    if (!opt_.lax_server) // a line without grants: write:*
      for (auto& g : grants_of(c->index))
        out << " " << to_string(g);
    out << "\n";
  }
}

void world::set_grants(std::size_t client, grants g) {
  auto& versions = net_.grant_versions[client];
  versions.push_back(std::move(g));
  ++result_.grant_changes;
  write_tokens_file();
  if (!server_->up)
    return; // it reads the file when it starts
  std::map<std::size_t, std::size_t> written;
  for (auto& [i, v] : net_.grant_versions)
    written[i] = v.size() - 1;
  caf::anon_send(operator_, caf::actor_cast<caf::actor>(server_->gateway),
                 std::move(written));
}

std::vector<std::string> world::subscription_of(std::size_t client) const {
  auto& c = *clients_[client];
  return c.view ? c.view->subscription : std::vector<std::string>{};
}

bool world::subscribe(std::size_t client, const std::string& pattern) {
  auto& c = *clients_[client];
  if (!c.up)
    return false;
  caf::anon_send(app_, subscribe_atom::value, caf::actor_cast<caf::actor>(c.syncer),
                 client, pattern);
  return true;
}

bool world::unsubscribe(std::size_t client, const std::string& pattern) {
  auto& c = *clients_[client];
  if (!c.up)
    return false;
  caf::anon_send(app_, unsub_atom::value, caf::actor_cast<caf::actor>(c.syncer), client,
                 pattern);
  return true;
}

std::vector<std::string> world::held_under(std::size_t client, const grants& g) const {
  std::vector<std::string> out;
  for (auto& e : subscription_of(client))
    for (auto& part : readable_part(g, e))
      out.push_back(std::move(part));
  return minimal_patterns(std::move(out));
}

void world::check_held(std::size_t i) {
  auto& c = *clients_[i];
  // Before its first answer a restarted client holds what its database
  // kept; that answer's prune judges it.
  if (!c.up || !c.view->known)
    return;
  ++result_.held_checks;
  auto held = held_under(i, c.view->granted);
  std::set<std::string> pending;
  for (auto& ch : c.core->pending())
    pending.insert(ch.id);
  for (auto& e : c.core->all()) {
    if (pending.count(e->id)) // a local write: it stays until answered
      continue;
    auto scope = scope_of(net_.rules, e->type, e->data);
    if (std::any_of(held.begin(), held.end(),
                    [&](auto& p) { return pattern_matches(p, scope); }))
      continue;
    auto what = c.name + " holds " + e->id + " of scope '" + scope
                + "', which its subscription "
                + nlohmann::json(c.view->subscription).dump()
                + " under the grants of its last answer does not name";
    if (held_reported_.insert(what).second)
      hist_.violations.push_back(what);
  }
}

std::size_t world::client_of_last_ran() {
  // The client whose actor just ran: its application writes while its
  // actors are busy, which is where the interleavings that matter are.
  for (auto& c : clients_) {
    if (!c->up)
      continue;
    for (auto& a :
         {caf::actor_cast<caf::actor>(c->syncer), caf::actor_cast<caf::actor>(c->memory),
          caf::actor_cast<caf::actor>(c->flusher), caf::actor_cast<caf::actor>(c->db)})
      if (dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(a))
          == last_ran_)
        return c->index;
  }
  return static_cast<std::size_t>(pick(0, clients_.size() - 1));
}

void world::run_op(std::size_t client, bool faults) {
  unsigned total_weight = 0;
  for (auto& op : ops_)
    if (faults || !op.fault)
      total_weight += op.weight;
  auto r = pick(0, total_weight - 1);
  for (auto& op : ops_) {
    if (!faults && op.fault)
      continue;
    if (r >= op.weight) {
      r -= op.weight;
      continue;
    }
    if (op.run(*this, client)) {
      if (op.fault) {
        ++result_.faults;
        ++result_.fault_counts[op.name];
      } else {
        ++result_.writes;
      }
    }
    break;
  }
  probe(client);
}

bool world::disk_full(caf::timespan how_long) {
  vfs_.set_quota(0); // nothing may grow; overwrites in place still work
  at(now() + how_long, [this] {
    vfs_.set_quota(SIZE_MAX);
    note("the disk has room again");
  });
  return true;
}

void world::probe(std::size_t client) {
  auto& c = *clients_[client];
  if (c.up)
    caf::anon_send(prober_, caf::actor_cast<caf::actor>(c.syncer), client);
}

// -- running --------------------------------------------------------------------

bool world::step() {
  auto& jobs = sched_->jobs;
  if (jobs.empty())
    return false;
  auto i = static_cast<std::ptrdiff_t>(pick(0, jobs.size() - 1));
  if (i != 0)
    std::rotate(jobs.begin(), jobs.begin() + i, jobs.begin() + i + 1);
  last_ran_ = jobs.front();
  sched_->run_once();
  ++result_.steps;
  return true;
}

void world::run_until(caf::timespan until, bool workload) {
  for (;;) {
    if (result_.steps > max_steps) {
      hist_.violations.push_back("stalled: more than " + std::to_string(max_steps)
                                 + " messages in one run");
      return;
    }
    auto t = now();
    bool due = !agenda_.empty() && agenda_.begin()->first <= t;
    bool runnable = sched_->has_job();
    // A due event happens between any two messages, chosen from the seed.
    if (due && (!runnable || pick(0, 3) == 0)) {
      auto fn = std::move(agenda_.begin()->second);
      agenda_.erase(agenda_.begin());
      fn();
      continue;
    }
    if (runnable) {
      step();
      // Operations also happen amid the traffic, between any two messages.
      // Spread over the workload phase: one every time_per_op on average.
      if (workload && now() >= next_mid_op_ && pick(0, 3) == 0) {
        next_mid_op_ = now()
                       + caf::timespan{
                         static_cast<int64_t>(pick(0, 2 * time_per_op.count()))};
        run_op(client_of_last_ran(), false);
      }
      continue;
    }
    // Nothing to run: time moves to the next timer or event. Every message
    // sent so far is handled: a quiet point, where the scope rule holds.
    for (std::size_t i = 0; i < clients_.size(); ++i)
      check_held(i);
    auto next = until;
    if (!agenda_.empty())
      next = std::min(next, agenda_.begin()->first);
    if (sched_->has_pending_timeout())
      next = std::min(next, sched_->clock().schedule().begin()->first.time_since_epoch());
    if (next <= t) {
      if (sched_->has_pending_timeout()
          && sched_->clock().schedule().begin()->first.time_since_epoch() <= t)
        sched_->advance_time(caf::timespan{0});
      else if (t >= until)
        return;
      continue;
    }
    sched_->advance_time(next - t);
    if (next >= until && agenda_.empty() && !sched_->has_job())
      return;
  }
}

client_outcome world::capture(std::size_t i) {
  auto& c = *clients_[i];
  client_outcome out;
  out.index = i;
  out.name = c.name;
  out.held = held_under(i, grants_of(i));
  out.reported = minimal_patterns(hist_.reported_scopes[i]);
  out.client_id = c.client_id;
  out.db_path = c.db_path;
  if (!c.core)
    return out;
  for (auto& e : c.core->all())
    out.visible.push_back(e->id + "\t" + e->type + "\t" + e->data);
  std::sort(out.visible.begin(), out.visible.end());
  out.pending = c.core->counts().pending;
  return out;
}

sim_result world::run() {
  test_faults::drop_writes_in_rebase = opt_.broken_rebase;
  test_faults::keep_pruned = opt_.keep_pruned;
  test_faults::wall_clock_jump_us = 0;
  start_server();
  for (std::size_t i = 0; i < clients_.size(); ++i)
    start_client(i);
  // The workload: each operation at a time drawn from the seed.
  auto workload_end = time_per_op * static_cast<int64_t>(opt_.ops);
  for (std::size_t k = 0; k < opt_.ops; ++k) {
    auto when = caf::timespan{static_cast<int64_t>(pick(0, workload_end.count()))};
    at(when,
       [this] { run_op(static_cast<std::size_t>(pick(0, clients_.size() - 1)), true); });
  }
  // Copies of the server to restore from, taken at seeded times.
  if (opt_.faults.restores)
    for (auto n = pick(1, 3); n > 0; --n)
      at(caf::timespan{static_cast<int64_t>(pick(0, workload_end.count()))},
         [this] { copy_server(); });
  run_until(workload_end, true);
  // Healing: the faults stop, what is pending happens now, every node is up
  // and online.
  note("healing");
  net_.drop_chance = 0;
  vfs_.fail_writes(false);
  vfs_.set_quota(SIZE_MAX);
  while (!agenda_.empty()) {
    auto fn = std::move(agenda_.begin()->second);
    agenda_.erase(agenda_.begin());
    fn();
  }
  vfs_.fail_writes(false);
  net_.isolated.clear();
  if (!server_->up)
    start_server();
  for (auto& c : clients_) {
    if (!c->up)
      start_client(c->index);
    if (!c->online)
      set_online(c->index, true);
  }
  run_until(now() + heal_time, false);
  for (std::size_t i = 0; i < clients_.size(); ++i)
    probe(i);
  run_until(now() + 1s, false);
  test_faults::drop_writes_in_rebase = false;
  test_faults::keep_pruned = false;
  test_faults::wall_clock_jump_us = 0;
  if (!opt_.forget_restore_losses)
    account_restores();
  // The checks read the databases closed, as the next start would.
  run_outcome outcome{&hist_,           &net_.record, {},
                      server_->db_path, net_.rules,   &net_.grant_versions};
  for (std::size_t i = 0; i < clients_.size(); ++i)
    outcome.clients.push_back(capture(i));
  // Healed and quiet: every write of the last incarnations was handed on.
  for (std::size_t i = 0; i < clients_.size(); ++i)
    check_handed_on(i, true);
  for (auto& c : clients_)
    stop_client(c->index, caf::exit_reason::user_shutdown);
  stop_server(caf::exit_reason::user_shutdown);
  sched_->run();
  result_.virtual_seconds = std::chrono::duration<double>(now()).count();
  result_.failed_writes = vfs_.failed_writes();
  for (auto& w : hist_.violations)
    result_.failures.push_back(w);
  for (auto& w : net_.record.scope_violations)
    result_.failures.push_back("scopes: " + w);
  result_.scoped_answers = net_.record.answers;
  result_.answers_ahead = net_.record.answers_ahead;
  result_.scoped_entities = net_.record.scoped_entities;
  for (auto& c : default_checks()) {
    std::vector<std::string> failures;
    try {
      c.check(outcome, failures);
    } catch (const std::exception& e) {
      failures.push_back(std::string{"check failed to run: "} + e.what());
    }
    for (auto& f : failures)
      result_.failures.push_back(std::string{c.name} + ": " + f);
  }
  try {
    sqlite_backend server{server_->db_path};
    auto log = server.read_log(0, SIZE_MAX);
    result_.server_log = log.size();
    std::set<std::pair<std::string, uint64_t>> held;
    for (auto& e : log)
      held.emplace(e.client_id, e.mutation_id);
    for (auto& [client, mids] : hist_.lost_to_restores)
      for (auto mid : mids)
        result_.lost_to_restores += held.count({client, mid}) == 0 ? 1 : 0;
  } catch (const std::exception&) {
  }
  return result_;
}

sim_result run_simulation(const sim_options& opt) {
  // tmpfs when there is one: the files are real, their fsyncs cost nothing.
  std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string pattern = base + "/memsync-sim-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("sim: cannot create a temporary directory in " + base);
  sim_result result;
  {
    world w{opt, pattern};
    result = w.run();
  }
  std::error_code ec;
  std::filesystem::remove_all(pattern, ec);
  return result;
}

} // namespace memsync::sim
