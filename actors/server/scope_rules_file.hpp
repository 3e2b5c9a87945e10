// The scopes file: the server's rules that give every entity its scope. One
// "TYPE FIELD" per line ('#' starts a comment): an entity of TYPE belongs to
// the scope named by the string value of its top-level field FIELD; types
// without a line belong to `default`. Read at start-up and on every reload.
#pragma once

#include <istream>
#include <string>

#include "messages/scopes.hpp"

namespace memsync {

/// Parses a scopes file's text, rules in file order. `origin` names it in
/// errors. Throws std::invalid_argument reading "ORIGIN:LINE: reason" for an
/// invalid type, a missing field, a type listed twice or extra words.
scope_rules parse_scope_rules(std::istream& in, const std::string& origin);

/// Reads and parses the file at `path`. Throws std::invalid_argument as
/// parse_scope_rules does, or when the file cannot be read.
scope_rules load_scope_rules(const std::string& path);

} // namespace memsync
