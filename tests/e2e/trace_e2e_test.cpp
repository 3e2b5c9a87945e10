// Actor traces end to end: a real server and two real clients with tracing
// on; the trace tool's logic, run on their files, must reconstruct the full
// path of one change through every actor of the three nodes, in causal
// order on the aligned clock.
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/e2e_helpers.hpp"
#include "tools/trace/trace_model.hpp"

using namespace memsync::testing;
using namespace std::chrono_literals;
namespace mt = memsync::trace;

namespace {

std::vector<std::string> trace_options(const cluster& c, const std::string& node,
                                       const std::string& mode) {
  return {"--trace.mode=" + mode, "--trace.file=" + c.dir().file(node + ".jsonl"),
          "--trace.sample-every=4"};
}

bool connected(const nlohmann::json& st) {
  return st.value("connected", false);
}

} // namespace

TEST(trace_e2e, two_clients_reconstruct_the_full_path_of_a_change) {
  cluster c;
  ASSERT_NE(c.start_server(0, trace_options(c, "server", "all")), 0);
  auto alice = c.start_client("alice", trace_options(c, "alice", "all"));
  auto bob = c.start_client("bob", trace_options(c, "bob", "all"));
  // Both connected first, so the commit's poke reaches bob.
  ASSERT_TRUE(alice->wait_status(connected, 10s));
  ASSERT_TRUE(bob->wait_status(connected, 10s));
  ASSERT_EQ(alice->cmd(R"(put traced-1 note {"text":"follow me"})"), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string seen;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = bob->cmd("get traced-1");
    if (seen != "not found")
      break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(seen.find("follow me"), std::string::npos) << seen;
  auto alice_id = alice->status()["client_id"].get<std::string>();
  auto bob_id = bob->status()["client_id"].get<std::string>();
  EXPECT_EQ(alice->quit(), 0);
  EXPECT_EQ(bob->quit(), 0);
  c.stop_server();

  auto set = mt::load({c.dir().file("alice.jsonl"), c.dir().file("bob.jsonl"),
                       c.dir().file("server.jsonl")});
  for (auto& p : set.problems)
    ADD_FAILURE() << p.where << ": " << p.what;
  for (auto& f : set.files) {
    EXPECT_EQ(f.dropped, 0) << f.path;
    if (f.role == "client") {
      // Same machine: the true offset is 0, inside the NTP error bound.
      ASSERT_FALSE(f.clocks.empty()) << f.path;
      auto& est = f.clocks.back();
      EXPECT_LE(std::abs(est.offset_ns), est.rtt_ns / 2 + 2000) << f.path;
    }
  }
  auto trace_id = mt::trace_of_entity(set, "traced-1");
  ASSERT_NE(trace_id, 0u);
  auto steps = mt::path(set, trace_id);

  // The expected path, as a subsequence of the recorded steps.
  struct want {
    std::string node, actor, kind;
  };
  std::vector<want> expected{
    {alice_id, "memory_store", "write"},
    {alice_id, "flush_scheduler", "write"},
    {alice_id, "local_db", "flush"},
    {alice_id, "network_syncer", "push"},
    {"server-1", "session", "push"},
    {"server-1", "replication_log", "push"},
    {"server-1", "replication_log", "commit"},
    {"server-1", "replication_log", "poke_sent"},
    {"server-1", "session", "poke"},
    {bob_id, "network_syncer", "poke"},
    {bob_id, "network_syncer", "pull_reply"},
    {bob_id, "local_db", "rebase"},
    {bob_id, "memory_store", "rebase"},
  };
  size_t next = 0;
  std::vector<int64_t> times;
  for (auto& s : steps) {
    auto& ev = *s.ev;
    if (next < expected.size() && set.files[ev.file].node == expected[next].node
        && ev.actor == expected[next].actor && ev.kind == expected[next].kind) {
      times.push_back(ev.t_ns);
      ++next;
    }
  }
  EXPECT_EQ(next, expected.size())
    << "missing step "
    << (next < expected.size()
          ? expected[next].node + " " + expected[next].actor + " " + expected[next].kind
          : std::string{})
    << "\n"
    << mt::format_path(set, steps);
  // Aligned times increase along the path (the path is sorted by them; this
  // checks that sorting kept the causal order above).
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  // Every step has a handling time; the in-node hops a mailbox wait.
  for (auto& s : steps) {
    EXPECT_GE(s.ev->dur_ns, 0);
    if (s.ev->actor == "flush_scheduler" && s.ev->kind == "write") {
      EXPECT_GE(s.ev->wait_ns, 0);
    }
  }
}

// Sampling is decided by the trace id, so a sampled change is recorded on
// every node and one that is not sampled on none.
TEST(trace_e2e, sampled_changes_are_recorded_on_every_node) {
  cluster c;
  ASSERT_NE(c.start_server(0, trace_options(c, "server", "sampled")), 0);
  auto alice = c.start_client("alice", trace_options(c, "alice", "sampled"));
  auto bob = c.start_client("bob", trace_options(c, "bob", "sampled"));
  ASSERT_TRUE(alice->wait_status(connected, 10s));
  ASSERT_TRUE(bob->wait_status(connected, 10s));
  std::vector<std::string> puts;
  for (int i = 0; i < 40; ++i)
    puts.push_back("put s" + std::to_string(i) + " note {\"n\":" + std::to_string(i)
                   + "}");
  for (auto& r : alice->batch(puts))
    ASSERT_EQ(r, "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_EQ(alice->quit(), 0);
  EXPECT_EQ(bob->quit(), 0);
  c.stop_server();

  auto set = mt::load({c.dir().file("alice.jsonl"), c.dir().file("bob.jsonl"),
                       c.dir().file("server.jsonl")});
  // trace id -> nodes that recorded it.
  std::map<uint64_t, std::set<std::string>> seen;
  for (auto& ev : set.events)
    for (auto& i : ev.items)
      if (i.trace_id)
        seen[i.trace_id].insert(set.files[ev.file].node);
  EXPECT_GT(seen.size(), 0u) << "with 1 in 4 sampled, 40 changes sample some";
  EXPECT_LT(seen.size(), 40u);
  for (auto& [id, nodes] : seen)
    EXPECT_EQ(nodes.size(), 3u) << mt::hex(id);
}
