// The front's parser and rules: BASP 0.17 headers, frames split out of a
// byte stream with a bounded buffer, and the verdict on each frame a client
// sends (contracts in frame_guard.hpp).
#include "node/server/frame_guard.hpp"

#include <algorithm>

#include <caf/atom.hpp>

namespace memsync {

namespace {

uint64_t read_be(const char* p, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; ++i)
    x = (x << 8) | static_cast<uint8_t>(p[i]);
  return x;
}

// Reads CAF's binary serialization (network byte order, sizes as 7-bit
// varints) from a payload, never past its end.
struct cursor {
  std::string_view in;
  std::size_t pos = 0;

  bool take(std::size_t n, std::string_view& out) {
    if (in.size() - pos < n)
      return false;
    out = in.substr(pos, n);
    pos += n;
    return true;
  }
  bool u16(uint16_t& x) {
    std::string_view b;
    if (!take(2, b))
      return false;
    x = static_cast<uint16_t>(read_be(b.data(), 2));
    return true;
  }
  bool u64(uint64_t& x) {
    std::string_view b;
    if (!take(8, b))
      return false;
    x = read_be(b.data(), 8);
    return true;
  }
  bool varlen(uint32_t& x) {
    x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      std::string_view b;
      if (!take(1, b))
        return false;
      auto byte = static_cast<uint8_t>(b[0]);
      x |= static_cast<uint32_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0)
        return true;
    }
    return false;
  }
  bool done() const { return pos == in.size(); }
};

constexpr uint64_t ok_atom = static_cast<uint64_t>(caf::atom("ok"));

constexpr uint64_t default_node_atom = static_cast<uint64_t>(caf::atom("default"));
constexpr std::size_t default_node_size = 8 + 4 + 20; // atom, process id, host hash

// A node id as CAF 0.17 writes it; only the "default" kind (what every CAF
// process uses) is accepted, not the invalid node nor URI node ids.
bool read_node(cursor& c, std::string_view& out) {
  auto start = c.pos;
  uint64_t impl = 0;
  std::string_view rest;
  if (!c.u64(impl) || impl != default_node_atom || !c.take(default_node_size - 8, rest))
    return false;
  out = c.in.substr(start, default_node_size);
  return true;
}

} // namespace

basp_header basp_header::parse(const char* p) {
  basp_header h;
  h.operation = static_cast<uint8_t>(p[0]);
  h.flags = static_cast<uint8_t>(p[3]);
  h.payload_len = static_cast<uint32_t>(read_be(p + 4, 4));
  h.operation_data = read_be(p + 8, 8);
  h.source_actor = read_be(p + 16, 8);
  h.dest_actor = read_be(p + 24, 8);
  return h;
}

frame_reader::status frame_reader::next(const char*& pos, const char* end) {
  if (refused_)
    return status::refused;
  if (complete_) {
    complete_ = false;
    frame_ = {};
    // A large frame's buffer is not kept for the rest of the connection.
    if (buf_.capacity() > (1 << 20))
      std::string{}.swap(buf_);
    buf_.clear();
  }
  in_place_ = false;
  auto avail = static_cast<std::size_t>(end - pos);
  if (buf_.empty() && avail >= basp_header::size) {
    // The common case: the header, and often the whole frame, is here.
    header_ = basp_header::parse(pos);
    if (header_.payload_len > max_payload_) {
      pos += basp_header::size; // consumed, as when it arrives in pieces
      refused_ = true;
      return status::refused;
    }
    auto size = basp_header::size + header_.payload_len;
    if (avail >= size) {
      frame_ = {pos, size};
      pos += size;
      in_place_ = true;
      complete_ = true;
      return status::frame;
    }
  }
  if (buf_.size() < basp_header::size) {
    auto n = std::min<std::size_t>(basp_header::size - buf_.size(), end - pos);
    buf_.append(pos, n);
    pos += n;
    if (buf_.size() < basp_header::size)
      return status::more;
    header_ = basp_header::parse(buf_.data());
    if (header_.payload_len > max_payload_) {
      refused_ = true;
      return status::refused;
    }
    buf_.reserve(basp_header::size + header_.payload_len);
  }
  auto want = basp_header::size + header_.payload_len - buf_.size();
  auto n = std::min<std::size_t>(want, end - pos);
  buf_.append(pos, n);
  pos += n;
  if (n < want)
    return status::more;
  frame_ = buf_;
  complete_ = true;
  return status::frame;
}

client_frame_filter::decision client_frame_filter::check(const basp_header& hdr,
                                                         std::string_view payload) {
  using v = verdict;
  if (redundant_)
    return hdr.operation == basp_header::client_handshake
             ? decision{v::drop, "handshake on a redundant connection"}
             : decision{v::close, "the node is already connected"};
  if (hdr.operation == basp_header::client_handshake) {
    if (hdr.source_actor != 0 || hdr.dest_actor != 0)
      return {v::close, "a client handshake naming actors"};
    if (handshakes_ >= 2)
      return {v::close, "a third client handshake"};
    cursor c{payload};
    std::string_view node;
    if (!read_node(c, node) || !c.done())
      return {v::close, "malformed client handshake"};
    if (handshakes_ == 0)
      node_ = node;
    else if (node != node_)
      return {v::close, "a second handshake naming another node"};
    ++handshakes_;
    return {v::forward, ""};
  }
  if (handshakes_ == 0)
    return {v::close, "the first frame is not a client handshake"};
  auto allowed = [&](uint64_t id) {
    auto gateway = env_.gateway();
    return (gateway != 0 && id == gateway) || env_.session(id);
  };
  cursor c{payload};
  std::string_view source, dest;
  switch (hdr.operation) {
    case basp_header::heartbeat:
      if (!payload.empty() || hdr.source_actor != 0 || hdr.dest_actor != 0
          || hdr.operation_data != 0)
        return {v::close, "a malformed heartbeat"};
      return {v::forward, ""};
    case basp_header::direct_message: {
      // CAF sends one to the peer's "SpawnServ" by name on every new
      // connection; the server has erased those services, so nothing would
      // answer anyway. No other flag exists for direct messages.
      if (hdr.flags == basp_header::named_receiver_flag)
        return {v::drop, "a message to a named actor"};
      if (hdr.flags != 0)
        return {v::close, "a direct message with unknown flags"};
      bool to_client_actor = allowed(hdr.dest_actor);
      uint32_t stack = 0, len = 0;
      uint16_t type_nr = 0;
      std::string_view types;
      if (!c.varlen(stack) || stack != 0)
        return {v::close, "a direct message with a forwarding stack"};
      if (!c.u16(type_nr) || type_nr != 0 || !c.varlen(len) || !c.take(len, types))
        return {v::close, "a malformed direct message"};
      if (!to_client_actor) {
        // CAF's peer discovery: on every new connection the server asks the
        // client's "SpawnServ" by name and the client answers the asking
        // actor with (ok, "info", handle, name). Nothing else may reach an
        // actor that is not the client's.
        uint64_t first = 0;
        if (types == "@<>+@atom+@str+@strong_actor_ptr+@str" && c.u64(first)
            && first == ok_atom)
          return {v::drop, "CAF's answer to the server's peer discovery"};
        return {v::close, "a direct message to an actor that is neither the gateway "
                          "nor a session of this connection"};
      }
      // Every request of ours starts with an atom; exit, down and the other
      // system messages are single values of other types.
      constexpr std::string_view prefix = "@<>+@atom";
      if (types.substr(0, prefix.size()) != prefix
          || (types.size() > prefix.size() && types[prefix.size()] != '+'))
        return {v::close, "a message that does not start with an atom (exit, down "
                          "and other system messages are refused)"};
      return {v::forward, ""};
    }
    case basp_header::monitor_message:
      if (hdr.operation_data != 0 || !read_node(c, source) || !read_node(c, dest)
          || !c.done())
        return {v::close, "a malformed monitor frame"};
      if (source != node_ || dest != env_.server_node)
        return {v::close, "a monitor frame naming other nodes"};
      if (!allowed(hdr.dest_actor))
        return {v::drop, "a monitor of an actor that is not the client's"};
      if (!monitored_.insert(hdr.dest_actor).second)
        return {v::drop, "a repeated monitor"};
      return {v::forward, ""};
    case basp_header::down_message:
      // Says that one of the client's own actors ended (the error follows).
      if (hdr.operation_data != 0 || hdr.source_actor == 0 || hdr.dest_actor != 0
          || !read_node(c, source) || !read_node(c, dest))
        return {v::close, "a malformed down frame"};
      if (source != node_ || dest != env_.server_node)
        return {v::close, "a down frame naming other nodes"};
      return {v::forward, ""};
    case basp_header::routed_message:
      return {v::close, "a routed frame (forged origins, relaying to other nodes)"};
    case basp_header::server_handshake:
      return {v::close, "a server handshake from a client"};
    default: return {v::close, "an unknown operation"};
  }
}

} // namespace memsync
