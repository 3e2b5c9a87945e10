// Internals of the load test shared by its driver and its checks: one
// simulated client (a real client_node plus what the test records about
// it) and the counters every client's callbacks feed.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/entity.hpp"
#include "messages/layer_stats.hpp"
#include "node/client/client_node.hpp"

namespace memsync::loadtest {

using clock_type = std::chrono::steady_clock;

/// A log_histogram that many threads record into at once; read as a
/// snapshot. Values above ~2^40 us land in the last bucket.
class atomic_histogram {
public:
  void record(uint64_t v) {
    auto i = std::min(log_histogram::bucket_of(v), buckets_.size() - 1);
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
    auto m = max_.load(std::memory_order_relaxed);
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed))
      ;
  }

  log_histogram snapshot() const {
    log_histogram out;
    for (size_t i = 0; i < buckets_.size(); ++i)
      if (auto n = buckets_[i].load(std::memory_order_relaxed); n > 0) {
        out.buckets.resize(i + 1, 0);
        out.buckets[i] = n;
        out.count += n;
      }
    out.sum = sum_.load(std::memory_order_relaxed);
    out.max = max_.load(std::memory_order_relaxed);
    return out;
  }

private:
  std::array<std::atomic<uint64_t>, log_histogram::sub_count * 40> buckets_{};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

/// What the callbacks of every client feed, from actor threads.
struct run_state {
  clock_type::time_point t0 = clock_type::now();
  std::atomic<uint64_t> measure_from_us{0}; ///< end of the warm-up
  std::atomic<uint64_t> applied{0};         ///< remote changes made visible
  std::atomic<uint64_t> untimed{0};         ///< of them written offline
  atomic_histogram propagation_all;         ///< for the timeline
  atomic_histogram propagation;             ///< writes after the warm-up
  atomic_histogram flush_wait;
  uint64_t fixed_target = 0; ///< remote entities each client must see
  /// workload.scopes: client i is in scope i % scopes and receives only the
  /// writes of its scope; a change written in another scope that reaches it
  /// is counted here (and neither applied nor timed).
  std::size_t scopes = 1;
  std::atomic<uint64_t> foreign{0};
  std::atomic<size_t> fixed_done{0};

  uint64_t now_us() const {
    return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0)
        .count());
  }
};

/// One write, as the workload made it.
struct write_record {
  uint64_t seq = 0; ///< the store's sequence number of the write
  uint64_t n = 0;   ///< the writer's counter, stored in the data as lt_n
  change_kind kind = change_kind::put;
  bool outage = false; ///< made while the server was down (storm)
};

struct sim_client {
  std::size_t index = 0;
  std::string name;
  std::string token;
  std::size_t server = 0; ///< which server node it talks to
  std::string scope;      ///< the one it writes in and holds; empty: no scopes
  bool observer = false;  ///< times propagation
  std::unique_ptr<client_node> node;
  subscription events;
  flush_listener_actor probe;

  // -- the driver thread only ---------------------------------------------------
  uint64_t writes = 0;
  bool offline = false;
  std::vector<write_record> log; ///< in seq order
  clock_type::time_point next_write;

  // -- shared with the flush probe (an actor) -----------------------------------
  std::mutex mtx;
  std::deque<std::pair<uint64_t, uint64_t>> unflushed; ///< (seq, written at us)
  std::vector<uint64_t> seq_of_mutation;               ///< [mutation id - 1] -> seq

  // -- the store's event callback ---------------------------------------------------
  std::atomic<uint64_t> remote_seen{0};
  /// When it last came back online (us): older changes it receives waited
  /// for it, not for the engine, and are not timed.
  std::atomic<uint64_t> online_since_us{0};
};

/// The stamp every written value carries: writer, counter, time.
struct stamp {
  uint64_t writer = 0;
  uint64_t n = 0;
  uint64_t t_us = 0;
  bool offline = false; ///< written while the writer was offline: not timed
};

/// Reads the stamp from canonical JSON without parsing all of it (this runs
/// for every change event of every client). False if there is none.
bool read_stamp(std::string_view data, stamp& out);

/// The data of a write:
/// `{"lt_n":N[,"lt_o":1],"lt_t":T,"lt_w":W[,"p":"xxx..."][,"scope":"SCOPE"]}`,
/// already canonical (keys sorted, compact); no scope field if `scope` is
/// empty.
std::string make_data(const stamp& s, std::size_t payload_bytes,
                      std::string_view scope = {});

/// Spawns the actor that tells the test which of `c`'s writes became
/// durable (flush wait) and which mutation id each write ended in.
flush_listener_actor spawn_flush_probe(caf::actor_system& sys, sim_client* c,
                                       run_state* rs);

/// The subscription callback of client `c`. Runs on its memory_store
/// actor: counts and times the changes of other clients as they become
/// visible (those of its own scope, see run_state::scopes). Cheap, never
/// blocks.
event_callback on_events(sim_client* c, run_state* rs);

/// The status of every client (by index), asked all at once (replies arrive
/// in any order). Clients that have not answered once `timeout` passed
/// without any reply are missing.
std::vector<std::optional<sync_status>>
poll_status(caf::actor_system& sys,
            const std::vector<std::unique_ptr<sim_client>>& clients,
            std::chrono::nanoseconds timeout);

/// The clients' statuses added up.
struct status_totals {
  uint64_t acknowledged = 0;
  uint64_t pulls = 0;
  uint64_t pulls_ahead = 0; ///< of them, answers the sessions read ahead
  std::size_t connected = 0;
  std::size_t answered = 0;
  layer_stats layers;
};

status_totals sum_up(const std::vector<std::optional<sync_status>>& statuses);

} // namespace memsync::loadtest
