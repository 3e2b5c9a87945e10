// The load test's parts alone: the histogram and its percentiles, the
// stamp written into every value, the config (strict, with file:line:key
// errors), the report's JSON, and the check that finds lost, duplicated
// and wrong changes in a server's storage (read through the backend
// interface: a real SQLite backend, and a scripted one for the faults a
// real backend never shows).
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "messages/layer_stats.hpp"
#include "messages/registry.hpp"
#include "node/loadtest/loadtest_check.hpp"
#include "node/loadtest/loadtest_config.hpp"
#include "node/loadtest/loadtest_report.hpp"
#include "tests/support/temp_dir.hpp"
#ifdef MEMSYNC_LOADTEST_POSTGRES
#include "tests/support/pg_cluster.hpp"
#endif

using namespace memsync;
using memsync::testing::temp_dir;

namespace {

TEST(log_histogram, buckets_are_contiguous_and_at_most_an_eighth_wide) {
  for (size_t i = 0; i < 300; ++i) {
    auto lo = log_histogram::lower_bound(i);
    auto hi = log_histogram::lower_bound(i + 1);
    ASSERT_LT(lo, hi) << i;
    EXPECT_EQ(log_histogram::bucket_of(lo), i);
    EXPECT_EQ(log_histogram::bucket_of(hi - 1), i);
    if (lo >= 8) {
      EXPECT_LE((hi - lo) * 8, lo) << i;
    }
  }
}

TEST(log_histogram, percentiles_of_a_uniform_sample_are_within_the_bucket_error) {
  log_histogram h;
  for (uint64_t v = 1; v <= 100000; ++v)
    h.record(v);
  EXPECT_EQ(h.count, 100000u);
  EXPECT_EQ(h.max, 100000u);
  EXPECT_DOUBLE_EQ(h.mean(), 50000.5);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto got = static_cast<double>(h.percentile(q));
    EXPECT_NEAR(got, q * 100000, q * 100000 * 0.07) << q;
  }
  EXPECT_EQ(h.percentile(1.0), 100000u);
}

TEST(log_histogram, a_rare_slow_value_shows_in_the_tail_only) {
  log_histogram h;
  for (int i = 0; i < 999; ++i)
    h.record(1000);
  h.record(5'000'000);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 1000, 70);
  EXPECT_GT(h.percentile(0.9995), 4'000'000u);
  EXPECT_EQ(h.max, 5'000'000u);
  log_histogram empty;
  EXPECT_EQ(empty.percentile(0.99), 0u);
}

TEST(log_histogram, merging_equals_recording_everything_in_one) {
  log_histogram a, b, all;
  std::minstd_rand rng{7};
  for (int i = 0; i < 5000; ++i) {
    auto v = rng() % 1'000'000;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.buckets, all.buckets);
  EXPECT_EQ(a.count, all.count);
  EXPECT_EQ(a.sum, all.sum);
  EXPECT_EQ(a.max, all.max);
}

TEST(loadtest_stamp, round_trips_through_the_written_data) {
  loadtest::stamp s{17, 42, 123456789, false};
  loadtest::stamp got;
  ASSERT_TRUE(loadtest::read_stamp(loadtest::make_data(s, 10), got));
  EXPECT_EQ(got.writer, 17u);
  EXPECT_EQ(got.n, 42u);
  EXPECT_EQ(got.t_us, 123456789u);
  EXPECT_FALSE(got.offline);
  s.offline = true;
  ASSERT_TRUE(loadtest::read_stamp(loadtest::make_data(s, 0), got));
  EXPECT_TRUE(got.offline);
  EXPECT_FALSE(loadtest::read_stamp(R"({"a":1})", got));
  // Written canonical: keys sorted, compact.
  auto data = nlohmann::json::parse(loadtest::make_data(s, 3));
  EXPECT_EQ(data.dump(), loadtest::make_data(s, 3));
}

TEST(loadtest_stamp, a_scoped_write_names_its_scope_and_stays_canonical) {
  loadtest::stamp s{3, 7, 99, true};
  auto text = loadtest::make_data(s, 4, "scope-12");
  auto data = nlohmann::json::parse(text);
  EXPECT_EQ(data.dump(), text);
  EXPECT_EQ(data["scope"], "scope-12");
  loadtest::stamp got;
  ASSERT_TRUE(loadtest::read_stamp(text, got));
  EXPECT_EQ(got.writer, 3u);
  EXPECT_EQ(got.n, 7u);
  EXPECT_TRUE(got.offline);
  EXPECT_FALSE(nlohmann::json::parse(loadtest::make_data(s, 4)).contains("scope"));
}

TEST(loadtest_check, a_state_splits_by_the_scope_its_rule_names) {
  scope_rules rules{{"item", "scope"}};
  std::vector<std::string> state{"a\titem\t{\"scope\":\"scope-1\",\"x\":1}",
                                 "b\titem\t{\"scope\":\"scope-0\"}",
                                 "c\tnote\t{\"scope\":\"scope-1\"}", "d\titem\t{\"x\":2}",
                                 "e\titem\t{\"scope\":\"scope-1\"}"};
  auto parts = loadtest::split_by_scope(state, rules);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts["scope-1"], (std::vector<std::string>{state[0], state[4]}));
  EXPECT_EQ(parts["scope-0"], (std::vector<std::string>{state[1]}));
  // No rule for its type, or no scope field: the default scope.
  EXPECT_EQ(parts["default"], (std::vector<std::string>{state[2], state[3]}));
}

// -- config ---------------------------------------------------------------------

std::string write_file(const temp_dir& dir, const std::string& text) {
  auto path = dir.file("lt.ini");
  std::ofstream{path} << text;
  return path;
}

std::string config_error_of(const std::string& path,
                            std::vector<std::string> overrides = {}) {
  try {
    make_loadtest_config(load_config(loadtest_schema(), path, overrides));
  } catch (const config_error& e) {
    return e.what();
  }
  return "no error";
}

TEST(loadtest_config, the_example_configs_load) {
  for (auto name : {"loadtest.ini", "loadtest-fixed.ini", "loadtest-drain.ini",
                    "loadtest-storm.ini", "loadtest-scopes.ini"}) {
    auto path = std::string{MEMSYNC_SOURCE_DIR} + "/config/" + name;
    EXPECT_EQ(config_error_of(path), "no error") << name;
  }
  auto cfg = make_loadtest_config(load_config(
    loadtest_schema(), std::string{MEMSYNC_SOURCE_DIR} + "/config/loadtest-fixed.ini"));
  EXPECT_TRUE(cfg.fixed);
  EXPECT_EQ(cfg.clients, 10u);
  EXPECT_EQ(cfg.entities_per_client, 1000u);
}

TEST(loadtest_config, the_drain_and_storm_configs_say_what_they_run) {
  auto dir = std::string{MEMSYNC_SOURCE_DIR} + "/config/";
  auto drain = make_loadtest_config(
    load_config(loadtest_schema(), dir + "loadtest-drain.ini"));
  EXPECT_EQ(drain.mode, loadtest_config::scenario::drain);
  EXPECT_EQ(drain.pending_changes, 100000u);
  EXPECT_EQ(drain.offline_clients, 1u);
  EXPECT_TRUE(drain.child);
  auto storm = make_loadtest_config(
    load_config(loadtest_schema(), dir + "loadtest-storm.ini"));
  EXPECT_EQ(storm.mode, loadtest_config::scenario::storm);
  EXPECT_EQ(storm.clients, 1000u);
  EXPECT_TRUE(storm.child);
  EXPECT_FALSE(storm.in_process);
}

TEST(loadtest_config, drain_and_storm_options_are_checked_with_file_line_and_key) {
  temp_dir dir;
  // The storm restarts the server: only a child process can be.
  auto path = write_file(
    dir, "[workload]\nmode = \"storm\"\n[server]\nmode = \"in-process\"\n");
  auto err = config_error_of(path);
  EXPECT_NE(err.find(path + ":4: server.mode: the storm workload restarts the server"),
            std::string::npos)
    << err;
  EXPECT_EQ(config_error_of(path, {"--server.mode=child"}), "no error");
  err = config_error_of(path, {"--server.mode=child", "--server.nodes=2"});
  EXPECT_NE(err.find("command line: server.nodes: mode \"child\" runs one server"),
            std::string::npos)
    << err;
  err = config_error_of(path, {"--server.mode=child",
                               "--server.program=" + dir.file("no-such-syncnode")});
  EXPECT_NE(err.find("server.program: cannot execute"), std::string::npos) << err;
  err = config_error_of(path, {"--server.mode=child", "--workload.offline-clients=2"});
  EXPECT_NE(err.find("workload.offline-clients: not used by the storm"),
            std::string::npos)
    << err;
  // A drain needs clients to go offline, and a count in range.
  path = write_file(dir, "[workload]\nmode = \"drain\"\npending-changes = 0\n");
  err = config_error_of(path);
  EXPECT_NE(err.find(path + ":3: workload.pending-changes"), std::string::npos) << err;
  path = write_file(dir, "[workload]\nmode = \"drain\"\noutage = 500\n");
  err = config_error_of(path);
  EXPECT_NE(err.find(path + ":3: workload.outage"), std::string::npos) << err;
  path = write_file(dir, "[workload]\nmode = \"drain\"\n");
  err = config_error_of(path);
  EXPECT_NE(err.find("workload.offline-clients: the drain workload needs at least 1"),
            std::string::npos)
    << err;
  EXPECT_EQ(config_error_of(path, {"--workload.offline-clients=1"}), "no error");
  // Connections come from client systems; there cannot be more than clients.
  err = config_error_of(path, {"--workload.offline-clients=1", "--loadtest.clients=4",
                               "--loadtest.client-systems=5"});
  EXPECT_NE(err.find("command line: loadtest.client-systems: more than loadtest.clients"),
            std::string::npos)
    << err;
}

TEST(loadtest_config, the_scopes_config_runs_ten_thousand_clients_in_scopes_of_ten) {
  auto cfg = make_loadtest_config(load_config(
    loadtest_schema(), std::string{MEMSYNC_SOURCE_DIR} + "/config/loadtest-scopes.ini"));
  EXPECT_EQ(cfg.clients, 10000u);
  EXPECT_EQ(cfg.scopes, 1000u);
  EXPECT_EQ(cfg.mode, loadtest_config::scenario::steady);
  // 1,000 writes per second in all.
  EXPECT_EQ(cfg.write_interval / cfg.clients, std::chrono::milliseconds(1));
  // Today's configs have no scopes.
  auto plain = make_loadtest_config(load_config(
    loadtest_schema(), std::string{MEMSYNC_SOURCE_DIR} + "/config/loadtest.ini"));
  EXPECT_EQ(plain.scopes, 1u);
  EXPECT_EQ(loadtest_scope_name(7), "scope-7");
}

TEST(loadtest_config, scopes_are_checked_with_file_line_and_key) {
  temp_dir dir;
  auto path = write_file(dir, "[loadtest]\nclients = 4\n[workload]\nscopes = 5\n");
  auto err = config_error_of(path);
  EXPECT_NE(err.find(path + ":4: workload.scopes: more than loadtest.clients"),
            std::string::npos)
    << err;
  EXPECT_EQ(config_error_of(path, {"--workload.scopes=4"}), "no error");
  path = write_file(dir, "[workload]\nscopes = 0\n");
  err = config_error_of(path);
  EXPECT_NE(err.find(path + ":2: workload.scopes"), std::string::npos) << err;
  // The fixed workload waits for the same count on every client.
  path = write_file(dir, "[loadtest]\nclients = 10\n[workload]\nmode = \"fixed\"\n");
  err = config_error_of(path, {"--workload.scopes=3"});
  EXPECT_NE(err.find("command line: workload.scopes: the fixed workload needs"),
            std::string::npos)
    << err;
  EXPECT_EQ(config_error_of(path, {"--workload.scopes=5"}), "no error");
  path = write_file(dir,
                    "[workload]\nmode = \"drain\"\noffline-clients = 1\nscopes = 2\n");
  err = config_error_of(path);
  EXPECT_NE(err.find(path + ":4: workload.scopes: only the steady and fixed"),
            std::string::npos)
    << err;
}

TEST(loadtest_config, a_bad_key_names_file_line_and_key) {
  temp_dir dir;
  auto path = write_file(dir,
                         "[loadtest]\nclients = 5\n[workload]\nwrites-per-sec = 3\n");
  auto err = config_error_of(path);
  EXPECT_NE(err.find(path + ":4: workload.writes-per-sec"), std::string::npos) << err;
  path = write_file(dir, "[loadtest]\nclients = 0\n");
  err = config_error_of(path);
  EXPECT_NE(err.find(path + ":2: loadtest.clients"), std::string::npos) << err;
}

TEST(loadtest_config, shares_must_add_up_and_overrides_work_like_for_nodes) {
  temp_dir dir;
  auto path = write_file(
    dir, "[workload]\nput-percent = 50\npatch-percent = 20\ndel-percent = 20\n");
  auto err = config_error_of(path);
  EXPECT_NE(err.find(path + ":4: workload.del-percent: put-percent + patch-percent"),
            std::string::npos)
    << err;
  EXPECT_EQ(config_error_of(path, {"--workload.del-percent=30"}), "no error");
  err = config_error_of(path, {"--workload.del-percent=30", "--server.mode=address"});
  EXPECT_NE(err.find("server.addresses"), std::string::npos) << err;
  err = config_error_of(path, {"--workload.del-percent=30", "--server.mode=address",
                               "--server.addresses=127.0.0.1:7878,localhost:99999"});
  EXPECT_NE(err.find("bad port in 'localhost:99999'"), std::string::npos) << err;
  err = config_error_of(path, {"--workload.del-percent=30", "--workload.mode=fixed",
                               "--workload.offline-clients=3"});
  EXPECT_NE(err.find("command line: workload.offline-clients: not used by the fixed"),
            std::string::npos)
    << err;
  auto list = parse_server_list("127.0.0.1:7878,h:1");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].host, "h");
  EXPECT_EQ(list[1].port, 1);
}

// -- report -----------------------------------------------------------------------

TEST(loadtest_report, json_has_every_figure_and_svg_is_drawn) {
  loadtest_report r;
  r.mode = "steady";
  r.clients = 3;
  for (uint64_t v : {1000, 2000, 3000})
    r.propagation.record(v);
  r.timeline.push_back({1.0, 10, 20, 3000, 3});
  auto j = to_json(r);
  for (auto key : {"changes_pushed_per_s", "changes_applied_per_s", "pulls_per_s"})
    EXPECT_TRUE(j["throughput"].contains(key)) << key;
  // Not known (no in-process server): null, not a made-up number.
  EXPECT_TRUE(j["throughput"]["server_pulls_per_write"].is_null());
  r.server_pulls_per_write = 9.5;
  EXPECT_DOUBLE_EQ(to_json(r)["throughput"]["server_pulls_per_write"].get<double>(), 9.5);
  EXPECT_EQ(j["scopes"], 1);
  EXPECT_TRUE(j["convergence"].contains("foreign_changes"));
  for (auto key : {"p50", "p90", "p99", "p99_9", "max"})
    EXPECT_TRUE(j["propagation_latency_ms"].contains(key)) << key;
  EXPECT_DOUBLE_EQ(j["propagation_latency_ms"]["max"].get<double>(), 3.0);
  for (auto key : {"flush_wait", "push_round_trip", "poke_to_pull", "apply"})
    EXPECT_TRUE(j["layers_ms"].contains(key)) << key;
  EXPECT_TRUE(j["convergence"].contains("clients_differing"));
  EXPECT_TRUE(j["resources"].contains("bytes_per_client_connected"));
  EXPECT_TRUE(j.contains("errors"));
  EXPECT_EQ(j["propagation_histogram"].size(), 3u);
  auto svg = render_svg(r);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(loadtest_report, drain_and_storm_runs_report_their_figures) {
  loadtest_report r;
  r.mode = "drain";
  r.drain.drained = true;
  r.drain.drain_s = 1.5;
  r.drain.push_batches = 200;
  r.server_peak_rss_bytes = 64 << 20;
  auto j = to_json(r);
  EXPECT_DOUBLE_EQ(j["drain"]["drain_s"].get<double>(), 1.5);
  EXPECT_EQ(j["drain"]["push_batches"].get<uint64_t>(), 200u);
  EXPECT_FALSE(j.contains("storm"));
  EXPECT_EQ(j["resources"]["server_peak_rss_bytes"].get<uint64_t>(), 64u << 20);
  std::ostringstream table;
  print_table(r, table);
  EXPECT_NE(table.str().find("200 push batches"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("64.0 MiB (the server process)"), std::string::npos)
    << table.str();
  r.mode = "storm";
  r.storm.reconverged = false;
  j = to_json(r);
  EXPECT_FALSE(j["storm"]["reconverged"].get<bool>());
  table.str("");
  print_table(r, table);
  EXPECT_NE(table.str().find("NOT reconverged"), std::string::npos) << table.str();
}

// -- the check of a server's database ---------------------------------------------

struct check_test : ::testing::Test {
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    register_message_types(cfg);
    cfg.set("logger.console", caf::atom("none"));
    return cfg;
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  temp_dir dir;
  loadtest::sim_client client;

  check_test() {
    client_config cc;
    cc.client_name = "lt-1";
    cc.db.path = ":memory:";
    cc.db.client_name = "lt-1";
    client.node = std::make_unique<client_node>(sys, cc);
    client.index = 0;
    // Three writes; mutations 1, 2, 3 end with them.
    client.log = {
      {10, 1, change_kind::put}, {11, 2, change_kind::put}, {12, 3, change_kind::patch}};
    client.seq_of_mutation = {10, 11, 12};
  }
  ~check_test() override { client.node->shutdown(std::chrono::seconds(5)); }

  std::string data_of(uint64_t n) { return loadtest::make_data({0, n, 5, false}, 0); }
};

/// A server's storage as the check reads it, with a history a real backend
/// would never write (a mutation twice, one missing). Hands out the history
/// in pages of two, so the check must page through it.
class scripted_server : public storage_backend {
public:
  scripted_server(std::string client_id,
                  const std::vector<std::pair<uint64_t, std::string>>& log,
                  std::string final_data) {
    for (auto& [mid, id] : log)
      log_.push_back({log_.size() + 1, client_id, mid, id, false});
    entities_.push_back({"e", "note", std::move(final_data), log_.size(), false});
  }

  std::string epoch() override { return "scripted"; }
  std::string cookie_secret() override { return "scripted-secret"; }
  uint64_t head_version() override { return log_.size(); }
  std::unique_ptr<storage_tx> begin() override {
    throw storage_error("the check only reads", false);
  }
  pull_reply pull_page(const std::string&, const cookie& since,
                       const page_request&) override {
    pull_reply out;
    out.reset = since.epoch != epoch();
    for (auto& e : entities_)
      if (e.version > since.version)
        out.entities.push_back(e);
    out.next = {epoch(), head_version(), 1};
    return out;
  }
  std::vector<log_entry> read_log(uint64_t after, std::size_t max) override {
    std::vector<log_entry> out;
    for (auto& entry : log_)
      if (entry.version > after && out.size() < std::min<std::size_t>(max, 2))
        out.push_back(entry);
    return out;
  }

private:
  std::vector<log_entry> log_;
  std::vector<entity> entities_;
};

/// The check on the storage of a real server, opened as a server node's
/// config names it: SQLite here; PostgreSQL too in loadtest_pg_test (built
/// from this file, on a throwaway cluster).
class real_storage_check : public check_test,
                           public ::testing::WithParamInterface<std::string> {
protected:
  server_config storage_config() {
    server_config cfg;
    cfg.backend = GetParam();
    cfg.db_path = dir.file("server.db");
#ifdef MEMSYNC_LOADTEST_POSTGRES
    if (cfg.backend == "postgres") {
      auto& cluster = memsync::testing::pg_cluster::shared();
      cfg.postgres = cluster.conninfo(cluster.create_database());
      cfg.postgres_schema = "memsync";
    }
#endif
    return cfg;
  }
};

TEST_P(real_storage_check, a_clean_history_passes_and_a_resent_push_is_no_duplicate) {
  auto server = loadtest::open_server_storage(storage_config());
  auto id = client.node->client_id();
  std::vector<change> changes{{10, 1, change_kind::put, "e", "note", data_of(1), {}},
                              {11, 2, change_kind::put, "e", "note", data_of(2), {}},
                              {12, 3, change_kind::patch, "e", "note", data_of(3), {}}};
  // The second push is the first sent again (its reply was lost): the
  // server skips it, so the check must find each mutation once.
  for (int i = 0; i < 2; ++i) {
    auto r = apply_pushes(*server, {{push_request{id, server->epoch(), changes}, {}}},
                          data_limits{});
    ASSERT_TRUE(r.outcomes.at(0).error.ok()) << r.outcomes[0].error.describe();
    ASSERT_EQ(r.outcomes[0].reply.last_mutation_id, 3u);
  }
  loadtest_report report;
  loadtest::check_server_log(*server, {&client}, {}, report);
  EXPECT_EQ(report.changes_made, 3u);
  EXPECT_EQ(report.changes_on_server, 3u);
  EXPECT_EQ(report.changes_lost, 0u);
  EXPECT_EQ(report.changes_duplicated, 0u);
  EXPECT_EQ(report.final_values_wrong, 0u);
}

INSTANTIATE_TEST_SUITE_P(backends, real_storage_check,
#ifdef MEMSYNC_LOADTEST_POSTGRES
                         ::testing::Values("sqlite", "postgres"),
#else
                         ::testing::Values("sqlite"),
#endif
                         [](const auto& info) { return info.param; });

TEST_F(check_test, a_clean_log_passes) {
  scripted_server server{
    client.node->client_id(), {{1, "e"}, {2, "e"}, {3, "e"}}, data_of(3)};
  loadtest_report r;
  loadtest::check_server_log(server, {&client}, {}, r);
  EXPECT_EQ(r.changes_made, 3u);
  EXPECT_EQ(r.changes_on_server, 3u);
  EXPECT_EQ(r.changes_lost, 0u);
  EXPECT_EQ(r.changes_duplicated, 0u);
  EXPECT_EQ(r.final_values_wrong, 0u);
}

TEST_F(check_test, finds_lost_duplicated_and_wrong_final_changes) {
  // Mutation 2 (a put) missing, 1 applied twice, and the entity holds
  // write 2 although the log's last change for it is mutation 3 (write 3).
  scripted_server server{
    client.node->client_id(), {{1, "e"}, {1, "e"}, {3, "e"}}, data_of(2)};
  loadtest_report r;
  loadtest::check_server_log(server, {&client}, {}, r);
  EXPECT_EQ(r.changes_lost, 1u);
  EXPECT_EQ(r.changes_unaccounted, 0u);
  EXPECT_EQ(r.changes_duplicated, 1u);
  EXPECT_EQ(r.final_values_wrong, 1u);
  // A refused mutation is not lost.
  loadtest_report r2;
  loadtest::check_server_log(server, {&client}, {{0, {2}}}, r2);
  EXPECT_EQ(r2.changes_lost, 0u);
}

TEST_F(check_test, a_missing_patch_without_a_reported_refusal_is_unaccounted_not_lost) {
  scripted_server server{client.node->client_id(), {{1, "e"}, {2, "e"}}, data_of(2)};
  loadtest_report r;
  loadtest::check_server_log(server, {&client}, {}, r);
  EXPECT_EQ(r.changes_lost, 0u);
  EXPECT_EQ(r.changes_unaccounted, 1u);
  EXPECT_EQ(r.final_values_wrong, 0u);
}

} // namespace
