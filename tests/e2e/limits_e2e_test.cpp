// A server with smaller limits than its client, end to end with real
// processes: the client sizes its pushes by the server's limits from the
// hello reply (many changes go in several pushes, none refused, no retry),
// and a change that could never fit (data above the server's data limit,
// or counting more than its push byte limit) is refused at put time with a
// clear error instead of holding back the outbox.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/e2e_helpers.hpp"

using namespace memsync;
using namespace memsync::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The server's limits; the client keeps its defaults (1 MiB of data, 1 MiB
// and 500 changes per push), far above them.
constexpr int server_push_bytes = 4096;
constexpr int server_push_changes = 5;
constexpr int server_data_bytes = 8192;

std::vector<std::string> small_server(const std::string& trace_file = "") {
  std::vector<std::string> out{
    "--limits.max-push-bytes=" + std::to_string(server_push_bytes),
    "--limits.max-push-changes=" + std::to_string(server_push_changes),
    "--limits.max-data-bytes=" + std::to_string(server_data_bytes)};
  if (!trace_file.empty()) {
    out.push_back("--trace.mode=all");
    out.push_back("--trace.file=" + trace_file);
  }
  return out;
}

/// `put ID note {"pad":"ppp..."}` with `pad` bytes of padding.
std::string put_padded(const std::string& id, std::size_t pad) {
  return "put " + id + " note " + json{{"pad", std::string(pad, 'p')}}.dump();
}

/// The pushes the server's sessions handled, from its trace file.
int pushes_in_trace(const std::string& path) {
  std::ifstream in{path};
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("ev", "") == "msg" && j.value("actor", "") == "session"
        && j.value("kind", "") == "push")
      ++n;
  }
  return n;
}

/// Waits for the client's hello to be answered, then syncs: after `sync`
/// the memory store has taken the server's limits (it received them before
/// the flush that sync asks it for).
void connect(sync_client& c) {
  ASSERT_TRUE(
    c.wait_status([](const json& s) { return s.value("connected", false); }, 10s));
  ASSERT_EQ(c.sync(), "ok");
}

} // namespace

TEST(limits_e2e, many_changes_go_in_pushes_the_server_accepts_without_retrying) {
  cluster cl;
  auto trace = cl.dir().file("server.jsonl");
  cl.start_server(0, small_server(trace));
  // A push debounce long enough for all 60 writes to be flushed first, so
  // that the outbox is cut only by the server's limits.
  auto alice = cl.start_client("alice", {"--sync.push-debounce=200ms"});
  connect(*alice);
  // Each change counts 5 + 4 + 1010 bytes: 4 fit in the server's 4096.
  std::vector<std::string> puts;
  for (int i = 0; i < 60; ++i)
    puts.push_back(put_padded("m" + std::to_string(100 + i), 1000));
  for (auto& r : alice->batch(puts))
    ASSERT_EQ(r, "ok");
  ASSERT_EQ(alice->sync(), "ok");
  auto st = alice->status();
  EXPECT_FALSE(st.contains("last_error")) << st.dump();
  EXPECT_EQ(st.value("pending", -1), 0) << st.dump();
  EXPECT_EQ(st.value("refused", -1), 0) << st.dump();
  EXPECT_EQ(st.value("last_mutation_id", 0), 60) << st.dump();
  auto id = st.value("client_id", "");
  EXPECT_EQ(alice->quit(), 0);
  cl.stop_server();
  // 60 / 4 = 15 pushes when the outbox was complete at the first one; a few
  // more if a flush was late. A push refused for its size and sent again
  // would show as many more, and as last_error above.
  auto pushes = pushes_in_trace(trace);
  EXPECT_GE(pushes, 15);
  EXPECT_LE(pushes, 20);
  auto log = server_log(cl.server_db(), id);
  EXPECT_EQ(log.rows, 60);
  EXPECT_EQ(log.distinct_mutations, 60);
  EXPECT_EQ(server_state(cl.server_db()).size(), 60u);
}

TEST(limits_e2e, a_change_too_big_for_the_server_is_refused_at_put_and_holds_nothing_up) {
  cluster cl;
  cl.start_server(0, small_server());
  auto alice = cl.start_client("alice");
  connect(*alice);
  // Within the client's own limits, above the server's data limit.
  auto r = alice->cmd(put_padded("big", server_data_bytes));
  EXPECT_EQ(r.rfind("error: too_large: ", 0), 0u) << r;
  EXPECT_NE(r.find("at most " + std::to_string(server_data_bytes)), std::string::npos)
    << r;
  // Within the server's data limit, above its push byte limit.
  r = alice->cmd(put_padded("wide", server_push_bytes));
  EXPECT_EQ(r.rfind("error: too_large: ", 0), 0u) << r;
  EXPECT_NE(r.find("limit of " + std::to_string(server_push_bytes) + " bytes per push"),
            std::string::npos)
    << r;
  // A small patch that would leave an entity too large to push.
  ASSERT_EQ(alice->cmd(put_padded("grows", 10)), "ok");
  r = alice->cmd("patch grows "
                 + json{{"more", std::string(server_push_bytes, 'm')}}.dump());
  EXPECT_EQ(r.rfind("error: too_large: ", 0), 0u) << r;
  // Nothing refused was written; everything else goes through at once.
  EXPECT_EQ(alice->cmd("get big"), "not found");
  EXPECT_EQ(alice->cmd("get wide"), "not found");
  ASSERT_EQ(alice->cmd(put_padded("after", 100)), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  auto st = alice->status();
  EXPECT_FALSE(st.contains("last_error")) << st.dump();
  EXPECT_EQ(st.value("pending", -1), 0) << st.dump();
  EXPECT_EQ(st.value("refused", -1), 0) << st.dump();
  EXPECT_EQ(alice->quit(), 0);
  cl.stop_server();
  auto state = server_state(cl.server_db());
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].id, "after");
  EXPECT_EQ(state[1].id, "grows");
  EXPECT_EQ(json::parse(state[1].data), json({{"pad", std::string(10, 'p')}}));
}

TEST(limits_e2e, before_any_hello_the_clients_own_push_limit_decides) {
  cluster cl;
  // Nobody listens on this port: the client never hears a server's limits.
  auto port = cl.reserve_port();
  auto alice = cl.start_client("alice", {"--sync.max-push-bytes=2048"}, port);
  auto r = alice->cmd(put_padded("wide", 2048));
  EXPECT_EQ(r.rfind("error: too_large: ", 0), 0u) << r;
  EXPECT_NE(r.find("limit of 2048 bytes per push"), std::string::npos) << r;
  EXPECT_EQ(alice->cmd(put_padded("fits", 1000)), "ok");
  EXPECT_EQ(alice->cmd("get wide"), "not found");
  alice->kill_hard();
}
