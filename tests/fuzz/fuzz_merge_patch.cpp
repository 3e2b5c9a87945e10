// Fuzzes JSON merge patch composition with its defining property: when two
// patches compose, applying the composition equals applying both in turn,
// to any document. Input: DOCUMENT \n PATCH1 \n PATCH2 (JSON objects).
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "actors/common/merge_patch.hpp"
#include "tests/fuzz/fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = memsync::fuzz::split(data, size, '\n', 3);
  if (fields.size() != 3)
    return 0;
  auto parse = [](std::string_view text) {
    return nlohmann::json::parse(text, nullptr, /*allow_exceptions*/ false);
  };
  auto doc = parse(fields[0]);
  auto p1 = parse(fields[1]);
  auto p2 = parse(fields[2]);
  if (!doc.is_object() || !p1.is_object() || !p2.is_object())
    return 0;
  auto stepwise = doc;
  stepwise.merge_patch(p1);
  stepwise.merge_patch(p2);
  auto composed = p1;
  if (memsync::compose_merge_patches(composed, p2)) {
    auto at_once = doc;
    at_once.merge_patch(composed);
    if (at_once != stepwise)
      std::abort(); // the composition changed the outcome
  } else if (composed != p1) {
    std::abort(); // a refused composition must leave `earlier` untouched
  }
  return 0;
}
