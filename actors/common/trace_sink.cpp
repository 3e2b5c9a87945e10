#include "actors/common/trace_sink.hpp"

#include <unistd.h>

#include <chrono>
#include <stdexcept>

#include <caf/actor_control_block.hpp>
#include <caf/local_actor.hpp>
#include <caf/mailbox_element.hpp>

namespace memsync {

namespace {

/// splitmix64's finalizer: trace ids are consecutive per client, so their
/// low bits alone would sample in runs.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

void append_escaped(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += '"';
}

void append_field(std::string& out, const char* key, int64_t value) {
  out += ",\"";
  out += key;
  out += "\":";
  out += std::to_string(value);
}

void append_trace_id(std::string& out, uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "\"%016llx\"", static_cast<unsigned long long>(id));
  out += buf;
}

void format(std::string& out, const trace_event& ev) {
  if (ev.clock) {
    out += "{\"ev\":\"clock\"";
    append_field(out, "t_ns", ev.start_ns);
    append_field(out, "offset_ns", ev.offset_ns);
    append_field(out, "rtt_ns", ev.rtt_ns);
    out += "}\n";
    return;
  }
  out += "{\"ev\":\"msg\",\"actor\":\"";
  out += ev.actor;
  out += "\",\"kind\":\"";
  out += ev.kind;
  out += "\",\"from\":\"";
  out += ev.from;
  out += '"';
  if (!ev.peer.empty()) {
    out += ",\"peer\":";
    append_escaped(out, ev.peer);
  }
  append_field(out, "t_ns", ev.start_ns);
  if (ev.wait_ns >= 0)
    append_field(out, "wait_ns", ev.wait_ns);
  append_field(out, "dur_ns", ev.dur_ns);
  if (ev.version)
    append_field(out, "version", static_cast<int64_t>(ev.version));
  if (!ev.items.empty()) {
    out += ",\"items\":[";
    for (size_t i = 0; i < ev.items.size(); ++i) {
      auto& it = ev.items[i];
      out += i ? ",{\"trace\":" : "{\"trace\":";
      append_trace_id(out, it.trace_id);
      out += ",\"entity\":";
      append_escaped(out, it.entity);
      if (it.version)
        append_field(out, "version", static_cast<int64_t>(it.version));
      if (it.mutation_id)
        append_field(out, "mid", static_cast<int64_t>(it.mutation_id));
      out += '}';
    }
    out += ']';
  }
  out += "}\n";
}

} // namespace

const char* to_string(trace_mode x) {
  switch (x) {
    case trace_mode::off: return "off";
    case trace_mode::sampled: return "sampled";
    case trace_mode::all: return "all";
  }
  return "invalid";
}

trace_sink::trace_sink(trace_settings settings, std::string node, std::string role)
    : cfg_(std::move(settings)) {
  if (cfg_.sample_every == 0)
    cfg_.sample_every = 1;
  out_ = std::fopen(cfg_.file.c_str(), "w");
  if (!out_)
    throw std::runtime_error("cannot write trace file '" + cfg_.file + "'");
  std::string head = "{\"ev\":\"meta\",\"format\":1,\"node\":";
  append_escaped(head, node);
  head += ",\"role\":";
  append_escaped(head, role);
  head += ",\"mode\":\"";
  head += to_string(cfg_.mode);
  head += '"';
  append_field(head, "sample_every",
               cfg_.mode == trace_mode::all ? 1
                                            : static_cast<int64_t>(cfg_.sample_every));
  append_field(head, "pid", static_cast<int64_t>(getpid()));
  append_field(head, "t_ns", trace_now_ns());
  head += "}\n";
  std::fputs(head.c_str(), out_);
  pending_.reserve(std::min<std::size_t>(cfg_.buffer, 4096));
  writer_ = std::thread{[this] {
    run();
  }};
}

trace_sink::~trace_sink() {
  close();
}

bool trace_sink::sampled(uint64_t trace_id) const {
  if (cfg_.mode == trace_mode::all)
    return true;
  return trace_id != 0 && mix(trace_id) % cfg_.sample_every == 0;
}

void trace_sink::record(trace_event ev) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_)
      return; // after the final line: not part of the file
    if (pending_.size() < cfg_.buffer) {
      bool wake = pending_.empty();
      pending_.push_back(std::move(ev));
      recorded_.fetch_add(1, std::memory_order_relaxed);
      if (wake)
        cv_.notify_one();
      return;
    }
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
}

void trace_sink::clock(int64_t offset_ns, int64_t rtt_ns) {
  trace_event ev;
  ev.clock = true;
  ev.start_ns = trace_now_ns();
  ev.offset_ns = offset_ns;
  ev.rtt_ns = rtt_ns;
  record(std::move(ev));
}

void trace_sink::run() {
  std::vector<trace_event> batch;
  std::string text;
  std::unique_lock<std::mutex> guard{mtx_};
  for (;;) {
    cv_.wait(guard, [this] { return stopping_ || !pending_.empty(); });
    batch.swap(pending_);
    bool last = stopping_;
    guard.unlock();
    text.clear();
    for (auto& ev : batch)
      format(text, ev);
    std::fwrite(text.data(), 1, text.size(), out_);
    batch.clear();
    guard.lock();
    if (last && pending_.empty())
      return;
  }
}

void trace_sink::close() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_)
      return;
    stopping_ = true;
  }
  cv_.notify_one();
  writer_.join();
  std::string tail = "{\"ev\":\"end\"";
  append_field(tail, "t_ns", trace_now_ns());
  append_field(tail, "recorded", static_cast<int64_t>(recorded()));
  append_field(tail, "dropped", static_cast<int64_t>(dropped()));
  tail += "}\n";
  std::fputs(tail.c_str(), out_);
  std::fclose(out_);
  out_ = nullptr;
}

// -- trace_scope ----------------------------------------------------------------

void trace_scope::start(caf::local_actor* self, const char* kind) {
  ev_.start_ns = trace_now_ns();
  ev_.actor = self->name();
  ev_.kind = kind;
  keep_ = sink_->mode() == trace_mode::all;
  // No current element during start-up (the behavior being built).
  auto* element = self->current_mailbox_element();
  auto* sender = element ? element->sender.get() : nullptr;
  if (!sender)
    ev_.from = "-";
  else if (sender->node() != self->node())
    ev_.from = "remote";
  else if (auto* local = dynamic_cast<caf::local_actor*>(sender->get()))
    ev_.from = local->name();
  else
    ev_.from = "?";
}

void trace_scope::finish() {
  ev_.dur_ns = trace_now_ns() - ev_.start_ns;
  sink_->record(std::move(ev_));
}

void trace_scope::add(uint64_t trace_id, const std::string& entity, uint64_t version,
                      uint64_t mutation_id) {
  if (!sink_->sampled(trace_id))
    return;
  keep_ = true;
  ev_.items.push_back({trace_id, entity, version, mutation_id});
}

} // namespace memsync
