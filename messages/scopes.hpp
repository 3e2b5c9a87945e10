// Scopes and grants: which part of the data an entity belongs to and which
// parts a token may read or write. Every entity belongs to exactly one scope,
// derived from its data by the server's rules (the scopes file: an entity of
// TYPE belongs to the scope named by the string value of its top-level field
// FIELD; types without a rule belong to `default_scope`). A token's grants
// name scopes by pattern: a scope name, or a prefix followed by '*' ("team-*",
// "*"). Both sides use these functions: the server to enforce, the client to
// say no at once and to know which of its entities a scope holds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json_fwd.hpp>

#include "messages/errors.hpp"

namespace memsync {

/// The scope of every entity whose type has no rule.
inline constexpr std::string_view default_scope = "default";

/// Scope names: 1 to 128 bytes of [A-Za-z0-9_.:@-] (no '*': that is for
/// patterns).
constexpr std::size_t max_scope_bytes = 128;
sync_error validate_scope(std::string_view scope);

/// A scope name, or a prefix of one followed by '*' ("*" alone: every scope).
sync_error validate_pattern(std::string_view pattern);

/// True if `scope` is named by `pattern`.
bool pattern_matches(std::string_view pattern, std::string_view scope);

/// True if every scope `b` names is named by `a` too.
bool pattern_covers(std::string_view a, std::string_view b);

/// The pattern naming exactly the scopes both name, or none: prefixes
/// intersect in the longer one, a name with a pattern in the name.
std::optional<std::string> pattern_intersection(std::string_view a, std::string_view b);

/// One line of the scopes file.
struct scope_rule {
  std::string type;
  std::string field;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scope_rule& x) {
  return f(caf::meta::type_name("memsync::scope_rule"), x.type, x.field);
}

using scope_rules = std::vector<scope_rule>;

/// The field that names the scope of entities of `type`, or null.
const std::string* scope_field(const scope_rules& rules, std::string_view type);

/// The scope of an entity of `type` with data `data` (a JSON object). A
/// ruled type whose field is missing, not a string or not a valid scope
/// name has none: `invalid_request` saying which field it needs.
sync_error derive_scope_of_json(const scope_rules& rules, std::string_view type,
                                const nlohmann::json& data, std::string& out);
/// The same from data as text (parsed only for a ruled type).
sync_error derive_scope(const scope_rules& rules, std::string_view type,
                        std::string_view data, std::string& out);

/// One grant of a token: read, or write (which implies read), on the scopes
/// `pattern` names.
struct grant {
  std::string pattern;
  bool write = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, grant& x) {
  return f(caf::meta::type_name("memsync::grant"), x.pattern, x.write);
}

using grants = std::vector<grant>;

/// What a tokens-file line without grants means: today's files keep working.
grants all_grants();

bool can_read(const grants& g, std::string_view scope);
bool can_write(const grants& g, std::string_view scope);

/// "read:PATTERN" or "write:PATTERN"; false (and `out` unchanged) if `text`
/// is neither or its pattern is invalid.
bool parse_grant(std::string_view text, grant& out);
/// The grant as the tokens file writes it.
std::string to_string(const grant& g);

/// The patterns that name exactly the scopes both `pattern` and some grant
/// name: what a client that asks for `pattern` may read of it (empty:
/// nothing). Without duplicates or a pattern covered by another.
std::vector<std::string> readable_part(const grants& g, std::string_view pattern);

/// `patterns` without duplicates and without any pattern another covers.
std::vector<std::string> minimal_patterns(std::vector<std::string> patterns);

/// The scopes `g` may read (write implies read), as minimal patterns: a
/// client's known reads once its data was pulled under `g`.
std::vector<std::string> read_patterns(const grants& g);

/// One entry of a client's subscription, as a pull carries it: the scopes
/// `pattern` names, known up to server version `since` (0: the client holds
/// nothing of them yet).
struct scope_since {
  std::string pattern;
  uint64_t since = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scope_since& x) {
  return f(caf::meta::type_name("memsync::scope_since"), x.pattern, x.since);
}

inline bool operator==(const scope_since& a, const scope_since& b) {
  return a.pattern == b.pattern && a.since == b.since;
}

} // namespace memsync
