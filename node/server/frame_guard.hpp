// frame_guard: the server's network front. CAF's BASP trusts its peers (a
// 32-byte header makes it allocate 4 GiB, exit/down/monitor/routed frames act
// on any actor), so no client talks to the middleman directly: the guard
// listens on the public host:port, reads every BASP frame a client sends, and
// forwards only what a client of ours needs to the middleman, which listens
// on a private loopback port (one upstream connection per client connection).
// Frames from the server are forwarded as they are. docs/network-front.md
// explains the choice and the rules; this header holds their contracts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

namespace memsync {

class tls_context;

// -- BASP 0.17 on the wire ----------------------------------------------------

/// The 32-byte header: operation, 2 padding bytes, flags, payload_len (u32),
/// operation_data (u64), source_actor (u64), dest_actor (u64); integers in
/// network byte order.
struct basp_header {
  static constexpr std::size_t size = 32;
  static constexpr uint8_t named_receiver_flag = 0x01;
  static constexpr uint8_t select_connection_flag = 0x02;
  enum op : uint8_t {
    server_handshake = 0,
    client_handshake = 1,
    direct_message = 2,
    routed_message = 3,
    monitor_message = 4,
    down_message = 5,
    heartbeat = 6,
  };
  uint8_t operation = 0;
  uint8_t flags = 0;
  uint32_t payload_len = 0;
  uint64_t operation_data = 0;
  uint64_t source_actor = 0;
  uint64_t dest_actor = 0;

  /// REQUIRES: `bytes` points to `size` bytes.
  static basp_header parse(const char* bytes);
};

/// Splits one direction of a connection into frames. A header announcing a
/// payload above `max_payload` is refused before anything is allocated for
/// it; memory held is at most one frame (header + max_payload). A frame that
/// arrives whole in one call is not copied: its views point into the bytes
/// given to that call.
class frame_reader {
public:
  enum class status {
    more,    ///< every byte given was consumed; no frame complete yet
    frame,   ///< a frame is complete: header(), payload(), frame()
    refused, ///< the header announced too large a payload: close
  };

  explicit frame_reader(std::size_t max_payload) : max_payload_(max_payload) {}

  /// Consumes bytes from [pos, end) up to the end of the next frame and
  /// advances `pos`. After `frame`, the frame stays readable until the next
  /// call, and while the bytes given to this call stay valid (in_place()).
  /// After `refused`, every further call returns `refused`.
  status next(const char*& pos, const char* end);

  const basp_header& header() const { return header_; }
  std::string_view payload() const { return frame_.substr(basp_header::size); }
  /// The whole frame as received (header and payload).
  std::string_view frame() const { return frame_; }
  /// The frame lies in the bytes given to the last call (no copy was made).
  bool in_place() const { return in_place_; }

private:
  std::size_t max_payload_;
  std::string buf_; // a frame split across calls, until it is whole
  std::string_view frame_;
  basp_header header_;
  bool in_place_ = false;
  bool complete_ = false;
  bool refused_ = false;
};

/// What one client connection may send, given as a decision per frame.
/// Node ids are compared as CAF serializes them (implementation atom,
/// process id, host hash), only "default" node ids are accepted.
class client_frame_filter {
public:
  enum class verdict { forward, drop, close };
  struct decision {
    verdict what;
    const char* reason; ///< why, for close (and drop); static text
  };

  struct environment {
    std::string server_node;           ///< the server's node id, serialized
    std::function<uint64_t()> gateway; ///< the published gateway's actor id now
    std::function<bool(uint64_t)>
      session; ///< whether the id is this connection's session
  };

  explicit client_frame_filter(environment env) : env_(std::move(env)) {}

  /// The rules: the first frame is a client handshake naming a valid node;
  /// one more client handshake (CAF repeats it with select_connection_flag)
  /// with the same node; heartbeats without payload; direct messages to
  /// named actors are dropped (CAF sends one to "SpawnServ", which the
  /// server has erased); other direct messages without flags or forwarding
  /// stack, whose content starts with an atom (so no
  /// exit, down or other system message), to the gateway or to one of this
  /// connection's sessions (CAF's answer to the server's peer discovery,
  /// sent to another actor on every connection, is dropped); monitor and
  /// down frames from the connection's
  /// own node to the server's node (CAF sends them for proxies it makes and
  /// for its own actors that die), monitors only once per actor and only for
  /// the gateway or the connection's sessions (others are dropped, so no
  /// attachables pile up). Everything else closes the connection: routed
  /// frames (forged origins, relaying), server handshakes, unknown
  /// operations, direct messages to any other actor, malformed payloads.
  decision check(const basp_header& hdr, std::string_view payload);

  /// After the first handshake was forwarded: the node id the peer claimed.
  const std::string& node() const { return node_; }

  /// The node is already connected elsewhere: from now on handshakes are
  /// dropped (CAF closes such a redundant connection itself) and anything
  /// else closes it.
  void make_redundant() { redundant_ = true; }

private:
  environment env_;
  std::string node_;
  int handshakes_ = 0;
  bool redundant_ = false;
  std::unordered_set<uint64_t> monitored_;
};

// -- the front ----------------------------------------------------------------

struct guard_limits {
  std::size_t max_frame_bytes = 32 << 20; ///< payload bytes of one frame
  std::chrono::milliseconds handshake_timeout{10000};
  std::size_t max_connections = 256; ///< each costs three descriptors
  std::size_t max_connections_per_address = 64;
  std::size_t max_queued_bytes = 64 << 20; ///< towards a client that does not read
};

class frame_guard {
public:
  /// Listens on host:port (port 0: any free one); clients wait in the
  /// backlog until start(). `server_node` is the node id of the server's
  /// actor system as CAF serializes it. Throws std::runtime_error if it
  /// cannot listen.
  /// With `tls` (a server context), every client connection is TLS: the
  /// guard decrypts first and applies its rules to the plaintext.
  frame_guard(guard_limits limits, const std::string& host, uint16_t port,
              std::string server_node, std::shared_ptr<tls_context> tls = nullptr);
  ~frame_guard(); ///< stop()

  frame_guard(const frame_guard&) = delete;
  frame_guard& operator=(const frame_guard&) = delete;

  uint16_t port() const;

  /// Starts serving: each accepted client gets its own connection to the
  /// middleman on 127.0.0.1:upstream_port. Call once.
  void start(uint16_t upstream_port);

  /// The published gateway's actor id; thread-safe. Until the first call no
  /// direct message passes.
  void set_gateway(uint64_t actor_id);

  /// The gateway handed session `actor_id` to the client on `node`: direct
  /// messages to it pass on that node's connection only, and the connection
  /// has said hello (no handshake timeout any more). Thread-safe; ignored
  /// when the node has no live connection.
  void bind_session(const std::string& node, uint64_t actor_id);
  /// The session ended; thread-safe.
  void unbind_session(const std::string& node, uint64_t actor_id);

  /// Closes the listening socket and every connection; idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace memsync
