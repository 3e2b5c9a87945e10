#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace memsync::testing {

child_process::child_process(std::vector<std::string> argv) {
  int to_child[2];
  int from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0)
    throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    dup2(from_child[1], STDERR_FILENO);
    close(to_child[1]);
    close(from_child[0]);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  in_ = to_child[1];
  out_ = from_child[0];
  signal(SIGPIPE, SIG_IGN); // a dead child must not kill the test
}

child_process::~child_process() {
  if (!reaped_)
    kill_hard();
  if (in_ >= 0)
    close(in_);
  close(out_);
}

void child_process::send(const std::string& line) {
  auto text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    auto n = write(in_, text.data() + done, text.size() - done);
    if (n <= 0)
      return; // the child is gone; reads will tell
    done += static_cast<size_t>(n);
  }
}

void child_process::close_stdin() {
  if (in_ >= 0)
    close(in_);
  in_ = -1;
}

bool child_process::read_line(std::string& line, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto pos = buffer_.find('\n'); pos != std::string::npos) {
      line = buffer_.substr(0, pos);
      buffer_.erase(0, pos + 1);
      return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd pfd{out_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
      return false;
    char buf[4096];
    auto n = read(out_, buf, sizeof(buf));
    if (n <= 0)
      return false;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::string child_process::ask(const std::string& command) {
  send(command);
  std::string line;
  return read_line(line) ? line : std::string{};
}

void child_process::kill_hard() {
  if (reaped_)
    return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  reaped_ = true;
}

int child_process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    auto rc = waitpid(pid_, &status, WNOHANG);
    if (rc == pid_) {
      reaped_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

} // namespace memsync::testing
