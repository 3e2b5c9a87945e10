// The Chrome trace event export of the trace tool (see trace_model.hpp).
#include <map>

#include <nlohmann/json.hpp>

#include "tools/trace/trace_model.hpp"

namespace memsync::trace {

using nlohmann::json;

json chrome(const trace_set& set) {
  json events = json::array();
  int64_t t0 = set.events.empty() ? 0 : set.events.front().t_ns;
  std::map<std::pair<std::size_t, std::string>, int> tids;
  for (std::size_t f = 0; f < set.files.size(); ++f)
    events.push_back(
      {{"name", "process_name"},
       {"ph", "M"},
       {"pid", f + 1},
       {"tid", 0},
       {"args", {{"name", set.files[f].node + " (" + set.files[f].role + ")"}}}});
  for (auto& ev : set.events) {
    auto key = std::make_pair(ev.file, ev.actor);
    auto [it, added] = tids.try_emplace(key, static_cast<int>(tids.size()) + 1);
    if (added)
      events.push_back({{"name", "thread_name"},
                        {"ph", "M"},
                        {"pid", ev.file + 1},
                        {"tid", it->second},
                        {"args", {{"name", ev.actor}}}});
    json args = {{"from", ev.from}};
    if (!ev.peer.empty())
      args["client"] = ev.peer;
    if (ev.wait_ns >= 0)
      args["mailbox_wait_us"] = ev.wait_ns / 1000.0;
    if (ev.version)
      args["version"] = ev.version;
    if (!ev.items.empty()) {
      json items = json::array();
      for (auto& i : ev.items) {
        json x = {{"trace", hex(i.trace_id)}, {"entity", i.entity}};
        if (i.version)
          x["version"] = i.version;
        if (i.mutation_id)
          x["mutation_id"] = i.mutation_id;
        items.push_back(std::move(x));
      }
      args["changes"] = std::move(items);
    }
    events.push_back({{"name", ev.kind},
                      {"cat", ev.actor},
                      {"ph", "X"},
                      {"ts", (ev.t_ns - t0) / 1000.0},
                      {"dur", ev.dur_ns / 1000.0},
                      {"pid", ev.file + 1},
                      {"tid", it->second},
                      {"args", std::move(args)}});
  }
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

} // namespace memsync::trace
