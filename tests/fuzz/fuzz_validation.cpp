// Fuzzes the validation and canonicalization of changes as a peer sends
// them. Input: KIND-BYTE ID \0 TYPE \0 DATA. Checks: nothing crashes or
// overflows the stack; an accepted change's canonical form is accepted
// again unchanged (canonicalization is idempotent) and stays within limits.
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "messages/validation.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace memsync;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  auto fields = fuzz::split(data + 1, size - 1, '\0', 3);
  if (fields.size() != 3)
    return 0;
  // Small caps, so short inputs reach them.
  data_limits limits{256, 16};
  change c;
  c.kind = static_cast<change_kind>(data[0] % 4);
  c.id = std::string{fields[0]};
  c.type = std::string{fields[1]};
  c.data = std::string{fields[2]};
  (void)check_limits(c.data, limits);
  nlohmann::json parsed;
  (void)parse_object(c.data, limits, parsed);
  if (!canonicalize_change(c, limits).ok())
    return 0;
  if (c.kind != change_kind::del && c.data.size() > limits.max_bytes)
    std::abort(); // accepted above the size limit
  auto again = c;
  if (!canonicalize_change(again, limits).ok() || again.data != c.data)
    std::abort(); // the canonical form is not a fixed point
  entity e{c.id, c.type, c.data, 1, c.kind == change_kind::del};
  (void)validate_entity(e, limits);
  return 0;
}
