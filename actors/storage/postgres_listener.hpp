// Hears the commits that other server nodes make on a shared PostgreSQL
// database. The postgres_backend sends NOTIFY (channel: the schema's name,
// payload: the new head version, then the scopes the commit touched) in
// every write transaction; this class LISTENs on its own connection, on its
// own thread, and reports each head version with those scopes, so the node
// can poke the clients of those scopes. Losing the connection is normal: it
// reconnects with backoff and then reports the current head with its scopes
// unknown, because notifications sent meanwhile are lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct pg_conn;

namespace memsync {

class postgres_listener {
public:
  /// Called on the listener's thread, with versions in commit order, and
  /// the scopes the commit reaching that head touched (nullopt: not known,
  /// as after a reconnect or from a node that does not say: any scope).
  using on_head = std::function<void(
    uint64_t head_version, const std::optional<std::vector<std::string>>& scopes)>;

  /// A notification's payload: "HEAD[ SCOPE...]". False if it names no head.
  static bool parse_payload(std::string_view payload, uint64_t& head,
                            std::optional<std::vector<std::string>>& scopes);

  /// Starts listening at once; never throws for an unreachable server
  /// (it keeps trying). `retry_max` caps the wait between attempts.
  postgres_listener(std::string conninfo, std::string schema, on_head callback,
                    std::chrono::milliseconds retry_max = std::chrono::seconds(2));
  /// Stops the thread and closes the connection.
  ~postgres_listener();

  postgres_listener(const postgres_listener&) = delete;
  postgres_listener& operator=(const postgres_listener&) = delete;

  /// Whether LISTEN is in effect now (for status and tests).
  bool listening() const { return listening_; }
  /// Connections made so far (the first one included).
  int connects() const { return connects_; }

private:
  enum class woke { stopped, readable, timeout };

  void run();
  pg_conn* connect();
  /// Waits until `fd` (if >= 0) is readable, stop is asked or `timeout` passes.
  woke wait(int fd, std::chrono::milliseconds timeout);

  std::string conninfo_;
  std::string schema_;
  on_head callback_;
  std::chrono::milliseconds retry_max_;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<bool> listening_{false};
  std::atomic<int> connects_{0};
  std::thread thread_;
};

} // namespace memsync
