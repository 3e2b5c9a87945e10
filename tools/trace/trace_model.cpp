#include "tools/trace/trace_model.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace memsync::trace {

namespace {

using nlohmann::json;

std::string where(const std::string& name, int line) {
  return name + ":" + std::to_string(line);
}

int64_t get_int(const json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

std::string get_str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

/// Throws std::invalid_argument with a reason when the line is unusable.
event parse_msg(const json& j) {
  event ev;
  ev.actor = get_str(j, "actor");
  ev.kind = get_str(j, "kind");
  ev.from = get_str(j, "from");
  ev.peer = get_str(j, "peer");
  if (ev.actor.empty() || ev.kind.empty())
    throw std::invalid_argument("event without actor or kind");
  if (!j.contains("t_ns") || !j["t_ns"].is_number_integer())
    throw std::invalid_argument("event without an integer t_ns");
  ev.local_ns = ev.t_ns = j["t_ns"].get<int64_t>();
  ev.wait_ns = get_int(j, "wait_ns", -1);
  ev.dur_ns = get_int(j, "dur_ns", 0);
  ev.version = static_cast<uint64_t>(get_int(j, "version", 0));
  if (auto it = j.find("items"); it != j.end()) {
    if (!it->is_array())
      throw std::invalid_argument("items is not an array");
    for (auto& x : *it) {
      item i;
      if (!x.is_object() || !parse_hex(get_str(x, "trace"), i.trace_id))
        throw std::invalid_argument("item without a hex trace id");
      i.entity = get_str(x, "entity");
      i.version = static_cast<uint64_t>(get_int(x, "version", 0));
      i.mutation_id = static_cast<uint64_t>(get_int(x, "mid", 0));
      ev.items.push_back(std::move(i));
    }
  }
  return ev;
}

bool names(const event& ev, uint64_t trace_id) {
  return std::any_of(ev.items.begin(), ev.items.end(),
                     [&](const item& i) { return i.trace_id == trace_id; });
}

std::string ms(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", ns / 1e6);
  return buf;
}

std::string label(const trace_set& set, const event& ev) {
  std::string out = set.files[ev.file].node; // appends: g++ 12 warns falsely
  out += ' ';                                // (-Wrestrict) on a + chain
  out += ev.actor;
  if (!ev.peer.empty()) { // which client's session: its name is enough
    out += '(';
    out.append(ev.peer, 0, ev.peer.rfind('-'));
    out += ')';
  }
  return out;
}

} // namespace

std::string hex(uint64_t trace_id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(trace_id));
  return buf;
}

bool parse_hex(const std::string& text, uint64_t& out) {
  if (text.empty() || text.size() > 16)
    return false;
  uint64_t v = 0;
  for (char c : text) {
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      return false;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

void parse(std::istream& in, const std::string& name, trace_set& out) {
  auto index = out.files.size();
  out.files.push_back({});
  auto& file = out.files.back();
  file.path = name;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.empty())
      continue;
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      out.problems.push_back({where(name, lineno), "not a JSON object"});
      continue;
    }
    auto kind = get_str(j, "ev");
    try {
      if (kind == "meta") {
        file.node = get_str(j, "node");
        file.role = get_str(j, "role");
        file.mode = get_str(j, "mode");
        file.sample_every = get_int(j, "sample_every", 1);
      } else if (kind == "clock") {
        file.clocks.push_back(
          {get_int(j, "t_ns", 0), get_int(j, "offset_ns", 0), get_int(j, "rtt_ns", 0)});
      } else if (kind == "end") {
        file.ended = true;
        file.recorded = get_int(j, "recorded", 0);
        file.dropped = get_int(j, "dropped", 0);
      } else if (kind == "msg") {
        auto ev = parse_msg(j);
        ev.file = index;
        ev.line = lineno;
        out.events.push_back(std::move(ev));
        ++file.events;
      } else {
        out.problems.push_back({where(name, lineno), "unknown line kind '" + kind + "'"});
      }
    } catch (const std::exception& e) {
      out.problems.push_back({where(name, lineno), e.what()});
    }
  }
  if (file.node.empty()) {
    out.problems.push_back({name, "no header line: node unknown"});
    file.node = name;
  }
  if (!file.ended)
    out.problems.push_back(
      {name, "no final line: the node did not shut down cleanly (drops unknown)"});
}

trace_set load(const std::vector<std::string>& paths) {
  trace_set set;
  for (auto& p : paths) {
    std::ifstream in{p};
    if (!in) {
      set.problems.push_back({p, "cannot read"});
      continue;
    }
    parse(in, p, set);
  }
  align(set);
  return set;
}

summary summarize(std::vector<int64_t> v) {
  summary s;
  s.count = v.size();
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double p) {
    auto i = static_cast<std::size_t>(p * static_cast<double>(v.size()) + 0.999999);
    return v[std::min(v.size(), std::max<std::size_t>(i, 1)) - 1];
  };
  s.p50 = rank(0.5);
  s.p90 = rank(0.9);
  s.p99 = rank(0.99);
  s.max = v.back();
  return s;
}

std::vector<actor_stats> stats(const trace_set& set) {
  std::vector<std::pair<std::size_t, std::string>> order;
  std::map<std::pair<std::size_t, std::string>,
           std::pair<std::vector<int64_t>, std::vector<int64_t>>>
    samples;
  for (auto& ev : set.events) {
    auto key = std::make_pair(ev.file, ev.actor);
    auto [it, added] = samples.try_emplace(key);
    if (added)
      order.push_back(key);
    if (ev.wait_ns >= 0)
      it->second.first.push_back(ev.wait_ns);
    it->second.second.push_back(ev.dur_ns);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<actor_stats> out;
  for (auto& key : order) {
    auto& s = samples[key];
    actor_stats row;
    row.node = set.files[key.first].node;
    row.actor = key.second;
    row.messages = s.second.size();
    row.wait = summarize(s.first);
    row.handling = summarize(s.second);
    out.push_back(std::move(row));
  }
  return out;
}

std::string format_stats(const trace_set& set) {
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-24s %-16s %8s  %-33s  %s\n", "node", "actor",
                "messages", "mailbox wait ms p50/p90/p99/max (n)",
                "handling ms p50/p90/p99/max");
  out += buf;
  for (auto& r : stats(set)) {
    std::string wait = r.wait.count == 0 ? "unknown"
                                         : ms(r.wait.p50) + "/" + ms(r.wait.p90) + "/"
                                             + ms(r.wait.p99) + "/" + ms(r.wait.max)
                                             + " (" + std::to_string(r.wait.count) + ")";
    std::string handling = ms(r.handling.p50) + "/" + ms(r.handling.p90) + "/"
                           + ms(r.handling.p99) + "/" + ms(r.handling.max);
    std::snprintf(buf, sizeof(buf), "%-24s %-16s %8zu  %-33s  %s\n", r.node.c_str(),
                  r.actor.c_str(), r.messages, wait.c_str(), handling.c_str());
    out += buf;
  }
  return out;
}

uint64_t trace_of_entity(const trace_set& set, const std::string& entity) {
  uint64_t written = 0, committed = 0;
  for (auto& ev : set.events)
    for (auto& i : ev.items)
      if (i.entity == entity && i.trace_id != 0) {
        if (ev.actor == "memory_store" && ev.kind == "write")
          written = i.trace_id;
        else if (ev.actor == "replication_log" && ev.kind == "commit")
          committed = i.trace_id;
      }
  return written ? written : committed;
}

std::vector<step> path(const trace_set& set, uint64_t trace_id) {
  // The version(s) the change got, from the server's commit.
  std::set<std::pair<std::string, uint64_t>> versions;
  std::vector<const event*> commits;
  for (auto& ev : set.events)
    if (ev.kind == "commit" && names(ev, trace_id)) {
      commits.push_back(&ev);
      for (auto& i : ev.items)
        if (i.trace_id == trace_id && i.version)
          versions.insert({i.entity, i.version});
    }
  // The first poke after each commit that covers its version.
  std::set<uint64_t> poke_versions;
  for (auto* c : commits) {
    uint64_t v = 0;
    for (auto& i : c->items)
      if (i.trace_id == trace_id)
        v = std::max(v, i.version);
    for (auto& ev : set.events)
      if (ev.file == c->file && ev.kind == "poke_sent" && ev.t_ns >= c->t_ns
          && ev.version >= v) {
        poke_versions.insert(ev.version);
        break;
      }
  }
  std::vector<step> out;
  for (auto& ev : set.events) {
    std::string note;
    bool hit = false;
    for (auto& i : ev.items) {
      bool mine = i.trace_id == trace_id
                  || (i.trace_id == 0 && versions.count({i.entity, i.version}));
      if (!mine)
        continue;
      hit = true;
      note = i.entity;
      if (i.mutation_id)
        note += " mutation " + std::to_string(i.mutation_id);
      if (i.version)
        note += " version " + std::to_string(i.version);
      break;
    }
    if (!hit && (ev.kind == "poke" || ev.kind == "poke_sent")
        && poke_versions.count(ev.version)) {
      hit = true;
      note = "poke version " + std::to_string(ev.version);
    }
    if (hit)
      out.push_back({&ev, std::move(note)});
  }
  return out;
}

std::string format_path(const trace_set& set, const std::vector<step>& steps) {
  if (steps.empty())
    return "no recorded step\n";
  std::string out;
  char buf[320];
  std::snprintf(buf, sizeof(buf), "%4s %9s %9s %9s %9s  %-40s %-12s %s\n", "step",
                "at ms", "+ms", "wait ms", "handle ms", "node / actor", "message",
                "what");
  out += buf;
  auto t0 = steps.front().ev->t_ns;
  auto prev = t0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto& ev = *steps[i].ev;
    auto wait = ev.wait_ns < 0 ? std::string{"?"} : ms(ev.wait_ns);
    std::snprintf(buf, sizeof(buf), "%4zu %9s %9s %9s %9s  %-40s %-12s %s\n", i + 1,
                  ms(ev.t_ns - t0).c_str(), ms(ev.t_ns - prev).c_str(), wait.c_str(),
                  ms(ev.dur_ns).c_str(), label(set, ev).c_str(), ev.kind.c_str(),
                  steps[i].note.c_str());
    out += buf;
    prev = ev.t_ns;
  }
  auto& last = *steps.back().ev;
  out += "total " + ms(last.t_ns + last.dur_ns - t0) + " ms over "
         + std::to_string(steps.size()) + " steps\n";
  return out;
}

} // namespace memsync::trace
