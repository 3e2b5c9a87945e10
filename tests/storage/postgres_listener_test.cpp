// The listener that lets several server nodes on one database poke their
// own clients: it hears commits made through any backend on that database,
// in commit order, and catches up after losing its connection.
#include "actors/storage/postgres_listener.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/storage/postgres_backend.hpp"
#include "tests/storage/backend_conformance.hpp"
#include "tests/support/pg_cluster.hpp"

using namespace memsync;
using namespace memsync::conformance;
using memsync::testing::pg_cluster;
using namespace std::chrono_literals;

namespace {

// What a listener reported, for a test thread to wait on.
class heads {
public:
  using scopes = std::optional<std::vector<std::string>>;
  void add(uint64_t v, const scopes& touched = std::nullopt) {
    std::lock_guard<std::mutex> guard{mutex_};
    seen_.push_back(v);
    scopes_.push_back(touched);
    changed_.notify_all();
  }
  /// The scopes reported with each head, in order.
  std::vector<scopes> all_scopes() {
    std::lock_guard<std::mutex> guard{mutex_};
    return scopes_;
  }
  // True once `v` was reported (within `timeout`).
  bool wait_for(uint64_t v, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock{mutex_};
    return changed_.wait_for(lock, timeout,
                             [&] { return !seen_.empty() && seen_.back() >= v; });
  }
  std::vector<uint64_t> all() {
    std::lock_guard<std::mutex> guard{mutex_};
    return seen_;
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<uint64_t> seen_;
  std::vector<scopes> scopes_;
};

class postgres_listener_test : public ::testing::Test {
protected:
  void SetUp() override {
    name = cluster().create_database();
    writer = std::make_unique<postgres_backend>(cluster().conninfo(name));
  }
  void TearDown() override {
    writer.reset();
    cluster().drop_database(name);
  }
  static pg_cluster& cluster() { return pg_cluster::shared(); }
  std::unique_ptr<postgres_listener> listen(heads& out, std::string schema = "memsync") {
    auto l = std::make_unique<postgres_listener>(
      cluster().conninfo(name), std::move(schema),
      [&out](uint64_t v, const heads::scopes& touched) { out.add(v, touched); }, 200ms);
    for (int i = 0; i < 500 && !l->listening(); ++i)
      std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(l->listening());
    return l;
  }
  push_outcome try_push(const std::string& client, uint64_t mid) {
    return apply_pushes(
             *writer,
             {conformance::push(client, writer->epoch(), {put(mid, "e" + client, "{}")})},
             {})
      .outcomes.at(0);
  }
  void push(const std::string& client, uint64_t mid) {
    auto out = try_push(client, mid);
    ASSERT_TRUE(out.error.ok()) << out.error.describe();
  }

  std::string name;
  std::unique_ptr<postgres_backend> writer;
};

TEST_F(postgres_listener_test, hears_every_commit_of_another_connection_in_order) {
  heads got;
  auto listener = listen(got);
  for (uint64_t mid = 1; mid <= 5; ++mid)
    push("a", mid);
  ASSERT_TRUE(got.wait_for(5));
  auto all = got.all();
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_EQ(all.back(), 5u);
}

TEST_F(postgres_listener_test,
       reports_the_head_when_it_connects_so_missed_notifications_do_not_matter) {
  for (uint64_t mid = 1; mid <= 3; ++mid)
    push("a", mid); // nobody listens
  heads got;
  auto listener = listen(got);
  ASSERT_TRUE(got.wait_for(3));
  EXPECT_EQ(got.all(), std::vector<uint64_t>{3});
}

TEST_F(postgres_listener_test, each_head_comes_with_the_scopes_its_commit_touched) {
  heads got;
  auto listener = listen(got);
  scope_rules rules{scope_rule{"note", "team"}};
  auto commit = [&](std::vector<change> changes) {
    auto out = apply_pushes(*writer, {conformance::push("a", writer->epoch(), changes)},
                            {}, rules);
    ASSERT_TRUE(out.outcomes.at(0).error.ok()) << out.outcomes.at(0).error.describe();
  };
  commit({put(1, "n1", R"({"team":"team-a"})"), put(2, "n2", R"({"team":"team-b"})")});
  commit({put(3, "n1", R"({"team":"team-c"})")}); // a move: both scopes
  ASSERT_TRUE(got.wait_for(3));
  auto all = got.all_scopes();
  ASSERT_EQ(all.size(), 2u);
  using names = std::vector<std::string>;
  ASSERT_TRUE(all[0].has_value());
  EXPECT_EQ(*all[0], (names{"team-a", "team-b"}));
  ASSERT_TRUE(all[1].has_value());
  EXPECT_EQ(*all[1], (names{"team-a", "team-c"}));
}

TEST_F(postgres_listener_test,
       a_payload_of_a_head_alone_means_any_scope_and_garbage_no_head) {
  uint64_t head = 0;
  std::optional<std::vector<std::string>> scopes;
  ASSERT_TRUE(postgres_listener::parse_payload("42 team-a project-7", head, scopes));
  EXPECT_EQ(head, 42u);
  ASSERT_TRUE(scopes.has_value());
  EXPECT_EQ(*scopes, (std::vector<std::string>{"team-a", "project-7"}));
  ASSERT_TRUE(postgres_listener::parse_payload("43", head, scopes));
  EXPECT_EQ(head, 43u);
  EXPECT_FALSE(scopes.has_value()); // from before scopes, or a list too long
  EXPECT_FALSE(postgres_listener::parse_payload("", head, scopes));
  EXPECT_FALSE(postgres_listener::parse_payload("x1 team-a", head, scopes));
  EXPECT_FALSE(postgres_listener::parse_payload("123456789012345678901", head, scopes));
}

TEST_F(postgres_listener_test, reconnects_after_its_connection_was_lost) {
  heads got;
  auto listener = listen(got);
  push("a", 1);
  ASSERT_TRUE(got.wait_for(1));
  cluster().terminate_connections(name); // the writer's connection too
  if (auto lost = try_push("a", 2); !lost.error.ok()) {
    EXPECT_EQ(lost.error.code, sync_errc::unavailable) << lost.error.describe();
    push("a", 2); // the writer reconnects on the next call
  }
  push("a", 3);
  EXPECT_TRUE(got.wait_for(3)) << "no head after the connection was lost";
  EXPECT_GE(listener->connects(), 2);
}

TEST_F(postgres_listener_test, another_schema_is_another_channel) {
  heads ours, other;
  auto a = listen(ours);
  auto b = listen(other, "elsewhere");
  push("a", 1);
  ASSERT_TRUE(ours.wait_for(1));
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(other.all().empty());
}

TEST_F(postgres_listener_test,
       an_unreachable_database_is_retried_and_stopping_is_prompt) {
  heads got;
  auto started = std::chrono::steady_clock::now();
  {
    postgres_listener l{"host=127.0.0.1 port=" + std::to_string(cluster().port() + 1),
                        "memsync", [&](uint64_t v, const heads::scopes&) { got.add(v); },
                        100ms};
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(l.listening());
    EXPECT_EQ(l.connects(), 0);
  }
  // Generous: stopping must not wait for a connection attempt to time out.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_TRUE(got.all().empty());
}

} // namespace
