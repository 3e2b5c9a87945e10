// Strict INI configuration: every option is declared in a schema; a file or a
// command-line override that names an unknown key, gives a bad value, a
// duration without a unit or a number out of range is an error that names the
// file, the line and the key. (CAF's own parser silently ignores all of these.)
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace memsync {

/// Thrown for any invalid configuration. `what()` reads
/// "FILE:LINE: section.key: reason" (or "command line: --section.key=value:
/// reason").
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class option_kind { string, integer, boolean, duration, string_list };

/// One declared option, addressed as "section.key".
struct option_spec {
  std::string name; ///< "section.key"
  option_kind kind = option_kind::string;
  std::string default_value; ///< in file syntax, e.g. "100ms", "\"x\"", "42"
  std::string help;
  int64_t min = INT64_MIN; ///< integer: inclusive bounds; duration: in ns
  int64_t max = INT64_MAX;
  std::vector<std::string> choices; ///< string: allowed values (empty: any)
};

/// The set of options a program accepts.
class config_schema {
public:
  config_schema& add_string(std::string name, std::string def, std::string help,
                            std::vector<std::string> choices = {});
  config_schema& add_integer(std::string name, int64_t def, int64_t min, int64_t max,
                             std::string help);
  config_schema& add_boolean(std::string name, bool def, std::string help);
  config_schema& add_duration(std::string name, std::chrono::nanoseconds def,
                              std::chrono::nanoseconds min, std::chrono::nanoseconds max,
                              std::string help);
  /// A list of strings, written `["a", "b"]` (on the command line also
  /// `a,b`).
  config_schema& add_string_list(std::string name, std::vector<std::string> def,
                                 std::string help);

  const option_spec* find(const std::string& name) const;
  const std::vector<option_spec>& options() const { return options_; }

  /// One line per option: name, kind, default and help.
  std::string describe() const;

private:
  std::vector<option_spec> options_;
};

/// Validated option values; every declared option has a value (its default
/// when neither the file nor the command line set it).
class config_values {
public:
  /// REQUIRES: `name` is declared with the matching kind (else std::logic_error).
  const std::string& get_string(const std::string& name) const;
  int64_t get_integer(const std::string& name) const;
  bool get_boolean(const std::string& name) const;
  std::chrono::nanoseconds get_duration(const std::string& name) const;
  const std::vector<std::string>& get_string_list(const std::string& name) const;

  /// True if the file or the command line set the option explicitly.
  bool is_set(const std::string& name) const;

  /// Where the value came from: "FILE:LINE", "command line" or "default".
  const std::string& origin(const std::string& name) const;

private:
  friend class config_loader;
  struct value {
    option_kind kind;
    std::string text;              // decoded string value
    int64_t number = 0;            // integer, boolean (0/1) or duration in ns
    std::vector<std::string> list; // string_list
    std::string origin = "default";
    bool explicit_set = false;
  };
  const value& at(const std::string& name, option_kind kind) const;
  std::map<std::string, value> values_;
};

/// Loads the file at `path` (if not empty), then applies `overrides` given as
/// "--section.key=value" arguments, validating everything against `schema`.
/// Throws config_error on the first problem.
config_values load_config(const config_schema& schema, const std::string& path,
                          const std::vector<std::string>& overrides = {});

/// Parses a duration literal such as "250ms", "1s", "2min", "500us", "10ns",
/// "1h". Throws std::invalid_argument (with a reason) if it has no unit or is
/// malformed.
std::chrono::nanoseconds parse_duration(const std::string& text);

} // namespace memsync
