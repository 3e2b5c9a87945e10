// Small load tests run whole: 50 simulated clients (real client stacks)
// against an in-process server node for a few seconds, with collisions on
// shared entities and clients going offline and back; the long-offline
// drain (clients pile up pending changes and reconnect) and the reconnect
// storm (a `syncnode server` child killed and restarted under 50 clients)
// in small sizes; 20 clients in 4 scopes (each holds its scope, and a
// write is pulled by its scope's clients only). Asserts convergence, no
// lost or duplicated changes, and a report with every figure. No assertion
// on speed: this machine is shared.
#include <gtest/gtest.h>

#include <algorithm>

#include "node/loadtest/loadtest.hpp"

using namespace memsync;

TEST(loadtest_run,
     fifty_clients_with_collisions_and_offline_clients_converge_without_losing_changes) {
  auto values = load_config(
    loadtest_schema(), std::string{MEMSYNC_SOURCE_DIR} + "/config/loadtest.ini",
    {"--loadtest.clients=50", "--loadtest.duration=4s", "--loadtest.warm-up=500ms",
     "--loadtest.progress-interval=250ms",
     "--loadtest.report-json=", "--loadtest.report-svg=", "--workload.offline-clients=5",
     "--workload.offline-for=1500ms", "--workload.collision-percent=20"});
  auto cfg = make_loadtest_config(values);
  auto r = run_loadtest(cfg, values, nullptr);

  EXPECT_EQ(r.clients_checked, 50u);
  EXPECT_EQ(r.clients_differing, 0u);
  EXPECT_GT(r.server_entities, 0u);
  ASSERT_TRUE(r.changes_checked);
  EXPECT_GT(r.changes_made, 0u);
  // Every mutation is on the server, or was refused (a patch or delete of
  // a shared entity another client deleted), or is such a patch or delete
  // whose refusal was never reported (see check_server_log).
  uint64_t refused = 0;
  for (auto& [kind, n] : r.errors)
    if (kind.rfind("refused:", 0) == 0)
      refused += n;
  EXPECT_EQ(r.changes_on_server + refused + r.changes_unaccounted, r.changes_made);
  EXPECT_EQ(r.changes_lost, 0u);
  EXPECT_EQ(r.changes_duplicated, 0u);
  EXPECT_EQ(r.final_values_wrong, 0u);
  EXPECT_EQ(r.errors.count("settle:sync_timeout"), 0u);
  EXPECT_EQ(r.errors.count("verify:sync_timeout"), 0u);
  // Clients really went offline (and came back: all converged above).
  ASSERT_FALSE(r.timeline.empty());
  auto fewest = std::min_element(r.timeline.begin(), r.timeline.end(),
                                 [](auto& a, auto& b) {
                                   return a.connected < b.connected;
                                 });
  EXPECT_LT(fewest->connected, 50u);
  // Something was measured in every layer.
  EXPECT_GT(r.writes, 0u);
  EXPECT_GT(r.propagation.count, 0u);
  EXPECT_GT(r.flush_wait.count, 0u);
  EXPECT_GT(r.push_round_trip.count, 0u);
  EXPECT_GT(r.poke_to_pull.count, 0u);
  EXPECT_GT(r.apply.count, 0u);
  EXPECT_GT(r.pulls_per_s, 0);
  EXPECT_GT(r.bytes_per_client_connected, 0);
  auto j = to_json(r);
  for (auto key : {"throughput", "propagation_latency_ms", "layers_ms", "errors",
                   "convergence", "resources", "timeline", "propagation_histogram"})
    EXPECT_TRUE(j.contains(key)) << key;
}

namespace {

/// 20 clients writing once a second each (20 writes/s), with collisions, in
/// `scopes` scopes.
loadtest_report run_in_scopes(std::size_t scopes) {
  auto values = load_config(
    loadtest_schema(), std::string{MEMSYNC_SOURCE_DIR} + "/config/loadtest.ini",
    {"--loadtest.clients=20", "--loadtest.duration=3s", "--loadtest.warm-up=500ms",
     "--loadtest.progress-interval=0ms",
     "--loadtest.report-json=", "--loadtest.report-svg=", "--workload.offline-clients=0",
     "--workload.write-interval=1s", "--workload.collision-percent=30",
     "--workload.hot-entities=2", "--workload.scopes=" + std::to_string(scopes)});
  return run_loadtest(make_loadtest_config(values), values, nullptr);
}

} // namespace

TEST(loadtest_run, clients_in_scopes_hold_exactly_their_scope_and_only_it_pulls_a_write) {
  auto r = run_in_scopes(4); // 4 scopes of 5
  EXPECT_EQ(r.scopes, 4u);
  EXPECT_EQ(r.clients_checked, 20u);
  EXPECT_EQ(r.clients_differing, 0u); // each holds its scope's entities, no other
  EXPECT_EQ(r.foreign_changes, 0u);
  EXPECT_GT(r.server_entities, 0u);
  ASSERT_TRUE(r.changes_checked);
  EXPECT_GT(r.changes_made, 0u);
  EXPECT_EQ(r.changes_lost, 0u);
  EXPECT_EQ(r.changes_duplicated, 0u);
  EXPECT_EQ(r.final_values_wrong, 0u);
  uint64_t refused = 0;
  for (auto& [kind, n] : r.errors)
    if (kind.rfind("refused:", 0) == 0)
      refused += n;
  EXPECT_EQ(r.changes_on_server + refused + r.changes_unaccounted, r.changes_made);
  EXPECT_EQ(r.errors.count("settle:sync_timeout"), 0u);
  EXPECT_GT(r.propagation.count, 0u); // timed within the writer's scope
  // A write pokes the sessions of its scope only: about 5 pulls, not 20.
  ASSERT_GE(r.server_pulls_per_write, 0);
  EXPECT_LT(r.server_pulls_per_write, 2 * 5.0);

  // The same without scopes: every client pulls every write.
  auto one = run_in_scopes(1);
  EXPECT_EQ(one.clients_differing, 0u);
  EXPECT_EQ(one.changes_lost, 0u);
  EXPECT_GT(one.server_pulls_per_write, 0.75 * 20);
}

namespace {

/// The drain and storm configs with test overrides; the server child is the
/// syncnode built beside this test.
loadtest_config load_scenario(const char* file, std::vector<std::string> overrides,
                              config_values& values) {
  overrides.push_back(std::string{"--server.program="} + SYNCNODE_PATH);
  overrides.push_back("--loadtest.report-json=");
  overrides.push_back("--loadtest.progress-interval=0ms");
  values = load_config(loadtest_schema(),
                       std::string{MEMSYNC_SOURCE_DIR} + "/config/" + file, overrides);
  return make_loadtest_config(values);
}

void expect_converged_exactly_once(const loadtest_report& r, std::size_t clients) {
  EXPECT_EQ(r.clients_checked, clients);
  EXPECT_EQ(r.clients_differing, 0u);
  ASSERT_TRUE(r.changes_checked);
  EXPECT_EQ(r.changes_lost, 0u);
  EXPECT_EQ(r.changes_duplicated, 0u);
  EXPECT_EQ(r.changes_unaccounted, 0u);
  EXPECT_EQ(r.final_values_wrong, 0u);
  EXPECT_EQ(r.changes_on_server, r.changes_made);
  EXPECT_EQ(r.errors.count("settle:sync_timeout"), 0u);
  EXPECT_EQ(r.errors.count("verify:sync_timeout"), 0u);
}

} // namespace

TEST(loadtest_run, two_clients_back_from_a_long_offline_push_every_pending_change_once) {
  config_values values;
  auto cfg = load_scenario("loadtest-drain.ini",
                           {"--loadtest.clients=5", "--workload.offline-clients=2",
                            "--workload.pending-changes=1000",
                            "--loadtest.settle-timeout=60s"},
                           values);
  auto r = run_loadtest(cfg, values, nullptr);

  EXPECT_EQ(r.mode, "drain");
  EXPECT_TRUE(r.drain.drained);
  EXPECT_TRUE(r.drain.all_visible);
  EXPECT_EQ(r.drain.offline_clients, 2u);
  EXPECT_EQ(r.drain.pending_per_client, 1000u);
  // Each outbox of 1,000 goes up in bounded pushes (at most
  // sync.max-push-changes = 500 each), not in one.
  EXPECT_GE(r.drain.push_batches, 4u);
  expect_converged_exactly_once(r, 5);
  EXPECT_EQ(r.changes_made, 2000u);
  EXPECT_EQ(r.server_entities, 2000u);
  EXPECT_GT(r.peak_rss_bytes, 0u);
  EXPECT_GT(r.server_peak_rss_bytes, 0u); // the server is a process of its own
  auto j = to_json(r);
  for (auto key : {"drain_s", "push_batches", "visible_s", "write_s"})
    EXPECT_TRUE(j["drain"].contains(key)) << key;
}

TEST(loadtest_run,
     fifty_clients_reconverge_after_a_server_restart_with_outage_writes_once) {
  config_values values;
  auto cfg = load_scenario("loadtest-storm.ini",
                           {"--loadtest.clients=50", "--loadtest.client-systems=5",
                            "--workload.outage=1s", "--workload.outage-writes=2",
                            "--workload.collision-percent=0",
                            "--loadtest.settle-timeout=60s"},
                           values);
  auto r = run_loadtest(cfg, values, nullptr);

  EXPECT_EQ(r.mode, "storm");
  EXPECT_TRUE(r.storm.reconverged);
  EXPECT_EQ(r.storm.outage_writes, 100u);
  // Every client (10 on each of 5 connections) lost its session and opened
  // a new one on the new process.
  EXPECT_GE(r.storm.connects, 50u);
  EXPECT_EQ(r.storm.reconnected.count, 50u);
  // The writes made while the server was down are on it, once each.
  EXPECT_GT(r.storm.outage_changes_made, 0u);
  EXPECT_EQ(r.storm.outage_changes_on_server, r.storm.outage_changes_made);
  expect_converged_exactly_once(r, 50);
  EXPECT_GT(r.changes_made, r.storm.outage_changes_made); // and those from before
  EXPECT_GT(r.server_peak_rss_bytes, 0u);
  auto j = to_json(r);
  for (auto key : {"reconnect_s", "drained_s", "reconverged_s", "outage_changes_made"})
    EXPECT_TRUE(j["storm"].contains(key)) << key;
}
