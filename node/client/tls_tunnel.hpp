// tls_tunnel: how a client node reaches a server over TLS. CAF's middleman
// speaks plain BASP to a port on 127.0.0.1 that this tunnel listens on; the
// tunnel opens one TLS connection to the server per local connection,
// verifies the server's certificate against the configured CA and host
// name, and pumps bytes both ways on its own thread. A failure on either
// side closes both, so the syncer sees a lost connection and reconnects as
// it would without TLS.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "actors/common/tls.hpp"

namespace memsync {

class tls_tunnel {
public:
  /// Starts listening on 127.0.0.1 (any free port) at once; connections go
  /// to host:port, whose certificate must name `verify_host`. Throws
  /// std::runtime_error if no local port can be had.
  tls_tunnel(std::string host, uint16_t port, std::string verify_host,
             std::shared_ptr<tls_context> ctx);
  /// Closes every connection and stops the thread.
  ~tls_tunnel();
  tls_tunnel(const tls_tunnel&) = delete;
  tls_tunnel& operator=(const tls_tunnel&) = delete;

  /// The local port CAF connects to instead of the server.
  uint16_t local_port() const { return local_port_; }

  /// The reason the last tunnelled connection failed (e.g. certificate
  /// verification), empty if none did. Thread-safe.
  std::string last_error() const;

private:
  void run();
  struct impl;
  std::unique_ptr<impl> impl_;
  uint16_t local_port_ = 0;
  std::thread thread_;
};

} // namespace memsync
