// The front's I/O: one thread, epoll, non-blocking POSIX sockets, a pair of
// sockets per client (client side, middleman side) with a bounded queue each
// way. The frame rules are in frame_guard_rules.cpp.
// Per message the thread makes the fewest system calls it can (epoll_wait,
// one read, one send), and bytes are copied only when the socket does not
// take them at once: frames that arrive whole are checked where they were
// read and sent from there, several in one send.
#include "node/server/frame_guard.hpp"

#include "actors/common/tls.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace memsync {

namespace {

constexpr uint64_t listen_tag = ~uint64_t{0};
constexpr uint64_t wake_tag = ~uint64_t{0} - 1;
// Stop reading a client while this much waits for the middleman: the kernel
// then holds the rest and the client is slowed, not buffered without end.
constexpr std::size_t upstream_high_water = 1 << 20;
// One read takes a large push whole (fewer reads, fewer wake-ups).
constexpr std::size_t read_chunk = 256 << 10;

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string address_of(const sockaddr_storage& sa, bool with_port) {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (sa.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    port = ntohs(in->sin_port);
  } else if (sa.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<const sockaddr_in6*>(&sa);
    inet_ntop(AF_INET6, &in->sin6_addr, buf, sizeof(buf));
    port = ntohs(in->sin6_port);
  }
  return with_port ? std::string{buf} + ":" + std::to_string(port) : std::string{buf};
}

// A byte queue written from the front and drained from the back.
struct out_queue {
  std::string data;
  std::size_t offset = 0;

  std::size_t pending() const { return data.size() - offset; }
  // Sends `bytes` after what is queued: at once from where they are if
  // nothing is queued, and queues what the socket does not take. False on a
  // broken connection.
  bool write(int fd, std::string_view bytes) {
    if (pending() == 0)
      clear();
    if (pending() == 0 && fd >= 0) {
      auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          return false;
        n = 0;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    data.append(bytes.data(), bytes.size());
    return true;
  }
  // Writes what the socket takes; false on a broken connection.
  bool flush(int fd) {
    while (pending() > 0) {
      auto n = ::send(fd, data.data() + offset, pending(), MSG_NOSIGNAL);
      if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      offset += static_cast<std::size_t>(n);
    }
    clear();
    return true;
  }
  void clear() {
    // A large burst's buffer is not kept for the rest of the connection.
    if (data.capacity() > (4 << 20))
      std::string{}.swap(data);
    data.clear();
    offset = 0;
  }
};

} // namespace

struct frame_guard::impl {
  struct connection {
    uint64_t id = 0;
    int client = -1;
    int upstream = -1;
    std::string address; ///< the peer's IP, for the per-address cap
    std::string peer;    ///< ip:port, for messages
    frame_reader reader;
    client_frame_filter filter;
    out_queue to_upstream;
    out_queue to_client;
    std::unique_ptr<tls_filter> tls; ///< null: plain TCP
    bool upstream_ready = false;     ///< the connect completed
    bool claimed = false;            ///< holds its node's entry in grants_
    uint32_t client_mask = 0;
    uint32_t upstream_mask = 0;

    explicit connection(std::size_t max_frame) : reader(max_frame), filter({}) {}
  };

  // What the gateway told us about a node's connection.
  struct grant {
    uint64_t connection = 0;
    bool hello_done = false;
    std::unordered_set<uint64_t> sessions;
  };

  guard_limits limits;
  uint16_t upstream_port = 0;
  std::string server_node;
  std::shared_ptr<tls_context> tls; // null: plain TCP
  uint16_t port = 0;
  int listener = -1;
  int epoll = -1;
  int wake = -1;
  std::atomic<uint64_t> gateway{0};
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::unique_ptr<char[]> read_buf{new char[read_chunk]}; // the I/O thread's

  std::mutex grants_mutex; // grants is shared with the gateway's thread
  std::unordered_map<std::string, grant> grants;

  // The rest is the I/O thread's alone.
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::unique_ptr<connection>> connections;
  std::unordered_map<std::string, std::size_t> per_address;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> deadlines;
  std::optional<std::chrono::steady_clock::time_point> accept_paused_until;
  // Notes about refused peers, at most a few per second: an attack must not
  // fill the log (or a pipe nobody reads).
  std::chrono::steady_clock::time_point note_window{};
  int notes_in_window = 0;
  int notes_suppressed = 0;

  impl(guard_limits lim, std::string node, std::shared_ptr<tls_context> ctx)
      : limits(lim), server_node(std::move(node)), tls(std::move(ctx)) {}

  ~impl() {
    for (int fd : {listener, epoll, wake})
      if (fd >= 0)
        close(fd);
  }

  void note(const std::string& peer, const char* what) {
    auto now = std::chrono::steady_clock::now();
    if (now - note_window > std::chrono::seconds(1)) {
      if (notes_suppressed > 0)
        fprintf(stderr, "guard: %d more connections closed\n", notes_suppressed);
      note_window = now;
      notes_in_window = 0;
      notes_suppressed = 0;
    }
    if (++notes_in_window > 5) {
      ++notes_suppressed;
      return;
    }
    fprintf(stderr, "guard: closed %s: %s\n", peer.c_str(), what);
  }

  void listen_on(const std::string& host, uint16_t want) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    auto service = std::to_string(want);
    if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                             &hints, &found);
        rc != 0)
      throw std::runtime_error("cannot listen on " + host + ":" + service + ": "
                               + gai_strerror(rc));
    std::string why = "no address";
    for (auto* ai = found; ai != nullptr && listener < 0; ai = ai->ai_next) {
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol);
      if (fd < 0)
        continue;
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
        listener = fd;
      } else {
        why = strerror(errno);
        close(fd);
      }
    }
    freeaddrinfo(found);
    if (listener < 0)
      throw std::runtime_error("cannot listen on " + host + ":" + service + ": " + why);
    sockaddr_storage sa{};
    socklen_t len = sizeof(sa);
    getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len);
    port = sa.ss_family == AF_INET6
             ? ntohs(reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port)
             : ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
  }

  void start() {
    epoll = epoll_create1(EPOLL_CLOEXEC);
    wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll < 0 || wake < 0)
      throw std::runtime_error(std::string{"guard: "} + strerror(errno));
    add(listener, EPOLLIN, listen_tag);
    add(wake, EPOLLIN, wake_tag);
    thread = std::thread([this] { run(); });
  }

  void add(int fd, uint32_t mask, uint64_t tag) {
    epoll_event ev{};
    ev.events = mask;
    ev.data.u64 = tag;
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
  }

  void set_mask(int fd, uint32_t& current, uint32_t want, uint64_t tag) {
    if (current == want)
      return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = tag;
    epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &ev);
    current = want;
  }

  void update(connection& c) {
    uint32_t cm = (c.to_upstream.pending() < upstream_high_water ? EPOLLIN : 0u)
                  | (c.to_client.pending() > 0 ? EPOLLOUT : 0u);
    uint32_t um = EPOLLIN
                  | (!c.upstream_ready || c.to_upstream.pending() > 0 ? EPOLLOUT : 0u);
    set_mask(c.client, c.client_mask, cm, c.id << 1);
    set_mask(c.upstream, c.upstream_mask, um, (c.id << 1) | 1);
  }

  void run() {
    epoll_event events[64];
    while (!stopping.load()) {
      int n = epoll_wait(epoll, events, 64, next_timeout_ms());
      for (int i = 0; i < n; ++i) {
        auto tag = events[i].data.u64;
        if (tag == listen_tag) {
          accept_all();
        } else if (tag != wake_tag) {
          auto it = connections.find(tag >> 1);
          if (it == connections.end())
            continue; // closed earlier in this batch
          if (tag & 1)
            on_upstream(*it->second, events[i].events);
          else
            on_client(*it->second, events[i].events);
        }
      }
      expire_handshakes();
      resume_accepting();
    }
    while (!connections.empty())
      drop(*connections.begin()->second, nullptr);
  }

  void resume_accepting() {
    if (accept_paused_until && *accept_paused_until <= std::chrono::steady_clock::now()) {
      accept_paused_until.reset();
      add(listener, EPOLLIN, listen_tag);
    }
  }

  int next_timeout_ms() {
    std::optional<std::chrono::steady_clock::time_point> next = accept_paused_until;
    if (!deadlines.empty() && (!next || deadlines.front().first < *next))
      next = deadlines.front().first;
    if (!next)
      return -1;
    auto left = *next - std::chrono::steady_clock::now();
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 60000));
  }

  void accept_all() {
    for (;;) {
      sockaddr_storage sa{};
      socklen_t len = sizeof(sa);
      int fd = accept4(listener, reinterpret_cast<sockaddr*>(&sa), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          // Out of descriptors: the listener would stay readable and spin
          // this thread; the backlog waits a moment instead.
          note("listener", "cannot accept (out of file descriptors?)");
          epoll_ctl(epoll, EPOLL_CTL_DEL, listener, nullptr);
          accept_paused_until = std::chrono::steady_clock::now()
                                + std::chrono::milliseconds(100);
        }
        return;
      }
      auto address = address_of(sa, false);
      auto peer = address_of(sa, true);
      if (connections.size() >= limits.max_connections) {
        note(peer, "server.max-connections reached");
        close(fd);
        continue;
      }
      if (per_address[address] >= limits.max_connections_per_address) {
        note(peer, "server.max-connections-per-address reached");
        close(fd);
        continue;
      }
      int up = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(upstream_port);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (up < 0
          || (connect(up, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0
              && errno != EINPROGRESS)) {
        note(peer, "cannot reach the middleman");
        if (up >= 0)
          close(up);
        close(fd);
        continue;
      }
      set_nodelay(fd);
      set_nodelay(up);
      auto id = next_id++;
      auto holder = std::make_unique<connection>(limits.max_frame_bytes);
      auto& c = *holder;
      c.filter = client_frame_filter{
        client_frame_filter::environment{server_node, [this] { return gateway.load(); },
                                         [this, &c](uint64_t actor) {
                                           return has_session(c, actor);
                                         }}};
      if (tls)
        c.tls = std::make_unique<tls_filter>(tls);
      c.id = id;
      c.client = fd;
      c.upstream = up;
      c.address = address;
      c.peer = peer;
      ++per_address[address];
      connections.emplace(id, std::move(holder));
      deadlines.emplace_back(std::chrono::steady_clock::now() + limits.handshake_timeout,
                             id);
      c.client_mask = EPOLLIN;
      c.upstream_mask = EPOLLIN | EPOLLOUT;
      add(fd, c.client_mask, id << 1);
      add(up, c.upstream_mask, (id << 1) | 1);
    }
  }

  bool has_session(const connection& c, uint64_t actor) {
    if (!c.claimed)
      return false;
    std::lock_guard<std::mutex> guard{grants_mutex};
    auto it = grants.find(c.filter.node());
    return it != grants.end() && it->second.connection == c.id
           && it->second.sessions.count(actor) > 0;
  }

  bool hello_done(const connection& c) {
    if (!c.claimed)
      return false;
    std::lock_guard<std::mutex> guard{grants_mutex};
    auto it = grants.find(c.filter.node());
    return it != grants.end() && it->second.connection == c.id && it->second.hello_done;
  }

  bool claim(connection& c) {
    std::lock_guard<std::mutex> guard{grants_mutex};
    c.claimed = grants.try_emplace(c.filter.node(), grant{c.id, false, {}}).second;
    return c.claimed;
  }

  void expire_handshakes() {
    auto now = std::chrono::steady_clock::now();
    while (!deadlines.empty() && deadlines.front().first <= now) {
      auto id = deadlines.front().second;
      deadlines.pop_front();
      auto it = connections.find(id);
      if (it != connections.end() && !hello_done(*it->second))
        drop(*it->second, "no handshake and hello within server.handshake-timeout");
    }
  }

  // Closes both sides; `why` null: no note (shutdown, or the peer left).
  void drop(connection& c, const char* why) {
    if (why != nullptr)
      note(c.peer, why);
    if (c.claimed) {
      std::lock_guard<std::mutex> guard{grants_mutex};
      auto it = grants.find(c.filter.node());
      if (it != grants.end() && it->second.connection == c.id)
        grants.erase(it);
    }
    close(c.client); // also removes them from the epoll set
    close(c.upstream);
    if (auto it = per_address.find(c.address);
        it != per_address.end() && --it->second == 0)
      per_address.erase(it);
    connections.erase(c.id); // destroys c
  }

  void on_client(connection& c, uint32_t events) {
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      char* buf = read_buf.get();
      while (c.to_upstream.pending() < upstream_high_water) {
        auto n = ::read(c.client, buf, read_chunk);
        if (n == 0)
          return drop(c, nullptr);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            break;
          return drop(c, nullptr);
        }
        std::string_view bytes{buf, static_cast<std::size_t>(n)};
        std::string plain;
        if (c.tls) {
          // TLS first: the rules see only what the client really sent.
          c.tls->from_network(bytes);
          if (!c.to_client.write(c.client, c.tls->to_network()))
            return drop(c, nullptr);
          if (c.tls->failed())
            return drop(c, "a failed TLS handshake or record");
          plain = c.tls->to_app();
          bytes = plain;
        }
        if (!process(c, bytes.data(), bytes.size()))
          return; // dropped
        // A short read drained the socket: skip the read that would only
        // say EAGAIN (epoll reports the next bytes).
        if (static_cast<std::size_t>(n) < read_chunk)
          break;
      }
      if (c.upstream_ready && !c.to_upstream.flush(c.upstream))
        return drop(c, nullptr);
    }
    if ((events & EPOLLOUT) && !c.to_client.flush(c.client))
      return drop(c, nullptr);
    update(c);
  }

  // Feeds bytes from the client through the reader and the filter, and
  // sends what passes (upstream, once connected); false when the connection
  // was dropped.
  bool process(connection& c, const char* data, std::size_t size) {
    const char* pos = data;
    const char* end = data + size;
    // Forwarded frames that lie back to back in `data`: sent as one.
    std::string_view run;
    auto send_run = [&] {
      bool ok = c.to_upstream.write(c.upstream_ready ? c.upstream : -1, run);
      run = {};
      if (!ok)
        drop(c, nullptr);
      return ok;
    };
    while (pos < end) {
      auto st = c.reader.next(pos, end);
      if (st == frame_reader::status::more)
        break;
      if (st == frame_reader::status::refused) {
        drop(c, "a frame above server.max-frame-bytes");
        return false;
      }
      // Nothing of this frame is sent before it was checked whole.
      auto& hdr = c.reader.header();
      auto d = c.filter.check(hdr, c.reader.payload());
      if (d.what == client_frame_filter::verdict::close) {
        drop(c, d.reason);
        return false;
      }
      if (d.what == client_frame_filter::verdict::drop)
        continue;
      if (hdr.operation == basp_header::client_handshake && !c.claimed && !claim(c)) {
        // Another connection speaks for this node; the middleman must not
        // hear of this one (it would route the node's traffic here).
        c.filter.make_redundant();
        continue;
      }
      auto frame = c.reader.frame();
      if (c.reader.in_place() && !run.empty()
          && run.data() + run.size() == frame.data()) {
        run = {run.data(), run.size() + frame.size()};
        continue;
      }
      if (!run.empty() && !send_run())
        return false;
      if (c.reader.in_place()) {
        run = frame;
      } else if (!c.to_upstream.write(c.upstream_ready ? c.upstream : -1, frame)) {
        drop(c, nullptr);
        return false;
      }
    }
    return run.empty() || send_run();
  }

  void on_upstream(connection& c, uint32_t events) {
    if (!c.upstream_ready && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0)
        return drop(c, "cannot reach the middleman");
      c.upstream_ready = true;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      char* buf = read_buf.get();
      for (;;) {
        auto n = ::read(c.upstream, buf, read_chunk);
        if (n == 0)
          return drop(c, nullptr); // the middleman closed it
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            break;
          return drop(c, nullptr);
        }
        bool sent;
        if (c.tls) {
          c.tls->from_app({buf, static_cast<std::size_t>(n)});
          sent = c.to_client.write(c.client, c.tls->to_network());
        } else {
          sent = c.to_client.write(c.client, {buf, static_cast<std::size_t>(n)});
        }
        if (!sent)
          return drop(c, nullptr);
        if (c.to_client.pending() > limits.max_queued_bytes) {
          // Reset, not close: a close would leave the kernel holding the
          // unsent bytes for as long as the peer keeps its window shut.
          linger abort{1, 0};
          setsockopt(c.client, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
          return drop(c, "the client does not read (server.max-queued-bytes)");
        }
        if (static_cast<std::size_t>(n) < read_chunk)
          break; // drained, as above
      }
    }
    if (c.upstream_ready && !c.to_upstream.flush(c.upstream))
      return drop(c, nullptr);
    update(c);
  }
};

frame_guard::frame_guard(guard_limits limits, const std::string& host, uint16_t port,
                         std::string server_node, std::shared_ptr<tls_context> tls)
    : impl_(std::make_unique<impl>(limits, std::move(server_node), std::move(tls))) {
  impl_->listen_on(host, port);
}

void frame_guard::start(uint16_t upstream_port) {
  impl_->upstream_port = upstream_port;
  impl_->start();
}

frame_guard::~frame_guard() {
  stop();
}

uint16_t frame_guard::port() const {
  return impl_->port;
}

void frame_guard::set_gateway(uint64_t actor_id) {
  impl_->gateway.store(actor_id);
}

void frame_guard::bind_session(const std::string& node, uint64_t actor_id) {
  std::lock_guard<std::mutex> guard{impl_->grants_mutex};
  auto it = impl_->grants.find(node);
  if (it == impl_->grants.end())
    return;
  it->second.hello_done = true;
  it->second.sessions.insert(actor_id);
}

void frame_guard::unbind_session(const std::string& node, uint64_t actor_id) {
  std::lock_guard<std::mutex> guard{impl_->grants_mutex};
  if (auto it = impl_->grants.find(node); it != impl_->grants.end())
    it->second.sessions.erase(actor_id);
}

void frame_guard::stop() {
  if (impl_->thread.joinable()) {
    impl_->stopping.store(true);
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(impl_->wake, &one, sizeof(one));
    impl_->thread.join();
  }
  if (impl_->listener >= 0) {
    close(impl_->listener); // the port is free again
    impl_->listener = -1;
  }
}

} // namespace memsync
