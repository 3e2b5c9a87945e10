// The front's parser and rules without sockets: frames split at every byte
// come out whole and in order, an oversized header is refused on its 32nd
// byte, a frame that arrives whole is read where it lies (not copied), and
// each kind of frame a hostile client may send gets its verdict.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include <caf/atom.hpp>

#include "node/server/frame_guard.hpp"

using namespace memsync;
using verdict = client_frame_filter::verdict;

namespace {

constexpr uint64_t gateway_id = 7;
constexpr uint64_t own_session = 11;

void put_be(std::string& out, uint64_t x, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
}

std::string frame(uint8_t op, std::string payload, uint64_t dest = 0, uint8_t flags = 0,
                  uint64_t op_data = 0, uint64_t source = 0) {
  std::string out;
  out.push_back(static_cast<char>(op));
  out.append(2, '\0');
  out.push_back(static_cast<char>(flags));
  put_be(out, payload.size(), 4);
  put_be(out, op_data, 8);
  put_be(out, source, 8);
  put_be(out, dest, 8);
  return out + payload;
}

// A "default" node id as CAF 0.17 serializes it.
std::string node(uint8_t seed) {
  std::string out;
  put_be(out, static_cast<uint64_t>(caf::atom("default")), 8);
  put_be(out, 1000 + seed, 4);
  out.append(20, static_cast<char>(seed));
  return out;
}

// A direct message's payload: empty forwarding stack, then the message's
// type names and (unchecked) values.
std::string message(const std::string& types, const std::string& values = "") {
  std::string out;
  out.push_back('\0'); // no forwarding stack
  put_be(out, 0, 2);
  out.push_back(static_cast<char>(types.size())); // < 128: one varint byte
  return out + types + values;
}

const std::string server = node(1);
const std::string client = node(2);

struct frame_filter_test : ::testing::Test {
  client_frame_filter filter{client_frame_filter::environment{server,
                                                              [] { return gateway_id; },
                                                              [](uint64_t id) {
                                                                return id == own_session;
                                                              }}};

  verdict check(const std::string& bytes) {
    auto hdr = basp_header::parse(bytes.data());
    return filter.check(hdr, std::string_view{bytes}.substr(basp_header::size)).what;
  }

  void handshake() {
    ASSERT_EQ(check(frame(basp_header::client_handshake, client)), verdict::forward);
    ASSERT_EQ(check(frame(basp_header::client_handshake, client, 0,
                          basp_header::select_connection_flag)),
              verdict::forward);
  }
};

} // namespace

TEST(frame_reader_test, frames_split_at_any_byte_come_out_whole_and_in_order) {
  std::vector<std::string> frames{
    frame(basp_header::client_handshake, client),
    frame(basp_header::heartbeat, ""),
    frame(basp_header::direct_message, message("@<>+@atom+memsync::pull_request", "xyz"),
          own_session),
    frame(basp_header::direct_message, std::string(100000, 'p'), gateway_id),
  };
  std::string stream;
  for (auto& f : frames)
    stream += f;
  auto run = [&](const std::vector<size_t>& cuts) {
    frame_reader reader{1 << 20};
    std::vector<std::string> got;
    size_t from = 0;
    for (auto to : cuts) {
      const char* pos = stream.data() + from;
      const char* end = stream.data() + to;
      while (pos < end) {
        auto st = reader.next(pos, end);
        EXPECT_NE(st, frame_reader::status::refused);
        if (st != frame_reader::status::frame)
          break;
        got.emplace_back(reader.frame());
        EXPECT_EQ(reader.payload().size(), reader.header().payload_len);
      }
      from = to;
    }
    return got;
  };
  std::vector<size_t> byte_by_byte;
  for (size_t i = 1; i <= stream.size(); ++i)
    byte_by_byte.push_back(i);
  EXPECT_EQ(run(byte_by_byte), frames);
  EXPECT_EQ(run({stream.size()}), frames);
  std::mt19937 rng{7};
  for (int round = 0; round < 20; ++round) {
    std::set<size_t> cuts{stream.size()};
    for (int i = 0; i < 10; ++i)
      cuts.insert(1 + rng() % stream.size());
    EXPECT_EQ(run({cuts.begin(), cuts.end()}), frames) << "round " << round;
  }
}

TEST(frame_reader_test, a_frame_that_arrives_whole_is_read_where_it_lies) {
  auto a = frame(basp_header::heartbeat, "");
  auto b = frame(basp_header::direct_message, message("@<>+@atom", "xyz"), own_session);
  auto stream = a + b + b.substr(0, 10);
  frame_reader reader{1 << 20};
  const char* pos = stream.data();
  const char* end = stream.data() + stream.size();
  ASSERT_EQ(reader.next(pos, end), frame_reader::status::frame);
  EXPECT_TRUE(reader.in_place());
  EXPECT_EQ(reader.frame().data(), stream.data());
  ASSERT_EQ(reader.next(pos, end), frame_reader::status::frame);
  EXPECT_TRUE(reader.in_place());
  EXPECT_EQ(reader.frame().data(), stream.data() + a.size());
  EXPECT_EQ(reader.frame(), b);
  // A frame split across calls is put together in the reader's own buffer.
  EXPECT_EQ(reader.next(pos, end), frame_reader::status::more);
  auto rest = b.substr(10);
  pos = rest.data();
  ASSERT_EQ(reader.next(pos, rest.data() + rest.size()), frame_reader::status::frame);
  EXPECT_FALSE(reader.in_place());
  EXPECT_EQ(reader.frame(), b);
  // An oversized header that arrives whole is refused as one in pieces is.
  frame_reader small{16};
  auto big = frame(basp_header::heartbeat, std::string(17, 'x'));
  pos = big.data();
  EXPECT_EQ(small.next(pos, big.data() + big.size()), frame_reader::status::refused);
  EXPECT_EQ(pos, big.data() + basp_header::size);
}

TEST(frame_reader_test, an_oversized_header_is_refused_on_its_last_byte) {
  frame_reader reader{1 << 20};
  auto huge = frame(basp_header::client_handshake, "");
  for (int i = 4; i < 8; ++i)
    huge[i] = static_cast<char>(0xFF); // payload_len = 4 GiB - 1
  huge += std::string(64, 'x');
  const char* pos = huge.data();
  for (size_t i = 1; i < basp_header::size; ++i) {
    const char* end = huge.data() + i;
    ASSERT_EQ(reader.next(pos, end), frame_reader::status::more);
  }
  const char* end = huge.data() + huge.size();
  EXPECT_EQ(reader.next(pos, end), frame_reader::status::refused);
  EXPECT_EQ(pos, huge.data() + basp_header::size); // nothing after it was read
  EXPECT_EQ(reader.next(pos, end), frame_reader::status::refused);
  // Exactly the limit is fine.
  frame_reader exact{100};
  auto ok = frame(basp_header::heartbeat, std::string(100, 'x'));
  pos = ok.data();
  EXPECT_EQ(exact.next(pos, ok.data() + ok.size()), frame_reader::status::frame);
}

TEST_F(frame_filter_test, the_first_frame_must_be_a_client_handshake) {
  EXPECT_EQ(check(frame(basp_header::heartbeat, "")), verdict::close);
}

TEST_F(frame_filter_test, a_handshake_or_heartbeat_naming_actors_closes_the_connection) {
  EXPECT_EQ(check(frame(basp_header::client_handshake, client, gateway_id)),
            verdict::close);
  client_frame_filter other{{server, [] { return gateway_id; },
                             [](uint64_t) {
                               return false;
                             }}};
  auto hs = frame(basp_header::client_handshake, client);
  ASSERT_EQ(
    other.check(basp_header::parse(hs.data()), std::string_view{hs}.substr(32)).what,
    verdict::forward);
  auto hb = frame(basp_header::heartbeat, "", 0, 0, 0, 42);
  EXPECT_EQ(other.check(basp_header::parse(hb.data()), {}).what, verdict::close);
}

TEST_F(frame_filter_test, handshakes_name_one_valid_node_at_most_twice) {
  EXPECT_EQ(check(frame(basp_header::client_handshake, client.substr(0, 20))),
            verdict::close);
  client_frame_filter other{{server, [] { return gateway_id; },
                             [](uint64_t) {
                               return false;
                             }}};
  auto hs = [&](const std::string& n) {
    auto f = frame(basp_header::client_handshake, n);
    return other.check(basp_header::parse(f.data()), std::string_view{f}.substr(32)).what;
  };
  EXPECT_EQ(hs(client), verdict::forward);
  EXPECT_EQ(hs(node(3)), verdict::close); // a second one naming another node
  client_frame_filter third{{server, [] { return gateway_id; },
                             [](uint64_t) {
                               return false;
                             }}};
  auto hs3 = [&](const std::string& n) {
    auto f = frame(basp_header::client_handshake, n);
    return third.check(basp_header::parse(f.data()), std::string_view{f}.substr(32)).what;
  };
  EXPECT_EQ(hs3(client), verdict::forward);
  EXPECT_EQ(hs3(client), verdict::forward);
  EXPECT_EQ(hs3(client), verdict::close);
}

TEST_F(frame_filter_test, messages_reach_only_the_gateway_and_the_own_session) {
  handshake();
  auto hello = message("@<>+@atom+memsync::hello_request+memsync::client_listener_actor");
  EXPECT_EQ(check(frame(basp_header::direct_message, hello, gateway_id)),
            verdict::forward);
  auto pull = message("@<>+@atom+memsync::pull_request");
  EXPECT_EQ(check(frame(basp_header::direct_message, pull, own_session)),
            verdict::forward);
  EXPECT_EQ(check(frame(basp_header::heartbeat, "")), verdict::forward);
  EXPECT_EQ(check(frame(basp_header::direct_message, pull, own_session + 1)),
            verdict::close);
}

TEST_F(frame_filter_test, system_messages_and_forwarding_stacks_close_the_connection) {
  handshake();
  for (auto types : {"@<>+@exit", "@<>+@down", "@<>", "@<>+@atomic", "@<>+@str+@atom"})
    EXPECT_EQ(check(frame(basp_header::direct_message, message(types), gateway_id)),
              verdict::close)
      << types;
  client_frame_filter f2{{server, [] { return gateway_id; },
                          [](uint64_t) {
                            return false;
                          }}};
  auto with_stack = message("@<>+@atom");
  with_stack[0] = 1; // one forwarding stage
  auto hs = frame(basp_header::client_handshake, client);
  ASSERT_EQ(f2.check(basp_header::parse(hs.data()), std::string_view{hs}.substr(32)).what,
            verdict::forward);
  auto fr = frame(basp_header::direct_message, with_stack, gateway_id);
  EXPECT_EQ(f2.check(basp_header::parse(fr.data()), std::string_view{fr}.substr(32)).what,
            verdict::close);
}

TEST_F(frame_filter_test, routed_frames_and_server_handshakes_close_the_connection) {
  handshake();
  EXPECT_EQ(check(frame(basp_header::routed_message, client + server, gateway_id)),
            verdict::close);
}

TEST_F(frame_filter_test, a_server_handshake_or_unknown_operation_closes_the_connection) {
  handshake();
  EXPECT_EQ(check(frame(basp_header::server_handshake, "")), verdict::close);
  client_frame_filter f2{{server, [] { return gateway_id; },
                          [](uint64_t) {
                            return false;
                          }}};
  auto hs = frame(basp_header::client_handshake, client);
  ASSERT_EQ(f2.check(basp_header::parse(hs.data()), std::string_view{hs}.substr(32)).what,
            verdict::forward);
  auto bad = frame(42, "");
  EXPECT_EQ(f2.check(basp_header::parse(bad.data()), {}).what, verdict::close);
}

TEST_F(frame_filter_test, monitors_pass_once_for_own_actors_and_never_name_other_nodes) {
  handshake();
  EXPECT_EQ(check(frame(basp_header::monitor_message, client + server, gateway_id)),
            verdict::forward);
  EXPECT_EQ(check(frame(basp_header::monitor_message, client + server, gateway_id)),
            verdict::drop); // no attachables pile up
  EXPECT_EQ(check(frame(basp_header::monitor_message, client + server, own_session)),
            verdict::forward);
  EXPECT_EQ(check(frame(basp_header::monitor_message, client + server, 99)),
            verdict::drop);
  EXPECT_EQ(check(frame(basp_header::monitor_message, node(3) + server, gateway_id)),
            verdict::close); // a forged source
}

TEST_F(frame_filter_test, down_frames_may_only_speak_of_the_clients_own_node) {
  handshake();
  auto down = [&](const std::string& nodes, uint64_t source = 42) {
    return check(frame(basp_header::down_message, nodes + "err", 0, 0, 0, source));
  };
  EXPECT_EQ(down(client + server), verdict::forward);
  EXPECT_EQ(down(client + server, 0), verdict::close); // names no actor
  EXPECT_EQ(down(node(3) + server), verdict::close);
  EXPECT_EQ(down(client + node(3)), verdict::close);
}

TEST_F(frame_filter_test, what_caf_sends_on_its_own_is_dropped_not_refused) {
  handshake();
  // A message to the peer's "SpawnServ" by name.
  EXPECT_EQ(check(frame(basp_header::direct_message, message("@<>+@atom+@atom+@str"),
                        static_cast<uint64_t>(caf::atom("SpawnServ")),
                        basp_header::named_receiver_flag)),
            verdict::drop);
  // The answer to the server's peer discovery, sent to the asking actor.
  std::string ok;
  put_be(ok, static_cast<uint64_t>(caf::atom("ok")), 8);
  EXPECT_EQ(check(frame(basp_header::direct_message,
                        message("@<>+@atom+@str+@strong_actor_ptr+@str", ok), 10)),
            verdict::drop);
  // The same types with another atom are an ordinary message to a foreign actor.
  std::string other;
  put_be(other, static_cast<uint64_t>(caf::atom("get")), 8);
  EXPECT_EQ(check(frame(basp_header::direct_message,
                        message("@<>+@atom+@str+@strong_actor_ptr+@str", other), 10)),
            verdict::close);
}

TEST_F(frame_filter_test, a_redundant_connection_passes_nothing) {
  ASSERT_EQ(check(frame(basp_header::client_handshake, client)), verdict::forward);
  filter.make_redundant();
  EXPECT_EQ(check(frame(basp_header::client_handshake, client, 0,
                        basp_header::select_connection_flag)),
            verdict::drop);
  EXPECT_EQ(check(frame(basp_header::heartbeat, "")), verdict::close);
}
