#include "actors/common/merge_patch.hpp"

#include <nlohmann/json.hpp>

namespace memsync {

namespace {

// Can `later` be folded into `earlier` member by member?
bool composable(const nlohmann::json& earlier, const nlohmann::json& later) {
  for (auto it = later.begin(); it != later.end(); ++it) {
    if (!it->is_object())
      continue;
    auto prev = earlier.find(it.key());
    if (prev == earlier.end())
      continue;
    if (!prev->is_object() || !composable(*prev, *it))
      return false;
  }
  return true;
}

void compose(nlohmann::json& earlier, const nlohmann::json& later) {
  for (auto it = later.begin(); it != later.end(); ++it) {
    auto prev = earlier.find(it.key());
    if (it->is_object() && prev != earlier.end())
      compose(*prev, *it);
    else
      earlier[it.key()] = *it;
  }
}

} // namespace

bool compose_merge_patches(nlohmann::json& earlier, const nlohmann::json& later) {
  if (!earlier.is_object() || !later.is_object() || !composable(earlier, later))
    return false;
  compose(earlier, later);
  return true;
}

bool coalesce(change& earlier, const change& later) {
  switch (later.kind) {
    case change_kind::put:
    case change_kind::del:
      earlier.kind = later.kind;
      earlier.type = later.type;
      earlier.data = later.data;
      break;
    case change_kind::patch: {
      if (earlier.kind == change_kind::del)
        return false;
      auto doc = nlohmann::json::parse(earlier.data);
      auto patch = nlohmann::json::parse(later.data);
      if (earlier.kind == change_kind::put)
        doc.merge_patch(patch);
      else if (!compose_merge_patches(doc, patch))
        return false;
      earlier.data = doc.dump();
      break;
    }
  }
  earlier.seq = later.seq;
  earlier.trace = later.trace;
  return true;
}

} // namespace memsync
