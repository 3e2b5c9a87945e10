#include "actors/client/local_database.hpp"

#include <algorithm>
#include <random>

#include "actors/hot/store_core.hpp" // scope_held
#include "messages/validation.hpp"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

namespace memsync {

namespace {

constexpr int64_t application_id = 0x4D53594E; // 'MSYN'

std::string random_suffix() {
  std::random_device rd;
  uint64_t x = (uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

change outbox_row(const sqlite_stmt& row) {
  change c;
  c.mutation_id = static_cast<uint64_t>(row.column_int(0));
  c.kind = static_cast<change_kind>(row.column_int(1));
  c.id = row.column_text(2);
  c.type = row.column_text(3);
  c.data = row.column_text(4);
  c.trace.trace_id = static_cast<uint64_t>(row.column_int(5));
  return c;
}

const char* schema_v1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entities(id TEXT PRIMARY KEY, type TEXT NOT NULL,
                      data TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE outbox(mutation_id INTEGER PRIMARY KEY, kind INTEGER NOT NULL,
                    id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
                    trace_id INTEGER NOT NULL);
)sql";

// Version 2: the subscription. A file of version 1 gets the same.
const char* schema_v2 = R"sql(
CREATE TABLE IF NOT EXISTS scopes(pattern TEXT PRIMARY KEY, since INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES('scope_known_reads', '[]');
INSERT OR IGNORE INTO meta VALUES('scope_held', '["*"]');
INSERT OR IGNORE INTO meta VALUES('scope_rules', '[]');
INSERT OR IGNORE INTO meta VALUES('scope_configured', '[]');
INSERT OR IGNORE INTO meta VALUES('scope_stored', '0');
)sql";

std::string list_text(const std::vector<std::string>& xs) {
  return nlohmann::json(xs).dump();
}

std::string rules_text(const scope_rules& rules) {
  auto out = nlohmann::json::array();
  for (auto& r : rules)
    out.push_back({r.type, r.field});
  return out.dump();
}

} // namespace

local_database::local_database(const local_db_settings& settings)
    : path_(settings.path), client_name_(settings.client_name) {
  try {
    db_ = std::make_unique<sqlite_db>(path_, true);
    sqlite3_busy_timeout(db_->handle(), static_cast<int>(settings.busy_timeout.count()));
    check_and_migrate(settings);
    prepare_statements();
  } catch (const sqlite_error& e) {
    fail(e, "cannot open local database");
  }
}

void local_database::fail(const sqlite_error& e, const std::string& what) {
  auto code = sync_errc::db_error;
  std::string hint;
  switch (e.code()) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = sync_errc::db_locked;
      hint = " (is another client process using it?)";
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = sync_errc::db_corrupt;
      hint = " (the file was left untouched; move it away to start afresh)";
      break;
    default: break;
  }
  throw local_db_error({code, what + " " + path_ + ": " + e.what() + hint});
}

void local_database::check_and_migrate(const local_db_settings& settings) {
  // Read before writing anything: a foreign, corrupt or newer file must stay
  // byte-for-byte as it was.
  auto app_id = db_->query_int("PRAGMA application_id");
  auto version = db_->query_int("PRAGMA user_version");
  auto tables = db_->query_int("SELECT count(*) FROM sqlite_master");
  if (app_id != application_id && (app_id != 0 || tables != 0))
    throw local_db_error({sync_errc::db_foreign, path_
                                                   + " is not a memsync client database; "
                                                     "refusing to modify it"});
  if (version > local_schema_version)
    throw local_db_error({sync_errc::db_schema_newer,
                          path_ + " has schema version " + std::to_string(version)
                            + ", newer than this program supports ("
                            + std::to_string(local_schema_version)
                            + "); upgrade memsync"});
  if (version != 0) {
    auto owner = get_meta("client_id");
    if (!client_id_belongs_to(owner, settings.client_name))
      throw local_db_error({sync_errc::db_foreign, path_ + " belongs to client '" + owner
                                                     + "', not to '"
                                                     + settings.client_name + "'"});
  }
  // An exclusive lock for the life of the process: two processes appending
  // to one outbox would hand out the same mutation ids.
  db_->exec("PRAGMA locking_mode=EXCLUSIVE");
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=" + settings.synchronous);
  db_->exec("BEGIN EXCLUSIVE; COMMIT");
  if (version == 0) {
    sqlite_tx tx{*db_};
    db_->exec(schema_v1);
    db_->exec("PRAGMA application_id=" + std::to_string(application_id));
    db_->exec("PRAGMA user_version=" + std::to_string(local_schema_version));
    auto stmt = db_->prepare("INSERT INTO meta VALUES(?1, ?2)");
    auto id = settings.client_name + "-" + random_suffix();
    stmt.bind(1, "client_id").bind(2, id).exec();
    stmt.bind(1, "next_mutation_id").bind(2, "1").exec();
    stmt.bind(1, "last_mutation_id").bind(2, "0").exec();
    stmt.bind(1, "cookie_epoch").bind(2, "").exec();
    stmt.bind(1, "cookie_version").bind(2, "0").exec();
    stmt.bind(1, "cookie_commit").bind(2, "0").exec();
    stmt.bind(1, "push_epoch").bind(2, "").exec();
    tx.commit();
  }
  if (version < 2) {
    sqlite_tx tx{*db_};
    db_->exec(schema_v2);
    db_->exec("PRAGMA user_version=" + std::to_string(local_schema_version));
    tx.commit();
  }
  // Files made before cookies were signed lack the signature's row; their
  // cookie then reads as unsigned, as for a new client.
  db_->exec("INSERT OR IGNORE INTO meta VALUES('cookie_mac', '')");
  client_id_ = get_meta("client_id");
  next_mutation_id_ = std::stoull(get_meta("next_mutation_id"));
  // Files made before pushes were recorded may have pushed every id they
  // assigned: the most that can be said for them.
  auto add = db_->prepare("INSERT OR IGNORE INTO meta VALUES('pushed_mutation_id', ?1)");
  add.bind(1, std::to_string(next_mutation_id_ - 1)).exec();
  pushed_mutation_id_ = std::stoull(get_meta("pushed_mutation_id"));
}

void local_database::prepare_statements() {
  insert_outbox_ = db_->prepare("INSERT INTO outbox VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  set_meta_ = db_->prepare("UPDATE meta SET value = ?2 WHERE key = ?1");
  upsert_entity_ = db_->prepare(
    "INSERT INTO entities VALUES(?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE "
    "SET type = excluded.type, data = excluded.data, version = excluded.version");
  delete_entity_ = db_->prepare("DELETE FROM entities WHERE id = ?1");
  select_outbox_ = db_->prepare(
    "SELECT mutation_id, kind, id, type, data, trace_id FROM outbox "
    "WHERE mutation_id > ?1 ORDER BY mutation_id LIMIT ?2");
  drop_outbox_ = db_->prepare("DELETE FROM outbox WHERE mutation_id <= ?1");
  set_since_ = db_->prepare("UPDATE scopes SET since = ?2 WHERE pattern = ?1");
  // One statement for the five rows every answer writes: a client applies
  // an answer per change its scopes see, and each statement costs a step.
  set_cursor_ = db_->prepare(
    "UPDATE meta SET value = CASE key WHEN 'last_mutation_id' THEN ?1 "
    "WHEN 'cookie_epoch' THEN ?2 WHEN 'cookie_version' THEN ?3 "
    "WHEN 'cookie_commit' THEN ?4 ELSE ?5 END WHERE key IN ('last_mutation_id', "
    "'cookie_epoch', 'cookie_version', 'cookie_commit', 'cookie_mac')");
}

std::string local_database::get_meta(const std::string& key) {
  auto stmt = db_->prepare("SELECT value FROM meta WHERE key = ?1");
  stmt.bind(1, key);
  if (!stmt.step())
    throw local_db_error(
      {sync_errc::db_corrupt, path_ + ": metadata '" + key + "' is missing"});
  return stmt.column_text(0);
}

void local_database::set_meta(const std::string& key, const std::string& value) {
  set_meta_.bind(1, key).bind(2, value).exec();
}

local_snapshot local_database::load() {
  try {
    local_snapshot out;
    out.client_id = client_id_;
    out.next_mutation_id = next_mutation_id_;
    out.pushed_mutation_id = pushed_mutation_id_;
    out.last_mutation_id = std::stoull(get_meta("last_mutation_id"));
    out.cursor.epoch = get_meta("cookie_epoch");
    out.cursor.version = std::stoull(get_meta("cookie_version"));
    out.cursor.commit = std::stoull(get_meta("cookie_commit"));
    out.cursor.mac = get_meta("cookie_mac");
    out.push_epoch = get_meta("push_epoch");
    auto rows = db_->prepare("SELECT id, type, data, version FROM entities");
    while (rows.step())
      out.base.push_back({rows.column_text(0), rows.column_text(1), rows.column_text(2),
                          static_cast<uint64_t>(rows.column_int(3)), false});
    auto outbox = db_->prepare("SELECT mutation_id, kind, id, type, data, "
                               "trace_id FROM outbox ORDER BY mutation_id");
    while (outbox.step())
      out.outbox.push_back(outbox_row(outbox));
    out.subscription = load_subscription();
    return out;
  } catch (const sqlite_error& e) {
    fail(e, "cannot load local database");
  }
}

scope_subscription local_database::load_subscription() {
  scope_subscription out;
  auto json_of = [&](const char* key) {
    auto j = nlohmann::json::parse(get_meta(key), nullptr, false);
    if (!j.is_array())
      throw local_db_error(
        {sync_errc::db_corrupt, path_ + ": metadata '" + key + "' is not a JSON array"});
    return j;
  };
  auto strings = [&](const char* key) {
    std::vector<std::string> xs;
    for (auto& x : json_of(key))
      if (x.is_string())
        xs.push_back(x.get<std::string>());
    return xs;
  };
  out.known_reads = strings("scope_known_reads");
  out.held = strings("scope_held");
  out.configured = strings("scope_configured");
  for (auto& r : json_of("scope_rules"))
    if (r.is_array() && r.size() == 2 && r[0].is_string() && r[1].is_string())
      out.rules.push_back({r[0].get<std::string>(), r[1].get<std::string>()});
  out.stored = get_meta("scope_stored") == "1";
  auto rows = db_->prepare("SELECT pattern, since FROM scopes ORDER BY pattern");
  while (rows.step())
    out.entries.push_back(
      {rows.column_text(0), static_cast<uint64_t>(rows.column_int(1))});
  return out;
}

void local_database::save_subscription(const scope_subscription& sub) {
  try {
    sqlite_tx tx{*db_};
    db_->exec("DELETE FROM scopes");
    auto insert = db_->prepare("INSERT OR REPLACE INTO scopes VALUES(?1, ?2)");
    for (auto& e : sub.entries)
      insert.bind(1, e.pattern).bind(2, static_cast<int64_t>(e.since)).exec();
    set_meta("scope_known_reads", list_text(sub.known_reads));
    set_meta("scope_held", list_text(sub.held));
    set_meta("scope_rules", rules_text(sub.rules));
    set_meta("scope_configured", list_text(sub.configured));
    set_meta("scope_stored", "1");
    tx.commit();
  } catch (const sqlite_error& e) {
    fail(e, "cannot save the subscription to local database");
  }
}

std::size_t local_database::prune(const scope_rules& rules,
                                  const std::vector<std::string>& held) {
  try {
    std::vector<std::string> gone;
    auto rows = db_->prepare("SELECT id, type, data FROM entities");
    while (rows.step())
      if (!scope_held(rules, held, rows.column_text(1), rows.column_text(2)))
        gone.push_back(rows.column_text(0));
    if (gone.empty())
      return 0;
    sqlite_tx tx{*db_};
    for (auto& id : gone)
      delete_entity_.bind(1, id).exec();
    tx.commit();
    return gone.size();
  } catch (const sqlite_error& e) {
    fail(e, "cannot prune local database");
  }
}

std::vector<uint64_t> local_database::append(const std::vector<change>& changes,
                                             uint64_t batch) {
  if (batch != 0 && batch == last_batch_)
    return last_batch_ids_;
  try {
    std::vector<uint64_t> ids;
    ids.reserve(changes.size());
    auto next = next_mutation_id_;
    sqlite_tx tx{*db_};
    for (auto& c : changes) {
      ids.push_back(next);
      insert_outbox_.bind(1, static_cast<int64_t>(next++))
        .bind(2, static_cast<int64_t>(c.kind))
        .bind(3, c.id)
        .bind(4, c.type)
        .bind(5, c.data)
        .bind(6, static_cast<int64_t>(c.trace.trace_id))
        .exec();
    }
    set_meta("next_mutation_id", std::to_string(next));
    tx.commit();
    next_mutation_id_ = next;
    last_batch_ = batch;
    last_batch_ids_ = ids;
    return ids;
  } catch (const sqlite_error& e) {
    fail(e, "cannot write to local database");
  }
}

void local_database::apply_pull(const pull_reply& reply,
                                const std::vector<std::string>& progressed) {
  try {
    sqlite_tx tx{*db_};
    if (reply.reset)
      db_->exec("DELETE FROM entities");
    for (auto& e : reply.entities) {
      if (e.deleted)
        delete_entity_.bind(1, e.id).exec();
      else
        upsert_entity_.bind(1, e.id)
          .bind(2, e.type)
          .bind(3, e.data)
          .bind(4, static_cast<int64_t>(e.version))
          .exec();
    }
    drop_outbox_
      .bind(1,
            static_cast<int64_t>(std::min(reply.last_mutation_id, pushed_mutation_id_)))
      .exec();
    set_cursor_.bind(1, std::to_string(reply.last_mutation_id))
      .bind(2, reply.next.epoch)
      .bind(3, std::to_string(reply.next.version))
      .bind(4, std::to_string(reply.next.commit))
      .bind(5, reply.next.mac)
      .exec();
    for (auto& pattern : progressed)
      set_since_.bind(1, pattern)
        .bind(2, static_cast<int64_t>(reply.next.version))
        .exec();
    tx.commit();
  } catch (const sqlite_error& e) {
    fail(e, "cannot apply pull to local database");
  }
}

std::vector<change> local_database::outbox(uint64_t after, std::size_t max_changes,
                                           std::size_t max_bytes) {
  try {
    std::vector<change> out;
    std::size_t bytes = 0;
    select_outbox_.bind(1, static_cast<int64_t>(after))
      .bind(2, static_cast<int64_t>(max_changes));
    while (select_outbox_.step()) {
      auto c = outbox_row(select_outbox_);
      auto size = push_bytes(c); // as the server's session counts it
      if (!out.empty() && bytes + size > max_bytes)
        break;
      bytes += size;
      out.push_back(std::move(c));
    }
    select_outbox_.reset();
    return out;
  } catch (const sqlite_error& e) {
    select_outbox_.reset();
    fail(e, "cannot read the outbox of");
  }
}

uint64_t local_database::last_outbox_id() {
  try {
    return static_cast<uint64_t>(
      db_->query_int("SELECT coalesce(max(mutation_id), 0) FROM outbox"));
  } catch (const sqlite_error& e) {
    fail(e, "cannot read the outbox of");
  }
}

void local_database::set_push_epoch(const std::string& epoch) {
  try {
    set_meta("push_epoch", epoch);
  } catch (const sqlite_error& e) {
    fail(e, "cannot write to local database");
  }
}

void local_database::mark_pushed(uint64_t mutation_id) {
  if (mutation_id <= pushed_mutation_id_)
    return;
  try {
    set_meta("pushed_mutation_id", std::to_string(mutation_id));
    pushed_mutation_id_ = mutation_id;
  } catch (const sqlite_error& e) {
    fail(e, "cannot write to local database");
  }
}

local_database::renumbering local_database::repair(const std::string& client_id,
                                                   uint64_t server_record) {
  if (client_id == moved_from_ && !moved_from_.empty())
    return {client_id_, moved_ids_};
  if (client_id != client_id_ || server_record <= pushed_mutation_id_)
    return {client_id_, {}};
  try {
    renumbering out;
    out.client_id = client_name_ + "-" + random_suffix();
    sqlite_tx tx{*db_};
    auto rows = db_->prepare("SELECT mutation_id FROM outbox ORDER BY mutation_id");
    while (rows.step())
      out.old_ids.push_back(static_cast<uint64_t>(rows.column_int(0)));
    // Two steps, as mutation_id is the key: out of the way (negative), then
    // 1..n in the old order.
    db_->exec("UPDATE outbox SET mutation_id = -mutation_id");
    auto renumber = db_->prepare(
      "UPDATE outbox SET mutation_id = ?1 WHERE mutation_id = ?2");
    for (size_t i = 0; i < out.old_ids.size(); ++i)
      renumber.bind(1, static_cast<int64_t>(i + 1))
        .bind(2, -static_cast<int64_t>(out.old_ids[i]))
        .exec();
    auto next = out.old_ids.size() + 1;
    set_meta("client_id", out.client_id);
    set_meta("next_mutation_id", std::to_string(next));
    set_meta("pushed_mutation_id", "0");
    set_meta("last_mutation_id", "0");
    set_meta("push_epoch", "");
    tx.commit();
    moved_from_ = client_id_;
    moved_ids_ = out.old_ids;
    client_id_ = out.client_id;
    next_mutation_id_ = next;
    pushed_mutation_id_ = 0;
    return out;
  } catch (const sqlite_error& e) {
    fail(e, "cannot move to a new client id in");
  }
}

std::string local_database::integrity_check() {
  return db_->query_text("PRAGMA integrity_check");
}

} // namespace memsync
