// token_table: who may connect as whom, and what each token may read and
// write. Built from the tokens file, one "TOKEN CLIENT-NAME [GRANT...]" per
// line ('#' starts a comment), where TOKEN is the token itself or "sha256:"
// and its SHA-256 digest in hex, so the file need not hold usable secrets,
// and each GRANT is "read:PATTERN" or "write:PATTERN" (no grants: write:*). Only digests are kept in memory, and a lookup
// compares the presented token's digest with every entry in constant time:
// neither the time taken nor the answer tells an unknown token from a known
// one beyond "not permitted".
#pragma once

#include <array>
#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "messages/scopes.hpp"

namespace memsync {

class token_table {
public:
  using digest = std::array<uint8_t, 32>;

  /// Who a token is: its client name (empty: not permitted), its grants and
  /// the digest that identifies it (what a reload finds it by again).
  struct match {
    std::string client;
    memsync::grants granted;
    digest hash{};
  };

  /// Parses a tokens file's text. `origin` names it in errors. Throws
  /// std::invalid_argument reading "ORIGIN:LINE: reason" for a malformed
  /// line, an invalid client name, a bad digest, a bad grant (named) or a
  /// token listed twice.
  static token_table parse(std::istream& in, const std::string& origin);

  /// Reads and parses the file at `path`. Throws std::invalid_argument as
  /// parse does, or when the file cannot be read.
  static token_table load(const std::string& path);

  /// Adds a plain token. Throws std::invalid_argument if it is listed already.
  void add(std::string_view token, std::string client,
           memsync::grants granted = all_grants());

  /// The plain tokens of a tokens file by client name (hashed lines are
  /// skipped): what a load tester needs to connect as those clients.
  /// Throws as load().
  static std::map<std::string, std::string>
  plain_tokens_by_client(const std::string& path);

  /// The client name `token` belongs to, or the empty string. Takes the
  /// same time for every token of the same length, wherever (or whether)
  /// it is listed.
  std::string client_of(std::string_view token) const;

  /// The client name, grants and digest of `token` (client empty: not
  /// permitted), in the same constant time as client_of.
  match lookup(std::string_view token) const;

  /// The entry with digest `hash`, or a match with an empty client.
  match find(const digest& hash) const;

  std::size_t size() const { return entries_.size(); }

  /// "sha256:" and the hex digest of `token`, as the file may list it.
  static std::string hash_line(std::string_view token);

  /// SHA-256 of `data`.
  static digest sha256(std::string_view data);

private:
  struct entry {
    digest hash;
    std::string client;
    memsync::grants granted;
  };
  const entry* find_entry(const digest& presented) const;
  std::vector<entry> entries_;
};

} // namespace memsync
