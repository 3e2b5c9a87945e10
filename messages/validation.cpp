#include "messages/validation.hpp"

#include <nlohmann/json.hpp>

namespace memsync {

namespace {

sync_error fail(sync_errc code, std::string message) {
  return {code, std::move(message)};
}

// Linear scan over the raw text, skipping strings: cheaper than parsing and
// immune to deeply nested input.
bool depth_within(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
      continue;
    }
    switch (ch) {
      case '"': in_string = true; break;
      case '{':
      case '[':
        if (++depth > max_depth)
          return false;
        break;
      case '}':
      case ']':
        if (depth > 0)
          --depth;
        break;
      default: break;
    }
  }
  return true;
}

} // namespace

namespace {

// Where `text` stops being well-formed UTF-8 (overlong forms, surrogates and
// code points above U+10FFFF are ill-formed), or npos. PostgreSQL rejects
// such text, which would fail a whole group commit.
std::size_t invalid_utf8_at(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    std::size_t len = lead < 0x80                    ? 1
                      : lead >= 0xc2 && lead <= 0xdf ? 2
                      : lead >= 0xe0 && lead <= 0xef ? 3
                      : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                     : 0;
    if (len == 0 || i + len > text.size())
      return i;
    auto second = static_cast<unsigned char>(len > 1 ? text[i + 1] : 0x80);
    // The ranges of the second byte that rule out overlongs, surrogates and
    // code points past U+10FFFF (Unicode table 3-7).
    unsigned char lo = 0x80, hi = 0xbf;
    if (lead == 0xe0)
      lo = 0xa0;
    if (lead == 0xed)
      hi = 0x9f;
    if (lead == 0xf0)
      lo = 0x90;
    if (lead == 0xf4)
      hi = 0x8f;
    if (second < lo || second > hi)
      return i;
    for (std::size_t k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80)
        return i;
    i += len;
  }
  return std::string_view::npos;
}

} // namespace

sync_error validate_id(std::string_view id) {
  if (id.empty())
    return fail(sync_errc::invalid_id, "entity id must not be empty");
  if (id.size() > max_id_bytes)
    return fail(sync_errc::invalid_id, "entity id is " + std::to_string(id.size())
                                         + " bytes, at most "
                                         + std::to_string(max_id_bytes) + " allowed");
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto ch = static_cast<unsigned char>(id[i]);
    if (ch < 0x20 || ch == 0x7f)
      return fail(sync_errc::invalid_id,
                  "entity id contains a control character at byte " + std::to_string(i));
  }
  if (auto at = invalid_utf8_at(id); at != std::string_view::npos)
    return fail(sync_errc::invalid_id,
                "entity id is not valid UTF-8 at byte " + std::to_string(at));
  return {};
}

sync_error validate_type(std::string_view type) {
  if (type.empty() || type.size() > max_type_bytes)
    return fail(sync_errc::invalid_type, "entity type must be 1 to "
                                           + std::to_string(max_type_bytes)
                                           + " characters");
  for (char ch : type) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'
              || ch == '-';
    if (!ok)
      return fail(sync_errc::invalid_type,
                  "entity type '" + std::string{type}
                    + "' may only contain a-z, 0-9, '_' and '-'");
  }
  return {};
}

bool client_id_belongs_to(std::string_view client_id, std::string_view name) {
  if (client_id.size() != name.size() + 17 || client_id.substr(0, name.size()) != name
      || client_id[name.size()] != '-')
    return false;
  return client_id.find_first_not_of("0123456789abcdef", name.size() + 1)
         == std::string_view::npos;
}

std::size_t push_bytes(const change& c) {
  return c.id.size() + c.type.size() + c.data.size();
}

std::size_t pull_bytes(const entity& e) {
  constexpr std::size_t per_entity = 32;
  return e.id.size() + e.type.size() + e.data.size() + per_entity;
}

sync_error check_limits(std::string_view text, const data_limits& limits) {
  if (text.size() > limits.max_bytes)
    return fail(sync_errc::too_large, "data is " + std::to_string(text.size())
                                        + " bytes, at most "
                                        + std::to_string(limits.max_bytes) + " allowed");
  if (!depth_within(text, limits.max_depth))
    return fail(sync_errc::too_deep,
                "data nests deeper than " + std::to_string(limits.max_depth) + " levels");
  return {};
}

sync_error parse_object(std::string_view text, const data_limits& limits,
                        nlohmann::json& out) {
  if (auto err = check_limits(text, limits); !err.ok())
    return err;
  out = nlohmann::json::parse(text, nullptr, false);
  if (out.is_discarded())
    return fail(sync_errc::invalid_json, "data is not valid JSON");
  if (!out.is_object())
    return fail(sync_errc::invalid_json,
                "data must be a JSON object, got " + std::string{out.type_name()});
  return {};
}

namespace {

sync_error check_envelope(const change& c) {
  if (c.kind != change_kind::put && c.kind != change_kind::patch
      && c.kind != change_kind::del)
    return fail(sync_errc::invalid_request,
                "unknown change kind " + std::to_string(static_cast<int>(c.kind)));
  if (auto err = validate_id(c.id); !err.ok())
    return err;
  if (auto err = validate_type(c.type); !err.ok())
    return err;
  if (c.kind == change_kind::del && !c.data.empty())
    return fail(sync_errc::invalid_request, "a delete carries no data");
  return {};
}

} // namespace

sync_error canonicalize_change(change& c, const data_limits& limits) {
  if (auto err = check_envelope(c); !err.ok())
    return err;
  if (c.kind == change_kind::del)
    return {};
  nlohmann::json parsed;
  if (auto err = parse_object(c.data, limits, parsed); !err.ok())
    return err;
  // The canonical text can be longer than what was sent (`1e9` becomes
  // `1000000000.0`), and every node must be able to hold what is stored.
  auto canonical = parsed.dump();
  if (auto err = check_limits(canonical, limits); !err.ok())
    return {err.code, "in canonical form: " + err.message};
  c.data = std::move(canonical);
  return {};
}

sync_error validate_entity(const entity& e, const data_limits& limits) {
  if (auto err = validate_id(e.id); !err.ok())
    return err;
  if (auto err = validate_type(e.type); !err.ok())
    return err;
  if (e.deleted)
    return {};
  // Every client checks every pulled entity: validate without building a
  // document (a valid JSON text starting with '{' is an object).
  if (auto err = check_limits(e.data, limits); !err.ok())
    return err;
  if (!nlohmann::json::accept(e.data))
    return fail(sync_errc::invalid_json, "data is not valid JSON");
  auto first = e.data.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || e.data[first] != '{')
    return fail(sync_errc::invalid_json, "data must be a JSON object");
  return {};
}

sync_error validate_change(const change& c, const data_limits& limits) {
  if (auto err = check_envelope(c); !err.ok())
    return err;
  if (c.kind == change_kind::del)
    return {};
  nlohmann::json parsed;
  return parse_object(c.data, limits, parsed);
}

} // namespace memsync
