#include "actors/hot/store_core.hpp"

#include "actors/common/apply_change.hpp"
#include "actors/common/trace_sink.hpp"

#include <algorithm>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace memsync {

namespace {

bool same_value(const entity_ptr& a, const entity_ptr& b) {
  if (!a || !b)
    return a == b;
  return a == b || (a->type == b->type && a->data == b->data);
}

entity_ptr make_entity(std::string id, std::string type, std::string data,
                       uint64_t version) {
  return std::make_shared<const entity>(
    entity{std::move(id), std::move(type), std::move(data), version, false});
}

sync_error forbidden(std::string_view scope, const char* what) {
  return {sync_errc::forbidden, std::string{what} + " scope '" + std::string{scope}
                                  + "', which this client's token may not write"};
}

} // namespace

bool scope_held(const scope_rules& rules, const std::vector<std::string>& patterns,
                std::string_view type, std::string_view data) {
  std::string scope;
  if (!derive_scope(rules, type, data, scope).ok())
    scope = default_scope;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return pattern_matches(p, scope); });
}

store_core::store_core(data_limits limits, std::size_t max_push_bytes)
    : own_limits_{limits, max_push_bytes}, limits_{own_limits_},
      trace_base_(std::random_device{}() * 0x9e3779b97f4a7c15ULL) {
  // nop
}

// -- limits -----------------------------------------------------------------

void store_core::set_server_limits(const data_limits& data, std::size_t max_push_bytes) {
  std::lock_guard<std::mutex> guard{limits_mtx_};
  limits_.data.max_bytes = std::min(own_limits_.data.max_bytes, data.max_bytes);
  limits_.data.max_depth = std::min(own_limits_.data.max_depth, data.max_depth);
  limits_.push_bytes = std::min(own_limits_.push_bytes, max_push_bytes);
}

void store_core::set_scopes(grants granted, scope_rules rules) {
  auto p = std::make_shared<const scope_policy>(
    scope_policy{std::move(granted), std::move(rules)});
  std::lock_guard<std::mutex> guard{limits_mtx_};
  scopes_ = std::move(p);
}

std::shared_ptr<const store_core::scope_policy> store_core::scopes() const {
  std::lock_guard<std::mutex> guard{limits_mtx_};
  return scopes_;
}

sync_error store_core::check_scope(const scope_policy* p, const entity_ptr& old,
                                   std::string_view type, const nlohmann::json* data) {
  if (!p)
    return {};
  std::string scope;
  // An entity stored without its scope field keeps the server's scope for
  // it, which only the server knows: it decides.
  if (old && derive_scope(p->rules, old->type, std::string_view{old->data}, scope).ok()
      && !can_write(p->granted, scope))
    return forbidden(scope, "the entity is in");
  if (!data)
    return {};
  if (auto err = derive_scope_of_json(p->rules, type, *data, scope); !err.ok())
    return err;
  if (!can_write(p->granted, scope))
    return forbidden(scope, "the entity would be in");
  return {};
}

store_core::write_limits store_core::limits() const {
  std::lock_guard<std::mutex> guard{limits_mtx_};
  return limits_;
}

sync_error store_core::check_push_bytes(const change& c, std::size_t limit,
                                        const char* what) {
  auto size = push_bytes(c);
  if (size <= limit)
    return {};
  return {sync_errc::too_large, std::string{what} + " counts " + std::to_string(size)
                                  + " bytes (id, type and data), above the limit of "
                                  + std::to_string(limit)
                                  + " bytes per push: it could never be pushed"};
}

// -- reads ------------------------------------------------------------------

entity_ptr store_core::get(std::string_view id) const {
  auto h = entity_table::hash(id);
  return visible_.read([&](const visible_state& v) -> entity_ptr {
    auto found = v.by_id.find(id, h);
    return found ? *found : nullptr;
  });
}

std::vector<entity_ptr> store_core::by_type(std::string_view type) const {
  return visible_.read([&](const visible_state& v) {
    std::vector<entity_ptr> out;
    auto it = v.by_type.find(std::string{type});
    if (it != v.by_type.end()) {
      out.reserve(it->second.size());
      it->second.for_each([&](const entity_ptr& e) { out.push_back(e); });
    }
    return out;
  });
}

std::vector<entity_ptr> store_core::all() const {
  return visible_.read([&](const visible_state& v) {
    std::vector<entity_ptr> result;
    result.reserve(v.by_id.size());
    v.by_id.for_each([&](const entity_ptr& e) { result.push_back(e); });
    return result;
  });
}

std::size_t store_core::size() const {
  return visible_.read([](const visible_state& v) { return v.by_id.size(); });
}

// -- local writes -----------------------------------------------------------

sync_error store_core::put_json(std::string_view id, std::string_view type,
                                std::string_view json) {
  nlohmann::json data;
  if (auto err = parse_object(json, limits().data, data); !err.ok())
    return err;
  return put(id, type, data);
}

// Both put overloads end here: the canonical text is checked against the
// limits (size, depth) without parsing it again.

sync_error store_core::put(std::string_view id, std::string_view type,
                           const nlohmann::json& data) {
  if (auto err = validate_id(id); !err.ok())
    return err;
  if (auto err = validate_type(type); !err.ok())
    return err;
  if (!data.is_object())
    return {sync_errc::invalid_json, "data must be a JSON object"};
  auto text = data.dump();
  auto limits = this->limits();
  if (auto err = check_limits(text, limits.data); !err.ok())
    return err;
  change c;
  c.kind = change_kind::put;
  c.id = id;
  c.type = type;
  c.data = text;
  if (auto err = check_push_bytes(c, limits.push_bytes, "the change"); !err.ok())
    return err;
  auto policy = scopes();
  std::lock_guard<std::mutex> guard{write_mtx_};
  auto old = get(id);
  if (auto err = check_scope(policy.get(), old, type, &data); !err.ok())
    return err;
  auto value = make_entity(c.id, c.type, std::move(text), old ? old->version : 0);
  queue_local(std::move(c), std::move(old), std::move(value));
  return {};
}

sync_error store_core::patch_json(std::string_view id, std::string_view json) {
  nlohmann::json data;
  if (auto err = parse_object(json, limits().data, data); !err.ok())
    return err;
  return patch(id, data);
}

sync_error store_core::patch(std::string_view id, const nlohmann::json& patch) {
  if (auto err = validate_id(id); !err.ok())
    return err;
  if (!patch.is_object())
    return {sync_errc::invalid_json, "a merge patch must be a JSON object"};
  auto patch_text = patch.dump();
  auto limits = this->limits();
  if (auto err = check_limits(patch_text, limits.data); !err.ok())
    return err;
  auto policy = scopes();
  std::lock_guard<std::mutex> guard{write_mtx_};
  auto old = get(id);
  if (!old)
    return {sync_errc::not_found, "no entity with id '" + std::string{id} + "'"};
  change c;
  c.kind = change_kind::patch;
  c.id = id;
  c.type = old->type;
  c.data = std::move(patch_text);
  if (auto err = check_push_bytes(c, limits.push_bytes, "the patch"); !err.ok())
    return err;
  auto applied = apply_change(old.get(), c, &limits.data);
  if (!applied.error.ok())
    return applied.error;
  // The flush scheduler folds a put followed by this patch into a put of
  // the result, which must fit a push as well.
  change result;
  result.id = c.id;
  result.type = c.type;
  result.data = std::move(applied.next.data);
  if (auto err = check_push_bytes(result, limits.push_bytes,
                                  "the entity after the patch");
      !err.ok())
    return err;
  if (policy) {
    auto next = nlohmann::json::parse(result.data, nullptr, false);
    if (auto err = check_scope(policy.get(), old, c.type, &next); !err.ok())
      return err;
  }
  auto value = make_entity(c.id, c.type, std::move(result.data), old->version);
  queue_local(std::move(c), std::move(old), std::move(value));
  return {};
}

sync_error store_core::erase(std::string_view id) {
  if (auto err = validate_id(id); !err.ok())
    return err;
  auto policy = scopes();
  std::lock_guard<std::mutex> guard{write_mtx_};
  auto old = get(id);
  if (!old)
    return {sync_errc::not_found, "no entity with id '" + std::string{id} + "'"};
  if (auto err = check_scope(policy.get(), old, old->type, nullptr); !err.ok())
    return err;
  change c;
  c.kind = change_kind::del;
  c.id = id;
  c.type = old->type;
  queue_local(std::move(c), std::move(old), nullptr);
  return {};
}

void store_core::queue_local(change c, entity_ptr old, entity_ptr value) {
  c.seq = last_seq_.load() + 1;
  c.trace.trace_id = trace_base_ + c.seq;
  c.trace.sent_ns = trace_now_ns(); // the memory store's mailbox wait starts here
  auto [it, added] = shadows_.try_emplace(c.id);
  if (added)
    it->second.base = old; // no pending change yet: visible is the base
  it->second.seqs.push_back(c.seq);
  pending_.emplace(c.seq, c);
  pending_count_.store(pending_.size());
  publish({{c.id, value}});
  bool was_empty = queue_.changes.empty() && queue_.events.empty();
  if (!same_value(old, value))
    queue_.events.push_back({c.id, c.type, value});
  queue_.changes.push_back(std::move(c));
  last_seq_.fetch_add(1); // after publish: a waiter never sees an unapplied seq
  if (was_empty && wake_)
    wake_();
}

// -- visible map ------------------------------------------------------------

void store_core::apply_update(visible_state& v, const std::string& id, uint64_t hash,
                              const entity_ptr& value) {
  if (auto old = v.by_id.find(id, hash)) {
    if (!value || value->type != (*old)->type)
      v.by_type[(*old)->type].erase(id, hash);
    if (!value)
      v.by_id.erase(id, hash);
  }
  if (value) {
    v.by_id.assign(value, hash);
    v.by_type[value->type].assign(value, hash);
  }
}

void store_core::publish(const update_list& updates) {
  if (updates.empty())
    return;
  std::vector<uint64_t> hashes;
  hashes.reserve(updates.size());
  for (auto& u : updates)
    hashes.push_back(entity_table::hash(u.id));
  visible_.write([&](visible_state& v) {
    for (size_t i = 0; i < updates.size(); ++i)
      apply_update(v, updates[i].id, hashes[i], updates[i].value);
  });
}

entity_ptr store_core::fold_pending(const std::string& id, const shadow& sh) const {
  entity_ptr cur = sh.base;
  auto version = sh.base ? sh.base->version : 0;
  for (auto seq : sh.seqs) {
    // A refused change (a patch of a missing entity) has no visible effect.
    auto applied = apply_change(cur.get(), pending_.at(seq));
    if (!applied.error.ok())
      continue;
    if (applied.next.deleted || !applied.writes)
      cur = nullptr;
    else
      cur = make_entity(id, std::move(applied.next.type), std::move(applied.next.data),
                        version);
  }
  return cur;
}

// -- owner operations -------------------------------------------------------

void store_core::on_first_queued(std::function<void()> wake) {
  std::lock_guard<std::mutex> guard{write_mtx_};
  wake_ = std::move(wake);
}

void store_core::load(std::vector<entity> base, std::vector<change> outbox) {
  std::vector<entity_ptr> values;
  values.reserve(base.size());
  for (auto& e : base)
    if (!e.deleted)
      values.push_back(std::make_shared<const entity>(std::move(e)));
  visible_.initialize([&](visible_state& v) {
    v.by_id.reserve(values.size());
    for (auto& value : values)
      apply_update(v, value->id, entity_table::hash(value->id), value);
  });
  std::lock_guard<std::mutex> guard{write_mtx_};
  std::vector<std::string> touched;
  uint64_t seq = 0;
  for (auto& c : outbox) {
    c.seq = ++seq;
    auto [it, added] = shadows_.try_emplace(c.id);
    if (added) {
      it->second.base = get(c.id);
      touched.push_back(c.id);
    }
    it->second.seqs.push_back(c.seq);
    pending_.emplace(c.seq, std::move(c));
  }
  update_list updates;
  for (auto& id : touched)
    updates.push_back({id, fold_pending(id, shadows_.at(id))});
  publish(updates);
  pending_count_.store(pending_.size());
  last_seq_.store(seq);
  durable_seq_.store(seq);
}

drained store_core::take_locked() {
  drained out;
  std::swap(out, queue_);
  return out;
}

drained store_core::take() {
  std::lock_guard<std::mutex> guard{write_mtx_};
  return take_locked();
}

template <class Pred>
void store_core::drop_pending(Pred confirmed, std::vector<std::string>& touched) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (confirmed(it->second)) {
      auto& seqs = shadows_.at(it->second.id).seqs;
      seqs.erase(std::find(seqs.begin(), seqs.end(), it->first));
      touched.push_back(it->second.id);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void store_core::settle(std::vector<std::string> touched, update_list updates,
                        std::vector<change_event>& events) {
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (auto& id : touched) {
    auto sh = shadows_.find(id);
    updates.push_back({id, fold_pending(id, sh->second)});
    if (sh->second.seqs.empty())
      shadows_.erase(sh);
  }
  // Publish in one batch; events only for values that really changed.
  update_list changed;
  for (auto& u : updates) {
    auto old = get(u.id);
    if (old == u.value)
      continue;
    if (!same_value(old, u.value)) {
      auto type = u.value ? u.value->type : old->type;
      events.push_back({u.id, std::move(type), u.value});
    }
    changed.push_back(std::move(u));
  }
  publish(changed);
  pending_count_.store(pending_.size());
}

drained store_core::rebase(const pull_reply& reply) {
  std::lock_guard<std::mutex> guard{write_mtx_};
  auto out = take_locked();
  if (test_faults::drop_writes_in_rebase)
    out.changes.clear();
  std::vector<std::string> touched; // ids whose shadow changed
  // 1. Drop what the server has seen.
  confirmed_ = reply.last_mutation_id;
  drop_pending(
    [&](const change& c) {
      return c.mutation_id != 0 && c.mutation_id <= reply.last_mutation_id;
    },
    touched);
  // 2. The new base.
  std::unordered_map<std::string, entity_ptr> direct; // ids without pending
  for (auto& e : reply.entities) {
    entity_ptr value;
    if (!e.deleted)
      value = make_entity(e.id, e.type, e.data, e.version);
    if (auto sh = shadows_.find(e.id); sh != shadows_.end()) {
      sh->second.base = std::move(value);
      touched.push_back(e.id);
    } else {
      direct[e.id] = std::move(value);
    }
  }
  if (reply.reset) { // a full state: every base entity it lacks is gone
    std::unordered_set<std::string_view> present;
    for (auto& e : reply.entities)
      present.insert(e.id);
    for (auto& value : all())
      if (!present.count(value->id) && !shadows_.count(value->id))
        direct[value->id] = nullptr;
    for (auto& [id, sh] : shadows_)
      if (!present.count(id)) {
        sh.base = nullptr;
        touched.push_back(id);
      }
  }
  // 3. Re-apply pending changes on the new base, publish.
  update_list updates;
  for (auto& [id, value] : direct)
    updates.push_back({id, std::move(value)});
  settle(std::move(touched), std::move(updates), out.events);
  return out;
}

drained store_core::prune(const scope_rules& rules,
                          const std::vector<std::string>& held) {
  std::lock_guard<std::mutex> guard{write_mtx_};
  auto out = take_locked();
  if (test_faults::keep_pruned)
    return out;
  std::vector<std::string> touched; // ids whose shadow lost its base
  for (auto& [id, sh] : shadows_)
    if (sh.base && !scope_held(rules, held, sh.base->type, sh.base->data)) {
      sh.base = nullptr;
      touched.push_back(id);
    }
  update_list updates;
  for (auto& value : all())
    if (!shadows_.count(value->id) && !scope_held(rules, held, value->type, value->data))
      updates.push_back({value->id, nullptr});
  settle(std::move(touched), std::move(updates), out.events);
  return out;
}

std::vector<change_event> store_core::refuse(const std::vector<refusal>& refused) {
  std::lock_guard<std::mutex> guard{write_mtx_};
  std::vector<change_event> out;
  for (auto& r : refused) {
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](auto& kvp) {
      return kvp.second.mutation_id == r.mutation_id;
    });
    std::string id = it != pending_.end() ? it->second.id : std::string{};
    refusals_.push_back({r.mutation_id, id, r.reason});
    if (it == pending_.end())
      continue;
    auto value = get(id);
    out.push_back({id, value ? value->type : it->second.type, value, r.reason});
  }
  if (refusals_.size() > 100)
    refusals_.erase(refusals_.begin(), refusals_.end() - 100);
  return out;
}

std::vector<refused_change> store_core::refusals() const {
  std::lock_guard<std::mutex> guard{write_mtx_};
  return refusals_;
}

std::vector<change_event>
store_core::mark_durable(const std::vector<flushed_change>& flushed,
                         uint64_t durable_seq) {
  std::vector<change_event> events;
  {
    std::lock_guard<std::mutex> guard{write_mtx_};
    bool overtaken = false;
    for (auto& fc : flushed) {
      auto sh = shadows_.find(fc.id);
      if (sh == shadows_.end())
        continue;
      for (auto seq : sh->second.seqs) {
        auto& c = pending_.at(seq);
        if (seq <= fc.last_seq && c.mutation_id == 0) {
          c.mutation_id = fc.mutation_id;
          overtaken |= c.mutation_id <= confirmed_;
        }
      }
    }
    // The pull that confirmed these came first: it was taken after the
    // server applied them, so the base it brought already holds their
    // effect, and dropping them now is what the rebase would have done.
    // Resolving here, where both messages meet, makes their order not
    // matter; ordering the senders instead would need a round trip between
    // the flush scheduler and the syncer on every pull.
    if (overtaken) {
      std::vector<std::string> touched;
      drop_pending(
        [&](const change& c) {
          return c.mutation_id != 0 && c.mutation_id <= confirmed_;
        },
        touched);
      settle(std::move(touched), {}, events);
    }
  }
  std::lock_guard<std::mutex> guard{durable_mtx_};
  if (durable_seq > durable_seq_.load())
    durable_seq_.store(durable_seq);
  durable_cv_.notify_all();
  return events;
}

std::vector<change_event> store_core::renumber(const std::vector<uint64_t>& old_ids) {
  std::lock_guard<std::mutex> guard{write_mtx_};
  confirmed_ = 0; // the new client id has no confirmed change yet
  std::vector<std::string> touched;
  drop_pending(
    [&](const change& c) {
      return c.mutation_id != 0
             && !std::binary_search(old_ids.begin(), old_ids.end(), c.mutation_id);
    },
    touched);
  for (auto& [seq, c] : pending_)
    if (c.mutation_id != 0)
      c.mutation_id = static_cast<uint64_t>(
        std::lower_bound(old_ids.begin(), old_ids.end(), c.mutation_id) - old_ids.begin()
        + 1);
  std::vector<change_event> events;
  settle(std::move(touched), {}, events);
  return events;
}

// -- waiting and inspection -------------------------------------------------

bool store_core::wait_durable(uint64_t seq, std::chrono::nanoseconds timeout) const {
  std::unique_lock<std::mutex> guard{durable_mtx_};
  return durable_cv_.wait_for(guard, timeout, [&] { return durable_seq_.load() >= seq; });
}

store_counts store_core::counts() const {
  return {size(), pending_count_.load(), last_seq_.load(), durable_seq_.load()};
}

std::vector<change> store_core::pending() const {
  std::lock_guard<std::mutex> guard{write_mtx_};
  std::vector<change> out;
  out.reserve(pending_.size());
  for (auto& kvp : pending_)
    out.push_back(kvp.second);
  return out;
}

} // namespace memsync
