// The trace tool's logic, apart from its command line so tests can use it:
// reads the JSON-lines trace files of several nodes (format in
// docs/traces.md), shifts every client's events to the server's clock,
// and derives per-actor statistics, the path of one change through every
// actor and node, a Chrome trace-event export and an SVG swimlane picture.
// Bad lines are collected as problems (file:line), never fatal.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace memsync::trace {

struct item {
  uint64_t trace_id = 0;
  std::string entity;
  uint64_t version = 0;
  uint64_t mutation_id = 0;
};

struct event {
  std::size_t file = 0; ///< index into trace_set::files
  int line = 0;
  std::string actor;
  std::string kind;
  std::string from;
  std::string peer;     ///< sessions: the client served
  int64_t local_ns = 0; ///< start, as the node's clock read it
  int64_t t_ns = 0;     ///< start on the server's clock
  int64_t wait_ns = -1; ///< -1: unknown
  int64_t dur_ns = 0;
  uint64_t version = 0;
  std::vector<item> items;
};

struct clock_estimate {
  int64_t at_ns = 0; ///< local clock
  int64_t offset_ns = 0;
  int64_t rtt_ns = 0;
};

struct node_file {
  std::string path;
  std::string node;
  std::string role;
  std::string mode;
  int64_t sample_every = 1;
  std::vector<clock_estimate> clocks;
  bool ended = false; ///< the final line was found
  int64_t recorded = 0;
  int64_t dropped = 0;
  std::size_t events = 0;
};

/// A line that could not be used: "FILE:LINE: reason".
struct problem {
  std::string where;
  std::string what;
};

struct trace_set {
  std::vector<node_file> files;
  std::vector<event> events; ///< sorted by t_ns after load()
  std::vector<problem> problems;
};

/// Reads one file's lines into `out` (does not align or sort).
void parse(std::istream& in, const std::string& name, trace_set& out);

/// Reads every file, aligns clocks and sorts events by aligned time. An
/// unreadable file is a problem, not an exception.
trace_set load(const std::vector<std::string>& paths);

/// Shifts each client event to the server's clock, then sorts. The offset
/// is the client's estimate with the shortest round trip within a minute of
/// the event, clamped into the bounds that messages between the client and
/// the server prove (a push is received after it was sent, a poke after the
/// server sent it), so causal order survives an estimate's error.
void align(trace_set& set);

/// Nearest-rank percentiles of a sample (empty: all zero).
struct summary {
  std::size_t count = 0;
  int64_t p50 = 0, p90 = 0, p99 = 0, max = 0;
};
summary summarize(std::vector<int64_t> values);

struct actor_stats {
  std::string node;
  std::string actor;
  std::size_t messages = 0;
  summary wait; ///< over the messages with a known wait
  summary handling;
};

/// One row per (node, actor), in the order nodes and actors first appear.
std::vector<actor_stats> stats(const trace_set& set);
std::string format_stats(const trace_set& set);

/// One step of a change's path.
struct step {
  const event* ev = nullptr;
  std::string note; ///< e.g. "version 12", "mutation 3"
};

/// The change's trace id: the latest local write of `entity` (else the
/// latest commit of it); 0 if none was recorded.
uint64_t trace_of_entity(const trace_set& set, const std::string& entity);

/// Every recorded step of the change `trace_id`, in aligned time order:
/// events that name the trace id, events that applied the version it got
/// on the server (joined on entity and version), and the poke that
/// announced that version with its forwarding and receipt.
std::vector<step> path(const trace_set& set, uint64_t trace_id);

std::string format_path(const trace_set& set, const std::vector<step>& steps);

/// Chrome trace event format: complete ("X") events in microseconds from
/// the first event, one process per node and one thread per actor (named
/// by metadata events).
nlohmann::json chrome(const trace_set& set);

/// The path as an SVG swimlane picture: one lane per node and actor, one
/// box per step, arrows between consecutive steps.
std::string svg(const trace_set& set, const std::vector<step>& steps);

std::string hex(uint64_t trace_id);
/// Parses 1-16 hex digits; false if malformed.
bool parse_hex(const std::string& text, uint64_t& out);

} // namespace memsync::trace
