// A child process with pipes to its stdin and stdout, for end-to-end tests
// that drive real `syncnode` processes line by line and kill them.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace memsync::testing {

class child_process {
public:
  /// Starts `argv[0]` with the given arguments; stderr goes to stdout.
  explicit child_process(std::vector<std::string> argv);
  ~child_process(); ///< kills the child if it still runs

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Writes one line (a newline is added).
  void send(const std::string& line);
  /// Closes the child's stdin (end of input).
  void close_stdin();
  /// Reads one line; empty optional-like: returns false on EOF or timeout.
  bool read_line(std::string& line,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Sends a command and returns the next line of output ("" on timeout).
  std::string ask(const std::string& command);

  /// SIGKILL and reap.
  void kill_hard();
  /// Waits for exit; returns the exit code, or -1 on timeout or signal.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  int pid() const { return pid_; }

private:
  int pid_ = -1;
  int in_ = -1;  ///< the child's stdin
  int out_ = -1; ///< the child's stdout
  std::string buffer_;
  bool reaped_ = false;
};

} // namespace memsync::testing
