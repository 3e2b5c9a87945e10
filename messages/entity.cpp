#include "messages/entity.hpp"

namespace memsync {

const char* to_string(change_kind x) {
  switch (x) {
    case change_kind::put: return "put";
    case change_kind::patch: return "patch";
    case change_kind::del: return "del";
  }
  return "invalid";
}

} // namespace memsync
