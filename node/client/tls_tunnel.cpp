#include "node/client/tls_tunnel.hpp"

#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <stdexcept>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace memsync {

namespace {

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/// Starts a non-blocking connect to host:port; -1 if the name does not resolve.
int start_connect(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return -1;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    set_nonblocking(fd);
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

/// Writes as much of `buf` as the socket takes now; false on a dead socket.
bool flush_to(int fd, std::string& buf) {
  while (!buf.empty()) {
    auto n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK;
    buf.erase(0, static_cast<size_t>(n));
  }
  return true;
}

/// Reads what the socket has; false on EOF or error.
bool read_from(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    auto n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    return false;
  }
}

} // namespace

struct tls_tunnel::impl {
  struct link {
    int local = -1;
    int remote = -1;
    bool connected = false;
    tls_filter tls;
    std::string to_local;
    std::string to_remote;
    link(int l, int r, std::shared_ptr<tls_context> ctx, const std::string& host)
        : local(l), remote(r), tls(std::move(ctx), host) {}
  };

  std::string host;
  uint16_t port = 0;
  std::string verify_host;
  std::shared_ptr<tls_context> ctx;
  int listener = -1;
  int wake[2] = {-1, -1};
  std::atomic<bool> stop{false};
  mutable std::mutex error_mtx;
  std::string last_error;
  std::list<link> links;

  void fail(const std::string& why) {
    std::lock_guard<std::mutex> guard{error_mtx};
    last_error = why;
  }
};

tls_tunnel::tls_tunnel(std::string host, uint16_t port, std::string verify_host,
                       std::shared_ptr<tls_context> ctx)
    : impl_(std::make_unique<impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->verify_host = std::move(verify_host);
  impl_->ctx = std::move(ctx);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || listen(fd, 16) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0
      || pipe2(impl_->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    if (fd >= 0)
      close(fd);
    throw std::runtime_error(std::string{"TLS tunnel: no local port: "}
                             + std::strerror(errno));
  }
  set_nonblocking(fd);
  impl_->listener = fd;
  local_port_ = ntohs(addr.sin_port);
  thread_ = std::thread{[this] {
    run();
  }};
}

tls_tunnel::~tls_tunnel() {
  impl_->stop = true;
  [[maybe_unused]] auto n = write(impl_->wake[1], "x", 1);
  thread_.join();
  for (auto& l : impl_->links) {
    close(l.local);
    close(l.remote);
  }
  close(impl_->listener);
  close(impl_->wake[0]);
  close(impl_->wake[1]);
}

std::string tls_tunnel::last_error() const {
  std::lock_guard<std::mutex> guard{impl_->error_mtx};
  return impl_->last_error;
}

void tls_tunnel::run() {
  auto& s = *impl_;
  std::vector<pollfd> fds;
  while (!s.stop) {
    fds.clear();
    fds.push_back({s.wake[0], POLLIN, 0});
    fds.push_back({s.listener, POLLIN, 0});
    for (auto& l : s.links) {
      short remote_ev = POLLIN;
      if (!l.connected || !l.to_remote.empty())
        remote_ev |= POLLOUT;
      fds.push_back(
        {l.local, static_cast<short>(POLLIN | (l.to_local.empty() ? 0 : POLLOUT)), 0});
      fds.push_back({l.remote, remote_ev, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
      break;
    if (fds[1].revents & POLLIN) {
      int local;
      while ((local = accept4(s.listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
        set_nonblocking(local);
        int remote = start_connect(s.host, s.port);
        if (remote < 0) {
          s.fail("cannot resolve or reach " + s.host);
          close(local);
          continue;
        }
        s.links.emplace_back(local, remote, s.ctx, s.verify_host);
      }
    }
    size_t i = 2;
    for (auto it = s.links.begin(); it != s.links.end();) {
      auto& l = *it;
      // Links accepted in this round have no poll entry yet.
      if (i >= fds.size()) {
        ++it;
        continue;
      }
      auto local_ev = fds[i].revents;
      auto remote_ev = fds[i + 1].revents;
      i += 2;
      bool alive = true;
      if (!l.connected && (remote_ev & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(l.remote, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          s.fail("cannot connect to " + s.host + ": " + std::strerror(err));
          alive = false;
        } else {
          l.connected = true;
        }
      }
      std::string plain;
      if (alive && (local_ev & (POLLIN | POLLHUP | POLLERR)))
        alive = read_from(l.local, plain);
      if (!plain.empty())
        l.tls.from_app(plain);
      std::string cipher;
      if (alive && l.connected && (remote_ev & (POLLIN | POLLHUP | POLLERR)))
        alive = read_from(l.remote, cipher);
      if (!cipher.empty())
        l.tls.from_network(cipher);
      l.to_remote += l.tls.to_network();
      l.to_local += l.tls.to_app();
      if (l.tls.failed()) {
        s.fail(l.tls.error());
        alive = false;
      }
      if (alive && l.connected)
        alive = flush_to(l.remote, l.to_remote);
      if (alive)
        alive = flush_to(l.local, l.to_local);
      if (!alive) {
        close(l.local);
        close(l.remote);
        it = s.links.erase(it);
      } else {
        ++it;
      }
    }
    char drain[64];
    while (read(s.wake[0], drain, sizeof(drain)) > 0) {
    }
  }
}

} // namespace memsync
