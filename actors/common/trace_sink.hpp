// Actor traces: each actor opens a trace_scope at the top of a handler; the
// scope records what the actor received (message kind, sender, the changes
// it carried), how long the message waited in the mailbox (when its sender
// stamped it) and how long handling took. The node's trace_sink hands the
// events to a writer thread through a bounded buffer and writes them as JSON
// lines; an actor never waits for the file or for a full buffer (the event
// is dropped and counted instead). The file format is described in
// docs/traces.md.
//
// Sampling is decided from the trace id alone, so a sampled change is
// recorded by every actor on every node along its path (given the same
// `sample-every` everywhere).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/common/clock.hpp"

namespace caf {
class local_actor;
}

namespace memsync {

enum class trace_mode { off, sampled, all };

const char* to_string(trace_mode x);

/// [trace] section of a node's config.
struct trace_settings {
  trace_mode mode = trace_mode::off;
  std::string file;            ///< JSON lines, truncated at start-up
  uint64_t sample_every = 100; ///< sampled: one trace id in N
  std::size_t buffer = 65536;  ///< events waiting for the writer; more are dropped
};

/// A change or entity that a handled message carried.
struct trace_item {
  uint64_t trace_id = 0; ///< 0: unknown (e.g. pulled from another server)
  std::string entity;
  uint64_t version = 0;     ///< server version, where known
  uint64_t mutation_id = 0; ///< where known
};

/// One handled message, or (with `clock` set) a new clock-offset estimate.
struct trace_event {
  const char* actor = "";
  const char* kind = "";
  const char* from = ""; ///< the sender's name, "remote" or "-"
  std::string peer;      ///< sessions: the client they serve
  int64_t start_ns = 0;  ///< wall clock when handling began
  int64_t wait_ns = -1;  ///< in the mailbox; -1: unknown (no send stamp)
  int64_t dur_ns = 0;
  uint64_t version = 0; ///< poke and commit: the head version
  std::vector<trace_item> items;
  bool clock = false;    ///< offset_ns / rtt_ns hold an estimate
  int64_t offset_ns = 0; ///< server clock minus this node's clock
  int64_t rtt_ns = 0;    ///< round trip of the estimate (error <= rtt/2)
};

/// Wall clock in ns since the epoch: the one time base of every trace file.
/// Inline: the hot layer stamps every write with it.
inline int64_t trace_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
           .count()
         + test_faults::wall_clock_jump_us.load(std::memory_order_relaxed) * 1000;
}

class trace_sink {
public:
  /// Opens (truncates) `settings.file`, writes the header line and starts
  /// the writer thread. Throws std::runtime_error if the file cannot be
  /// opened. REQUIRES: settings.mode != off.
  trace_sink(trace_settings settings, std::string node, std::string role);
  /// close()
  ~trace_sink();

  trace_sink(const trace_sink&) = delete;
  trace_sink& operator=(const trace_sink&) = delete;

  trace_mode mode() const { return cfg_.mode; }
  const std::string& file() const { return cfg_.file; }

  /// Whether changes with this trace id are recorded: every one in mode
  /// all; in mode sampled one id in `sample_every`, the same ids on every
  /// node (0 is never sampled).
  bool sampled(uint64_t trace_id) const;

  /// Hands the event to the writer. Never blocks on I/O: with `buffer`
  /// events already waiting the event is dropped and counted.
  void record(trace_event ev);

  /// Records a clock-offset estimate (server clock - ours).
  void clock(int64_t offset_ns, int64_t rtt_ns);

  uint64_t recorded() const { return recorded_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

  /// Writes what is buffered and the final line (with the dropped count)
  /// and closes the file; later events are dropped. Idempotent.
  void close();

private:
  void run();

  trace_settings cfg_;
  std::FILE* out_ = nullptr;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<trace_event> pending_; // guarded by mtx_
  bool stopping_ = false;            // guarded by mtx_
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread writer_;
};

/// Opened at the top of a handler; records the event when it goes out of
/// scope. With a null sink it does nothing (one branch). In mode sampled
/// it records only if an item or mark() was sampled.
class trace_scope {
public:
  // Inline: with tracing off a scope costs one branch here and one below.
  trace_scope(trace_sink* sink, caf::local_actor* self, const char* kind) : sink_(sink) {
    if (sink_)
      start(self, kind);
  }
  ~trace_scope() {
    if (sink_ && keep_)
      finish();
  }

  trace_scope(const trace_scope&) = delete;
  trace_scope& operator=(const trace_scope&) = delete;

  explicit operator bool() const { return sink_ != nullptr; }

  /// The sender's stamp (trace_context::sent_ns); 0 leaves the wait unknown.
  void sent(int64_t sent_ns) {
    if (sink_ && sent_ns > 0)
      ev_.wait_ns = ev_.start_ns - sent_ns;
  }
  void version(uint64_t v) {
    if (sink_)
      ev_.version = v;
  }
  void peer(const std::string& client_id) {
    if (sink_)
      ev_.peer = client_id;
  }
  /// Adds a change (if its trace id is recorded).
  void item(uint64_t trace_id, const std::string& entity, uint64_t version = 0,
            uint64_t mutation_id = 0) {
    if (sink_)
      add(trace_id, entity, version, mutation_id);
  }
  /// Adds every entity of a pull reply, each with the trace id of the change
  /// that wrote its version (0 where the reply carries none).
  template <class PullReply>
  void pull_items(const PullReply& reply) {
    if (!sink_)
      return;
    for (size_t i = 0; i < reply.entities.size(); ++i)
      add(i < reply.traces.size() ? reply.traces[i] : 0, reply.entities[i].id,
          reply.entities[i].version, 0);
  }
  /// Keeps the event if `trace_id` is recorded, without an item.
  void mark(uint64_t trace_id) {
    if (sink_ && sink_->sampled(trace_id))
      keep_ = true;
  }

private:
  void start(caf::local_actor* self, const char* kind);
  void add(uint64_t trace_id, const std::string& entity, uint64_t version,
           uint64_t mutation_id);
  void finish();

  trace_sink* sink_;
  bool keep_ = false;
  trace_event ev_;
};

} // namespace memsync
