#include "node/loadtest/loadtest_sim.hpp"

#include <charconv>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace memsync::loadtest {

bool read_stamp(std::string_view data, stamp& out) {
  auto field = [&](std::string_view key, uint64_t& value) {
    auto at = data.find(key);
    if (at == std::string_view::npos)
      return false;
    auto first = data.data() + at + key.size();
    return std::from_chars(first, data.data() + data.size(), value).ec == std::errc{};
  };
  out.offline = data.find("\"lt_o\":1") != std::string_view::npos;
  return field("\"lt_n\":", out.n) && field("\"lt_t\":", out.t_us)
         && field("\"lt_w\":", out.writer);
}

std::string make_data(const stamp& s, std::size_t payload_bytes, std::string_view scope) {
  std::string out = "{\"lt_n\":" + std::to_string(s.n);
  if (s.offline)
    out += ",\"lt_o\":1";
  out += ",\"lt_t\":" + std::to_string(s.t_us) + ",\"lt_w\":" + std::to_string(s.writer);
  if (payload_bytes > 0)
    out += ",\"p\":\"" + std::string(payload_bytes, 'x') + "\"";
  if (!scope.empty())
    out += ",\"scope\":\"" + std::string{scope} + "\"";
  return out + "}";
}

namespace {

/// Tells the test which writes became durable, and when.
flush_listener_actor::behavior_type flush_probe(flush_listener_actor::pointer,
                                                sim_client* c, run_state* rs) {
  return {
    [=](flushed_atom, const flush_report& report) {
      auto now = rs->now_us();
      std::lock_guard<std::mutex> guard{c->mtx};
      for (auto& fc : report.changes) {
        if (c->seq_of_mutation.size() < fc.mutation_id)
          c->seq_of_mutation.resize(fc.mutation_id, 0);
        c->seq_of_mutation[fc.mutation_id - 1] = fc.last_seq;
      }
      auto& q = c->unflushed;
      while (!q.empty() && q.front().first <= report.durable_seq) {
        rs->flush_wait.record(now - std::min(now, q.front().second));
        q.pop_front();
      }
    },
  };
}

} // namespace

flush_listener_actor spawn_flush_probe(caf::actor_system& sys, sim_client* c,
                                       run_state* rs) {
  return sys.spawn(flush_probe, c, rs);
}

event_callback on_events(sim_client* c, run_state* rs) {
  return [c, rs](const std::vector<change_event>& events) {
    auto now = rs->now_us();
    uint64_t remote = 0;
    stamp s;
    for (auto& ev : events) {
      if (!ev.refusal.ok() || !ev.value || !read_stamp(ev.value->data, s)
          || s.writer == c->index)
        continue;
      if (s.writer % rs->scopes != c->index % rs->scopes) {
        rs->foreign.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      ++remote;
      if (s.offline || s.t_us < c->online_since_us.load(std::memory_order_relaxed))
        rs->untimed.fetch_add(1, std::memory_order_relaxed);
      else if (c->observer && now >= s.t_us) {
        rs->propagation_all.record(now - s.t_us);
        if (s.t_us >= rs->measure_from_us.load(std::memory_order_relaxed))
          rs->propagation.record(now - s.t_us);
      }
    }
    if (remote == 0)
      return;
    rs->applied.fetch_add(remote, std::memory_order_relaxed);
    auto seen = c->remote_seen.fetch_add(remote) + remote;
    if (rs->fixed_target > 0 && seen >= rs->fixed_target
        && seen - remote < rs->fixed_target)
      rs->fixed_done.fetch_add(1);
  };
}

std::vector<std::optional<sync_status>>
poll_status(caf::actor_system& sys,
            const std::vector<std::unique_ptr<sim_client>>& clients,
            std::chrono::nanoseconds timeout) {
  std::vector<std::optional<sync_status>> out(clients.size());
  std::unordered_map<caf::actor_addr, size_t> index;
  caf::scoped_actor self{sys};
  for (auto& c : clients) {
    index[c->node->syncer().address()] = c->index;
    self->send(c->node->syncer(), status_atom::value);
  }
  // One timer per `timeout`, not one per reply: with 10,000 clients a
  // timeout per receive made 20,000 trips through CAF's clock thread per
  // poll. Clients still missing after a whole `timeout` without any reply
  // are left out.
  size_t got = 0, got_at_tick = 0;
  bool timed_out = false;
  self->delayed_send(self, timeout, tick_atom::value);
  while (got < clients.size() && !timed_out)
    self->receive(
      [&](sync_status& st) {
        ++got;
        if (auto it = index.find(
              caf::actor_cast<caf::actor_addr>(self->current_sender()));
            it != index.end())
          out[it->second] = std::move(st);
      },
      [&](tick_atom) {
        timed_out = got == got_at_tick;
        got_at_tick = got;
        if (!timed_out)
          self->delayed_send(self, timeout, tick_atom::value);
      });
  return out;
}

status_totals sum_up(const std::vector<std::optional<sync_status>>& statuses) {
  status_totals t;
  for (auto& st : statuses) {
    if (!st)
      continue;
    ++t.answered;
    t.acknowledged += st->acknowledged;
    t.connected += st->connected ? 1 : 0;
    t.pulls += st->layers.pulls;
    t.pulls_ahead += st->layers.pulls_ahead;
    t.layers.push_round_trip.merge(st->layers.push_round_trip);
    t.layers.poke_to_pull.merge(st->layers.poke_to_pull);
    t.layers.apply.merge(st->layers.apply);
    t.layers.disconnects += st->layers.disconnects;
    for (auto& [kind, n] : st->layers.errors)
      t.layers.errors[kind] += n;
  }
  return t;
}

} // namespace memsync::loadtest
