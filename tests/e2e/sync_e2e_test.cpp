// Sync end to end with real processes: a `syncnode server` and `syncnode
// client` children on loopback. Clients converge with each other and with
// the server's database; pushes are applied exactly once across server and
// client crashes (kill -9), offline periods and a server restored from an
// older copy; bad tokens, garbage peers and malformed requests are refused
// without disturbing anyone else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "actors/server/gateway.hpp"
#include "messages/registry.hpp"
#include "tests/support/e2e_helpers.hpp"

using namespace memsync;
using namespace memsync::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string numbered(const char* prefix, int i) {
  std::string id = prefix; // not prefix + ...: g++ 12 warns falsely (-Wrestrict)
  id += std::to_string(i);
  return id;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

/// id -> server version, from the server's state or from `ls` lines.
std::map<std::string, uint64_t> versions(const std::vector<entity>& state) {
  std::map<std::string, uint64_t> out;
  for (auto& e : state)
    out[e.id] = e.version;
  return out;
}

std::map<std::string, uint64_t> versions(const std::vector<std::string>& ls) {
  std::map<std::string, uint64_t> out;
  for (auto& line : ls) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("id"))
      out[j["id"].get<std::string>()] = j.value("version", uint64_t{0});
  }
  return out;
}

/// Asserts that every mutation 1..n of `client_id` reached the server's log
/// exactly once (puts of distinct ids: each one writes one row).
void expect_exactly_once(const std::string& db, const std::string& client_id, int64_t n) {
  auto log = server_log(db, client_id);
  EXPECT_EQ(log.rows, n) << client_id;
  EXPECT_EQ(log.distinct_mutations, n) << client_id;
  EXPECT_EQ(log.min_mutation, n > 0 ? 1 : 0) << client_id;
  EXPECT_EQ(log.max_mutation, n) << client_id;
  EXPECT_EQ(server_last_mutation_id(db, client_id), n) << client_id;
}

/// `sync` until it says ok (each attempt bounded by the client's timeout).
std::string sync_until_ok(sync_client& c, int attempts) {
  std::string last;
  for (int i = 0; i < attempts; ++i) {
    last = c.sync();
    if (last == "ok")
      return last;
  }
  return last;
}

/// `sync` on several clients at once; one result per client.
std::vector<std::string> sync_all(const std::vector<sync_client*>& clients) {
  for (auto* cl : clients)
    cl->process().send("sync");
  std::vector<std::string> out;
  for (auto* cl : clients) {
    std::string line;
    out.push_back(cl->process().read_line(line, 40s) ? line : "");
  }
  return out;
}

/// Says how often the workaround for hanging server stops was needed.
class hung_stop_report : public ::testing::Environment {
public:
  void TearDown() override {
    if (cluster::hung_stops() > 0)
      std::cerr << "note: " << cluster::hung_stops()
                << " server stop(s) printed 'stopped' but did not exit; they "
                   "were killed (see sync_e2e.server_exits_after_sigterm)\n";
  }
};

[[maybe_unused]] auto* const hung_stop_env = ::testing::AddGlobalTestEnvironment(
  new hung_stop_report);

} // namespace

// 1. Two clients edit, also the same entity (different fields); both end
//    with the same `ls`, equal to the server's live state.
TEST(sync_e2e, two_clients_converge) {
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  auto alice = c.start_client("alice");
  auto bob = c.start_client("bob");
  for (auto cmd :
       {R"(put doc-1 doc {"title":"Plan","owner":"alice"})",
        R"(put doc-2 doc {"title":"Draft","words":120})",
        R"(put doc-3 note {"text":"temporary"})", R"(patch doc-1 {"status":"open"})",
        R"(patch doc-2 {"words":null,"pages":3})", "del doc-3"})
    ASSERT_EQ(alice->cmd(cmd), "ok") << cmd;
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  auto seen = json::parse(bob->cmd("get doc-1"), nullptr, false);
  ASSERT_FALSE(seen.is_discarded());
  EXPECT_EQ(seen["data"]["status"], "open");
  EXPECT_EQ(bob->cmd("get doc-3"), "not found");
  // Concurrent edits of different fields of one entity, and new entities.
  ASSERT_EQ(bob->cmd(R"(patch doc-1 {"owner":"bob"})"), "ok");
  ASSERT_EQ(bob->cmd(R"(put doc-4 note {"text":"from bob"})"), "ok");
  ASSERT_EQ(alice->cmd(R"(patch doc-1 {"priority":1})"), "ok");
  ASSERT_EQ(alice->cmd(R"(put doc-5 note {"text":"from alice"})"), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok"); // pulls alice's latest

  auto alice_ls = alice->ls();
  auto bob_ls = bob->ls();
  EXPECT_EQ(alice_ls, bob_ls);
  ASSERT_EQ(alice_ls.size(), 4u);
  auto doc1 = json::parse(alice->cmd("get doc-1"));
  EXPECT_EQ(
    doc1["data"],
    json::parse(R"({"owner":"bob","priority":1,"status":"open","title":"Plan"})"));
  auto doc2 = json::parse(alice->cmd("get doc-2"));
  EXPECT_EQ(doc2["data"], json::parse(R"({"pages":3,"title":"Draft"})"));
  for (auto* cl : {alice.get(), bob.get()}) {
    auto st = cl->status();
    EXPECT_EQ(st["pending"], 0) << cl->name();
    EXPECT_EQ(st["connected"], true) << cl->name();
  }
  EXPECT_EQ(alice->quit(), 0);
  EXPECT_EQ(bob->quit(), 0);
  c.stop_server();
  auto server = server_state(c.server_db());
  EXPECT_EQ(canonical(server), canonical(alice_ls));
  EXPECT_EQ(versions(server), versions(alice_ls));
}

// 2. Five clients, 200 random writes each over 20 shared ids, sent in
//    batches so they interleave on the server; everyone converges.
TEST(sync_e2e, five_clients_random_writes_converge) {
  constexpr int clients = 5;
  constexpr int writes = 200;
  constexpr int batch = 25;
  constexpr int ids = 20;
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  std::vector<std::unique_ptr<sync_client>> cs;
  for (int i = 1; i <= clients; ++i)
    cs.push_back(c.start_client(numbered("c", i)));
  std::mt19937 rng{20240611};
  std::vector<int> oks(clients, 0), refused_locally(clients, 0);
  for (int start = 0; start < writes; start += batch) {
    std::vector<std::vector<std::string>> sent(clients);
    for (int k = 0; k < clients; ++k) {
      for (int w = start; w < start + batch; ++w) {
        auto id = numbered("k", static_cast<int>(rng() % ids));
        auto what = rng() % 10;
        std::string line;
        if (what < 5) {
          line = "put " + id + " item {\"by\":\"c" + std::to_string(k + 1) + "\",\"n\":"
                 + std::to_string(w) + ",\"r\":" + std::to_string(rng() % 1000) + "}";
        } else if (what < 8) {
          auto field = numbered("f", static_cast<int>(rng() % 4));
          auto value = rng() % 5 == 0 ? std::string{"null"} : std::to_string(rng() % 100);
          line = "patch " + id + " {\"" + field + "\":" + value + ",\"last\":\"c"
                 + std::to_string(k + 1) + "\"}";
        } else {
          line = "del " + id;
        }
        sent[k].push_back(line);
        cs[k]->process().send(line);
      }
    }
    for (int k = 0; k < clients; ++k) {
      for (auto& line : sent[k]) {
        std::string result;
        ASSERT_TRUE(cs[k]->process().read_line(result, 20s)) << line;
        if (result == "ok")
          ++oks[k];
        else if (result.find("not_found") != std::string::npos)
          ++refused_locally[k]; // a patch or del of what is gone: fine
        else
          ADD_FAILURE() << line << " -> " << result;
      }
    }
  }
  for (int k = 0; k < clients; ++k)
    EXPECT_GT(oks[k], writes / 2) << "client " << k + 1;
  for (int round = 0; round < 2; ++round)
    for (auto& cl : cs)
      ASSERT_EQ(cl->sync(), "ok") << cl->name() << " round " << round;
  std::vector<std::vector<std::string>> listings;
  std::vector<std::string> client_ids;
  for (auto& cl : cs) {
    listings.push_back(cl->ls());
    client_ids.push_back(cl->status().value("client_id", ""));
  }
  for (int k = 1; k < clients; ++k)
    EXPECT_EQ(listings[k], listings[0]) << "c" << k + 1 << " vs c1";
  for (auto& cl : cs)
    EXPECT_EQ(cl->quit(), 0);
  c.stop_server();
  auto server = server_state(c.server_db());
  EXPECT_GE(server.size(), 5u);
  // Every client's writes reached the server's log (over the same ids).
  for (int k = 0; k < clients; ++k)
    EXPECT_GT(server_log(c.server_db(), client_ids[k]).rows, writes / 4) << "c" << k + 1;
  for (int k = 0; k < clients; ++k) {
    EXPECT_EQ(canonical(listings[k]), canonical(server)) << "c" << k + 1;
    EXPECT_EQ(versions(listings[k]), versions(server)) << "c" << k + 1;
  }
}

// 2b. A state larger than one pull reply (limits.max-pull-bytes) reaches a
//     new client in pages, whole, and so do the changes since a cookie.
TEST(sync_e2e, a_state_larger_than_a_pull_reply_arrives_in_pages) {
  cluster c;
  ASSERT_NE(c.start_server(0, {"--limits.max-pull-bytes=4096"}), 0);
  auto alice = c.start_client("alice");
  std::vector<std::string> lines;
  for (int i = 0; i < 400; ++i)
    lines.push_back("put " + numbered("big", i) + " note {\"text\":\""
                    + std::string(100, 'x') + "\",\"n\":" + std::to_string(i) + "}");
  for (auto& r : alice->batch(lines))
    ASSERT_EQ(r, "ok");
  ASSERT_EQ(alice->sync(), "ok");
  // 400 entities of about 150 bytes: some fifteen pages of 4 KiB.
  auto bob = c.start_client("bob");
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_EQ(bob->ls(), alice->ls());
  // Bob's changes reach alice as a diff in pages; carol pulls from nothing.
  auto carol = c.start_client("carol");
  std::vector<std::string> more;
  for (int i = 0; i < 100; ++i)
    more.push_back("patch " + numbered("big", i * 4) + " {\"n\":-1}");
  for (auto& r : bob->batch(more))
    ASSERT_EQ(r, "ok");
  ASSERT_EQ(bob->sync(), "ok");
  ASSERT_EQ(carol->sync(), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  auto expected = alice->ls();
  EXPECT_EQ(carol->ls(), expected);
  EXPECT_EQ(bob->ls(), expected);
  EXPECT_EQ(expected.size(), 400u);
  EXPECT_FALSE(carol->status().contains("pulling")) << "an answer is still under way";
  for (auto* cl : {alice.get(), bob.get(), carol.get()})
    EXPECT_EQ(cl->quit(), 0);
  c.stop_server();
  EXPECT_EQ(canonical(server_state(c.server_db())), canonical(expected));
}

// 3. Writes made while the server is down are pushed once it is up, each
//    applied exactly once.
TEST(sync_e2e, offline_then_back) {
  constexpr int n = 50;
  cluster c;
  auto port = c.reserve_port();
  ASSERT_NE(port, 0);
  auto alice = c.start_client("alice", {"--timeout=1s"}, port);
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(alice->cmd("put " + numbered("off-", i)
                         + " note {\"i\":" + std::to_string(i) + "}"),
              "ok");
  auto offline = alice->sync();
  EXPECT_TRUE(starts_with(offline, "error: timeout")) << offline;
  auto st = alice->status();
  EXPECT_EQ(st["connected"], false);
  EXPECT_EQ(st["entities"], n);
  EXPECT_EQ(st["pending"], n);
  EXPECT_EQ(st["last_mutation_id"], 0);
  auto client_id = st["client_id"].get<std::string>();

  ASSERT_EQ(c.start_server(port), port);
  EXPECT_EQ(sync_until_ok(*alice, 10), "ok");
  st = alice->status();
  EXPECT_EQ(st["connected"], true);
  EXPECT_EQ(st["last_mutation_id"], n);
  EXPECT_EQ(st["pending"], 0);
  EXPECT_EQ(st["entities"], n);
  auto listing = alice->ls();
  EXPECT_EQ(alice->quit(), 0);
  c.stop_server();

  auto server = server_state(c.server_db());
  ASSERT_EQ(server.size(), static_cast<size_t>(n));
  EXPECT_EQ(canonical(server), canonical(listing));
  std::set<uint64_t> distinct_versions;
  for (auto& e : server)
    distinct_versions.insert(e.version);
  EXPECT_EQ(distinct_versions.size(), static_cast<size_t>(n));
  expect_exactly_once(c.server_db(), client_id, n);
}

// 4. The server is killed (twice) while a client streams writes; after the
//    restarts everything arrived, once.
TEST(sync_e2e, server_kill9_during_pushes) {
  constexpr int total = 2000;
  constexpr int per_batch = 200;
  cluster c;
  auto port = c.start_server();
  ASSERT_NE(port, 0);
  // Small pushes: a kill almost surely lands with one in flight.
  auto alice = c.start_client("alice", {"--sync.max-push-changes=50"});
  int kills = 0;
  for (int start = 0; start < total; start += per_batch) {
    std::vector<std::string> lines;
    for (int i = start; i < start + per_batch; ++i)
      lines.push_back("put " + numbered("s", i) + " note {\"i\":" + std::to_string(i)
                      + ",\"pad\":\"" + std::string(40, 'x') + "\"}");
    for (auto& l : lines)
      alice->process().send(l);
    bool kill_now = start == 600 || start == 1400;
    if (kill_now) {
      std::this_thread::sleep_for(30ms); // pushes of this batch under way
      c.kill_server();
      ++kills;
    }
    for (auto& l : lines) {
      std::string result;
      ASSERT_TRUE(alice->process().read_line(result, 20s)) << l;
      ASSERT_EQ(result, "ok") << l;
    }
    if (kill_now) {
      std::this_thread::sleep_for(100ms);
      ASSERT_EQ(c.start_server(port), port);
    }
    ASSERT_EQ(alice->sync(), "ok") << "after write " << start + per_batch;
  }
  EXPECT_EQ(kills, 2);
  auto st = alice->status();
  auto client_id = st["client_id"].get<std::string>();
  EXPECT_EQ(st["last_mutation_id"], total);
  EXPECT_EQ(st["pending"], 0);
  EXPECT_EQ(st["entities"], total);
  EXPECT_EQ(st["refused"], 0);
  auto listing = alice->ls();
  EXPECT_EQ(alice->quit(), 0);
  c.stop_server();
  auto server = server_state(c.server_db());
  EXPECT_EQ(server.size(), static_cast<size_t>(total));
  EXPECT_EQ(canonical(server), canonical(listing));
  expect_exactly_once(c.server_db(), client_id, total);
}

// 5. A client killed after its changes were flushed locally but before they
//    were pushed pushes them after its restart, once.
TEST(sync_e2e, client_kill9_after_flush_before_push) {
  constexpr int offline_writes = 30;
  constexpr int online_writes = 20;
  cluster c;
  auto port = c.reserve_port();
  ASSERT_NE(port, 0);
  std::string client_id;
  {
    // (a) The server is down: nothing can be pushed.
    auto alice = c.start_client("alice", {"--timeout=1s"}, port);
    for (int i = 0; i < offline_writes; ++i)
      ASSERT_EQ(
        alice->cmd("put " + numbered("a", i) + " note {\"i\":" + std::to_string(i) + "}"),
        "ok");
    // `sync` flushes first; only the push part times out.
    auto r = alice->sync();
    EXPECT_TRUE(starts_with(r, "error: timeout")) << r;
    auto st = alice->status();
    EXPECT_EQ(st["pending"], offline_writes);
    client_id = st["client_id"].get<std::string>();
    alice->kill_hard();
  }
  ASSERT_EQ(c.start_server(port), port);
  {
    // (b) The server is up, but pushes wait 10 s and nothing else (no pull
    //     timer, no other writer's poke) triggers one.
    auto alice = c.start_client("alice",
                                {"--sync.push-debounce=10s", "--sync.pull-interval=1h"});
    // It pushes the outbox of (a) as soon as it is connected.
    json last;
    EXPECT_TRUE(alice->wait_status(
      [&](const json& s) {
        last = s;
        return s["connected"] == true && s["pending"] == 0;
      },
      10s))
      << last.dump();
    for (int i = 0; i < online_writes; ++i)
      ASSERT_EQ(
        alice->cmd("put " + numbered("b", i) + " note {\"i\":" + std::to_string(i) + "}"),
        "ok");
    auto st = alice->status();
    EXPECT_EQ(st["client_id"], client_id);
    EXPECT_EQ(st["pending"], online_writes);
    std::this_thread::sleep_for(500ms); // flush.debounce is 0: flushed by now
    alice->kill_hard();
  }
  auto alice = c.start_client("alice");
  ASSERT_EQ(alice->sync(), "ok");
  auto st = alice->status();
  EXPECT_EQ(st["client_id"], client_id);
  EXPECT_EQ(st["pending"], 0);
  EXPECT_EQ(st["entities"], offline_writes + online_writes);
  EXPECT_EQ(st["last_mutation_id"], offline_writes + online_writes);
  auto listing = alice->ls();
  EXPECT_EQ(alice->quit(), 0);
  c.stop_server();
  auto server = server_state(c.server_db());
  EXPECT_EQ(server.size(), static_cast<size_t>(offline_writes + online_writes));
  EXPECT_EQ(canonical(server), canonical(listing));
  expect_exactly_once(c.server_db(), client_id, offline_writes + online_writes);
}

// 6. The server's database is replaced by an older copy: the clients notice
//    (new epoch), converge with it and with each other, and keep syncing.
TEST(sync_e2e, restored_older_copy) {
  namespace fs = std::filesystem;
  cluster c;
  auto port = c.start_server();
  ASSERT_NE(port, 0);
  // Short sync timeouts: a sync that cannot complete fails fast.
  auto alice = c.start_client("alice", {"--timeout=3s"});
  auto bob = c.start_client("bob", {"--timeout=3s"});
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(
      alice->cmd("put " + numbered("a", i) + " note {\"i\":" + std::to_string(i) + "}"),
      "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  auto first_epoch = alice->status()["epoch"].get<std::string>();
  ASSERT_FALSE(first_epoch.empty());

  c.stop_server();
  auto backup = c.dir().file("backup");
  fs::create_directory(backup);
  for (auto suffix : {"", "-wal", "-shm"})
    if (fs::exists(c.server_db() + suffix))
      fs::copy_file(c.server_db() + suffix, backup + "/server.db" + suffix);
  ASSERT_EQ(c.start_server(port), port);

  // History the restored copy will not have.
  for (int i = 5; i < 8; ++i)
    ASSERT_EQ(
      alice->cmd("put " + numbered("a", i) + " note {\"i\":" + std::to_string(i) + "}"),
      "ok");
  ASSERT_EQ(alice->cmd(R"(patch a0 {"edited":true})"), "ok");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(
      bob->cmd("put " + numbered("b", i) + " note {\"i\":" + std::to_string(i) + "}"),
      "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  EXPECT_EQ(alice->ls().size(), 11u);

  c.stop_server();
  for (auto suffix : {"", "-wal", "-shm"}) {
    fs::remove(c.server_db() + suffix);
    if (fs::exists(backup + "/server.db" + suffix))
      fs::copy_file(backup + "/server.db" + suffix, c.server_db() + suffix);
  }
  ASSERT_EQ(c.start_server(port), port);

  // Both clients come back to the restored history: they are reset to it
  // (the first sync of each pulls), and a second round confirms. (Known bug:
  // `sync` waits for the server to confirm the client's highest mutation id
  // ever assigned, which the restored copy never saw, so it times out until
  // the client writes again although nothing is pending.)
  for (int round = 0; round < 2; ++round) {
    auto results = sync_all({alice.get(), bob.get()});
    EXPECT_EQ(results[0], "ok")
      << "alice, round " << round + 1 << ": " << alice->status().dump();
    EXPECT_EQ(results[1], "ok")
      << "bob, round " << round + 1 << ": " << bob->status().dump();
  }
  auto alice_status = alice->status();
  EXPECT_NE(alice_status["epoch"], first_epoch);
  EXPECT_EQ(bob->status()["epoch"], alice_status["epoch"]);
  auto alice_ls = alice->ls();
  auto bob_ls = bob->ls();
  EXPECT_EQ(alice_ls, bob_ls);
  // ... and keep syncing in it.
  ASSERT_EQ(alice->cmd(R"(put after-restore note {"by":"alice"})"), "ok");
  ASSERT_EQ(bob->cmd(R"(put after-restore-bob note {"by":"bob"})"), "ok");
  EXPECT_EQ(alice->sync(), "ok");
  EXPECT_EQ(bob->sync(), "ok");
  EXPECT_EQ(alice->sync(), "ok");
  alice_ls = alice->ls();
  bob_ls = bob->ls();
  EXPECT_EQ(alice_ls, bob_ls);
  EXPECT_EQ(alice->status()["pending"], 0);
  EXPECT_EQ(bob->status()["pending"], 0);
  EXPECT_EQ(alice->quit(), 0);
  EXPECT_EQ(bob->quit(), 0);
  c.stop_server();
  auto server = server_state(c.server_db());
  EXPECT_EQ(canonical(server), canonical(alice_ls));
  EXPECT_EQ(canonical(server), canonical(bob_ls));
  std::set<std::string> server_ids;
  for (auto& e : server)
    server_ids.insert(e.id);
  EXPECT_TRUE(server_ids.count("after-restore"));
  EXPECT_TRUE(server_ids.count("after-restore-bob"));
  EXPECT_TRUE(server_ids.count("a4"));
}

// 7a. A wrong token is refused; a correct client keeps syncing meanwhile.
TEST(sync_e2e_bad_inputs, wrong_token_is_unauthorized) {
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  auto intruder = c.start_client("carol", {"--server.token=not-a-token"});
  auto alice = c.start_client("alice");
  auto bob = c.start_client("bob");
  json last;
  EXPECT_TRUE(intruder->wait_status(
    [&](const json& s) {
      last = s;
      return s["connected"] == false
             && s.value("last_error", "").find("unauthorized") != std::string::npos;
    },
    5s))
    << last.dump();
  ASSERT_EQ(intruder->cmd(R"(put secret note {"x":1})"), "ok"); // local only
  ASSERT_EQ(alice->cmd(R"(put shared note {"from":"alice"})"), "ok");
  ASSERT_EQ(alice->sync(), "ok");
  ASSERT_EQ(bob->sync(), "ok");
  EXPECT_TRUE(starts_with(bob->cmd("get shared"), "{")) << "bob did not get it";
  EXPECT_EQ(bob->cmd("get secret"), "not found");
  EXPECT_EQ(intruder->status()["connected"], false);
  EXPECT_EQ(intruder->quit(), 0); // flushed locally; it need not be pushed
  c.stop_server();
  auto server = server_state(c.server_db());
  ASSERT_EQ(server.size(), 1u);
  EXPECT_EQ(server[0].id, "shared");
}

// 7b. A valid token used for a client id of another name is refused.
TEST(sync_e2e_bad_inputs, token_of_another_client_is_unauthorized) {
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  // alice's token (from client-alice.ini) with the name bob, and with a name
  // that only starts with alice.
  auto as_bob = std::make_unique<sync_client>(
    "as-bob",
    c.client_args(
      "alice", {"--client.id=bob", "--client.db-path=" + c.dir().file("as-bob.db")}, 0));
  auto as_alice_x = std::make_unique<sync_client>(
    "as-alice-x", c.client_args("alice",
                                {"--client.id=alice-x",
                                 "--client.db-path=" + c.dir().file("as-alice-x.db")},
                                0));
  for (auto* cl : {as_bob.get(), as_alice_x.get()}) {
    json last;
    EXPECT_TRUE(cl->wait_status(
      [&](const json& s) {
        last = s;
        return s["connected"] == false
               && s.value("last_error", "").find("unauthorized") != std::string::npos;
      },
      5s))
      << cl->name() << ": " << last.dump();
  }
  EXPECT_NE(as_bob->status()["last_error"].get<std::string>().find("does not permit"),
            std::string::npos);
  auto bob = c.start_client("bob");
  ASSERT_EQ(bob->cmd(R"(put real-bob note {})"), "ok");
  EXPECT_EQ(bob->sync(), "ok");
}

namespace {

int raw_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void raw_send(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0)
      return; // the server hung up: fine
    done += static_cast<size_t>(n);
  }
}

} // namespace

// 7c. Peers that send garbage or nothing at all do not disturb the server.
TEST(sync_e2e_bad_inputs, garbage_and_silent_peers) {
  cluster c;
  auto port = c.start_server();
  ASSERT_NE(port, 0);
  auto alice = c.start_client("alice");
  auto bob = c.start_client("bob");
  ASSERT_EQ(alice->sync(), "ok");

  int silent = raw_connect(port);
  ASSERT_GE(silent, 0);
  std::mt19937 rng{4242};
  std::string garbage(4096, '\0');
  for (auto& ch : garbage)
    ch = static_cast<char>(rng() & 0xFF);
  int noisy = raw_connect(port);
  ASSERT_GE(noisy, 0);
  raw_send(noisy, garbage);
  // A header that looks like a handshake announcing a 4 GiB payload.
  std::string huge(32, '\0');
  huge[0] = 0x01; // client_handshake
  for (int i = 4; i < 8; ++i)
    huge[i] = static_cast<char>(0xFF);
  int greedy = raw_connect(port);
  ASSERT_GE(greedy, 0);
  raw_send(greedy, huge + garbage);

  // The server's front refuses all three before they cost anything: the
  // honest sync takes milliseconds, as always (it took 17 s when the 4 GiB
  // header was allocated).
  auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(alice->cmd(R"(put after-garbage note {"ok":true})", 2s), "ok");
  ASSERT_EQ(alice->cmd("sync", 2s), "ok");
  ASSERT_EQ(bob->cmd("sync", 2s), "ok");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  auto got = json::parse(bob->cmd("get after-garbage"), nullptr, false);
  ASSERT_FALSE(got.is_discarded());
  EXPECT_EQ(got["data"]["ok"], true);
  // A new client can still connect while the silent peer holds its socket.
  auto carol = c.start_client("carol");
  EXPECT_EQ(carol->sync(), "ok");
  EXPECT_TRUE(starts_with(carol->cmd("get after-garbage"), "{"));
  close(noisy);
  close(greedy);
  close(silent);
  ASSERT_NE(c.server(), nullptr);
  EXPECT_EQ(c.server()->wait(100ms), -1); // still running
  c.stop_server();                        // and stops cleanly
}

// 7d. The client CLI refuses malformed and oversized input with error lines
//     and changes nothing.
TEST(sync_e2e_bad_inputs, cli_rejects_malformed_and_oversized_data) {
  cluster c;
  ASSERT_NE(c.start_server(), 0);
  auto alice = c.start_client("alice");
  auto expect_error = [&](const std::string& command, const std::string& code) {
    auto r = alice->cmd(command);
    EXPECT_TRUE(starts_with(r, "error: ")) << command.substr(0, 80) << " -> " << r;
    EXPECT_NE(r.find(code), std::string::npos) << command.substr(0, 80) << " -> " << r;
  };
  expect_error(R"(put x note {"unterminated":)", "invalid_json");
  expect_error("put x note [1,2,3]", "invalid_json");
  expect_error("put x note 42", "invalid_json");
  expect_error("put x Note! {}", "invalid_type");
  expect_error("put x\tid note {}", "invalid_id");
  expect_error("put " + std::string(300, 'i') + " note {}", "invalid_id");
  expect_error("put big note {\"s\":\"" + std::string((1 << 20) + 10, 'x') + "\"}",
               "too_large");
  expect_error("put deep note " + std::string(70, '[').insert(0, "{\"d\":")
                 + std::string(70, ']') + "}",
               "too_deep");
  ASSERT_EQ(alice->cmd(R"(put x note {"v":1})"), "ok");
  expect_error("patch x [1]", "invalid_json");
  expect_error("patch x {not json}", "invalid_json");
  expect_error(R"(patch nowhere {"v":2})", "not_found");
  EXPECT_TRUE(starts_with(alice->cmd("put"), "error: usage"));
  EXPECT_TRUE(starts_with(alice->cmd("frobnicate"), "error: unknown command"));
  ASSERT_EQ(alice->sync(), "ok");
  auto st = alice->status();
  EXPECT_EQ(st["entities"], 1);
  EXPECT_EQ(st["last_mutation_id"], 1);
  EXPECT_EQ(st["refused"], 0);
  EXPECT_EQ(alice->quit(), 0);
  c.stop_server();
  auto server = server_state(c.server_db());
  ASSERT_EQ(server.size(), 1u);
  EXPECT_EQ(server[0].data, R"({"v":1})");
}

// 7e. A hand-made CAF client talks to the gateway and its session directly:
//     the server side checks hold without the well-behaved client.
namespace {

client_listener_actor::behavior_type quiet_listener() {
  return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
}

struct caf_peer_config : caf::actor_system_config {
  caf_peer_config() {
    register_message_types(*this);
    load<caf::io::middleman>();
    set("logger.console", caf::atom("none"));
    set("middleman.heartbeat-interval", caf::timespan{200ms});
  }
};

change make_change(uint64_t mid, change_kind kind, std::string id, std::string data) {
  change out;
  out.mutation_id = mid;
  out.kind = kind;
  out.id = std::move(id);
  out.type = "note";
  out.data = std::move(data);
  return out;
}

/// A CAF node in the test process that speaks the protocol by hand.
class caf_peer {
public:
  explicit caf_peer(uint16_t port) : sys_(cfg_) {
    listener_ = sys_.spawn(quiet_listener);
    auto gw = sys_.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
    if (gw)
      gateway_ = *gw;
    else
      ADD_FAILURE() << "remote_actor: " << sys_.render(gw.error());
    self_.emplace(sys_);
  }
  ~caf_peer() {
    self_.reset();
    session_ = nullptr;
    gateway_ = nullptr;
    caf::anon_send_exit(listener_, caf::exit_reason::user_shutdown);
  }

  bool has_gateway() const { return static_cast<bool>(gateway_); }
  session_actor& session() { return session_; }
  const hello_reply& welcome() const { return welcome_; }
  caf::scoped_actor& self() { return *self_; }

  /// On success the session is kept.
  sync_error hello(hello_request req) {
    sync_error err;
    (*self_)
      ->request(gateway_, caf::timespan{5s}, hello_atom::value, std::move(req), listener_)
      .receive(
        [&](hello_reply& r, session_actor& s) {
          welcome_ = std::move(r);
          session_ = std::move(s);
        },
        [&](caf::error& e) { err = to_sync_error(e); });
    return err;
  }

  sync_error push(push_request req, push_reply& reply) {
    sync_error err;
    (*self_)
      ->request(session_, caf::timespan{5s}, push_atom::value, std::move(req))
      .receive([&](push_reply& r) { reply = std::move(r); },
               [&](caf::error& e) { err = to_sync_error(e); });
    return err;
  }

  /// Also records who sent the reply.
  sync_error pull(pull_request req, pull_reply& reply,
                  caf::strong_actor_ptr* sender = nullptr) {
    sync_error err;
    (*self_)
      ->request(session_, caf::timespan{5s}, pull_atom::value, std::move(req))
      .receive(
        [&](pull_reply& r) {
          reply = std::move(r);
          if (sender)
            *sender = (*self_)->current_sender();
        },
        [&](caf::error& e) { err = to_sync_error(e); });
    return err;
  }

private:
  caf_peer_config cfg_;
  caf::actor_system sys_;
  client_listener_actor listener_;
  gateway_actor gateway_;
  session_actor session_;
  hello_reply welcome_;
  std::optional<caf::scoped_actor> self_;
};

const std::string peer_id = "alice-00112233aabbccdd";
const std::string other_id = "bob-00112233aabbccdd";

} // namespace

TEST(sync_e2e_bad_inputs, handmade_caf_client_is_checked_by_the_server) {
  cluster c;
  auto port = c.start_server();
  ASSERT_NE(port, 0);
  {
    caf_peer peer{port};
    ASSERT_TRUE(peer.has_gateway());
    // Wrong protocol version, unknown token, token of another client.
    auto err = peer.hello({999, peer_id, "alice-token-9f2c", 0});
    EXPECT_EQ(err.code, sync_errc::protocol_mismatch) << err.describe();
    err = peer.hello({protocol_version, peer_id, "nope", 0});
    EXPECT_EQ(err.code, sync_errc::unauthorized) << err.describe();
    auto unknown = err.message;
    err = peer.hello({protocol_version, peer_id, "bob-token-41d7", 0});
    EXPECT_EQ(err.code, sync_errc::unauthorized) << err.describe();
    // The same answer: a guesser learns neither that a token exists nor whose.
    EXPECT_EQ(err.message, unknown);
    EXPECT_EQ(err.message.find("bob"), std::string::npos) << err.message;
    EXPECT_FALSE(peer.session());
    err = peer.hello({protocol_version, peer_id, "alice-token-9f2c", 0});
    ASSERT_TRUE(err.ok()) << err.describe();
    ASSERT_TRUE(peer.session());
    auto epoch = peer.welcome().epoch;
    ASSERT_FALSE(epoch.empty());
    push_reply r;
    // A gap: the server knows no mutation of ours, we start at 5.
    err = peer.push({peer_id, epoch, {make_change(5, change_kind::put, "g", "{}")}}, r);
    EXPECT_EQ(err.code, sync_errc::mutation_gap) << err.describe();
    // Ids must increase within a push.
    err = peer.push({peer_id,
                     epoch,
                     {make_change(2, change_kind::put, "g", "{}"),
                      make_change(1, change_kind::put, "h", "{}")}},
                    r);
    EXPECT_EQ(err.code, sync_errc::invalid_request) << err.describe();
    // Data that is not JSON is refused, its id used up.
    err = peer.push({peer_id,
                     epoch,
                     {make_change(1, change_kind::put, "bad", "this is not json"),
                      make_change(2, change_kind::put, "good", R"({"ok":1})")}},
                    r);
    ASSERT_TRUE(err.ok()) << err.describe();
    EXPECT_EQ(r.last_mutation_id, 2u);
    ASSERT_EQ(r.refused.size(), 1u);
    EXPECT_EQ(r.refused[0].mutation_id, 1u);
    EXPECT_EQ(r.refused[0].reason.code, sync_errc::invalid_json)
      << r.refused[0].reason.describe();
    // Too many changes in one push (server limit: 1000).
    std::vector<change> many;
    for (int i = 3; i < 3 + 1001; ++i)
      many.push_back(
        make_change(static_cast<uint64_t>(i), change_kind::put, numbered("m", i), "{}"));
    err = peer.push({peer_id, epoch, std::move(many)}, r);
    EXPECT_EQ(err.code, sync_errc::too_large) << err.describe();
    // Another client's id through our session.
    err = peer.push({other_id, epoch, {make_change(1, change_kind::put, "x", "{}")}}, r);
    EXPECT_EQ(err.code, sync_errc::unauthorized) << err.describe();
    pull_reply pulled;
    err = peer.pull({other_id, cookie{}}, pulled);
    EXPECT_EQ(err.code, sync_errc::unauthorized) << err.describe();
    // Still usable afterwards: a valid push and a pull.
    r = {};
    err = peer.push({peer_id, epoch, {make_change(3, change_kind::put, "fine", "{}")}},
                    r);
    EXPECT_TRUE(err.ok()) << err.describe();
    EXPECT_EQ(r.last_mutation_id, 3u);
    EXPECT_TRUE(r.refused.empty());
    err = peer.pull({peer_id, cookie{}}, pulled);
    EXPECT_TRUE(err.ok()) << err.describe();
    EXPECT_EQ(pulled.last_mutation_id, 3u);
    EXPECT_EQ(pulled.entities.size(), 2u); // good, fine
  }
  // A regular client is unaffected and sees what the peer wrote.
  auto bob = c.start_client("bob");
  EXPECT_EQ(bob->sync(), "ok");
  EXPECT_TRUE(starts_with(bob->cmd("get good"), "{"));
  EXPECT_EQ(bob->cmd("get bad"), "not found");
  EXPECT_EQ(bob->quit(), 0);
  c.stop_server();
}

// 7f. The session is the only server actor a client may ever hold (see
//     actors/gateway.hpp): replies must come from it, never from the
//     replication log, which trusts whatever it is sent.
TEST(sync_e2e_bad_inputs, replies_never_expose_the_replication_log) {
  cluster c;
  auto port = c.start_server();
  ASSERT_NE(port, 0);
  {
    caf_peer peer{port};
    ASSERT_TRUE(peer.has_gateway());
    auto err = peer.hello({protocol_version, peer_id, "alice-token-9f2c", 0});
    ASSERT_TRUE(err.ok()) << err.describe();
    pull_reply pulled;
    caf::strong_actor_ptr sender;
    err = peer.pull({peer_id, cookie{}}, pulled, &sender);
    ASSERT_TRUE(err.ok()) << err.describe();
    ASSERT_TRUE(sender);
    auto session = caf::actor_cast<caf::strong_actor_ptr>(peer.session());
    EXPECT_TRUE(sender == session)
      << "the pull reply came from " << caf::to_string(sender)
      << ", not from the session " << caf::to_string(session);
    if (sender != session) {
      // What a client can do with that handle: write as another client,
      // with data no session would let through.
      log_push forged;
      forged.request = {
        other_id,
        "",
        {make_change(1, change_kind::put, "forged", "definitely not json")}};
      bool accepted = false;
      peer.self()
        ->request(caf::actor_cast<replication_log_actor>(sender), caf::timespan{5s},
                  push_atom::value, forged)
        .receive([&](push_reply&) { accepted = true; }, [&](caf::error&) {});
      EXPECT_FALSE(accepted) << "alice's connection wrote as " << other_id
                             << " through the leaked replication log handle";
    }
  }
  // Whatever the server holds, a client that pulls it must survive.
  auto bob = c.start_client("bob");
  EXPECT_EQ(bob->sync(), "ok");
  auto got = bob->cmd("get forged", 5s);
  EXPECT_TRUE(got == "not found" || starts_with(got, "{"))
    << "bob answered '" << got << "' (exit code " << bob->process().wait(1s) << ")";
  bob->kill_hard();
  c.stop_server();
  std::set<std::string> ids;
  for (auto& e : server_state(c.server_db()))
    ids.insert(e.id);
  EXPECT_FALSE(ids.count("forged")) << "the forged change is in the server's state";
}

// 8. SIGTERM stops the server: "stopped", then exit code 0, also after
//    clients pushed and pulled.
TEST(sync_e2e, server_exits_after_sigterm) {
  cluster c;
  auto port = c.start_server();
  ASSERT_NE(port, 0);
  constexpr int rounds = 20;
  int clean = 0;
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) {
      ASSERT_EQ(c.start_server(port), port);
    }
    auto alice = c.start_client("alice");
    ASSERT_EQ(alice->cmd("put " + numbered("r", round) + " note {}"), "ok");
    ASSERT_EQ(alice->sync(), "ok"); // a push and pulls
    EXPECT_EQ(alice->quit(), 0);
    if (!c.stop_server(true)) {
      ADD_FAILURE() << "hung in round " << round + 1 << " of " << rounds;
      break;
    }
    ++clean;
  }
  EXPECT_EQ(clean, rounds);
}
