// TLS for the network front and the client's tunnel, on OpenSSL. A
// tls_filter is TLS without sockets: ciphertext in and out on one side,
// plaintext in and out on the other, so any byte-pumping loop (the server's
// frame guard, the client's tunnel) can put it between the network and
// what it forwards. Clients verify the server's certificate against a CA
// and the host name they connect to (CAF's own TLS module checks no host
// name); client certificates are optional, since tokens authenticate
// clients.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace memsync {

/// Thrown when a certificate, key or CA file cannot be used; the message
/// names the file and OpenSSL's reason.
class tls_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Certificates and settings shared by many connections. TLS 1.2 or newer.
class tls_context {
public:
  /// A server: its certificate chain and key (PEM). With `client_ca`, every
  /// client must present a certificate signed by it; without, none is asked.
  static std::shared_ptr<tls_context> server(const std::string& cert_file,
                                             const std::string& key_file,
                                             const std::string& client_ca = "");
  /// A client: trusts servers whose certificate `ca_file` signed. With
  /// `cert_file`/`key_file`, presents that certificate.
  static std::shared_ptr<tls_context> client(const std::string& ca_file,
                                             const std::string& cert_file = "",
                                             const std::string& key_file = "");
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  bool is_server() const { return server_; }
  ssl_ctx_st* native() const { return ctx_; }

private:
  tls_context(ssl_ctx_st* ctx, bool server) : ctx_(ctx), server_(server) {}
  ssl_ctx_st* ctx_;
  bool server_;
};

/// One TLS connection without a socket. Not thread-safe: one owner.
class tls_filter {
public:
  /// `host`: for a client context, the name the server's certificate must
  /// carry (also sent as SNI); ignored for a server context.
  tls_filter(std::shared_ptr<tls_context> ctx, const std::string& host = "");
  ~tls_filter();
  tls_filter(const tls_filter&) = delete;
  tls_filter& operator=(const tls_filter&) = delete;

  /// Ciphertext received from the network.
  void from_network(std::string_view cipher);
  /// Ciphertext to send to the network (drains it).
  std::string to_network();
  /// Plaintext to encrypt; buffered until the handshake is done.
  void from_app(std::string_view plain);
  /// Decrypted plaintext (drains it).
  std::string to_app();

  bool established() const { return established_; }
  /// True once the connection cannot go on (handshake or record failure,
  /// or the peer closed TLS); `error()` then says why.
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

private:
  void progress();
  std::shared_ptr<tls_context> ctx_;
  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;  // network -> OpenSSL
  bio_st* out_ = nullptr; // OpenSSL -> network
  std::string pending_plain_;
  std::string plain_in_;
  std::string error_;
  bool established_ = false;
};

} // namespace memsync
