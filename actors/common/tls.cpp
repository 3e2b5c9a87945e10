#include "actors/common/tls.hpp"

#include <utility>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace memsync {

namespace {

/// OpenSSL's queued errors as one line (and clears the queue).
std::string openssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

[[noreturn]] void fail(const std::string& what) {
  throw tls_error(what + ": " + openssl_errors());
}

SSL_CTX* new_context(const SSL_METHOD* method) {
  auto* ctx = SSL_CTX_new(method);
  if (!ctx)
    fail("TLS context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  return ctx;
}

void load_identity(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    fail(cert + ": cannot use certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    fail(key + ": cannot use private key");
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail(key + ": does not match " + cert);
}

void load_ca(SSL_CTX* ctx, const std::string& ca) {
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
    fail(ca + ": cannot use CA file");
}

} // namespace

std::shared_ptr<tls_context> tls_context::server(const std::string& cert_file,
                                                 const std::string& key_file,
                                                 const std::string& client_ca) {
  auto* ctx = new_context(TLS_server_method());
  std::shared_ptr<tls_context> out{new tls_context(ctx, true)};
  load_identity(ctx, cert_file, key_file);
  if (!client_ca.empty()) {
    load_ca(ctx, client_ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return out;
}

std::shared_ptr<tls_context> tls_context::client(const std::string& ca_file,
                                                 const std::string& cert_file,
                                                 const std::string& key_file) {
  auto* ctx = new_context(TLS_client_method());
  std::shared_ptr<tls_context> out{new tls_context(ctx, false)};
  if (ca_file.empty())
    throw tls_error("a TLS client needs a CA file to verify the server");
  load_ca(ctx, ca_file);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!cert_file.empty() || !key_file.empty())
    load_identity(ctx, cert_file, key_file);
  return out;
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

tls_filter::tls_filter(std::shared_ptr<tls_context> ctx, const std::string& host)
    : ctx_(std::move(ctx)) {
  ssl_ = SSL_new(ctx_->native());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !in_ || !out_)
    fail("TLS connection");
  SSL_set_bio(ssl_, in_, out_); // ssl_ owns both BIOs from here on
  if (ctx_->is_server()) {
    SSL_set_accept_state(ssl_);
  } else {
    if (host.empty())
      throw tls_error("a TLS client needs the server's host name to verify it");
    // The certificate must name `host` (DNS name, or IP address literal).
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl_, host.c_str()) != 1)
      fail("TLS host name " + host);
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set_connect_state(ssl_);
    progress(); // the ClientHello
  }
}

tls_filter::~tls_filter() {
  SSL_free(ssl_);
}

void tls_filter::from_network(std::string_view cipher) {
  if (failed())
    return;
  BIO_write(in_, cipher.data(), static_cast<int>(cipher.size()));
  progress();
}

std::string tls_filter::to_network() {
  std::string out;
  char buf[16384];
  int n;
  while ((n = BIO_read(out_, buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

void tls_filter::from_app(std::string_view plain) {
  if (failed())
    return;
  pending_plain_.append(plain);
  progress();
}

std::string tls_filter::to_app() {
  return std::exchange(plain_in_, {});
}

void tls_filter::progress() {
  auto check = [this](int rc, const char* what) {
    auto err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
      return true;
    if (err == SSL_ERROR_ZERO_RETURN) {
      error_ = "the peer closed the TLS connection";
    } else if (err == SSL_ERROR_SSL && SSL_get_verify_result(ssl_) != X509_V_OK) {
      error_ = std::string{what} + ": certificate verification failed: "
               + X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
      ERR_clear_error();
    } else {
      error_ = std::string{what} + ": " + openssl_errors();
    }
    return false;
  };
  if (!established_) {
    auto rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      check(rc, "TLS handshake");
      return;
    }
    established_ = true;
  }
  char buf[16384];
  for (;;) {
    auto n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) {
      if (!check(n, "TLS read"))
        return;
      break;
    }
    plain_in_.append(buf, static_cast<size_t>(n));
  }
  while (!pending_plain_.empty()) {
    auto n = SSL_write(ssl_, pending_plain_.data(),
                       static_cast<int>(pending_plain_.size()));
    if (n <= 0) {
      check(n, "TLS write");
      return;
    }
    pending_plain_.erase(0, static_cast<size_t>(n));
  }
}

} // namespace memsync
