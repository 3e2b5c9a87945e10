// Fuzzes the network front's parser and rules as a hostile client would
// drive them: the input is a byte stream from one connection, cut into
// reads of sizes taken from its first byte. Checks: no crash, no read past
// a frame; the reader never holds more than one frame of the cap; a frame is
// forwarded only if its header says it is a handshake, heartbeat, monitor,
// down or direct message (never routed, never a server handshake); a
// refused or closed connection stays closed.
#include <cstdlib>
#include <string>

#include <caf/atom.hpp>

#include "node/server/frame_guard.hpp"

using namespace memsync;

namespace {

constexpr std::size_t max_payload = 4096;

std::string server_node() {
  std::string out;
  auto put = [&](uint64_t x, int bytes) {
    for (int i = bytes - 1; i >= 0; --i)
      out.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
  };
  put(static_cast<uint64_t>(caf::atom("default")), 8);
  put(4242, 4);
  out.append(20, '\x5a');
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  static const std::string server = server_node();
  std::size_t chunk = 1 + data[0] % 64;
  frame_reader reader{max_payload};
  client_frame_filter filter{client_frame_filter::environment{server,
                                                              [] { return uint64_t{7}; },
                                                              [](uint64_t id) {
                                                                return id == 11;
                                                              }}};
  const char* pos = reinterpret_cast<const char*>(data + 1);
  const char* end = reinterpret_cast<const char*>(data + size);
  bool closed = false;
  bool refused = false;
  while (pos < end && !closed) {
    const char* stop = pos
                       + std::min<std::size_t>(chunk,
                                               static_cast<std::size_t>(end - pos));
    while (pos < stop) {
      auto st = reader.next(pos, stop);
      if (st == frame_reader::status::more)
        break;
      if (st == frame_reader::status::refused) {
        closed = refused = true;
        break;
      }
      auto& hdr = reader.header();
      if (reader.frame().size() != basp_header::size + hdr.payload_len
          || hdr.payload_len > max_payload)
        std::abort(); // a frame of the wrong size, or above the cap
      auto d = filter.check(hdr, reader.payload());
      if (d.what == client_frame_filter::verdict::close) {
        closed = true;
        break;
      }
      if (d.what == client_frame_filter::verdict::forward
          && (hdr.operation == basp_header::routed_message
              || hdr.operation == basp_header::server_handshake || hdr.operation > 6))
        std::abort(); // forwarded what a client may never send
    }
  }
  if (refused) {
    // Once refused, the reader refuses everything after.
    const char* p = reinterpret_cast<const char*>(data);
    if (reader.next(p, p + size) != frame_reader::status::refused)
      std::abort();
  }
  return 0;
}
