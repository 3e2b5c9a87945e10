// The workloads where something goes away: `drain` (clients go offline,
// pile up pending changes, and reconnect at once) and `storm` (the server,
// a child process, is killed under every client and restarted; all of them
// reconnect with their jittered backoff). Both end like every workload:
// settle, then the convergence and exactly-once checks of loadtest.cpp.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <fstream>
#include <thread>

#include "node/loadtest/loadtest_check.hpp"
#include "node/loadtest/loadtest_driver.hpp"

namespace memsync::loadtest {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {

/// How often the scenarios look at every client's status: the resolution
/// of the times they report.
constexpr auto poll_every = 20ms;

/// The program running now (`syncnode loadtest` runs itself as the server).
std::string this_program() {
  char buf[PATH_MAX];
  auto n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    throw std::runtime_error("cannot find this program (/proc/self/exe); set "
                             "server.program");
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string ns(nanoseconds d) {
  return std::to_string(d.count()) + "ns";
}

/// Mutations a client made so far, as its flush probe recorded them.
uint64_t mutations_of(sim_client& c) {
  std::lock_guard<std::mutex> guard{c.mtx};
  return c.seq_of_mutation.size();
}

} // namespace

void driver::start_child_server() {
  auto tokens_path = dir_.path + "/tokens.txt";
  {
    std::ofstream tokens{tokens_path};
    for (auto& c : clients_) {
      tokens << c->token << ' ' << c->name;
      for (auto& g : grants_of(*c))
        tokens << ' ' << to_string(g);
      tokens << '\n';
    }
    tokens << verifier_token_ << ' ' << verifier_name_ << '\n';
  }
  auto scopes_path = dir_.path + "/scopes.txt";
  {
    std::ofstream scopes{scopes_path};
    for (auto& r : rules_)
      scopes << r.type << ' ' << r.field << '\n';
  }
  server_config scfg;
  scfg.server_id = "loadtest-server-1";
  scfg.backend = "sqlite";
  scfg.db_path = dir_.path + "/server-1.db";
  // The same CAF settings as the clients (heartbeats must match), and room
  // for a connection from every client system on one address, plus the
  // verifier's.
  auto config_path = dir_.path + "/server.ini";
  {
    std::ofstream ini{config_path};
    ini << "[server]\nid = \"" << scfg.server_id << "\"\nhost = \"127.0.0.1\"\n"
        << "port = 0\nbackend = \"sqlite\"\ndb-path = \"" << scfg.db_path << "\"\n"
        << "tokens-file = \"" << tokens_path << "\"\n"
        << "scopes-file = \"" << scopes_path << "\"\n"
        << "max-connections = " << cfg_.client_systems + 16 << "\n"
        << "max-connections-per-address = " << cfg_.client_systems + 16 << "\n"
        << "[scheduler]\nmax-threads = " << values_.get_integer("scheduler.max-threads")
        << "\npolicy = \"" << values_.get_string("scheduler.policy") << "\"\n"
        << "[middleman]\nheartbeat-interval = "
        << ns(values_.get_duration("middleman.heartbeat-interval"))
        << "\nconnection-timeout = "
        << ns(values_.get_duration("middleman.connection-timeout")) << "\n";
    if (!ini)
      throw std::runtime_error("cannot write " + config_path);
  }
  auto program = cfg_.server_program.empty() ? this_program() : cfg_.server_program;
  child_ = std::make_unique<child_server>(program, config_path,
                                          dir_.path + "/server.log");
  child_->start(30s);
  addresses_.push_back({"127.0.0.1", child_->port()});
  storage_.push_back(std::move(scfg));
}

bool driver::wait_flushed(nanoseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  for (auto& c : clients_)
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{c->mtx};
        if (c->unflushed.empty())
          break;
      }
      if (clock_type::now() >= deadline)
        return false;
      std::this_thread::sleep_for(1ms);
    }
  return true;
}

void driver::run_drain() {
  auto& d = report_.drain;
  auto p = cfg_.pending_changes;
  d.offline_clients = cfg_.offline_clients;
  d.pending_per_client = p;
  std::vector<sim_client*> away;
  for (size_t k = 0; k < cfg_.offline_clients; ++k)
    away.push_back(clients_[k * clients_.size() / cfg_.offline_clients].get());
  for (auto* c : away) {
    c->offline = true;
    c->node->set_online(false);
  }
  // Each writes p distinct entities: p pending changes, none coalesced.
  auto start = clock_type::now();
  for (auto* c : away) {
    for (size_t k = 0; k < p; ++k) {
      stamp s{c->index, c->writes + 1, rs_.now_us(), true};
      put_stamped(*c, "d" + std::to_string(c->index) + "-" + std::to_string(k), s);
    }
  }
  if (!wait_flushed(cfg_.settle_timeout))
    report_.notes.push_back("drain: not every pending change was flushed locally "
                            "within loadtest.settle-timeout");
  d.write_s = seconds(clock_type::now() - start);
  report_.writes = total_writes_;
  // What each client must end up holding of the others' changes.
  std::vector<uint64_t> target(clients_.size(), away.size() * p);
  for (auto* c : away)
    target[c->index] -= p;
  uint64_t pushes_before = 0;
  for (auto& st : poll_status(*sys_, clients_, 5s))
    if (st)
      pushes_before += st->layers.pushes;
  // All at once: every offline client reconnects and pushes its outbox.
  auto back = clock_type::now();
  for (auto* c : away) {
    c->offline = false;
    c->online_since_us = rs_.now_us();
    c->node->set_online(true);
  }
  auto deadline = back + cfg_.settle_timeout;
  auto next_sample = back + cfg_.progress_interval;
  while (!(d.drained && d.all_visible) && clock_type::now() < deadline) {
    std::this_thread::sleep_for(poll_every);
    auto statuses = poll_status(*sys_, clients_, 5s);
    auto now = clock_type::now();
    uint64_t acknowledged = 0;
    if (!d.drained) {
      bool all = true;
      uint64_t pushes = 0;
      for (auto* c : away) {
        auto& st = statuses[c->index];
        acknowledged += st ? std::min<uint64_t>(st->acknowledged, p) : 0;
        all = all && st && st->acknowledged >= mutations_of(*c);
      }
      for (auto& st : statuses)
        pushes += st ? st->layers.pushes : 0;
      if (all) {
        d.drained = true;
        d.drain_s = seconds(now - back);
        d.push_batches = pushes - pushes_before;
        d.changes_per_s = static_cast<double>(away.size() * p)
                          / std::max(1e-9, d.drain_s);
      }
    }
    if (!d.all_visible) {
      bool all = true;
      for (auto& c : clients_)
        all = all && c->remote_seen.load() >= target[c->index];
      if (all) {
        d.all_visible = true;
        d.visible_s = seconds(now - back);
      }
    }
    if (progress_ && cfg_.progress_interval > 0ns && now >= next_sample) {
      size_t holding = 0;
      for (auto& c : clients_)
        holding += c->remote_seen.load() >= target[c->index] ? 1 : 0;
      char line[200];
      std::snprintf(
        line, sizeof(line),
        "\r[%6.1f s] drain: acknowledged %llu/%llu  clients holding all "
        "%zu/%zu   ",
        seconds(now - back),
        static_cast<unsigned long long>(d.drained ? away.size() * p : acknowledged),
        static_cast<unsigned long long>(away.size() * p), holding, clients_.size());
      *progress_ << line << std::flush;
      next_sample += cfg_.progress_interval;
    }
  }
  report_.measured_s = seconds(clock_type::now() - back);
  report_.writes_per_s = static_cast<double>(total_writes_) / std::max(1e-9, d.write_s);
  report_.pushed_per_s = d.changes_per_s;
  report_.applied_per_s = static_cast<double>(rs_.applied.load())
                          / std::max(1e-9, report_.measured_s);
  report_.pulls_per_s = static_cast<double>(
                          sum_up(poll_status(*sys_, clients_, 5s)).pulls)
                        / std::max(1e-9, report_.measured_s);
  if (!d.drained)
    report_.notes.push_back("drain: the outboxes were not acknowledged within "
                            "loadtest.settle-timeout");
  if (!d.all_visible)
    report_.notes.push_back("drain: not every client held every pending change "
                            "within loadtest.settle-timeout");
}

void driver::run_storm() {
  auto& s = report_.storm;
  auto acknowledged_all = [&](const std::vector<std::optional<sync_status>>& statuses) {
    for (auto& c : clients_) {
      auto& st = statuses[c->index];
      if (!st || st->acknowledged < mutations_of(*c))
        return false;
    }
    return true;
  };
  // Before: every client writes once and the server acknowledges it all, so
  // every client has a session and the server state to lose.
  for (auto& c : clients_)
    write_one(*c);
  bool ready = wait_flushed(cfg_.settle_timeout);
  for (auto deadline = clock_type::now() + cfg_.settle_timeout;
       ready && !acknowledged_all(poll_status(*sys_, clients_, 5s));)
    if (clock_type::now() >= deadline)
      ready = false;
    else
      std::this_thread::sleep_for(poll_every);
  if (!ready)
    report_.notes.push_back("storm: the writes before the restart were not all "
                            "acknowledged within loadtest.settle-timeout");
  uint64_t connects_before = 0;
  for (auto& st : poll_status(*sys_, clients_, 5s))
    connects_before += st ? st->connects : 0;

  // The crash: SIGKILL, nothing closed cleanly. Clients keep writing,
  // outage-writes each, spread over the outage in random order.
  auto killed = clock_type::now();
  child_->kill_hard();
  in_outage_ = true;
  auto step = cfg_.outage / static_cast<int64_t>(std::max<size_t>(1, cfg_.outage_writes));
  std::vector<size_t> written(clients_.size(), 0);
  for (auto& c : clients_) {
    c->offline = true; // their values are not timed: they measure the outage
    c->next_write = killed + step * static_cast<int64_t>(rng_() % 1000) / 1000;
  }
  for (auto now = clock_type::now(); now < killed + cfg_.outage;
       now = clock_type::now()) {
    for (auto& c : clients_)
      while (written[c->index] < cfg_.outage_writes && c->next_write <= now) {
        write_one(*c);
        ++written[c->index];
        c->next_write += step;
      }
    std::this_thread::sleep_for(1ms);
  }
  for (auto& c : clients_) // a schedule that ran late still makes them all
    for (; written[c->index] < cfg_.outage_writes; ++written[c->index])
      write_one(*c);
  in_outage_ = false;
  for (auto& c : clients_)
    c->offline = false;
  for (auto& n : written)
    s.outage_writes += n;
  if (!wait_flushed(cfg_.settle_timeout))
    report_.notes.push_back("storm: not every write of the outage was flushed "
                            "locally within loadtest.settle-timeout");

  // The restart: same port, same database. Every client reconnects on its
  // own backoff; nothing tells them the server is back.
  s.restart_s = seconds(child_->start(30s));
  auto back = clock_type::now();
  s.outage_s = seconds(back - killed);
  for (auto& c : clients_)
    c->online_since_us = rs_.now_us();
  bool connected = false, drained = false;
  std::vector<bool> back_online(clients_.size(), false);
  uint64_t head = 0;
  auto deadline = back + cfg_.settle_timeout;
  auto next_sample = back + cfg_.progress_interval;
  while (!s.reconverged && clock_type::now() < deadline) {
    std::this_thread::sleep_for(poll_every);
    auto statuses = poll_status(*sys_, clients_, 5s);
    auto now = clock_type::now();
    auto t = sum_up(statuses);
    for (auto& c : clients_)
      if (!back_online[c->index] && statuses[c->index] && statuses[c->index]->connected) {
        back_online[c->index] = true;
        s.reconnected.record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - back).count()));
      }
    if (!connected && t.connected == clients_.size()) {
      connected = true;
      s.reconnect_s = seconds(now - back);
    }
    if (connected && !drained && acknowledged_all(statuses)) {
      drained = true;
      s.drained_s = seconds(now - back);
      // Nobody writes any more: this is the state every client must reach.
      head = open_server_storage(storage_[0])->head_version();
    }
    if (drained) {
      bool all = true;
      for (auto& st : statuses)
        all = all && st && st->connected && st->cursor.version >= head;
      if (all) {
        s.reconverged = true;
        s.reconverged_s = seconds(now - back);
        s.connects = 0;
        for (auto& st : statuses)
          s.connects += st->connects;
        s.connects -= std::min(s.connects, connects_before);
      }
    }
    if (progress_ && cfg_.progress_interval > 0ns && now >= next_sample) {
      char line[200];
      std::snprintf(line, sizeof(line),
                    "\r[%6.1f s] storm: server back; connected %zu/%zu%s   ",
                    seconds(now - back), t.connected, clients_.size(),
                    drained ? ", every change acknowledged" : "");
      *progress_ << line << std::flush;
      next_sample += cfg_.progress_interval;
    }
  }
  report_.writes = total_writes_;
  report_.measured_s = seconds(clock_type::now() - back);
  report_.pulls_per_s = static_cast<double>(
                          sum_up(poll_status(*sys_, clients_, 5s)).pulls)
                        / std::max(1e-9, report_.measured_s);
  if (!s.reconverged)
    report_.notes.push_back("storm: the clients did not reconverge within "
                            "loadtest.settle-timeout");
}

} // namespace memsync::loadtest
