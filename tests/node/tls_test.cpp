// TLS between client and server: the certificate must come from the
// configured CA and name the host the client connects to; client
// certificates are optional unless the server asks for them; the client's
// tunnel carries bytes both ways and reports why a connection failed.
#include "actors/common/tls.hpp"
#include "node/client/client_config.hpp"
#include "node/client/tls_tunnel.hpp"
#include "node/server/server_config.hpp"

#include <atomic>
#include <cstdlib>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

using namespace memsync;
using memsync::testing::temp_dir;

namespace {

void make_certs(const temp_dir& dir) {
  auto cmd = std::string{MEMSYNC_SOURCE_DIR "/tools/make_certs.sh "} + dir.path()
             + " localhost 127.0.0.1 >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

/// Moves bytes between two filters until neither has anything to send.
void pump(tls_filter& client, tls_filter& server) {
  for (int i = 0; i < 20; ++i) {
    auto c = client.to_network();
    auto s = server.to_network();
    if (c.empty() && s.empty())
      return;
    server.from_network(c);
    client.from_network(s);
  }
}

struct tls_test : ::testing::Test {
  // Key generation takes a while: one set of certificates for the suite.
  static void SetUpTestSuite() {
    dirs = new temp_dir[2];
    make_certs(dirs[0]);
    make_certs(dirs[1]);
  }
  static void TearDownTestSuite() { delete[] dirs; }
  std::shared_ptr<tls_context> server_ctx(const std::string& client_ca = "") {
    return tls_context::server(dir.file("server.pem"), dir.file("server.key"), client_ca);
  }
  static temp_dir* dirs;
  const temp_dir& dir = dirs[0];
  const temp_dir& other = dirs[1]; // another CA, another server certificate
};

temp_dir* tls_test::dirs = nullptr;

} // namespace

TEST_F(tls_test, a_client_trusting_the_ca_talks_to_the_named_server) {
  tls_filter server{server_ctx()};
  tls_filter client{tls_context::client(dir.file("ca.pem")), "localhost"};
  client.from_app("hello");
  pump(client, server);
  ASSERT_TRUE(client.established()) << client.error();
  ASSERT_TRUE(server.established()) << server.error();
  EXPECT_EQ(server.to_app(), "hello");
  server.from_app(std::string(100000, 'x')); // more than one TLS record
  pump(client, server);
  EXPECT_EQ(client.to_app(), std::string(100000, 'x'));
  EXPECT_FALSE(client.failed());
}

TEST_F(tls_test, an_ip_address_in_the_certificate_is_checked_too) {
  tls_filter server{server_ctx()};
  tls_filter client{tls_context::client(dir.file("ca.pem")), "127.0.0.1"};
  pump(client, server);
  EXPECT_TRUE(client.established()) << client.error();
}

TEST_F(tls_test, a_certificate_for_another_host_name_is_refused) {
  tls_filter server{server_ctx()};
  tls_filter client{tls_context::client(dir.file("ca.pem")), "sync.example.org"};
  client.from_app("secret");
  pump(client, server);
  EXPECT_FALSE(client.established());
  ASSERT_TRUE(client.failed());
  EXPECT_NE(client.error().find("certificate verification failed"), std::string::npos)
    << client.error();
  EXPECT_NE(client.error().find("hostname mismatch"), std::string::npos)
    << client.error();
  EXPECT_EQ(server.to_app(), "");
}

TEST_F(tls_test, a_certificate_from_another_ca_is_refused) {
  tls_filter server{server_ctx()};
  tls_filter client{tls_context::client(other.file("ca.pem")), "localhost"};
  pump(client, server);
  ASSERT_TRUE(client.failed());
  EXPECT_NE(client.error().find("certificate verification failed"), std::string::npos)
    << client.error();
}

TEST_F(tls_test, client_certificates_are_needed_only_when_the_server_asks) {
  {
    tls_filter server{server_ctx(dir.file("ca.pem"))};
    tls_filter client{tls_context::client(dir.file("ca.pem")), "localhost"};
    client.from_app("x");
    pump(client, server);
    EXPECT_TRUE(server.failed());
    EXPECT_EQ(server.to_app(), "");
  }
  tls_filter server{server_ctx(dir.file("ca.pem"))};
  tls_filter client{tls_context::client(dir.file("ca.pem"), dir.file("client.pem"),
                                        dir.file("client.key")),
                    "localhost"};
  client.from_app("x");
  pump(client, server);
  EXPECT_TRUE(server.established()) << server.error();
  EXPECT_EQ(server.to_app(), "x");
}

TEST_F(tls_test, unusable_files_are_errors_naming_them) {
  try {
    tls_context::server(dir.file("missing.pem"), dir.file("server.key"));
    FAIL() << "no error";
  } catch (const tls_error& e) {
    EXPECT_NE(std::string{e.what()}.find("missing.pem: cannot use certificate"),
              std::string::npos)
      << e.what();
  }
  try {
    tls_context::server(dir.file("server.pem"), other.file("server.key"));
    FAIL() << "no error";
  } catch (const tls_error& e) {
    EXPECT_NE(std::string{e.what()}.find(other.file("server.key")), std::string::npos)
      << e.what();
    EXPECT_NE(std::string{e.what()}.find("mismatch"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tls_context::client(""), tls_error);
}

namespace {

/// A TLS echo server on 127.0.0.1 for one connection at a time, on a thread.
class echo_server {
public:
  explicit echo_server(std::shared_ptr<tls_context> ctx) : ctx_(std::move(ctx)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 4);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this] {
      serve();
    }};
  }
  ~echo_server() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

private:
  void serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0)
        return;
      tls_filter tls{ctx_};
      char buf[65536];
      for (;;) {
        pollfd p{c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
          break; // a stalled test: give up on this connection
        auto n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0)
          break;
        tls.from_network({buf, static_cast<size_t>(n)});
        tls.from_app(tls.to_app());
        auto out = tls.to_network();
        if (!out.empty() && send(c, out.data(), out.size(), MSG_NOSIGNAL) < 0)
          break;
        if (tls.failed())
          break;
      }
      close(c);
    }
  }
  std::shared_ptr<tls_context> ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int connect_local(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/// Reads until `n` bytes arrived, the peer closed, or 5 s passed (a stall).
std::string read_n(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0)
      break;
    auto got = recv(fd, buf, sizeof(buf), 0);
    if (got <= 0)
      break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

} // namespace

TEST_F(tls_test, the_tunnel_carries_bytes_both_ways) {
  echo_server server{server_ctx()};
  tls_tunnel tunnel{"127.0.0.1", server.port(), "localhost",
                    tls_context::client(dir.file("ca.pem"))};
  int fd = connect_local(tunnel.local_port());
  ASSERT_GE(fd, 0);
  std::string msg(200000, 'm');
  ASSERT_EQ(send(fd, msg.data(), msg.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(msg.size()));
  EXPECT_EQ(read_n(fd, msg.size()), msg);
  close(fd);
  EXPECT_EQ(tunnel.last_error(), "");
}

TEST_F(tls_test, the_tunnel_closes_a_connection_the_server_cannot_prove) {
  echo_server server{
    tls_context::server(other.file("server.pem"), other.file("server.key"))};
  tls_tunnel tunnel{"127.0.0.1", server.port(), "localhost",
                    tls_context::client(dir.file("ca.pem"))};
  int fd = connect_local(tunnel.local_port());
  ASSERT_GE(fd, 0);
  send(fd, "secret", 6, MSG_NOSIGNAL);
  EXPECT_EQ(read_n(fd, 1), ""); // closed, nothing echoed
  close(fd);
  EXPECT_NE(tunnel.last_error().find("certificate verification failed"),
            std::string::npos)
    << tunnel.last_error();
}

namespace {

std::string client_config_error(const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--client.id=alice", "--server.host=127.0.0.1",
                                "--server.token=t"};
  args.insert(args.end(), extra.begin(), extra.end());
  try {
    make_client_config(load_config(client_schema(), "", args));
  } catch (const config_error& e) {
    return e.what();
  }
  return "no error";
}

} // namespace

TEST_F(tls_test, the_client_config_checks_its_tls_files) {
  EXPECT_EQ(client_config_error({"--server.tls-ca=/nonexistent/ca.pem"}),
            "command line: server.tls-ca: cannot read /nonexistent/ca.pem");
  EXPECT_EQ(client_config_error({"--server.tls-ca=" + dir.file("ca.pem"),
                                 "--server.tls-cert=" + dir.file("client.pem")}),
            "command line: server.tls-cert and server.tls-key go together");
  EXPECT_EQ(client_config_error({"--server.tls-cert=" + dir.file("client.pem"),
                                 "--server.tls-key=" + dir.file("client.key")}),
            "command line: server.tls-cert: needs server.tls-ca (TLS is off without it)");
  auto cfg = make_client_config(
    load_config(client_schema(), "",
                {"--client.id=alice", "--server.host=127.0.0.1", "--server.token=t",
                 "--server.tls-ca=" + dir.file("ca.pem")}));
  EXPECT_TRUE(cfg.tls.on());
  EXPECT_EQ(cfg.tls.host, "127.0.0.1"); // the host connected to, by default
  auto named = make_client_config(load_config(
    client_schema(), "",
    {"--client.id=alice", "--server.host=127.0.0.1", "--server.token=t",
     "--server.tls-ca=" + dir.file("ca.pem"), "--server.tls-host=localhost"}));
  EXPECT_EQ(named.tls.host, "localhost");
}

TEST_F(tls_test, the_server_config_checks_its_tls_options) {
  auto error = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args{"--server.tokens-file=" MEMSYNC_SOURCE_DIR
                                  "/config/tokens.txt"};
    args.insert(args.end(), extra.begin(), extra.end());
    try {
      make_server_config(load_config(server_schema(), "", args));
    } catch (const config_error& e) {
      return std::string{e.what()};
    }
    return std::string{"no error"};
  };
  auto cert = "--server.tls-cert=" + dir.file("server.pem");
  auto key = "--server.tls-key=" + dir.file("server.key");
  EXPECT_EQ(error({cert, key}), "no error");
  EXPECT_EQ(error({cert}),
            "command line: server.tls-cert and server.tls-key go together");
  EXPECT_EQ(error({"--server.tls-key=/nonexistent/k.pem", cert}),
            "command line: server.tls-key: cannot read /nonexistent/k.pem");
  EXPECT_EQ(error({"--server.tls-client-ca=" + dir.file("ca.pem")}),
            "command line: server.tls-client-ca: needs server.tls-cert (TLS is off)");
  EXPECT_NE(
    error({cert, key, "--server.guard=false"}).find("TLS is terminated by the guard"),
    std::string::npos);
}
