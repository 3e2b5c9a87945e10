// A real server attacked over loopback by peers written here, BASP frames by
// hand on raw sockets (and, for hellos, a CAF node of our own, directly or
// through a relay that stops reading what the server sends), while an
// honest client (alice, a real `syncnode client`) keeps writing and syncing.
// During and after each attack her put + sync must succeed within 2 s (a
// normal one takes milliseconds), the server's RSS must stay under
// rss_bound_kb, and the server must keep running.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/registry.hpp"
#include "messages/remote.hpp"
#include "tests/support/e2e_helpers.hpp"

using namespace memsync;
using namespace memsync::testing;
using namespace std::chrono_literals;

namespace {

constexpr auto honest_budget = 2s;
// The server idles at 20-30 MB; one 4 GiB allocation, or sessions without
// end, would blow far past this.
constexpr long rss_bound_kb = 150 * 1024;

long rss_kb(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "VmRSS:" && in >> value)
      return value;
    in.ignore(1 << 10, '\n');
  }
  return -1;
}

// -- BASP by hand (0.17: a 32-byte header, network byte order) ---------------

enum op : uint8_t {
  client_handshake = 1,
  direct_message = 2,
  routed_message = 3,
  monitor_message = 4,
  down_message = 5,
};

void put_be(std::string& out, uint64_t x, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
}

uint64_t get_be(const std::string& in, size_t pos, int bytes) {
  uint64_t x = 0;
  for (int i = 0; i < bytes; ++i)
    x = (x << 8) | static_cast<uint8_t>(in[pos + i]);
  return x;
}

std::string frame(uint8_t operation, const std::string& payload, uint64_t dest = 0,
                  uint64_t source = 0, uint64_t payload_len = UINT64_MAX) {
  std::string out;
  out.push_back(static_cast<char>(operation));
  out.append(3, '\0'); // padding, flags
  put_be(out, payload_len == UINT64_MAX ? payload.size() : payload_len, 4);
  put_be(out, 0, 8); // operation data
  put_be(out, source, 8);
  put_be(out, dest, 8);
  return out + payload;
}

std::string huge_header(uint8_t operation) {
  return frame(operation, "", 0, 0, 0xFFFFFFFF);
}

// A node id as CAF serializes it: "default", process id, host hash.
std::string node_bytes(uint8_t seed) {
  std::string out;
  put_be(out, static_cast<uint64_t>(caf::atom("default")), 8);
  put_be(out, 40000 + seed, 4);
  out.append(20, static_cast<char>(0xA0 + seed));
  return out;
}

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  register_message_types(cfg);
  cfg.load<caf::io::middleman>();
  cfg.set("logger.console", caf::atom("none"));
  return cfg;
}

// Genuine payloads, serialized by CAF itself: what it would act on.
struct payloads {
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};

  template <class... Ts>
  std::string serialize(Ts&&... xs) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    if (auto err = sink(xs...))
      ADD_FAILURE() << sys.render(err);
    return {buf.begin(), buf.end()};
  }
  /// A direct message's payload: no forwarding stack, then the message.
  std::string message(caf::message msg) {
    std::vector<caf::strong_actor_ptr> stack;
    return serialize(stack, msg);
  }
  std::string exit_kill() {
    return message(
      caf::make_message(caf::exit_msg{caf::actor_addr{}, caf::exit_reason::kill}));
  }
  std::string down() {
    return message(
      caf::make_message(caf::down_msg{caf::actor_addr{}, caf::exit_reason::kill}));
  }
  std::string error_kill() {
    caf::error err = caf::exit_reason::kill;
    return serialize(err);
  }
};

/// One raw TCP connection to the server.
class raw_peer {
public:
  explicit raw_peer(uint16_t port, const char* source = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source, &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0
        || connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      ADD_FAILURE() << "cannot connect from " << source << ": " << strerror(errno);
      close(fd_);
      fd_ = -1;
    }
  }
  ~raw_peer() {
    if (fd_ >= 0)
      close(fd_);
  }

  void send(const std::string& bytes) {
    size_t done = 0;
    while (fd_ >= 0 && done < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0)
        return; // the server hung up: the test looks at that separately
      done += static_cast<size_t>(n);
    }
  }

  /// Reads the server handshake; false if the connection ended first (the
  /// guard refused it) or none came within `timeout`.
  bool read_server_handshake(std::chrono::milliseconds timeout = 2s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (in_.size() < 32 || in_.size() < 32 + get_be(in_, 4, 4)) {
      if (!read_some(deadline))
        return false;
    }
    auto payload = in_.substr(32, get_be(in_, 4, 4));
    server_node_ = payload.substr(0, 32);
    size_t pos = 32;
    auto varlen = [&] {
      uint64_t x = 0;
      for (int shift = 0;; shift += 7) {
        auto b = static_cast<uint8_t>(payload[pos++]);
        x |= uint64_t{b & 0x7Fu} << shift;
        if (!(b & 0x80))
          return x;
      }
    };
    for (auto ids = varlen(); ids > 0; --ids) // application identifiers
      pos += varlen();
    gateway_ = get_be(payload, pos, 8);
    return true;
  }

  /// Handshakes as node `seed`; false if refused.
  bool handshake(uint8_t seed) {
    if (!read_server_handshake())
      return false;
    send(frame(client_handshake, node_bytes(seed)));
    return true;
  }

  /// True once the server closed the connection (within `timeout`).
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (read_some(deadline)) {
      // drain whatever the server still sent
    }
    return eof_;
  }

  uint64_t gateway() const { return gateway_; }
  const std::string& server_node() const { return server_node_; }

private:
  // False on EOF, error or deadline.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    if (fd_ < 0 || eof_)
      return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return false;
    char buf[4096];
    auto n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
  std::string server_node_;
  uint64_t gateway_ = 0;
};

/// A TCP relay on 127.0.0.1 between a CAF node of ours and the server: it
/// passes bytes both ways until stall(), then stops reading what the server
/// sends (so the server sees a client that does not read) while still
/// passing what the client sends. It notes when the server cuts it off.
class stalling_relay {
public:
  explicit stalling_relay(uint16_t server_port) : server_port_(server_port) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &at.sin_addr);
    socklen_t len = sizeof(at);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0
        || listen(listener_, 1) != 0
        || getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &len) != 0)
      ADD_FAILURE() << "relay: " << strerror(errno);
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~stalling_relay() {
    done_ = true;
    thread_.join();
    for (int fd : {listener_, client_, server_})
      if (fd >= 0)
        close(fd);
  }

  uint16_t port() const { return port_; }
  void stall() { stalled_ = true; }
  /// The server reset or closed the connection.
  bool cut_off() const { return cut_off_; }

private:
  void run() {
    pollfd l{listener_, POLLIN, 0};
    while (!done_ && poll(&l, 1, 10) == 0) {
    }
    if (done_)
      return;
    client_ = accept(listener_, nullptr, nullptr);
    server_ = socket(AF_INET, SOCK_STREAM, 0);
    // A small window: the kernel holds less of what we do not read.
    int small = 16 << 10;
    setsockopt(server_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server_port_);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (client_ < 0
        || connect(server_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      cut_off_ = true;
      return;
    }
    char buf[16 << 10];
    while (!done_ && !cut_off_) {
      pollfd p[2] = {{client_, POLLIN, 0},
                     {server_, static_cast<short>(stalled_ ? 0 : POLLIN), 0}};
      if (poll(p, 2, 10) < 0)
        break;
      if (p[1].revents & (POLLERR | POLLHUP)) {
        cut_off_ = true;
        break;
      }
      if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !pass(client_, server_, buf))
        break;
      if (!stalled_ && (p[1].revents & POLLIN) && !pass(server_, client_, buf))
        break;
    }
    // The CAF node hears of it as a lost connection.
    shutdown(client_, SHUT_RDWR);
  }

  bool pass(int from, int to, char (&buf)[16 << 10]) {
    auto n = recv(from, buf, sizeof(buf), 0);
    if (n <= 0) {
      cut_off_ = cut_off_ || from == server_;
      return false;
    }
    for (ssize_t done = 0; done < n;) {
      auto w = ::send(to, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
      if (w <= 0) {
        cut_off_ = cut_off_ || to == server_;
        return false;
      }
      done += w;
    }
    return true;
  }

  uint16_t server_port_;
  uint16_t port_ = 0;
  int listener_ = -1;
  int client_ = -1;
  int server_ = -1;
  std::atomic<bool> done_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<bool> cut_off_{false};
  std::thread thread_;
};

struct hostile_peer : ::testing::Test {
  cluster c;
  uint16_t port = 0;
  std::unique_ptr<sync_client> alice;
  int round = 0;

  void start(std::vector<std::string> extra = {}) {
    port = c.start_server(0, std::move(extra));
    ASSERT_NE(port, 0);
    alice = c.start_client("alice");
    ASSERT_EQ(alice->sync(), "ok");
  }

  /// The honest client's put + sync, in time, on a server that is small and
  /// alive.
  void expect_alice_syncs(const std::string& when) {
    auto start = std::chrono::steady_clock::now();
    auto id = "honest-" + std::to_string(++round);
    EXPECT_EQ(alice->cmd("put " + id + R"( note {"ok":true})", honest_budget), "ok")
      << when;
    EXPECT_EQ(alice->cmd("sync", honest_budget), "ok") << when;
    EXPECT_LT(std::chrono::steady_clock::now() - start, honest_budget) << when;
    ASSERT_NE(c.server(), nullptr);
    auto rss = rss_kb(c.server()->pid());
    EXPECT_GT(rss, 0) << when << ": the server is gone";
    EXPECT_LT(rss, rss_bound_kb) << when;
  }
};

} // namespace

TEST_F(hostile_peer, headers_announcing_4_gib_are_refused_before_any_allocation) {
  start();
  raw_peer first{port};
  first.send(huge_header(client_handshake));
  expect_alice_syncs("one 4 GiB header");
  EXPECT_TRUE(first.closed_within(honest_budget));
  // Three at once, the first frame of each or after a handshake.
  raw_peer a{port}, b{port}, d{port};
  a.send(huge_header(client_handshake));
  b.send(huge_header(direct_message));
  ASSERT_TRUE(d.handshake(1));
  d.send(huge_header(direct_message));
  expect_alice_syncs("three 4 GiB headers");
  EXPECT_TRUE(a.closed_within(honest_budget));
  EXPECT_TRUE(b.closed_within(honest_budget));
  EXPECT_TRUE(d.closed_within(honest_budget));
  expect_alice_syncs("after the 4 GiB headers");
}

TEST_F(hostile_peer, silent_connections_are_closed_after_the_handshake_timeout) {
  start({"--server.handshake-timeout=500ms"});
  auto opened = std::chrono::steady_clock::now();
  raw_peer silent{port};
  raw_peer no_hello{port}; // handshakes, then never says hello
  ASSERT_TRUE(no_hello.handshake(2));
  expect_alice_syncs("while two peers hold connections without a hello");
  EXPECT_TRUE(silent.closed_within(3s));
  EXPECT_TRUE(no_hello.closed_within(3s));
  // Closed by the timeout, not at once.
  EXPECT_GE(std::chrono::steady_clock::now() - opened, 450ms);
  // Alice's own connection said hello long ago: it stays.
  expect_alice_syncs("after the timeout");
  EXPECT_EQ(alice->status().value("connected", false), true);
}

TEST_F(hostile_peer, connections_are_capped_in_all_and_per_address) {
  // Alice holds one connection from 127.0.0.1.
  start({"--server.max-connections=6", "--server.max-connections-per-address=4",
         "--server.handshake-timeout=60s"});
  std::vector<std::unique_ptr<raw_peer>> local;
  for (int i = 0; i < 3; ++i) {
    local.push_back(std::make_unique<raw_peer>(port));
    EXPECT_TRUE(local.back()->read_server_handshake()) << "local peer " << i;
  }
  raw_peer one_too_many{port};
  EXPECT_FALSE(one_too_many.read_server_handshake());
  EXPECT_TRUE(one_too_many.closed_within(honest_budget));
  expect_alice_syncs("at the per-address cap");
  // Another source address has its own allowance, but not beyond the total.
  raw_peer other1{port, "127.0.0.2"}, other2{port, "127.0.0.2"};
  EXPECT_TRUE(other1.read_server_handshake());
  EXPECT_TRUE(other2.read_server_handshake());
  raw_peer over_total{port, "127.0.0.3"};
  EXPECT_FALSE(over_total.read_server_handshake());
  EXPECT_TRUE(over_total.closed_within(honest_budget));
  expect_alice_syncs("at the total cap");
  // A freed slot is usable again (once the close has reached the server).
  local.pop_back();
  bool again = false;
  for (auto deadline = std::chrono::steady_clock::now() + honest_budget;
       !again && std::chrono::steady_clock::now() < deadline;) {
    again = raw_peer{port}.read_server_handshake();
    if (!again)
      std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(again);
}

TEST_F(hostile_peer, exit_down_monitor_and_routed_frames_close_the_connection) {
  start();
  payloads make;
  raw_peer probe{port};
  ASSERT_TRUE(probe.handshake(3));
  auto gateway = probe.gateway();
  auto server = probe.server_node();
  auto forged = node_bytes(99); // a node that is not the sender
  struct attack {
    const char* name;
    std::string bytes;
  };
  std::vector<attack> attacks{
    {"exit(kill) to the gateway", frame(direct_message, make.exit_kill(), gateway)},
    {"down_msg to the gateway", frame(direct_message, make.down(), gateway)},
    {"a down frame naming another node",
     frame(down_message, forged + server + make.error_kill(), 0, 42)},
    {"a monitor frame naming another node",
     frame(monitor_message, forged + server, gateway)},
    {"a routed frame",
     frame(routed_message,
           forged + server + make.message(caf::make_message(caf::atom("ping"))),
           gateway)},
  };
  // Exits to the ids after the gateway's (sessions of other clients).
  for (uint64_t id = gateway + 1; id < gateway + 6; ++id)
    attacks.push_back(
      {"exit(kill) to a following id", frame(direct_message, make.exit_kill(), id)});
  uint8_t seed = 10;
  for (auto& a : attacks) {
    raw_peer peer{port};
    ASSERT_TRUE(peer.handshake(seed++)) << a.name;
    peer.send(a.bytes);
    EXPECT_TRUE(peer.closed_within(honest_budget)) << a.name;
    expect_alice_syncs(a.name);
  }
  // Nothing reached the gateway: a new connection is told the same one.
  raw_peer after{port};
  ASSERT_TRUE(after.read_server_handshake());
  EXPECT_EQ(after.gateway(), gateway);
  // Repeated monitors of the gateway are dropped, not added up.
  std::string flood;
  for (int i = 0; i < 20000; ++i)
    flood += frame(monitor_message, node_bytes(3) + server, gateway);
  probe.send(flood);
  expect_alice_syncs("after 20,000 monitor frames");
  EXPECT_FALSE(probe.closed_within(100ms));
}

TEST_F(hostile_peer,
       a_message_to_an_actor_that_is_not_the_clients_closes_the_connection) {
  start();
  payloads make;
  // Alice's session has one of the ids after the gateway's.
  raw_peer probe{port};
  ASSERT_TRUE(probe.read_server_handshake());
  for (uint64_t id = probe.gateway() + 1; id < probe.gateway() + 6; ++id) {
    raw_peer peer{port};
    ASSERT_TRUE(peer.handshake(static_cast<uint8_t>(id)));
    peer.send(frame(
      direct_message,
      make.message(caf::make_message(pull_atom::value, pull_request{"alice", {}})), id));
    EXPECT_TRUE(peer.closed_within(honest_budget)) << "id " << id;
    expect_alice_syncs("a pull sent to actor " + std::to_string(id));
  }
}

TEST_F(hostile_peer, hellos_beyond_max_sessions_are_refused) {
  start({"--limits.max-sessions=3"});
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", port);
  ASSERT_TRUE(gw) << sys.render(gw.error());
  auto listener = sys.spawn([]() -> client_listener_actor::behavior_type {
    return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
  });
  hello_request req{protocol_version, "mallory-0123456789abcdef",
                    cluster::token_of("mallory"), 0};
  auto hello = [&](client_listener_actor l) {
    caf::error err;
    self->request(*gw, honest_budget, hello_atom::value, req, l)
      .receive([](hello_reply&, session_actor&) {}, [&](caf::error& e) { err = e; });
    return err;
  };
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(hello(listener)) << "hello " << i;
  for (int i = 0; i < 500; ++i) {
    auto err = hello(listener);
    ASSERT_TRUE(err) << "hello " << i + 3 << " was accepted";
    auto e = to_sync_error(err);
    EXPECT_EQ(e.code, sync_errc::unavailable);
    EXPECT_NE(e.message.find("limits.max-sessions"), std::string::npos) << e.message;
  }
  expect_alice_syncs("after 500 refused hellos");
  // Once mallory's sessions end (her listener goes down), she gets in again.
  caf::anon_send_exit(listener, caf::exit_reason::kill);
  auto fresh = sys.spawn([]() -> client_listener_actor::behavior_type {
    return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
  });
  bool in = false;
  auto deadline = std::chrono::steady_clock::now() + honest_budget;
  while (!in && std::chrono::steady_clock::now() < deadline) {
    in = !hello(fresh);
    if (!in)
      std::this_thread::sleep_for(20ms); // the down message is on its way
  }
  EXPECT_TRUE(in);
  caf::anon_send_exit(fresh, caf::exit_reason::user_shutdown);
}

TEST_F(hostile_peer, a_client_that_does_not_read_is_cut_off_at_max_queued_bytes) {
  // The front's queue must hold one page of a pull (and one entity) and a
  // MiB more; small pages keep it small.
  start({"--limits.max-data-bytes=65536", "--limits.max-pull-bytes=65536",
         "--server.max-queued-bytes=" + std::to_string((1 << 20) + (128 << 10))});
  // 1 MiB of state, so every pull with an empty cookie is a full page.
  std::vector<std::string> puts;
  for (int i = 0; i < 32; ++i)
    puts.push_back("put big-" + std::to_string(i) + R"( note {"x":")"
                   + std::string(32 << 10, 'x') + "\"}");
  for (auto& r : alice->batch(puts))
    ASSERT_EQ(r, "ok");
  ASSERT_EQ(alice->sync(), "ok");
  // Mallory, a genuine client with a token of her own, says hello through
  // the relay, then stops reading and keeps asking for pulls. A pull while
  // another is in flight is refused with a small error: a reply all the same.
  stalling_relay relay{port};
  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scoped_actor self{sys};
  auto listener = sys.spawn([]() -> client_listener_actor::behavior_type {
    return {[](poke_atom, const poke&) {}, [](pulled_atom, const pushed_answer&) {}};
  });
  auto gw = sys.middleman().remote_actor<gateway_actor>("127.0.0.1", relay.port());
  ASSERT_TRUE(gw) << sys.render(gw.error());
  const std::string mallory = "mallory-0123456789abcdef";
  session_actor session;
  self
    ->request(*gw, honest_budget, hello_atom::value,
              hello_request{protocol_version, mallory, cluster::token_of("mallory"), 0},
              listener)
    .receive([&](hello_reply&, session_actor& s) { session = std::move(s); },
             [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_TRUE(session);
  relay.stall();
  std::atomic<int> pulls{0};
  std::thread flood([&] {
    // Only detects a stall: the cut comes after a few MiB of replies.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!relay.cut_off() && std::chrono::steady_clock::now() < deadline) {
      self->send(session, pull_atom::value, pull_request{mallory, {}});
      ++pulls;
      std::this_thread::sleep_for(2ms);
    }
  });
  expect_alice_syncs("while a client does not read its pull replies");
  flood.join();
  EXPECT_TRUE(relay.cut_off()) << "still connected after " << pulls << " pulls";
  // The note names the limit.
  std::string line;
  bool noted = false;
  while (!noted && c.server()->read_line(line, 500ms))
    noted = line.find("server.max-queued-bytes") != std::string::npos;
  EXPECT_TRUE(noted);
  expect_alice_syncs("after the client that did not read was cut off");
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}
