#include "actors/storage/sqlite_backend.hpp"

#include <algorithm>
#include <random>
#include <string_view>
#include <variant>

namespace memsync {

namespace {

constexpr int64_t server_application_id = 0x4D53524C; // 'MSRL'
constexpr int64_t server_schema_version = 2;

// A new database: schema 1 and the additions of schema 2 below.
const char* schema_v1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entities(id TEXT PRIMARY KEY, type TEXT NOT NULL,
                      data TEXT NOT NULL, version INTEGER NOT NULL,
                      deleted INTEGER NOT NULL);
CREATE INDEX entities_by_version ON entities(version);
CREATE TABLE clients(client_id TEXT PRIMARY KEY,
                     last_mutation_id INTEGER NOT NULL);
CREATE TABLE log(version INTEGER PRIMARY KEY, commit_id INTEGER NOT NULL,
                 client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL,
                 entity_id TEXT NOT NULL, deleted INTEGER NOT NULL);
)sql";

// Schema 2: scopes. Rows of before are in 'default' until next written (the
// rules decide a scope when an entity is written). A scoped pull reads its
// parts through the (scope, version) indexes: its cost grows with the
// changes in its scopes, not with the size of the database.
const char* schema_v2 = R"sql(
ALTER TABLE entities ADD COLUMN scope TEXT NOT NULL DEFAULT 'default';
CREATE INDEX entities_by_scope ON entities(scope, version);
CREATE TABLE moves(scope TEXT NOT NULL, id TEXT NOT NULL,
                   version INTEGER NOT NULL, PRIMARY KEY(scope, id));
CREATE INDEX moves_by_scope ON moves(scope, version);
PRAGMA user_version=2;
)sql";

// Added to schema 1 without a new version: a server of before ignores it.
const char* refusals_table = R"sql(
CREATE TABLE IF NOT EXISTS refusals(client_id TEXT NOT NULL,
                                    mutation_id INTEGER NOT NULL,
                                    code INTEGER NOT NULL, message TEXT NOT NULL,
                                    PRIMARY KEY(client_id, mutation_id));
)sql";

std::string new_epoch() {
  std::random_device rd;
  char buf[33];
  snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

int64_t new_commit_id() {
  std::random_device rd;
  return static_cast<int64_t>(((uint64_t{rd()} << 32) ^ rd()) >> 1) + 1;
}

[[noreturn]] void rethrow(const sqlite_error& e, const std::string& what) {
  // Busy or locked: another writer held the file; full: space may be freed.
  // Trying again can succeed (nothing was applied).
  bool retryable = e.code() == 5 /* SQLITE_BUSY */ || e.code() == 6 /* LOCKED */
                   || e.code() == 13 /* SQLITE_FULL */;
  throw storage_error(what + ": " + e.what(), retryable);
}

const char* entity_columns = "SELECT id, type, data, version, deleted FROM entities ";

// Of a row of entity_columns.
entity entity_at(const sqlite_stmt& row) {
  return {row.column_text(0), row.column_text(1), row.column_text(2),
          static_cast<uint64_t>(row.column_int(3)), row.column_int(4) != 0};
}

// A statement's text with its parameters, numbered as they are added (SQLite
// refuses a binding above the highest number the text uses).
struct query {
  std::string sql;
  std::vector<std::variant<int64_t, std::string_view>> params;

  std::string param(std::variant<int64_t, std::string_view> value) {
    params.push_back(value);
    return std::string("?").append(std::to_string(params.size()));
  }
  void bind(sqlite_stmt& stmt) const {
    for (size_t i = 0; i < params.size(); ++i)
      std::visit([&](auto v) { stmt.bind(static_cast<int>(i + 1), v); }, params[i]);
  }
  // A part's condition on the table `t` (entities or moves): its scopes and
  // versions, and (entities) whether its tombstones come.
  void add_part(const page_rows& part, const scope_range& range, const char* t) {
    std::string scope = std::string(t) + ".scope";
    sql += "(";
    if (range.kind == scope_range::exact)
      sql += scope + " = " + param(range.lo) + " AND ";
    else if (range.kind == scope_range::prefix)
      sql += scope + " >= " + param(range.lo) + " AND " + scope + " < " + param(range.hi)
             + " AND ";
    sql += std::string(t) + ".version > " + param(static_cast<int64_t>(part.after));
    if (std::string_view(t) == "entities" && !part.tombstones)
      sql += " AND entities.deleted = 0";
    sql += ")";
  }
};

} // namespace

std::string sqlite_part_rows_sql(const std::string& pattern) {
  // ?1: after, ?2: tombstones too, ?3 and ?4: the scope range.
  std::string where;
  switch (scope_range_of(pattern).kind) {
    case scope_range::all: where = "WHERE "; break;
    case scope_range::exact: where = "WHERE scope = ?3 AND "; break;
    case scope_range::prefix: where = "WHERE scope >= ?3 AND scope < ?4 AND "; break;
  }
  return entity_columns + where + "version > ?1 AND (deleted = 0 OR ?2) ORDER BY version";
}

class sqlite_backend::tx : public storage_tx {
public:
  explicit tx(sqlite_backend& backend)
      : backend_(backend), guard_(*backend.db_), head_(backend.head_),
        commit_id_(new_commit_id()) {}

  // Every statement can fail (a full disk, an I/O error): as storage_error,
  // like the rest of the interface.

  uint64_t last_mutation_id(const std::string& client_id) override {
    try {
      auto& stmt = backend_.get_client_;
      stmt.bind(1, client_id);
      uint64_t out = stmt.step() ? static_cast<uint64_t>(stmt.column_int(0)) : 0;
      stmt.reset();
      return out;
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot read a client");
    }
  }

  void set_last_mutation_id(const std::string& client_id, uint64_t mutation_id) override {
    try {
      backend_.set_client_.bind(1, client_id)
        .bind(2, static_cast<int64_t>(mutation_id))
        .exec();
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot write a client");
    }
  }

  bool load_entity(const std::string& id, entity& out, std::string& scope) override {
    try {
      auto& stmt = backend_.get_entity_;
      stmt.bind(1, id);
      bool found = stmt.step();
      if (found) {
        out = {id, stmt.column_text(0), stmt.column_text(1),
               static_cast<uint64_t>(stmt.column_int(2)), stmt.column_int(3) != 0};
        scope = stmt.column_text(4);
      }
      stored_scope_[id] = found ? scope : std::string{}; // "": never written
      stmt.reset();
      return found;
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot read an entity");
    }
  }

  uint64_t write_entity(const entity& e, const std::string& scope,
                        const std::string& client_id, uint64_t mutation_id) override {
    try {
      auto version = static_cast<int64_t>(head_ + 1);
      auto before = stored_scope_.find(e.id);
      if (before == stored_scope_.end()) { // written without being loaded
        entity ignored;
        std::string scope_before;
        load_entity(e.id, ignored, scope_before);
        before = stored_scope_.find(e.id);
      }
      if (!before->second.empty() && before->second != scope)
        backend_.put_move_.bind(1, before->second).bind(2, e.id).bind(3, version).exec();
      backend_.put_entity_.bind(1, e.id)
        .bind(2, e.type)
        .bind(3, e.data)
        .bind(4, version)
        .bind(5, int64_t{e.deleted ? 1 : 0})
        .bind(6, scope)
        .exec();
      stored_scope_[e.id] = scope;
      backend_.append_log_.bind(1, version)
        .bind(2, commit_id_)
        .bind(3, client_id)
        .bind(4, static_cast<int64_t>(mutation_id))
        .bind(5, e.id)
        .bind(6, int64_t{e.deleted ? 1 : 0})
        .exec();
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot write an entity");
    }
    wrote_ = true;
    return ++head_;
  }

  std::vector<refusal> refusals(const std::string& client_id) override {
    try {
      return backend_.refusals_of(client_id);
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot read refusals");
    }
  }

  void add_refusal(const std::string& client_id, const refusal& r) override {
    try {
      backend_.add_refusal_.bind(1, client_id)
        .bind(2, static_cast<int64_t>(r.mutation_id))
        .bind(3, static_cast<int64_t>(r.reason.code))
        .bind(4, r.reason.message)
        .exec();
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot keep a refusal");
    }
  }

  void drop_refusals(const std::string& client_id, uint64_t below) override {
    try {
      backend_.drop_refusals_.bind(1, client_id)
        .bind(2, static_cast<int64_t>(below))
        .exec();
    } catch (const sqlite_error& e) {
      rethrow(e, "cannot forget refusals");
    }
  }

  void commit() override {
    try {
      if (wrote_) {
        backend_.set_meta_.bind(1, "head_version").bind(2, std::to_string(head_)).exec();
        backend_.set_meta_.bind(1, "head_commit")
          .bind(2, std::to_string(commit_id_))
          .exec();
      }
      guard_.commit();
      backend_.head_ = head_;
      if (wrote_)
        backend_.head_commit_ = static_cast<uint64_t>(commit_id_);
    } catch (const sqlite_error& e) {
      rethrow(e, "commit failed");
    }
  }

private:
  sqlite_backend& backend_;
  sqlite_tx guard_;
  uint64_t head_; // becomes the backend's only once committed
  int64_t commit_id_;
  bool wrote_ = false;
  // The scope each entity loaded or written is stored in, as this
  // transaction left it: a write to another one records the move.
  std::unordered_map<std::string, std::string> stored_scope_;
};

sqlite_backend::sqlite_backend(const std::string& path) {
  try {
    db_ = std::make_unique<sqlite_db>(path, true);
    auto app_id = db_->query_int("PRAGMA application_id");
    auto version = db_->query_int("PRAGMA user_version");
    auto tables = db_->query_int("SELECT count(*) FROM sqlite_master");
    if (app_id != server_application_id && (app_id != 0 || tables != 0))
      throw storage_error(path + " is not a memsync server database", false);
    if (version > server_schema_version)
      throw storage_error(path + " has a newer schema (" + std::to_string(version) + ")",
                          false);
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec("PRAGMA synchronous=FULL");
    if (version == 0) {
      sqlite_tx guard{*db_};
      db_->exec(schema_v1);
      db_->exec("PRAGMA application_id=" + std::to_string(server_application_id));
      db_->exec("PRAGMA user_version=" + std::to_string(server_schema_version));
      auto stmt = db_->prepare("INSERT INTO meta VALUES(?1, ?2)");
      auto epoch = new_epoch();
      stmt.bind(1, "epoch").bind(2, epoch).exec();
      stmt.bind(1, "head_version").bind(2, "0").exec();
      stmt.bind(1, "head_commit").bind(2, "0").exec();
      db_->exec(schema_v2);
      guard.commit();
    } else if (version == 1) {
      sqlite_tx guard{*db_};
      db_->exec(schema_v2);
      guard.commit();
    }
    // Databases made before refusals were kept get their table now (new
    // ones too: it is not in schema_v1).
    db_->exec(refusals_table);
    // Databases made before cookies were signed get their secret now.
    db_->exec("INSERT OR IGNORE INTO meta VALUES('cookie_secret', "
              "lower(hex(randomblob(32))))");
    cookie_secret_ = db_->query_text(
      "SELECT value FROM meta WHERE key = 'cookie_secret'");
    epoch_ = db_->query_text("SELECT value FROM meta WHERE key = 'epoch'");
    head_ = std::stoull(
      db_->query_text("SELECT value FROM meta WHERE key = 'head_version'"));
    head_commit_ = std::stoull(
      db_->query_text("SELECT value FROM meta WHERE key = 'head_commit'"));
    get_client_ = db_->prepare(
      "SELECT last_mutation_id FROM clients WHERE client_id = ?1");
    set_client_ = db_->prepare(
      "INSERT INTO clients VALUES(?1, ?2) ON CONFLICT(client_id) DO UPDATE "
      "SET last_mutation_id = excluded.last_mutation_id");
    get_entity_ = db_->prepare(
      "SELECT type, data, version, deleted, scope FROM entities WHERE id = ?1");
    put_entity_ = db_->prepare(
      "INSERT INTO entities(id, type, data, version, deleted, scope) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO "
      "UPDATE SET type = excluded.type, data = excluded.data, "
      "version = excluded.version, deleted = excluded.deleted, "
      "scope = excluded.scope");
    put_move_ = db_->prepare(
      "INSERT INTO moves VALUES(?1, ?2, ?3) ON CONFLICT(scope, id) "
      "DO UPDATE SET version = excluded.version");
    append_log_ = db_->prepare("INSERT INTO log VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    set_meta_ = db_->prepare("UPDATE meta SET value = ?2 WHERE key = ?1");
    commit_of_ = db_->prepare("SELECT commit_id FROM log WHERE version = ?1");
    page_rows_ = db_->prepare(sqlite_part_rows_sql("*"));
    count_rows_ = db_->prepare(
      "SELECT count(*) FROM entities WHERE version > ?1 AND (deleted = 0 OR ?2)");
    get_refusals_ = db_->prepare(
      "SELECT mutation_id, code, message FROM refusals WHERE client_id = ?1 "
      "ORDER BY mutation_id");
    add_refusal_ = db_->prepare("INSERT INTO refusals VALUES(?1, ?2, ?3, ?4)");
    drop_refusals_ = db_->prepare(
      "DELETE FROM refusals WHERE client_id = ?1 AND mutation_id < ?2");
    log_after_ = db_->prepare(
      "SELECT version, client_id, mutation_id, entity_id, deleted "
      "FROM log WHERE version > ?1 ORDER BY version LIMIT ?2");
  } catch (const sqlite_error& e) {
    rethrow(e, "cannot open server database " + path);
  }
}

std::unique_ptr<storage_tx> sqlite_backend::begin() {
  try {
    return std::make_unique<tx>(*this);
  } catch (const sqlite_error& e) {
    rethrow(e, "cannot begin a transaction");
  }
}

bool sqlite_backend::issued(const cookie& c) {
  if (c.version == 0)
    return true;
  if (c.version > head_)
    return false;
  commit_of_.bind(1, static_cast<int64_t>(c.version));
  bool same = commit_of_.step()
              && static_cast<uint64_t>(commit_of_.column_int(0)) == c.commit;
  commit_of_.reset();
  return same;
}

void sqlite_backend::renew_epoch() {
  sqlite_tx guard{*db_};
  auto epoch = new_epoch();
  set_meta_.bind(1, "epoch").bind(2, epoch).exec();
  guard.commit();
  epoch_ = epoch;
}

pull_reply sqlite_backend::pull_page(const std::string& client_id, const cookie& since,
                                     const page_request& page) {
  try {
    if (since.epoch == epoch_ && !issued(since))
      renew_epoch(); // this file is an older copy of the history
    // One read transaction: every row below comes from the same snapshot.
    db_->begin_read();
    struct end_read {
      sqlite_db& db;
      ~end_read() {
        try {
          db.commit();
        } catch (...) {
        }
      }
    } guard{*db_};
    pull_reply out;
    out.reset = since.epoch != epoch_;
    auto ranges = page_ranges(out.reset, since, page);
    page_filler fill{out, page.max_bytes};
    if (ranges.size() > 1 || ranges.front().pattern != "*") {
      pull_parts(ranges, page.after == 0, fill, out);
    } else { // every scope, the default: one statement in version order
      auto& range = ranges.front();
      if (page.after == 0) {
        count_rows_.bind(1, static_cast<int64_t>(range.after))
          .bind(2, int64_t{range.tombstones});
        count_rows_.step();
        out.total = static_cast<uint64_t>(count_rows_.column_int(0));
        count_rows_.reset();
      }
      page_rows_.bind(1, static_cast<int64_t>(range.after))
        .bind(2, int64_t{range.tombstones});
      while (page_rows_.step() && fill.add(entity_at(page_rows_)))
        ;
      page_rows_.reset();
    }
    get_client_.bind(1, client_id);
    out.last_mutation_id = get_client_.step()
                             ? static_cast<uint64_t>(get_client_.column_int(0))
                             : 0;
    get_client_.reset();
    out.refused = refusals_of(client_id);
    out.next = {epoch_, head_, head_commit_};
    return out;
  } catch (const sqlite_error& e) {
    page_rows_.reset();
    count_rows_.reset();
    get_client_.reset();
    rethrow(e, "pull failed");
  }
}

sqlite_backend::leased_stmt::~leased_stmt() {
  if (!live_)
    return;
  stmt.reset();
  pool_[sql_].push_back(std::move(stmt));
}

sqlite_backend::leased_stmt sqlite_backend::lease(std::string sql) {
  // Bounded: subscriptions of many parts could make shapes without end.
  constexpr std::size_t max_shapes = 128;
  if (pool_.size() >= max_shapes && !pool_.count(sql))
    pool_.clear(); // none is leased now: a lease takes its statement out
  auto& free = pool_[sql];
  if (free.empty()) {
    auto stmt = db_->prepare(sql);
    return {pool_, std::move(sql), std::move(stmt)};
  }
  auto stmt = std::move(free.back());
  free.pop_back();
  return {pool_, std::move(sql), std::move(stmt)};
}

void sqlite_backend::pull_parts(const std::vector<page_rows>& ranges, bool first_page,
                                page_filler& fill, pull_reply& out) {
  std::vector<scope_range> scopes;
  for (auto& r : ranges)
    scopes.push_back(scope_range_of(r.pattern));
  // Removals: the latest move of each entity out of a part's scopes since
  // its progress (only parts that get tombstones), of entities no part
  // brings as they are now (see removals).
  std::vector<entity> gone;
  bool every_scope = every_scope_with_tombstones(ranges);
  query moved{"SELECT moves.id, entities.type, entities.scope, max(moves.version), "
              "entities.deleted "
              "FROM moves JOIN entities ON entities.id = moves.id WHERE ",
              {}};
  bool any_moved = false;
  for (size_t i = 0; i < ranges.size() && !every_scope; ++i)
    if (ranges[i].tombstones) {
      if (any_moved)
        moved.sql += " OR ";
      moved.add_part(ranges[i], scopes[i], "moves");
      any_moved = true;
    }
  if (any_moved) {
    moved.sql += " GROUP BY moves.id";
    auto moved_rows = lease(moved.sql);
    auto& rows = moved_rows.stmt;
    moved.bind(rows);
    std::vector<moved_out> candidates;
    while (rows.step())
      candidates.push_back({rows.column_text(0), rows.column_text(1), rows.column_text(2),
                            static_cast<uint64_t>(rows.column_int(3)),
                            rows.column_int(4) != 0});
    gone = removals(std::move(candidates), ranges);
  }
  if (first_page) { // the union of the parts' rows counts once per entity
    query counted{"SELECT count(*) FROM entities WHERE ", {}};
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (i > 0)
        counted.sql += " OR ";
      counted.add_part(ranges[i], scopes[i], "entities");
    }
    auto count = lease(counted.sql);
    counted.bind(count.stmt);
    count.stmt.step();
    out.total = static_cast<uint64_t>(count.stmt.column_int(0)) + gone.size();
  }
  // One statement per part, each in version order through its index, merged.
  std::vector<leased_stmt> parts;
  parts.reserve(ranges.size());
  std::vector<row_stream> streams;
  for (size_t i = 0; i < ranges.size(); ++i) {
    auto& part = parts.emplace_back(lease(sqlite_part_rows_sql(ranges[i].pattern)));
    part.stmt.bind(1, static_cast<int64_t>(ranges[i].after))
      .bind(2, int64_t{ranges[i].tombstones});
    if (scopes[i].kind != scope_range::all)
      part.stmt.bind(3, scopes[i].lo);
    if (scopes[i].kind == scope_range::prefix)
      part.stmt.bind(4, scopes[i].hi);
    streams.push_back([&stmt = part.stmt](entity& e) {
      if (!stmt.step())
        return false;
      e = entity_at(stmt);
      return true;
    });
  }
  size_t next_gone = 0;
  streams.push_back([&](entity& e) {
    if (next_gone == gone.size())
      return false;
    e = std::move(gone[next_gone++]);
    return true;
  });
  fill_merged(fill, std::move(streams));
}

std::vector<refusal> sqlite_backend::refusals_of(const std::string& client_id) {
  std::vector<refusal> out;
  auto& stmt = get_refusals_;
  stmt.bind(1, client_id);
  try {
    while (stmt.step())
      out.push_back({static_cast<uint64_t>(stmt.column_int(0)),
                     {static_cast<sync_errc>(stmt.column_int(1)), stmt.column_text(2)}});
  } catch (...) {
    stmt.reset();
    throw;
  }
  stmt.reset();
  return out;
}

std::vector<log_entry> sqlite_backend::read_log(uint64_t after, std::size_t max) {
  try {
    std::vector<log_entry> out;
    // One statement: its rows come from one snapshot.
    log_after_.bind(1, static_cast<int64_t>(after))
      .bind(2, static_cast<int64_t>(std::min<std::size_t>(max, INT64_MAX)));
    while (log_after_.step())
      out.push_back({static_cast<uint64_t>(log_after_.column_int(0)),
                     log_after_.column_text(1),
                     static_cast<uint64_t>(log_after_.column_int(2)),
                     log_after_.column_text(3), log_after_.column_int(4) != 0});
    log_after_.reset();
    return out;
  } catch (const sqlite_error& e) {
    log_after_.reset();
    rethrow(e, "cannot read the log");
  }
}

} // namespace memsync
