// A `syncnode server` the load test runs as a child process (`[server]
// mode = "child"`), so that it can kill it with SIGKILL and start it again
// on the same port and database: a real crash and restart, with nothing
// shared between the server and the simulated clients but the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>

namespace memsync::loadtest {

class child_server {
public:
  /// `program` is the syncnode binary; `config_path` a server config it
  /// reads (`--server.port` is added on restarts); the child's standard
  /// error goes to `log_path`. Starts nothing yet.
  child_server(std::string program, std::string config_path, std::string log_path);
  ~child_server(); ///< kills the child if it still runs

  child_server(const child_server&) = delete;
  child_server& operator=(const child_server&) = delete;

  /// Starts the server and waits until it listens (its "listening on" line).
  /// The first start takes the port of the config (0: any free one); every
  /// later start the port the first one got. Returns the time until it
  /// listened. Throws std::runtime_error (with the end of its log) if it
  /// exits or does not listen within `timeout`.
  std::chrono::nanoseconds start(std::chrono::nanoseconds timeout);

  /// SIGKILL and reap: a crash, nothing is flushed or closed cleanly.
  void kill_hard();

  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  /// The highest peak resident memory (VmHWM) of any run so far, in bytes;
  /// the running child is read now.
  std::size_t peak_rss_bytes();

private:
  void read_peak();

  std::string program_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  int out_ = -1; ///< the child's standard output
  uint16_t port_ = 0;
  std::size_t peak_rss_ = 0;
};

/// Peak resident memory (VmHWM) of process `pid` (0: this one) in bytes; 0
/// if it cannot be read.
std::size_t peak_rss_of(pid_t pid);

} // namespace memsync::loadtest
