#include "actors/server/cookie_signer.hpp"

#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace memsync {

namespace {

std::string to_hex(const unsigned char* data, size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += hex[data[i] >> 4];
    out += hex[data[i] & 0xf];
  }
  return out;
}

} // namespace

cookie_signer::cookie_signer(std::string secret) : secret_(std::move(secret)) {
  if (secret_.empty())
    throw std::invalid_argument("cookie_signer: empty secret");
}

std::string cookie_signer::sign(const cookie& c) const {
  // Lengths first, so no two cookies share a message.
  auto msg = std::to_string(c.epoch.size()) + ":" + c.epoch + ":"
             + std::to_string(c.version) + ":" + std::to_string(c.commit);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len))
    throw std::runtime_error("HMAC-SHA-256 failed");
  return to_hex(mac, len);
}

bool cookie_signer::verify(const cookie& c) const {
  auto expected = sign(c);
  return c.mac.size() == expected.size()
         && CRYPTO_memcmp(c.mac.data(), expected.data(), expected.size()) == 0;
}

std::string cookie_signer::make_secret() {
  unsigned char buf[32];
  if (RAND_bytes(buf, sizeof(buf)) != 1)
    throw std::runtime_error("no random bytes for the cookie secret");
  return to_hex(buf, sizeof(buf));
}

} // namespace memsync
