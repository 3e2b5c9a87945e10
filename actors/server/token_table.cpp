#include "actors/server/token_table.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "messages/validation.hpp"

namespace memsync {

namespace {

constexpr std::string_view hash_prefix = "sha256:";

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool parse_digest(std::string_view hex, token_table::digest& out) {
  if (hex.size() != out.size() * 2)
    return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto hi = hex_value(hex[2 * i]);
    auto lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

} // namespace

token_table::digest token_table::sha256(std::string_view data) {
  digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1
      || len != out.size())
    throw std::runtime_error("SHA-256 failed");
  return out;
}

std::string token_table::hash_line(std::string_view token) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out{hash_prefix};
  for (auto b : sha256(token)) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

token_table token_table::parse(std::istream& in, const std::string& origin) {
  token_table out;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (auto hash = line.find('#'); hash != std::string::npos)
      line.erase(hash);
    std::istringstream words{line};
    std::string token, name, word;
    if (!(words >> token))
      continue;
    auto where = origin + ":" + std::to_string(lineno) + ": ";
    if (!(words >> name))
      throw std::invalid_argument(where + "expected 'TOKEN CLIENT-NAME [GRANT...]'");
    if (auto err = validate_id(name); !err.ok())
      throw std::invalid_argument(where + "client name: " + err.message);
    entry e{{}, name, {}};
    while (words >> word) {
      grant g;
      if (!parse_grant(word, g))
        throw std::invalid_argument(where + "grant '" + word
                                    + "': expected 'read:PATTERN' or 'write:PATTERN', "
                                      "PATTERN a scope name or a prefix followed by '*'");
      e.granted.push_back(std::move(g));
    }
    if (e.granted.empty()) // today's files: every scope
      e.granted = all_grants();
    if (std::string_view{token}.substr(0, hash_prefix.size()) == hash_prefix) {
      if (!parse_digest(std::string_view{token}.substr(hash_prefix.size()), e.hash))
        throw std::invalid_argument(where + "expected 'sha256:' and 64 hex digits");
    } else {
      e.hash = sha256(token);
    }
    for (auto& other : out.entries_)
      if (other.hash == e.hash)
        throw std::invalid_argument(where + "token listed twice");
    out.entries_.push_back(std::move(e));
  }
  return out;
}

void token_table::add(std::string_view token, std::string client,
                      memsync::grants granted) {
  auto hash = sha256(token);
  for (auto& other : entries_)
    if (other.hash == hash)
      throw std::invalid_argument("token listed twice");
  entries_.push_back({hash, std::move(client), std::move(granted)});
}

std::map<std::string, std::string>
token_table::plain_tokens_by_client(const std::string& path) {
  load(path); // the same errors as for the server
  std::ifstream in{path};
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words{line.substr(0, line.find('#'))};
    std::string token, name;
    if ((words >> token >> name)
        && std::string_view{token}.substr(0, hash_prefix.size()) != hash_prefix)
      out.emplace(name, token);
  }
  return out;
}

token_table token_table::load(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    throw std::invalid_argument(path + ": cannot read tokens file");
  return parse(in, path);
}

std::string token_table::client_of(std::string_view token) const {
  return lookup(token).client;
}

token_table::match token_table::lookup(std::string_view token) const {
  return find(sha256(token));
}

token_table::match token_table::find(const digest& hash) const {
  auto* e = find_entry(hash);
  return e ? match{e->client, e->granted, e->hash} : match{};
}

const token_table::entry* token_table::find_entry(const digest& presented) const {
  // Visit every entry and select without branching on the comparison, so
  // the time does not depend on which entry (if any) matches.
  const entry* found = nullptr;
  for (auto& e : entries_) {
    auto same = CRYPTO_memcmp(e.hash.data(), presented.data(), presented.size()) == 0;
    auto mask = -static_cast<uintptr_t>(same);
    found = reinterpret_cast<const entry*>(
      (reinterpret_cast<uintptr_t>(&e) & mask)
      | (reinterpret_cast<uintptr_t>(found) & ~mask));
  }
  return found;
}

} // namespace memsync
