// trace: reads the trace files of several nodes (JSON lines, one file per
// node) and shows where time goes.
//
//   trace stats FILES...                         per-actor messages, waits, handling
//   trace path (--entity ID | --trace HEX) FILES...   one change through every actor
//   trace chrome FILES... -o OUT.json            Chrome trace event format
//   trace svg (--entity ID | --trace HEX) FILES... -o OUT.svg   swimlane picture
//
// Lines it cannot use are reported (FILE:LINE) and skipped.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/trace/trace_model.hpp"

namespace {

using namespace memsync::trace;

const char* usage = "usage: trace stats FILES...\n"
                    "       trace path (--entity ID | --trace HEX) FILES...\n"
                    "       trace chrome FILES... -o OUT.json\n"
                    "       trace svg (--entity ID | --trace HEX) FILES... -o OUT.svg\n";

struct args {
  std::string command;
  std::string entity;
  std::string trace;
  std::string output;
  std::vector<std::string> files;
};

bool parse_args(int argc, char** argv, args& out) {
  if (argc < 2)
    return false;
  out.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= argc)
        return false;
      into = argv[++i];
      return true;
    };
    if (a == "--entity") {
      if (!value(out.entity))
        return false;
    } else if (a == "--trace") {
      if (!value(out.trace))
        return false;
    } else if (a == "-o") {
      if (!value(out.output))
        return false;
    } else {
      out.files.push_back(a);
    }
  }
  return !out.files.empty();
}

void report(const trace_set& set) {
  for (auto& f : set.files) {
    std::cerr << f.path << ": node " << f.node << " (" << f.role << "), mode " << f.mode
              << ", " << f.events << " events";
    if (f.ended)
      std::cerr << ", " << f.dropped << " dropped";
    if (!f.clocks.empty()) {
      auto best = std::min_element(f.clocks.begin(), f.clocks.end(),
                                   [](auto& a, auto& b) { return a.rtt_ns < b.rtt_ns; });
      std::cerr << ", clock offset " << best->offset_ns / 1e6 << " ms +- "
                << best->rtt_ns / 2e6 << " ms (best of " << f.clocks.size() << ")";
    }
    std::cerr << "\n";
  }
  std::size_t shown = 0;
  for (auto& p : set.problems)
    if (shown++ < 20)
      std::cerr << "warning: " << p.where << ": " << p.what << "\n";
  if (set.problems.size() > 20)
    std::cerr << "warning: ... and " << set.problems.size() - 20 << " more\n";
}

/// The trace id asked for, directly or through the entity; 0 with a message.
uint64_t pick_trace(const trace_set& set, const args& a) {
  uint64_t id = 0;
  if (!a.trace.empty()) {
    if (!parse_hex(a.trace, id))
      std::cerr << "error: --trace wants up to 16 hex digits, got '" << a.trace << "'\n";
    return id;
  }
  if (a.entity.empty()) {
    std::cerr << usage;
    return 0;
  }
  id = trace_of_entity(set, a.entity);
  if (id == 0)
    std::cerr << "error: no recorded change of entity '" << a.entity << "'\n";
  else
    std::cerr << "entity " << a.entity << ": latest change, trace " << hex(id) << "\n";
  return id;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
  if (!out) {
    std::cerr << "error: cannot write " << path << "\n";
    return false;
  }
  std::cerr << "wrote " << path << "\n";
  return true;
}

} // namespace

int main(int argc, char** argv) {
  args a;
  if (!parse_args(argc, argv, a)) {
    std::cerr << usage;
    return 2;
  }
  auto set = load(a.files);
  report(set);
  if (a.command == "stats") {
    std::cout << format_stats(set);
    return 0;
  }
  if (a.command == "chrome") {
    if (a.output.empty()) {
      std::cerr << usage;
      return 2;
    }
    return write_file(a.output, chrome(set).dump()) ? 0 : 1;
  }
  if (a.command == "path" || a.command == "svg") {
    auto id = pick_trace(set, a);
    if (id == 0)
      return 1;
    auto steps = path(set, id);
    if (a.command == "path") {
      std::cout << format_path(set, steps);
      return steps.empty() ? 1 : 0;
    }
    if (a.output.empty()) {
      std::cerr << usage;
      return 2;
    }
    return write_file(a.output, svg(set, steps)) ? 0 : 1;
  }
  std::cerr << usage;
  return 2;
}
