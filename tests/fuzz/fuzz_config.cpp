// Fuzzes the strict INI loader: any file text and any command-line override
// either loads or fails with a config_error; nothing else escapes. Input:
// FILE TEXT \0 OVERRIDE \0 OVERRIDE ... (overrides as "--section.key=value").
#include <cstdio>
#include <string>
#include <unistd.h>

#include "node/config/config.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace memsync;
using namespace std::chrono_literals;

namespace {

config_schema make_schema() {
  config_schema s;
  s.add_string("client.id", "", "a string")
    .add_string("local-db.synchronous", "normal", "a choice", {"off", "normal", "full"})
    .add_integer("server.port", 7878, 1, 65535, "an integer")
    .add_boolean("trace.on", false, "a boolean")
    .add_duration("flush.debounce", 100ms, 0ns, 1h, "a duration");
  return s;
}

const std::string& scratch_file() {
  static const std::string path = [] {
    std::string p = "/tmp/memsync-fuzz-config-" + std::to_string(getpid()) + ".ini";
    return p;
  }();
  return path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto schema = make_schema();
  auto fields = fuzz::split(data, size, '\0', 8);
  auto& path = scratch_file();
  if (auto* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(fields[0].data(), 1, fields[0].size(), f);
    std::fclose(f);
  }
  std::vector<std::string> overrides;
  for (size_t i = 1; i < fields.size(); ++i)
    overrides.emplace_back(fields[i]);
  try {
    auto v = load_config(schema, path, overrides);
    (void)v.get_string("client.id");
    (void)v.get_duration("flush.debounce");
  } catch (const config_error&) {
    // The expected answer to bad input.
  }
  try {
    (void)parse_duration(std::string{fields[0]});
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
