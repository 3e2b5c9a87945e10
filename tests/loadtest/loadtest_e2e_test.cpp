// A small load test run whole: 50 simulated clients (real client stacks)
// against an in-process server node for a few seconds, with collisions on
// shared entities and clients going offline and back. Asserts convergence,
// no lost or duplicated changes, and a report with every figure. No
// assertion on speed: this machine is shared.
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
