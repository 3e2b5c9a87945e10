#include "node/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

namespace memsync {

namespace {

using namespace std::string_literals;

const std::string duration_error = "expected a duration with a unit (ns, us, ms, s, min, "
                                   "h), got '";

// Largest unit first, so formatting picks the most readable exact unit.
constexpr std::pair<std::string_view, int64_t> unit_table[] = {
  {"h", 3'600'000'000'000}, {"min", 60'000'000'000}, {"s", 1'000'000'000},
  {"ms", 1'000'000},        {"us", 1'000},           {"ns", 1},
};

const char* kind_name(option_kind kind) {
  static constexpr const char* names[] = {"string", "integer", "boolean", "duration",
                                          "list"};
  return names[static_cast<int>(kind)];
}

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos)
    return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool is_comment_start(char c) {
  return c == '#' || c == ';';
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// std::from_chars rejects a leading '+', which the INI syntax allows.
std::errc parse_int(std::string_view s, int64_t& out) {
  if (s.size() > 1 && s[0] == '+' && std::isdigit(static_cast<unsigned char>(s[1])))
    s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && ptr != s.data() + s.size() ? std::errc::invalid_argument
                                                         : ec;
}

// Exact (round-trips through parse_duration), in the largest fitting unit.
std::string format_duration(int64_t ns) {
  for (auto [unit, factor] : unit_table)
    if (ns % factor == 0 && (ns != 0 || factor == 1))
      return std::to_string(ns / factor) + std::string{unit};
  return {}; // unreachable: factor 1 always divides
}

// Each escape as (decoded character, letter after the backslash).
constexpr std::pair<char, char> escapes[] = {{'"', '"'},
                                             {'\\', '\\'},
                                             {'\n', 'n'},
                                             {'\t', 't'}};

const std::pair<char, char>* find_escape(char c, bool by_letter) {
  for (auto& e : escapes)
    if ((by_letter ? e.second : e.first) == c)
      return &e;
  return nullptr;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto* e = find_escape(c, false);
    out += e ? "\\"s + e->second : std::string{c};
  }
  return out + '"';
}

// A value as written: `source` is the original text (for messages), `text` the
// decoded content (escapes resolved, quotes removed).
struct raw_value {
  bool quoted = false;
  std::string source;
  std::string text;
};

// Decodes the string opening at s[0] == '"'; returns what follows the closing quote.
std::string_view decode_quoted(std::string_view s, std::string& out) {
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '"')
      return s.substr(i + 1);
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size())
      break;
    auto* e = find_escape(s[i], true);
    if (!e)
      throw std::invalid_argument("unknown escape '\\"s + s[i] + "' in string");
    out += e->first;
  }
  throw std::invalid_argument("unterminated string");
}

// The command line has no comments: all text after '=' is the value.
raw_value lex_value(std::string_view s, bool command_line) {
  raw_value v;
  s = trim(s);
  if (!s.empty() && s[0] == '"') {
    auto after = decode_quoted(s, v.text);
    auto rest = trim(after);
    if (!rest.empty() && (command_line || !is_comment_start(rest[0])))
      throw std::invalid_argument("unexpected text after closing quote");
    v.quoted = true;
    v.source = s.substr(0, s.size() - after.size());
    return v;
  }
  if (!command_line) {
    s = trim(s.substr(0, std::min(s.find('#'), s.find(';'))));
    if (s.empty())
      throw std::invalid_argument("missing value");
  }
  v.source = v.text = s;
  return v;
}

// `overflow`: the text did not even fit in int64_t.
void check_range(int64_t n, bool overflow, const option_spec& spec,
                 const std::string& text, std::string (*fmt)(int64_t)) {
  if (overflow || n < spec.min || n > spec.max)
    throw std::invalid_argument("value " + text + " out of range [" + fmt(spec.min) + ", "
                                + fmt(spec.max) + "]");
}

void check_string(const option_spec& spec, const raw_value& raw, bool bare_ok) {
  if (!raw.quoted && !bare_ok)
    throw std::invalid_argument("strings must be quoted, got '" + raw.source + "'");
  const auto& cs = spec.choices;
  if (cs.empty() || std::find(cs.begin(), cs.end(), raw.text) != cs.end())
    return;
  std::string reason = "expected one of ";
  for (size_t i = 0; i < cs.size(); ++i)
    reason += (i ? ", " : "") + quote(cs[i]);
  throw std::invalid_argument(reason + ", got " + quote(raw.text));
}

// `["a", "b"]` (quoted strings, comma-separated), or on the command line
// (`bare_ok`) also `a,b`. Throws std::invalid_argument.
std::vector<std::string> parse_list(const raw_value& raw, bool bare_ok) {
  std::vector<std::string> out;
  auto s = trim(raw.source);
  if (raw.quoted || s.empty() || s.front() != '[') {
    if (!bare_ok || raw.quoted)
      throw std::invalid_argument("expected a list such as [\"a\", \"b\"], got '"
                                  + raw.source + "'");
    for (std::string_view rest = s; !rest.empty();) {
      auto item = trim(rest.substr(0, rest.find(',')));
      rest.remove_prefix(std::min(rest.size(), rest.find(',') == std::string_view::npos
                                                 ? rest.size()
                                                 : rest.find(',') + 1));
      if (item.empty())
        throw std::invalid_argument("empty item in list '" + raw.source + "'");
      out.emplace_back(item);
    }
    return out;
  }
  if (s.back() != ']')
    throw std::invalid_argument("missing ']' at the end of list '" + raw.source + "'");
  auto rest = trim(s.substr(1, s.size() - 2));
  while (!rest.empty()) {
    if (rest[0] != '"')
      throw std::invalid_argument("list items must be quoted strings, in '" + raw.source
                                  + "'");
    std::string item;
    rest = trim(decode_quoted(rest, item));
    out.push_back(std::move(item));
    if (rest.empty())
      break;
    if (rest[0] != ',')
      throw std::invalid_argument("expected ',' between list items, in '" + raw.source
                                  + "'");
    rest = trim(rest.substr(1));
    if (rest.empty())
      throw std::invalid_argument("trailing ',' in list '" + raw.source + "'");
  }
  return out;
}

// Returns the number (integer, 0/1 or ns) or throws std::invalid_argument.
int64_t check_value(const option_spec& spec, const raw_value& raw, bool bare_ok) {
  int64_t n = 0;
  switch (spec.kind) {
    case option_kind::string: check_string(spec, raw, bare_ok); return 0;
    case option_kind::boolean:
      if (raw.quoted || (raw.text != "true" && raw.text != "false"))
        throw std::invalid_argument("expected true or false, got '" + raw.source + "'");
      return raw.text == "true";
    case option_kind::integer: {
      auto ec = raw.quoted ? std::errc::invalid_argument : parse_int(raw.text, n);
      bool overflow = ec == std::errc::result_out_of_range;
      if (ec != std::errc{} && !overflow)
        throw std::invalid_argument("expected an integer, got '" + raw.source + "'");
      check_range(n, overflow, spec, raw.text,
                  [](int64_t i) { return std::to_string(i); });
      return n;
    }
    case option_kind::string_list: parse_list(raw, bare_ok); return 0;
    case option_kind::duration:
      if (raw.quoted) // parse_duration would accept the decoded text
        throw std::invalid_argument(duration_error + raw.source + "'");
      n = parse_duration(raw.text).count();
      check_range(n, false, spec, raw.text, format_duration);
      return n;
  }
  return n;
}

// Declares the option; returns it so the caller can add bounds or choices.
option_spec& add_spec(config_schema& schema, std::vector<option_spec>& options,
                      std::string name, option_kind kind, std::string def,
                      std::string help) {
  if (name.find('.') == std::string::npos || schema.find(name))
    throw std::logic_error("config schema: bad or duplicate option name '" + name + "'");
  auto& spec = options.emplace_back();
  spec.name = std::move(name);
  spec.kind = kind;
  spec.default_value = std::move(def);
  spec.help = std::move(help);
  return spec;
}

} // namespace

std::chrono::nanoseconds parse_duration(const std::string& text) {
  size_t digits_begin = text.find_first_not_of("+-") == 1 ? 1 : 0;
  auto digits_end = std::min(text.find_first_not_of("0123456789", digits_begin),
                             text.size());
  auto unit = std::string_view{text}.substr(digits_end);
  auto entry = std::find_if(std::begin(unit_table), std::end(unit_table),
                            [&](auto& e) { return e.first == unit; });
  if (digits_end == digits_begin || entry == std::end(unit_table))
    throw std::invalid_argument(duration_error + text + "'");
  int64_t count = 0;
  auto limit = INT64_MAX / entry->second;
  if (parse_int(std::string_view{text}.substr(0, digits_end), count) != std::errc{}
      || count > limit || count < -limit)
    throw std::invalid_argument("duration '" + text + "' is too large");
  return std::chrono::nanoseconds{count * entry->second};
}

config_schema& config_schema::add_string(std::string name, std::string def,
                                         std::string help,
                                         std::vector<std::string> choices) {
  add_spec(*this, options_, std::move(name), option_kind::string, quote(def),
           std::move(help))
    .choices
    = std::move(choices);
  return *this;
}

config_schema& config_schema::add_integer(std::string name, int64_t def, int64_t min,
                                          int64_t max, std::string help) {
  auto& spec = add_spec(*this, options_, std::move(name), option_kind::integer,
                        std::to_string(def), std::move(help));
  spec.min = min;
  spec.max = max;
  return *this;
}

config_schema& config_schema::add_boolean(std::string name, bool def, std::string help) {
  add_spec(*this, options_, std::move(name), option_kind::boolean, def ? "true" : "false",
           std::move(help));
  return *this;
}

config_schema& config_schema::add_duration(std::string name, std::chrono::nanoseconds def,
                                           std::chrono::nanoseconds min,
                                           std::chrono::nanoseconds max,
                                           std::string help) {
  auto& spec = add_spec(*this, options_, std::move(name), option_kind::duration,
                        format_duration(def.count()), std::move(help));
  spec.min = min.count();
  spec.max = max.count();
  return *this;
}

config_schema& config_schema::add_string_list(std::string name,
                                              std::vector<std::string> def,
                                              std::string help) {
  std::string text = "[";
  for (size_t i = 0; i < def.size(); ++i)
    text += (i ? ", " : "") + quote(def[i]);
  add_spec(*this, options_, std::move(name), option_kind::string_list, text + "]",
           std::move(help));
  return *this;
}

const option_spec* config_schema::find(const std::string& name) const {
  auto i = std::find_if(options_.begin(), options_.end(),
                        [&](const option_spec& o) { return o.name == name; });
  return i == options_.end() ? nullptr : &*i;
}

std::string config_schema::describe() const {
  std::vector<const option_spec*> sorted;
  for (auto& o : options_)
    sorted.push_back(&o);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->name < b->name; });
  std::string out;
  for (auto* o : sorted)
    out += "  " + o->name + "  (" + kind_name(o->kind) + ", default: " + o->default_value
           + ")  " + o->help + "\n";
  return out;
}

const config_values::value& config_values::at(const std::string& name,
                                              option_kind kind) const {
  auto i = values_.find(name);
  if (i == values_.end())
    throw std::logic_error("config: undeclared option '" + name + "'");
  if (i->second.kind != kind)
    throw std::logic_error("config: option '" + name + "' is a "
                           + kind_name(i->second.kind) + ", not a " + kind_name(kind));
  return i->second;
}

const std::string& config_values::get_string(const std::string& name) const {
  return at(name, option_kind::string).text;
}
int64_t config_values::get_integer(const std::string& name) const {
  return at(name, option_kind::integer).number;
}
bool config_values::get_boolean(const std::string& name) const {
  return at(name, option_kind::boolean).number != 0;
}

std::chrono::nanoseconds config_values::get_duration(const std::string& name) const {
  return std::chrono::nanoseconds{at(name, option_kind::duration).number};
}

const std::vector<std::string>&
config_values::get_string_list(const std::string& name) const {
  return at(name, option_kind::string_list).list;
}

// is_set and origin accept any kind: look the kind up first so `at` passes.
bool config_values::is_set(const std::string& name) const {
  auto i = values_.find(name);
  return at(name, i == values_.end() ? option_kind::string : i->second.kind).explicit_set;
}

const std::string& config_values::origin(const std::string& name) const {
  auto i = values_.find(name);
  return at(name, i == values_.end() ? option_kind::string : i->second.kind).origin;
}

// Fills a config_values (whose internals it may touch) from defaults, file
// and overrides, in that order, so later sources win.
class config_loader {
public:
  explicit config_loader(const config_schema& schema) : schema_(schema) {}

  config_values run(const std::string& path, const std::vector<std::string>& overrides) {
    for (auto& spec : schema_.options())
      load_default(spec);
    if (!path.empty())
      load_file(path);
    for (auto& arg : overrides)
      load_override(arg);
    return std::move(result_);
  }

private:
  void set(const option_spec& spec, const raw_value& raw, bool bare_ok,
           std::string origin) {
    auto number = check_value(spec, raw, bare_ok);
    bool is_default = origin == "default";
    result_.values_[spec.name] = {spec.kind, raw.text,          number,
                                  {},        std::move(origin), !is_default};
    if (spec.kind == option_kind::string_list)
      result_.values_[spec.name].list = parse_list(raw, bare_ok);
  }

  // Defaults go through the same parser, so a bad schema fails loudly.
  void load_default(const option_spec& spec) {
    try {
      set(spec, lex_value(spec.default_value, false), false, "default");
    } catch (const std::invalid_argument& e) {
      throw std::logic_error("config schema: default of " + spec.name + ": " + e.what());
    }
  }

  void load_override(const std::string& arg) {
    auto error = [&](const std::string& reason) {
      return config_error("command line: " + arg + ": " + reason);
    };
    auto eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string::npos)
      throw error("expected --section.key=value");
    auto* spec = schema_.find(arg.substr(2, eq - 2));
    if (!spec)
      throw error("unknown option");
    try {
      set(*spec, lex_value(std::string_view{arg}.substr(eq + 1), true), true,
          "command line");
    } catch (const std::invalid_argument& e) {
      throw error(e.what());
    }
  }

  static bool read_file(const std::string& path, std::string& out) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f)
      return false;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, f))
      out.append(buf, n);
    bool ok = !std::ferror(f); // e.g. EISDIR when path is a directory
    std::fclose(f);
    return ok;
  }

  void load_file(const std::string& path) {
    std::string content;
    if (!read_file(path, content))
      throw config_error(path + ": cannot read config file (" + std::strerror(errno)
                         + ")");
    std::string section;
    std::map<std::string, int> seen; // name -> line, to reject duplicates
    std::string_view rest = content;
    for (int line_no = 1; !rest.empty(); ++line_no) {
      auto line = rest.substr(0, rest.find('\n'));
      rest.remove_prefix(std::min(line.size() + 1, rest.size()));
      if (line.ends_with('\r'))
        line.remove_suffix(1);
      parse_line(path + ":" + std::to_string(line_no), line_no, trim(line), section,
                 seen);
    }
  }

  void parse_line(const std::string& where, int line_no, std::string_view line,
                  std::string& section, std::map<std::string, int>& seen) {
    auto error = [&](const std::string& reason) {
      return config_error(where + ": " + reason);
    };
    if (line.empty() || is_comment_start(line[0]))
      return;
    if (line[0] == '[') {
      section = parse_section(line, error);
      return;
    }
    auto key = std::string{line.substr(
      0, std::find_if_not(line.begin(), line.end(), is_key_char) - line.begin())};
    auto after = trim(line.substr(key.size()));
    if (key.empty())
      throw error("expected 'key = value', '[section]' or a comment");
    if (after.empty() || after[0] != '=')
      throw error("expected '=' after key '" + key + "'");
    if (section.empty())
      throw error(key + ": key outside any section");
    auto name = section + "." + key;
    auto* spec = schema_.find(name);
    if (!spec)
      throw error(name + ": unknown option");
    if (auto [it, fresh] = seen.emplace(name, line_no); !fresh)
      throw error(name + ": already set at line " + std::to_string(it->second));
    try {
      set(*spec, lex_value(after.substr(1), false), false, where);
    } catch (const std::invalid_argument& e) {
      throw error(name + ": " + e.what());
    }
  }

  template <class Error>
  std::string parse_section(std::string_view line, const Error& error) const {
    auto close = line.find(']');
    if (close == std::string_view::npos)
      throw error("missing ']' in section header");
    auto name = std::string{trim(line.substr(1, close - 1))};
    auto tail = trim(line.substr(close + 1));
    if (!tail.empty() && !is_comment_start(tail[0]))
      throw error("unexpected text after section header");
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return is_key_char(c) || c == '.';
        }))
      throw error("invalid section name '" + name + "'");
    // A section is known if some option is declared directly inside it.
    if (std::none_of(schema_.options().begin(), schema_.options().end(), [&](auto& o) {
          return o.name.substr(0, o.name.rfind('.')) == name;
        }))
      throw error(name + ": unknown section");
    return name;
  }

  const config_schema& schema_;
  config_values result_;
};

config_values load_config(const config_schema& schema, const std::string& path,
                          const std::vector<std::string>& overrides) {
  return config_loader{schema}.run(path, overrides);
}

} // namespace memsync
