// cookie_signer: the server's signature on the cookies it hands out. A pull
// cookie names a position in the server's history; one with the server's
// own epoch but a commit the server never issued means the database was
// restored from an older copy, and the server then renews its epoch, which
// sends every client a full reset. Signing each cookie with a secret kept
// in the database (HMAC-SHA-256) lets the server tell such a cookie from a
// forged one: only a cookie the server (or an older copy of its database)
// signed can trigger that; a forged one is refused.
#pragma once

#include <string>

#include "messages/protocol.hpp"

namespace memsync {

class cookie_signer {
public:
  /// REQUIRES: `secret` is not empty (a random value kept with the data).
  explicit cookie_signer(std::string secret);

  /// The signature of `c` (its epoch, version and commit), in hex.
  std::string sign(const cookie& c) const;

  /// True if `c.mac` is the signature of `c`. Compares in constant time.
  bool verify(const cookie& c) const;

  /// A fresh random secret (32 bytes, hex) for a new database.
  static std::string make_secret();

private:
  std::string secret_;
};

} // namespace memsync
