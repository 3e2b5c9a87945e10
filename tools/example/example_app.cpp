// An application on the public interface: opens a client node from a config
// file, writes, reads, lists, subscribes and waits until its write is
// durable, printing what it saw. Exits 0 if everything held, 1 if something
// did not, 2 for a bad command line or config.
//   memsync_example CONFIG [--section.key=value ...]
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node/client/memsync.hpp"

namespace {

using namespace std::chrono_literals;

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "ok    " : "FAILED") << "  " << what << '\n';
  if (!ok)
    ++failures;
}

/// Collects the ids of change events; they arrive on the memory store's
/// thread, so the application hands them over under a lock.
struct event_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> ids;

  void add(const std::vector<memsync::change_event>& batch) {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& ev : batch)
      ids.push_back(ev.id);
    cv.notify_all();
  }

  /// The event is delivered right after the write, in microseconds; the
  /// limit only tells a stall from a slow machine.
  bool wait_for(const std::string& id) {
    std::unique_lock<std::mutex> lock{mtx};
    return cv.wait_for(lock, 5s, [&] {
      for (auto& seen : ids)
        if (seen == id)
          return true;
      return false;
    });
  }
};

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: memsync_example CONFIG [--section.key=value ...]\n";
    return 2;
  }
  std::unique_ptr<memsync::client> client;
  try {
    client = memsync::client::open(argv[1], {argv + 2, argv + argc});
  } catch (const memsync::config_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 2;
  } catch (const memsync::local_db_error& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
  auto& store = client->store();
  std::cout << "client " << client->client_id() << ", " << store.size()
            << " entities loaded\n";

  event_log events;
  auto sub = store.subscribe("comment", [&](const auto& batch) { events.add(batch); });

  auto err = store.put("comment-123", "comment", {{"message", "Fixed"}, {"line", 42}});
  expect(err.ok(), "put comment-123" + (err.ok() ? "" : ": " + err.describe()));

  // Read your writes: the value is visible as soon as put returned.
  auto c = store.get("comment-123");
  auto data = c ? nlohmann::json::parse(c->data) : nlohmann::json{};
  expect(c && c->type == "comment"
           && data == nlohmann::json{{"message", "Fixed"}, {"line", 42}},
         "get comment-123: " + (c ? c->data : std::string{"not found"}));

  bool listed = false;
  auto comments = store.by_type("comment");
  for (auto& e : comments)
    listed = listed || e->id == "comment-123";
  expect(listed, "by_type comment: " + std::to_string(comments.size()) + " entities");

  expect(events.wait_for("comment-123"), "subscription saw the change of comment-123");

  expect(client->flushed(5s), "flushed: the write is durable in the local database");

  auto st = client->status();
  expect(st.entities == store.size() && st.client_id == client->client_id(),
         "status: " + std::to_string(st.entities) + " entities, "
           + std::to_string(st.pending) + " pending, "
           + (st.has_server ? (st.connected ? "connected" : "not connected")
                            : "offline"));

  sub.cancel();
  std::cout << (failures == 0 ? "all held\n" : std::to_string(failures) + " failed\n");
  return failures == 0 ? 0 : 1;
}
