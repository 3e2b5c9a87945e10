// Splits a fuzzer's input into fields, so one byte string can drive a call
// with several arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace memsync::fuzz {

/// The input cut at every `sep`, at most `max_fields` fields (the last one
/// keeps the rest, separators included).
inline std::vector<std::string_view> split(const uint8_t* data, size_t size, char sep,
                                           size_t max_fields) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_fields) {
    auto pos = in.find(sep);
    if (pos == std::string_view::npos)
      break;
    out.push_back(in.substr(0, pos));
    in.remove_prefix(pos + 1);
  }
  out.push_back(in);
  return out;
}

} // namespace memsync::fuzz
