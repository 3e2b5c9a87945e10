#include "actors/server/scope_rules_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "messages/validation.hpp"

namespace memsync {

scope_rules parse_scope_rules(std::istream& in, const std::string& origin) {
  scope_rules out;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (auto hash = line.find('#'); hash != std::string::npos)
      line.erase(hash);
    std::istringstream words{line};
    std::string type, field, extra;
    if (!(words >> type))
      continue;
    auto where = origin + ":" + std::to_string(lineno) + ": ";
    if (auto err = validate_type(type); !err.ok())
      throw std::invalid_argument(where + "type '" + type + "': " + err.message);
    if (!(words >> field))
      throw std::invalid_argument(where + "type '" + type
                                  + "': expected 'TYPE FIELD' (the field is missing)");
    if (words >> extra)
      throw std::invalid_argument(where + "expected 'TYPE FIELD', got more after '"
                                  + field + "': '" + extra + "'");
    if (scope_field(out, type))
      throw std::invalid_argument(where + "type '" + type
                                  + "' listed twice (one rule per type)");
    out.push_back({std::move(type), std::move(field)});
  }
  return out;
}

scope_rules load_scope_rules(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    throw std::invalid_argument(path + ": cannot read scopes file");
  return parse_scope_rules(in, path);
}

} // namespace memsync
