#include "messages/scopes.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace memsync {

namespace {

sync_error fail(sync_errc code, std::string message) {
  return {code, std::move(message)};
}

bool scope_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
}

bool is_prefix(std::string_view p) {
  return !p.empty() && p.back() == '*';
}

std::string_view stem(std::string_view p) {
  return is_prefix(p) ? p.substr(0, p.size() - 1) : p;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

} // namespace

sync_error validate_scope(std::string_view scope) {
  if (scope.empty() || scope.size() > max_scope_bytes)
    return fail(sync_errc::invalid_request,
                "a scope name has 1 to " + std::to_string(max_scope_bytes) + " bytes");
  for (char c : scope)
    if (!scope_char(c))
      return fail(sync_errc::invalid_request,
                  "scope '" + std::string{scope}
                    + "' may hold only letters, digits and _ . : @ -");
  return {};
}

sync_error validate_pattern(std::string_view pattern) {
  if (pattern == "*")
    return {};
  auto err = validate_scope(stem(pattern));
  if (!err.ok())
    err.message = "pattern '" + std::string{pattern}
                  + "': a scope name or a prefix followed by '*'; " + err.message;
  return err;
}

bool pattern_matches(std::string_view pattern, std::string_view scope) {
  return is_prefix(pattern) ? starts_with(scope, stem(pattern)) : pattern == scope;
}

bool pattern_covers(std::string_view a, std::string_view b) {
  if (!is_prefix(a))
    return a == b;
  return starts_with(stem(b), stem(a));
}

std::optional<std::string> pattern_intersection(std::string_view a, std::string_view b) {
  if (pattern_covers(a, b))
    return std::string{b};
  if (pattern_covers(b, a))
    return std::string{a};
  return std::nullopt; // two names, or prefixes neither of which extends the other
}

const std::string* scope_field(const scope_rules& rules, std::string_view type) {
  for (auto& r : rules)
    if (r.type == type)
      return &r.field;
  return nullptr;
}

sync_error derive_scope_of_json(const scope_rules& rules, std::string_view type,
                                const nlohmann::json& data, std::string& out) {
  auto field = scope_field(rules, type);
  if (!field) {
    out = default_scope;
    return {};
  }
  auto needs = [&] {
    return "an entity of type '" + std::string{type} + "' names its scope in field '"
           + *field + "', which must be a scope name (a string)";
  };
  if (!data.is_object())
    return fail(sync_errc::invalid_request, needs());
  auto it = data.find(*field);
  if (it == data.end() || !it->is_string())
    return fail(sync_errc::invalid_request, needs());
  auto& name = it->get_ref<const std::string&>();
  if (auto err = validate_scope(name); !err.ok())
    return fail(sync_errc::invalid_request, needs() + ": " + err.message);
  out = name;
  return {};
}

sync_error derive_scope(const scope_rules& rules, std::string_view type,
                        std::string_view data, std::string& out) {
  if (!scope_field(rules, type)) {
    out = default_scope;
    return {};
  }
  auto json = nlohmann::json::parse(data, nullptr, false);
  return derive_scope_of_json(rules, type, json, out);
}

grants all_grants() {
  return {grant{"*", true}};
}

bool can_read(const grants& g, std::string_view scope) {
  return std::any_of(g.begin(), g.end(),
                     [&](const grant& x) { return pattern_matches(x.pattern, scope); });
}

bool can_write(const grants& g, std::string_view scope) {
  return std::any_of(g.begin(), g.end(), [&](const grant& x) {
    return x.write && pattern_matches(x.pattern, scope);
  });
}

bool parse_grant(std::string_view text, grant& out) {
  grant g;
  if (starts_with(text, "read:"))
    g.pattern = text.substr(5);
  else if (starts_with(text, "write:"))
    g = grant{std::string{text.substr(6)}, true};
  else
    return false;
  if (!validate_pattern(g.pattern).ok())
    return false;
  out = std::move(g);
  return true;
}

std::string to_string(const grant& g) {
  return (g.write ? "write:" : "read:") + g.pattern;
}

std::vector<std::string> minimal_patterns(std::vector<std::string> ps) {
  std::sort(ps.begin(), ps.end());
  ps.erase(std::unique(ps.begin(), ps.end()), ps.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    bool covered = false;
    for (std::size_t j = 0; j < ps.size() && !covered; ++j)
      covered = j != i && pattern_covers(ps[j], ps[i]);
    if (!covered)
      out.push_back(ps[i]);
  }
  return out;
}

std::vector<std::string> read_patterns(const grants& g) {
  std::vector<std::string> out;
  for (auto& x : g)
    out.push_back(x.pattern);
  return minimal_patterns(std::move(out));
}

std::vector<std::string> readable_part(const grants& g, std::string_view pattern) {
  std::vector<std::string> out;
  for (auto& x : g)
    if (auto part = pattern_intersection(x.pattern, pattern))
      out.push_back(std::move(*part));
  return minimal_patterns(std::move(out));
}

} // namespace memsync
