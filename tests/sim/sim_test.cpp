// The simulator on a bounded number of seeds (CI's share of a campaign),
// that one seed replays one run, and that its checks catch deliberately
// broken builds (a rebase that loses writes, a client that keeps what it
// should prune, a server that enforces no grants) within a few seeds.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tools/sim/sim_world.hpp"

namespace memsync::sim {
namespace {

/// Seeds CI runs: each takes a fraction of a second here.
constexpr uint64_t ci_seeds = 60;

std::string failures_of(const sim_result& r) {
  std::string out;
  for (auto& f : r.failures)
    out += "\n  " + f;
  return out;
}

TEST(sim_test, every_guarantee_holds_on_the_ci_seeds) {
  std::map<std::string, std::size_t> faults;
  std::size_t log_entries = 0;
  std::size_t failed_writes = 0;
  std::size_t normal_clients = 0;
  std::size_t lost_to_normal_sync = 0;
  std::size_t lost_to_restores = 0;
  std::size_t grant_changes = 0, subscriptions = 0, forbidden = 0, scoped = 0;
  std::size_t held_checks = 0, ahead = 0;
  for (uint64_t seed = 1; seed <= ci_seeds; ++seed) {
    sim_options opt;
    opt.seed = seed;
    auto r = run_simulation(opt);
    EXPECT_TRUE(r.failures.empty())
      << "seed " << seed << " (replay: sim --seed " << seed << "):" << failures_of(r);
    for (auto& [k, v] : r.fault_counts)
      faults[k] += v;
    log_entries += r.server_log;
    failed_writes += r.failed_writes;
    normal_clients += r.normal_clients;
    lost_to_normal_sync += r.lost_to_normal_sync;
    lost_to_restores += r.lost_to_restores;
    grant_changes += r.grant_changes;
    subscriptions += r.subscriptions;
    forbidden += r.forbidden;
    scoped += r.scoped_entities;
    held_checks += r.held_checks;
    ahead += r.answers_ahead;
  }
  // The seeds exercise every fault the simulator claims, and real traffic.
  for (auto kind : {"drop", "partition", "client_crash", "server_crash", "power_loss",
                    "storage_errors", "disk_full", "clock_jump", "restore"})
    EXPECT_GT(faults[kind], 0u) << kind;
  EXPECT_GT(log_entries, ci_seeds * 50);
  EXPECT_GT(failed_writes, 0u); // the storage faults did hit SQLite
  // The weaker rules were needed and held: clients on synchronous=normal
  // did lose flushed changes to power loss, restores did take acknowledged
  // changes from the server, and every check passed all the same.
  EXPECT_GT(normal_clients, 0u);
  EXPECT_GT(lost_to_normal_sync, 0u);
  EXPECT_GT(lost_to_restores, 0u);
  // Scopes were exercised: grants changed under live sessions, clients
  // subscribed and unsubscribed, stores refused forbidden writes at once,
  // answers carried entities of ruled types, and the held-scope rule judged
  // the clients' stores.
  EXPECT_GT(grant_changes, ci_seeds);
  EXPECT_GT(subscriptions, ci_seeds);
  EXPECT_GT(forbidden, ci_seeds);
  EXPECT_GT(scoped, ci_seeds * 10);
  EXPECT_GT(held_checks, ci_seeds * 100);
  // Sessions read answers ahead, which the wire checks judged like others.
  EXPECT_GT(ahead, ci_seeds * 10);
}

TEST(sim_test,
     a_flushed_change_survives_a_restart_whole_under_full_and_as_a_prefix_under_normal) {
  std::set<uint64_t> flushed{1, 2, 3, 4, 5};
  std::vector<std::string> v;
  // Confirmed up to 2, 3 and 4 in the outbox, 5 gone.
  EXPECT_EQ(check_survival("c0", false, flushed, 2, {3, 4}, v),
            (std::vector<uint64_t>{5}));
  ASSERT_EQ(v.size(), 1u); // full: nothing flushed may go
  EXPECT_EQ(v[0], "c0 restarted without flushed mutation 5");
  v.clear();
  EXPECT_EQ(check_survival("c0", true, flushed, 2, {3, 4}, v),
            (std::vector<uint64_t>{5}));
  EXPECT_TRUE(v.empty()); // normal: the newest may go
  EXPECT_EQ(check_survival("c0", true, flushed, 2, {3, 5}, v),
            (std::vector<uint64_t>{4}));
  ASSERT_EQ(v.size(), 1u); // but never one before a survivor
  EXPECT_EQ(v[0], "c0 restarted without flushed mutation 4 but with the later #5 (a "
                  "hole, not a lost tail)");
  v.clear();
  EXPECT_TRUE(check_survival("c0", false, flushed, 5, {}, v).empty());
  EXPECT_TRUE(v.empty());
}

TEST(sim_test, the_weaker_rules_of_restores_and_normal_sync_are_needed_on_a_few_seeds) {
  // Without the restore's exception, exactly_once_in_order reports the
  // acknowledged changes restores took; held to full's rule, clients on
  // synchronous=normal lose flushed changes at power loss. So both checks
  // see these losses, and the exceptions are what lets them pass.
  std::size_t restore_caught = 0, normal_caught = 0;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    sim_options opt;
    opt.seed = seed;
    opt.forget_restore_losses = true;
    for (auto& f : run_simulation(opt).failures)
      if (f.find("exactly_once_in_order: acknowledged") == 0
          && f.find("is not in the server's history") != std::string::npos) {
        ++restore_caught;
        break;
      }
    opt.forget_restore_losses = false;
    opt.strict_normal_sync = true;
    for (auto& f : run_simulation(opt).failures)
      if (f.find("restarted without flushed mutation") != std::string::npos) {
        ++normal_caught;
        break;
      }
  }
  // Today 7 and 13 of the 24 (any change of the messages between the
  // actors moves them).
  EXPECT_GE(restore_caught, 2u);
  EXPECT_GE(normal_caught, 2u);
}

/// Seeds that once found a bug, kept as regression tests (docs/simulation.md,
/// "Findings"): 2796 lost a refusal whose push reply was dropped (found
/// before restores and normal sync, which would change its run); 48 and
/// 1369 had a client's pushes refused for good by a restored server (in
/// the epoch of its last acknowledged push, below the record it had
/// acknowledged), both before scopes, which changed their runs; 6 kept a
/// deleted entity after a subscription that covered its entry restarted
/// that entry from 0; 6350 had them refused for good after a restart (a
/// gap in its push epoch); 4265 caught the model following an answer's
/// forbidden entries before a subscribe the syncer had taken first.
TEST(sim_test, the_seeds_that_found_bugs_pass) {
  for (uint64_t seed : {2796, 48, 1369, 6, 6350, 4265}) {
    sim_options opt;
    opt.seed = seed;
    opt.faults.restores = seed != 2796;
    opt.faults.normal_sync = seed != 2796;
    auto r = run_simulation(opt);
    EXPECT_TRUE(r.failures.empty()) << "seed " << seed << ":" << failures_of(r);
  }
}

TEST(sim_test,
     a_client_that_keeps_data_it_may_no_longer_hold_is_caught_within_a_few_seeds) {
  // The store skips every prune: after a revocation or an unsubscribe it
  // keeps the synced entities it may no longer hold. The held-scope rule
  // at the quiet points sees them (and convergence per scope after
  // healing).
  std::size_t caught = 0;
  uint64_t first = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    sim_options opt;
    opt.seed = seed;
    opt.keep_pruned = true;
    for (auto& f : run_simulation(opt).failures)
      if (f.find(" holds ") != std::string::npos
          && f.find("does not name") != std::string::npos) {
        ++caught;
        if (first == 0)
          first = seed;
        break;
      }
  }
  // Exact today: 8 of 10, the first seed 2.
  EXPECT_GE(caught, 5u);
  EXPECT_NE(first, 0u);
  EXPECT_LE(first, 3u);
}

TEST(sim_test,
     a_server_that_enforces_no_grants_is_caught_by_the_write_and_answer_checks) {
  // Every token is write:* on the server while the checks hold the clients
  // to their drawn grants: the server takes writes they could not make and
  // sends data they could not read, under grants that are not theirs.
  std::size_t writes = 0, answers = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    sim_options opt;
    opt.seed = seed;
    opt.lax_server = true;
    bool w = false, a = false;
    for (auto& f : run_simulation(opt).failures) {
      w = w || f.find("writes_within_grants: ") == 0;
      a = a || f.find("scopes: ") == 0;
    }
    writes += w ? 1 : 0;
    answers += a ? 1 : 0;
  }
  EXPECT_GE(writes, 3u);
  EXPECT_GE(answers, 3u);
}

TEST(sim_test, one_seed_replays_one_run) {
  sim_options opt;
  opt.seed = 7;
  auto a = run_simulation(opt);
  auto b = run_simulation(opt);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.writes, b.writes);
  EXPECT_EQ(a.fault_counts, b.fault_counts);
  EXPECT_EQ(a.server_log, b.server_log);
  EXPECT_EQ(a.failures, b.failures);
  opt.seed = 8;
  auto c = run_simulation(opt);
  EXPECT_NE(a.steps, c.steps); // another seed, another run
}

TEST(sim_test, a_store_that_drops_writes_during_a_rebase_is_caught_within_a_few_seeds) {
  std::size_t caught = 0;
  uint64_t first = 0;
  for (uint64_t seed = 1; seed <= 80; ++seed) {
    sim_options opt;
    opt.seed = seed;
    opt.broken_rebase = true;
    // As the bounds below were measured: restores and normal sync lose
    // changes legitimately, which only hides the bug's losses in more noise.
    opt.faults.restores = false;
    opt.faults.normal_sync = false;
    auto r = run_simulation(opt);
    if (!r.failures.empty()) {
      ++caught;
      if (first == 0)
        first = seed;
    }
  }
  // Deterministic, so these are exact today (10 of 80, the first seed 8;
  // any change of the messages between the actors moves them); the bounds
  // leave room for the workload to grow.
  EXPECT_GE(caught, 7u);
  EXPECT_NE(first, 0u);
  EXPECT_LE(first, 10u);
  // The switch is off again: the same seeds pass.
  sim_options opt;
  opt.seed = first;
  opt.faults.restores = false;
  opt.faults.normal_sync = false;
  auto r = run_simulation(opt);
  EXPECT_TRUE(r.failures.empty()) << failures_of(r);
}

} // namespace
} // namespace memsync::sim
