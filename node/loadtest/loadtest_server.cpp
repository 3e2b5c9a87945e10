#include "node/loadtest/loadtest_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace memsync::loadtest {

namespace {

using clock_type = std::chrono::steady_clock;

/// The last lines of the child's log, for an error message.
std::string tail_of(const std::string& path) {
  std::ifstream in{path};
  std::stringstream all;
  all << in.rdbuf();
  auto text = all.str();
  if (text.size() > 2000)
    text = "..." + text.substr(text.size() - 2000);
  return text;
}

} // namespace

std::size_t peak_rss_of(pid_t pid) {
  std::ifstream in{pid == 0 ? std::string{"/proc/self/status"}
                            : "/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return static_cast<std::size_t>(std::stoull(line.substr(6))) * 1024; // kB
  return 0;
}

child_server::child_server(std::string program, std::string config_path,
                           std::string log_path)
    : program_(std::move(program)), config_path_(std::move(config_path)),
      log_path_(std::move(log_path)) {}

child_server::~child_server() {
  kill_hard();
}

std::chrono::nanoseconds child_server::start(std::chrono::nanoseconds timeout) {
  if (running())
    throw std::logic_error("the server child is already running");
  std::vector<std::string> argv{program_, "server", "--config", config_path_};
  if (port_ != 0)
    argv.push_back("--server.port=" + std::to_string(port_));
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || null < 0)
    throw std::runtime_error("cannot open " + log_path_);
  auto started = clock_type::now();
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {                    // only async-signal-safe calls until exec
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the load test
    dup2(null, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(log);
  close(null);
  out_ = out[0];
  signal(SIGPIPE, SIG_IGN); // a dead child must not end the load test
  // "server ID listening on HOST:PORT"
  std::string buffer;
  auto deadline = started + timeout;
  for (;;) {
    if (auto eol = buffer.find('\n'); eol != std::string::npos) {
      auto line = buffer.substr(0, eol);
      buffer.erase(0, eol + 1);
      auto at = line.find(" listening on ");
      auto colon = line.rfind(':');
      if (at != std::string::npos && colon != std::string::npos && colon > at) {
        port_ = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
        return clock_type::now() - started;
      }
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    pollfd pfd{out_, POLLIN, 0};
    char chunk[512];
    ssize_t n = 0;
    if (left.count() > 0 && poll(&pfd, 1, static_cast<int>(left.count())) > 0)
      n = read(out_, chunk, sizeof(chunk));
    if (n <= 0) {
      kill_hard();
      throw std::runtime_error(program_ + " server --config " + config_path_
                               + " did not start listening (its log, " + log_path_
                               + "):\n" + tail_of(log_path_));
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

void child_server::read_peak() {
  if (running())
    peak_rss_ = std::max(peak_rss_, peak_rss_of(pid_));
}

std::size_t child_server::peak_rss_bytes() {
  read_peak();
  return peak_rss_;
}

void child_server::kill_hard() {
  if (!running())
    return;
  read_peak();
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  close(out_);
  out_ = -1;
}

} // namespace memsync::loadtest
