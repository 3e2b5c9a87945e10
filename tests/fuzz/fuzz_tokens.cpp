// Fuzzes the tokens file parser: any text either parses or fails with
// std::invalid_argument; every token of a parsed table maps to its client.
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "actors/server/token_table.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text{reinterpret_cast<const char*>(data), size};
  std::istringstream in{text};
  try {
    auto table = memsync::token_table::parse(in, "fuzz");
    // The first word of the first non-comment line is a token: a plain one
    // must name the client written after it.
    std::istringstream first{text.substr(0, text.find_first_of("#\n"))};
    std::string token, name;
    if ((first >> token >> name) && token.rfind("sha256:", 0) != 0
        && table.client_of(token) != name)
      std::abort();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
