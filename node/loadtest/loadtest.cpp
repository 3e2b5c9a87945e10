#include "node/loadtest/loadtest.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "messages/registry.hpp"
#include "messages/server_local.hpp"
#include "node/client/client_config.hpp"
#include "node/config/node_options.hpp"
#include "node/loadtest/loadtest_check.hpp"
#include "node/loadtest/loadtest_driver.hpp"

namespace memsync {

namespace loadtest {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

double seconds(nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

std::size_t rss_bytes() {
  std::ifstream statm{"/proc/self/statm"};
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

namespace {

std::size_t count_entries(const char* dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator{dir, ec};
       !ec && it != std::filesystem::directory_iterator{}; it.increment(ec))
    ++n;
  return n;
}

} // namespace

scratch_dir::scratch_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "loadtest-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("cannot create a temporary directory");
  path = pattern;
}

scratch_dir::~scratch_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

void driver::start_servers() {
  if (!cfg_.in_process && !cfg_.child) {
    addresses_ = cfg_.servers;
    std::map<std::string, std::string> token_of;
    try {
      token_of = token_table::plain_tokens_by_client(cfg_.tokens_file);
    } catch (const std::invalid_argument& e) {
      throw config_error(e.what());
    }
    // With scopes, a client's token reads only its scope: the checks need
    // one that reads them all.
    verifier_name_ = cfg_.client_prefix + "-verifier";
    if (auto it = token_of.find(verifier_name_); it != token_of.end())
      verifier_token_ = it->second;
    else if (cfg_.scopes > 1)
      throw config_error(cfg_.tokens_file + ": no token for '" + verifier_name_
                         + "' (with workload.scopes above 1, server.tokens-file "
                           "must also list it, with a grant to read every scope, "
                           "for the convergence check)");
    for (auto& c : clients_) {
      auto it = token_of.find(c->name);
      if (it == token_of.end())
        throw config_error(cfg_.tokens_file + ": no token for simulated client '"
                           + c->name
                           + "' (server.tokens-file must list every "
                             "simulated client name)");
      c->token = it->second;
    }
    if (verifier_token_.empty()) {
      verifier_name_ = clients_[0]->name;
      verifier_token_ = clients_[0]->token;
    }
    return;
  }
  verifier_name_ = cfg_.client_prefix + "-verifier";
  verifier_token_ = "loadtest-verifier-token";
  for (auto& c : clients_)
    c->token = "loadtest-token-" + std::to_string(c->index);
  if (cfg_.child) {
    start_child_server();
    return;
  }
  token_table tokens;
  for (auto& c : clients_)
    tokens.add(c->token, c->name, grants_of(*c));
  tokens.add(verifier_token_, verifier_name_); // reads (and writes) everything
  for (size_t k = 0; k < cfg_.in_process_nodes; ++k) {
    auto host = std::make_unique<server_host>();
    apply_caf_settings(values_, host->cfg);
    register_message_types(host->cfg);
    host->sys = std::make_unique<caf::actor_system>(host->cfg);
    server_config scfg;
    scfg.server_id = "loadtest-server-" + std::to_string(k + 1);
    scfg.host = "127.0.0.1";
    scfg.port = 0;
    scfg.backend = "sqlite";
    scfg.db_path = dir_.path + "/server-" + std::to_string(k + 1) + ".db";
    scfg.tokens = tokens;
    scfg.rules = rules_;
    // One connection per client system (and the checks' verifier's), every
    // one from 127.0.0.1.
    scfg.front.max_connections = cfg_.client_systems + 16;
    scfg.front.max_connections_per_address = cfg_.client_systems + 16;
    host->node = std::make_unique<server_node>(*host->sys, scfg);
    storage_.push_back(std::move(scfg));
    addresses_.push_back({"127.0.0.1", host->node->port()});
    servers_.push_back(std::move(host));
  }
}

grants driver::grants_of(const sim_client& c) {
  if (c.scope.empty())
    return all_grants();
  return {grant{c.scope, true}};
}

void driver::start_clients() {
  for (auto& c : clients_) {
    client_config cc;
    cc.client_name = c->name;
    cc.db.path = cfg_.db_in_memory ? ":memory:" : dir_.path + "/" + c->name + ".db";
    cc.db.client_name = c->name;
    cc.db.synchronous = cfg_.synchronous;
    cc.flush = cfg_.flush;
    cc.sync = cfg_.sync;
    cc.sync.token = c->token;
    if (!c->scope.empty())
      cc.scopes = {c->scope}; // it holds its own scope, and nothing else
    cc.server_host = addresses_[c->server].host;
    cc.server_port = addresses_[c->server].port;
    auto k = c->index % cfg_.client_systems;
    auto& sys = k == 0 ? *sys_ : *more_systems_[k - 1];
    c->node = std::make_unique<client_node>(sys, cc);
    c->events = c->node->app().subscribe("", on_events(c.get(), &rs_));
    c->probe = spawn_flush_probe(sys, c.get(), &rs_);
    c->node->watch_flushes(c->probe);
    if (cfg_.connect_interval > 0ns)
      std::this_thread::sleep_for(cfg_.connect_interval);
  }
}

bool driver::wait_connected(nanoseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    auto t = sum_up(poll_status(*sys_, clients_, 5s));
    if (t.connected == clients_.size())
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void driver::write_one(sim_client& c) {
  auto& app = c.node->app();
  std::string id;
  bool hot = cfg_.collision_percent > 0
             && static_cast<int>(rng_() % 100) < cfg_.collision_percent;
  // With scopes, each scope has hot entities of its own: writes collide
  // within a scope only.
  if (hot)
    id = "hot-" + (c.scope.empty() ? "" : c.scope + "-")
         + std::to_string(rng_() % cfg_.hot_entities);
  else
    id = "e" + std::to_string(c.index) + "-"
         + std::to_string(rng_() % cfg_.entities_per_client);
  auto roll = static_cast<int>(rng_() % 100);
  stamp s{c.index, c.writes + 1, rs_.now_us(), c.offline};
  bool exists = app.get(id) != nullptr;
  bool del = exists && roll >= cfg_.put_percent + cfg_.patch_percent;
  bool patch = exists && !del && roll >= cfg_.put_percent;
  sync_error err;
  if (del)
    err = app.erase(id);
  else if (patch)
    err = app.patch_json(id, make_data(s, 0, c.scope));
  else
    err = app.put_json(id, "item", make_data(s, cfg_.payload_bytes, c.scope));
  if (!err.ok()) {
    ++write_errors_[std::string{"write:"} + to_string(err.code)];
    return;
  }
  note_write(c, s,
             del     ? change_kind::del
             : patch ? change_kind::patch
                     : change_kind::put);
}

bool driver::put_stamped(sim_client& c, const std::string& id, const stamp& s) {
  auto err = c.node->app().put_json(id, "item",
                                    make_data(s, cfg_.payload_bytes, c.scope));
  if (!err.ok()) {
    ++write_errors_[std::string{"write:"} + to_string(err.code)];
    return false;
  }
  note_write(c, s, change_kind::put);
  return true;
}

void driver::note_write(sim_client& c, const stamp& s, change_kind kind) {
  ++c.writes;
  ++total_writes_;
  auto seq = c.node->app().counts().last_seq; // only this thread writes to this store
  c.log.push_back({seq, s.n, kind, in_outage_});
  std::lock_guard<std::mutex> guard{c.mtx};
  c.unflushed.emplace_back(seq, s.t_us);
}

void driver::sample(double at_s) {
  auto statuses = poll_status(*sys_, clients_, 2s);
  auto t = sum_up(statuses);
  auto all = rs_.propagation_all.snapshot();
  // The interval's histogram: the cumulative one minus the last snapshot.
  log_histogram interval = all;
  for (size_t i = 0; i < last_propagation_.buckets.size(); ++i)
    interval.buckets[i] -= last_propagation_.buckets[i];
  interval.count -= last_propagation_.count;
  interval.max = 0;
  for (size_t i = 0; i < interval.buckets.size(); ++i)
    if (interval.buckets[i] > 0)
      interval.max = log_histogram::lower_bound(i + 1);
  double dt = std::max(1e-9, at_s - last_at_);
  auto applied = rs_.applied.load();
  timeline_sample s{at_s, (total_writes_ - last_writes_) / dt,
                    (applied - last_applied_) / dt, interval.percentile(0.99),
                    t.connected};
  report_.timeline.push_back(s);
  last_writes_ = total_writes_;
  last_applied_ = applied;
  last_at_ = at_s;
  last_propagation_ = std::move(all);
  if (progress_) {
    uint64_t errors = 0;
    for (auto& [k, n] : t.layers.errors)
      errors += n;
    for (auto& [k, n] : write_errors_)
      errors += n;
    char line[200];
    std::snprintf(line, sizeof(line),
                  "\r[%6.1f s] connected %zu/%zu  writes/s %.0f  applied/s %.0f  "
                  "propagation p99 %.2f ms (so far %.2f)  errors %llu   ",
                  at_s, t.connected, clients_.size(), s.writes_per_s, s.applied_per_s,
                  s.p99_us / 1000.0,
                  rs_.propagation_all.snapshot().percentile(0.99) / 1000.0,
                  static_cast<unsigned long long>(errors));
    *progress_ << line << std::flush;
  }
}

int64_t driver::server_pulls() {
  if (!cfg_.in_process)
    return -1;
  int64_t pulls = 0;
  for (auto& s : servers_) {
    caf::scoped_actor self{*s->sys};
    self->request(s->node->log(), std::chrono::seconds(5), stats_atom::value)
      .receive([&](const log_stats& st) { pulls += static_cast<int64_t>(st.pulls); },
               [&](const caf::error&) { pulls = -1; });
    if (pulls < 0)
      return -1;
  }
  return pulls;
}

void driver::run_steady() {
  struct offline_event {
    clock_type::time_point at;
    sim_client* client;
    bool online;
  };
  auto start = clock_type::now();
  std::vector<offline_event> events;
  auto window = cfg_.duration - cfg_.warm_up - cfg_.offline_for;
  for (size_t k = 0; k < cfg_.offline_clients; ++k) {
    auto* c = clients_[k * clients_.size() / cfg_.offline_clients].get();
    auto at = start + cfg_.warm_up
              + window * static_cast<int64_t>(k)
                  / static_cast<int64_t>(cfg_.offline_clients);
    events.push_back({at, c, false});
    events.push_back({at + cfg_.offline_for, c, true});
  }
  std::sort(events.begin(), events.end(), [](auto& a, auto& b) { return a.at < b.at; });
  // Spread the first writes over one interval so the clients do not write
  // in lockstep.
  for (auto& c : clients_)
    c->next_write = start
                    + cfg_.write_interval * static_cast<int64_t>(rng_() % 1000) / 1000;
  auto end = start + cfg_.duration;
  auto warm_end = start + cfg_.warm_up;
  bool warm = cfg_.warm_up == 0ns;
  status_totals at_warm;
  uint64_t writes_at_warm = 0, applied_at_warm = 0;
  int64_t server_pulls_at_warm = -1;
  auto measure = [&] {
    at_warm = sum_up(poll_status(*sys_, clients_, 5s));
    server_pulls_at_warm = server_pulls();
    writes_at_warm = total_writes_;
    applied_at_warm = rs_.applied.load();
    rs_.measure_from_us = rs_.now_us();
  };
  if (warm)
    measure();
  auto next_sample = start + cfg_.progress_interval;
  size_t next_event = 0;
  for (auto now = clock_type::now(); now < end; now = clock_type::now()) {
    if (!warm && now >= warm_end) {
      warm = true;
      measure();
    }
    for (; next_event < events.size() && events[next_event].at <= now; ++next_event) {
      auto& e = events[next_event];
      e.client->offline = !e.online;
      if (e.online)
        e.client->online_since_us = rs_.now_us();
      e.client->node->set_online(e.online);
    }
    for (auto& c : clients_)
      while (c->next_write <= now) {
        write_one(*c);
        c->next_write += cfg_.write_interval;
      }
    if (cfg_.progress_interval > 0ns && now >= next_sample) {
      sample(seconds(now - start));
      next_sample += cfg_.progress_interval;
    }
    std::this_thread::sleep_for(1ms);
  }
  for (; next_event < events.size(); ++next_event)
    events[next_event].client->offline = false; // settle() brings all back
  auto stopped = clock_type::now();
  auto t = sum_up(poll_status(*sys_, clients_, 5s));
  report_.measured_s = seconds(stopped - warm_end);
  auto per_s = [&](double n) {
    return n / std::max(1e-9, report_.measured_s);
  };
  report_.writes = total_writes_;
  report_.writes_per_s = per_s(static_cast<double>(total_writes_ - writes_at_warm));
  report_.pushed_per_s = per_s(
    static_cast<double>(t.acknowledged - at_warm.acknowledged));
  report_.pulls_per_s = per_s(static_cast<double>(t.pulls - at_warm.pulls));
  report_.pulls_ahead_per_s = per_s(static_cast<double>(t.pulls_ahead - at_warm.pulls_ahead));
  report_.applied_per_s = per_s(
    static_cast<double>(rs_.applied.load() - applied_at_warm));
  if (auto pulls = server_pulls(); pulls >= 0 && server_pulls_at_warm >= 0)
    report_.server_pulls_per_write = static_cast<double>(pulls - server_pulls_at_warm)
                                     / std::max<uint64_t>(1,
                                                          total_writes_ - writes_at_warm);
}

void driver::run_fixed() {
  auto m = cfg_.entities_per_client;
  rs_.fixed_target = (clients_.size() / cfg_.scopes - 1) * m; // its scope's others
  auto pulls_at_start = server_pulls();
  auto start = clock_type::now();
  rs_.measure_from_us = 0;
  // Every client writes its M entities; one thread interleaves the clients
  // so they all write at once.
  for (size_t k = 0; k < m; ++k)
    for (auto& c : clients_) {
      stamp s{c->index, k + 1, rs_.now_us()};
      put_stamped(*c, "f" + std::to_string(c->index) + "-" + std::to_string(k), s);
    }
  auto written = clock_type::now();
  auto deadline = start + cfg_.settle_timeout;
  auto next_sample = start + cfg_.progress_interval;
  while (rs_.fixed_done.load() < clients_.size() && clock_type::now() < deadline) {
    std::this_thread::sleep_for(200us);
    if (cfg_.progress_interval > 0ns && clock_type::now() >= next_sample) {
      sample(seconds(clock_type::now() - start));
      next_sample += cfg_.progress_interval;
    }
  }
  auto done = clock_type::now();
  report_.all_visible = rs_.fixed_done.load() == clients_.size();
  report_.time_to_all_visible_s = seconds(done - start);
  report_.fixed_entities_per_client = m;
  report_.measured_s = seconds(done - start);
  report_.writes = total_writes_;
  report_.writes_per_s = total_writes_ / std::max(1e-9, seconds(written - start));
  auto t = sum_up(poll_status(*sys_, clients_, 5s));
  auto per_s = [&](double n) {
    return n / std::max(1e-9, report_.measured_s);
  };
  report_.pushed_per_s = per_s(static_cast<double>(t.acknowledged));
  report_.pulls_per_s = per_s(static_cast<double>(t.pulls));
  report_.pulls_ahead_per_s = per_s(static_cast<double>(t.pulls_ahead));
  report_.applied_per_s = per_s(static_cast<double>(rs_.applied.load()));
  if (auto pulls = server_pulls(); pulls >= 0 && pulls_at_start >= 0)
    report_.server_pulls_per_write = static_cast<double>(pulls - pulls_at_start)
                                     / std::max<uint64_t>(1, total_writes_);
}

void driver::settle() {
  auto start = clock_type::now();
  for (auto& c : clients_)
    c->node->set_online(true);
  // Twice: after the first round every change is on the server; the
  // second makes every client pull after the last push of any other.
  for (int round = 0; round < 2; ++round) {
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> failed{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 8; ++t)
      pool.emplace_back([&] {
        for (size_t i = next++; i < clients_.size(); i = next++)
          if (!clients_[i]->node->sync(cfg_.settle_timeout))
            ++failed;
      });
    for (auto& th : pool)
      th.join();
    if (failed > 0)
      report_.errors["settle:sync_timeout"] += failed;
  }
  report_.settle_s = seconds(clock_type::now() - start);
}

void driver::check() {
  auto statuses = poll_status(*sys_, clients_, 10s);
  auto t = sum_up(statuses);
  report_.push_round_trip = t.layers.push_round_trip;
  report_.poke_to_pull = t.layers.poke_to_pull;
  report_.apply = t.layers.apply;
  for (auto& [kind, n] : t.layers.errors)
    report_.errors[kind] += n;
  if (t.layers.disconnects > 0)
    report_.errors["disconnect"] += t.layers.disconnects;
  for (auto& [kind, n] : write_errors_)
    report_.errors[kind] += n;
  report_.propagation = rs_.propagation.snapshot();
  report_.flush_wait = rs_.flush_wait.snapshot();
  // Refusals per client, to tell refused mutations from lost ones.
  // (A syncer keeps its 100 most recent refusals.)
  std::map<size_t, std::set<uint64_t>> refused;
  for (size_t i = 0; i < statuses.size(); ++i)
    if (statuses[i])
      for (auto& r : statuses[i]->refused)
        refused[i].insert(r.mutation_id);
  // The server's state as a fresh client sees it: one per server node.
  for (size_t k = 0; k < addresses_.size(); ++k) {
    client_config cc;
    cc.client_name = verifier_name_;
    cc.db.path = ":memory:";
    cc.db.client_name = verifier_name_;
    cc.sync = cfg_.sync;
    cc.sync.token = verifier_token_;
    cc.server_host = addresses_[k].host;
    cc.server_port = addresses_[k].port;
    client_node verifier{*sys_, cc};
    if (!verifier.sync(cfg_.settle_timeout))
      ++report_.errors["verify:sync_timeout"];
    auto reference = visible_state(verifier);
    report_.server_entities += reference.size();
    // With scopes, each client must hold exactly the server's entities of
    // its own scope.
    std::map<std::string, std::vector<std::string>> by_scope;
    if (cfg_.scopes > 1)
      by_scope = split_by_scope(reference, rules_);
    for (auto& c : clients_)
      if (c->server == k) {
        ++report_.clients_checked;
        if (visible_state(*c->node)
            != (c->scope.empty() ? reference : by_scope[c->scope]))
          ++report_.clients_differing;
      }
    verifier.shutdown(5s);
    if (k < storage_.size()) {
      std::vector<sim_client*> mine;
      for (auto& c : clients_)
        if (c->server == k)
          mine.push_back(c.get());
      check_server_log(*open_server_storage(storage_[k]), mine, refused, report_);
      report_.changes_checked = true;
    }
  }
  if (!report_.changes_checked)
    report_.notes.push_back("lost/duplicated changes are only checked against an "
                            "in-process or child server (its database is read "
                            "directly)");
}

void driver::stop() {
  for (auto& c : clients_) {
    c->events.cancel();
    c->node->shutdown(5s);
    caf::anon_send_exit(c->probe, caf::exit_reason::user_shutdown);
  }
  for (auto& s : servers_)
    s->node->stop();
  if (child_)
    child_->kill_hard(); // its database was checked; nothing left to lose
}

loadtest_report driver::run() {
  using scenario = loadtest_config::scenario;
  report_.mode = cfg_.mode == scenario::fixed   ? "fixed"
                 : cfg_.mode == scenario::drain ? "drain"
                 : cfg_.mode == scenario::storm ? "storm"
                                                : "steady";
  report_.clients = cfg_.clients;
  report_.client_systems = cfg_.client_systems;
  report_.scopes = cfg_.scopes;
  rs_.scopes = cfg_.scopes;
  if (cfg_.scopes > 1)
    rules_.push_back({"item", "scope"});
  for (size_t i = 0; i < cfg_.clients; ++i) {
    auto c = std::make_unique<sim_client>();
    c->index = i;
    c->name = cfg_.client_prefix + "-" + std::to_string(i + 1);
    c->observer = cfg_.latency_observers == 0 || i < cfg_.latency_observers;
    if (cfg_.scopes > 1)
      c->scope = loadtest_scope_name(i % cfg_.scopes);
    clients_.push_back(std::move(c));
  }
  report_.latency_observers = cfg_.latency_observers == 0
                                ? cfg_.clients
                                : std::min(cfg_.clients, cfg_.latency_observers);
  start_servers();
  size_t nodes = addresses_.size();
  for (auto& c : clients_)
    c->server = c->index % nodes;
  report_.server = cfg_.in_process ? "in-process, " + std::to_string(nodes) + " node(s)"
                   : cfg_.child
                     ? "a child process on port " + std::to_string(addresses_[0].port)
                     : std::to_string(nodes) + " node(s) by address";
  apply_caf_settings(values_, client_cfg_);
  register_message_types(client_cfg_);
  sys_ = std::make_unique<caf::actor_system>(client_cfg_);
  rss_start_ = rss_bytes(); // the other systems count as the clients' memory
  for (size_t k = 1; k < cfg_.client_systems; ++k) {
    auto& c = *more_cfgs_.emplace_back(std::make_unique<caf::actor_system_config>());
    apply_caf_settings(values_, c);
    register_message_types(c);
    more_systems_.push_back(std::make_unique<caf::actor_system>(c));
  }
  auto t_connect = clock_type::now();
  start_clients();
  if (!wait_connected(cfg_.settle_timeout))
    report_.notes.push_back("not every client was connected when the workload started");
  report_.connect_s = seconds(clock_type::now() - t_connect);
  report_.bytes_per_client_connected = static_cast<double>(
                                         rss_bytes() - std::min(rss_bytes(), rss_start_))
                                       / cfg_.clients;
  rs_.t0 = clock_type::now();
  switch (cfg_.mode) {
    case scenario::fixed: run_fixed(); break;
    case scenario::drain: run_drain(); break;
    case scenario::storm: run_storm(); break;
    case scenario::steady: run_steady(); break;
  }
  if (progress_ && cfg_.progress_interval > 0ns)
    *progress_ << "\n";
  report_.bytes_per_client_end = static_cast<double>(rss_bytes()
                                                     - std::min(rss_bytes(), rss_start_))
                                 / cfg_.clients;
  report_.threads = count_entries("/proc/self/task");
  report_.open_files = count_entries("/proc/self/fd");
  settle();
  check();
  report_.foreign_changes = rs_.foreign.load();
  report_.peak_rss_bytes = peak_rss_of(0);
  if (child_)
    report_.server_peak_rss_bytes = child_->peak_rss_bytes();
  if (report_.latency_observers < report_.clients)
    report_.notes.push_back("propagation is timed on "
                            + std::to_string(report_.latency_observers)
                            + " observer clients (every change they receive)");
  if (cfg_.in_process)
    report_.notes.push_back("memory per client includes the in-process server's "
                            "share (session, connection state)");
  report_.notes.push_back("layer times cover the whole run, warm-up included");
  if (auto n = rs_.untimed.load(); n > 0)
    report_.notes.push_back(std::to_string(n)
                            + " changes written while their "
                              "writer or their receiver was offline are left out "
                              "of the propagation latency");
  stop();
  return report_;
}

} // namespace loadtest

loadtest_report run_loadtest(const loadtest_config& cfg, const config_values& values,
                             std::ostream* progress) {
  loadtest::driver d{cfg, values, progress};
  return d.run();
}

} // namespace memsync
