#include "actors/storage/postgres_backend.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <unordered_map>

namespace memsync {

namespace {

constexpr uint64_t server_schema_version = 2;

// '@' stands for the schema. The advisory lock ('MSRL') serialises servers
// that start together on one empty database; IF NOT EXISTS lets the later
// ones pass.
const char* schema_v1 = R"sql(
BEGIN; SELECT pg_advisory_xact_lock(1297306188); CREATE SCHEMA IF NOT EXISTS @;
CREATE TABLE IF NOT EXISTS @.meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS @.entities(id text PRIMARY KEY, type text NOT NULL,
  data text NOT NULL, version bigint NOT NULL, deleted boolean NOT NULL);
CREATE INDEX IF NOT EXISTS entities_by_version ON @.entities(version);
CREATE TABLE IF NOT EXISTS @.clients(client_id text PRIMARY KEY,
  last_mutation_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS @.log(version bigint PRIMARY KEY,
  commit_id bigint NOT NULL, client_id text NOT NULL, mutation_id bigint NOT NULL,
  entity_id text NOT NULL, deleted boolean NOT NULL);
)sql";

// Schema 2: scopes (rows of before are in 'default' until next written: the
// rules decide a scope when an entity is written). Byte order (COLLATE "C")
// so that a prefix of scopes is one range of the (scope, version) index: a
// scoped pull's cost grows with the changes in its scopes, not with the size
// of the database. Under the lock of schema_v1, so that servers starting
// together on an older database upgrade it once.
const char* schema_v2 = R"sql(
BEGIN; SELECT pg_advisory_xact_lock(1297306188);
ALTER TABLE @.entities ADD COLUMN IF NOT EXISTS scope text COLLATE "C" NOT NULL
  DEFAULT 'default';
CREATE INDEX IF NOT EXISTS entities_by_scope ON @.entities(scope, version);
CREATE TABLE IF NOT EXISTS @.moves(scope text COLLATE "C" NOT NULL,
  id text NOT NULL, version bigint NOT NULL, PRIMARY KEY (scope, id));
CREATE INDEX IF NOT EXISTS moves_by_scope ON @.moves(scope, version);
UPDATE @.meta SET value = '2' WHERE key = 'schema_version' AND value = '1';
COMMIT;
)sql";

// Added to schema 1 without a new version (a server of before ignores it),
// on every connection: databases made before refusals were kept get it
// then. Under the same lock as schema_v1: two CREATE TABLE IF NOT EXISTS
// at once can still collide.
const char* refusals_table = R"sql(
BEGIN; SELECT pg_advisory_xact_lock(1297306188);
CREATE TABLE IF NOT EXISTS @.refusals(client_id text NOT NULL,
  mutation_id bigint NOT NULL, code integer NOT NULL, message text NOT NULL,
  PRIMARY KEY (client_id, mutation_id));
COMMIT;
)sql";

// Prepared on every connection, once the schema exists.
const std::pair<const char*, const char*> statements[] = {
  {"read_meta", "SELECT key, value FROM @.meta"},
  {"set_meta", "UPDATE @.meta SET value = $2 WHERE key = $1"},
  {"set_head", "UPDATE @.meta SET value = CASE key WHEN 'head_version' THEN $1 "
               "ELSE $2 END WHERE key IN ('head_version', 'head_commit')"},
  {"get_client", "SELECT last_mutation_id FROM @.clients WHERE client_id = $1"},
  {"set_client", "INSERT INTO @.clients VALUES ($1, $2) ON CONFLICT (client_id) "
                 "DO UPDATE SET last_mutation_id = excluded.last_mutation_id"},
  {"get_entity", "SELECT id, type, data, version, deleted, scope FROM @.entities "
                 "WHERE id = $1"},
  {"get_entities", "SELECT id, type, data, version, deleted, scope FROM @.entities "
                   "WHERE id = ANY($1::text[])"},
  // A transaction's writes go in two statements at commit (arrays as
  // parameters), not two per change: each statement is a round trip.
  {"write_entities", "INSERT INTO @.entities(id, type, data, version, deleted, scope) "
                     "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
                     "$4::bigint[], $5::boolean[], $6::text[]) "
                     "ON CONFLICT (id) DO UPDATE SET type = excluded.type, "
                     "data = excluded.data, version = excluded.version, "
                     "deleted = excluded.deleted, scope = excluded.scope"},
  {"write_moves", "INSERT INTO @.moves SELECT * FROM unnest($1::text[], $2::text[], "
                  "$3::bigint[]) ON CONFLICT (scope, id) DO UPDATE "
                  "SET version = excluded.version"},
  {"write_log", "INSERT INTO @.log SELECT v, $2::bigint, c, m, e, d FROM "
                "unnest($1::bigint[], $3::text[], $4::bigint[], $5::text[], "
                "$6::boolean[]) AS t(v, c, m, e, d)"},
  {"get_refusals", "SELECT client_id, mutation_id, code, message FROM @.refusals "
                   "WHERE client_id = ANY($1::text[]) ORDER BY client_id, mutation_id"},
  {"add_refusal", "INSERT INTO @.refusals VALUES ($1, $2, $3, $4)"},
  {"drop_refusals", "DELETE FROM @.refusals WHERE client_id = $1 AND mutation_id < $2"},
  {"commit_of", "SELECT commit_id FROM @.log WHERE version = $1"},
  // Delivered to every LISTENing server node when the transaction commits.
  {"notify", "SELECT pg_notify($1, $2)"},
  {"page_rows", "SELECT id, type, data, version, deleted FROM @.entities "
                "WHERE version > $1 AND (NOT deleted OR $2::boolean) "
                "ORDER BY version LIMIT $3"},
  {"count_rows", "SELECT count(*) FROM @.entities "
                 "WHERE version > $1 AND (NOT deleted OR $2::boolean)"},
  {"log_after", "SELECT version, client_id, mutation_id, entity_id, deleted "
                "FROM @.log WHERE version > $1 ORDER BY version LIMIT $2"},
};

// The statements with array parameters are planned on every call: after
// five calls PostgreSQL may switch a prepared statement to a generic plan,
// and for `id = ANY($1)` with an array of unknown size that was a sequential
// scan (100-change pushes ran three times slower).
bool planned_per_call(const std::string& name) {
  return name == "get_entities" || name == "write_entities" || name == "write_log"
         || name == "write_moves" || name == "get_refusals";
}

std::string with_schema(std::string sql, const std::string& schema) {
  for (auto at = sql.find('@'); at != std::string::npos;
       at = sql.find('@', at + schema.size()))
    sql.replace(at, 1, schema);
  return sql;
}

std::string new_epoch() {
  std::random_device rd;
  char buf[33];
  snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

uint64_t new_commit_id() { // positive as a bigint, never 0 (no commit yet)
  std::random_device rd;
  return (((uint64_t{rd()} << 32) ^ rd()) >> 1) + 1;
}

uint64_t to_u64(const std::string& text) {
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    throw storage_error("not a number in the database: '" + text + "'", false);
  }
}
std::string num(uint64_t n) {
  return std::to_string(n);
}

std::string trimmed(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  return message;
}

// Worth another try: the transaction was rolled back by a conflict, or the
// connection (or the server behind it) went away.
bool retryable_state(const std::string& state) {
  return state == "40001" || state == "40P01"     // serialization, deadlock
         || state.rfind("08", 0) == 0             // connection exception
         || state == "57P01" || state == "57P02"  // admin / crash shutdown
         || state == "57P03" || state == "53300"; // starting up, too many
}

bool connection_state(const std::string& state) {
  return state.rfind("08", 0) == 0 || state.rfind("57P0", 0) == 0;
}

// A PostgreSQL array literal of quoted elements: {"a","b\"c"}.
class array_literal {
public:
  void add(const std::string& item) {
    text_ += text_.empty() ? "{\"" : ",\"";
    for (char ch : item) {
      if (ch == '"' || ch == '\\')
        text_ += '\\';
      text_ += ch;
    }
    text_ += '"';
  }
  std::string str() const { return text_.empty() ? "{}" : text_ + "}"; }

private:
  std::string text_;
};

// Rows a pull reads per statement (all in one snapshot), so that a page
// never reads the rest of a large state.
constexpr int chunk = 1000;

// Columns id, type, data, version, deleted.
entity entity_at(const PGresult* rows, int i) {
  return {PQgetvalue(rows, i, 0), PQgetvalue(rows, i, 1), PQgetvalue(rows, i, 2),
          to_u64(PQgetvalue(rows, i, 3)), *PQgetvalue(rows, i, 4) == 't'};
}

} // namespace

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char ch : name)
    out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

class postgres_backend::tx : public storage_tx {
public:
  explicit tx(postgres_backend& backend) : backend_(backend) {}
  ~tx() override {
    if (!done_)
      backend_.rollback_quietly();
  }

  void start() {
    auto meta = backend_.begin_write();
    head_ = base_ = meta.head;
    if (meta.epoch != backend_.epoch_) {
      // The push rules ran against the epoch apply_pushes read before this
      // transaction; another server renewed it since. Nothing is applied.
      backend_.epoch_ = meta.epoch;
      throw storage_error("the epoch was renewed by another server; push again", true);
    }
  }

  uint64_t last_mutation_id(const std::string& client_id) override {
    auto r = backend_.run("get_client", {client_id}, "cannot read a client");
    return PQntuples(r.get()) > 0 ? to_u64(PQgetvalue(r.get(), 0, 0)) : 0;
  }

  void set_last_mutation_id(const std::string& client_id, uint64_t mutation_id) override {
    backend_.run("set_client", {client_id, num(mutation_id)}, "cannot write a client");
  }

  void prefetch(const std::vector<log_push>& pushes) override {
    array_literal wanted;
    for (auto& push : pushes)
      for (auto& c : push.request.changes)
        if (cache_.emplace(c.id, std::nullopt).second) // nullopt: never written
          wanted.add(c.id);
    auto r = backend_.run("get_entities", {wanted.str()}, "cannot read entities");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      auto e = entity_at(r.get(), i);
      auto id = e.id;
      cache_[id] = stored{std::move(e), PQgetvalue(r.get(), i, 5)};
    }
    // The pushing clients' refusals too: one round trip for the group, not
    // one per push.
    std::vector<std::string> asked;
    for (auto& push : pushes)
      if (!refusals_.count(push.request.client_id)
          && std::find(asked.begin(), asked.end(), push.request.client_id) == asked.end())
        asked.push_back(push.request.client_id);
    if (asked.empty())
      return;
    auto found = backend_.refusals_of(asked);
    for (auto& id : asked)
      refusals_[id] = std::move(found[id]);
  }

  bool load_entity(const std::string& id, entity& out, std::string& scope) override {
    auto it = cache_.find(id);
    if (it == cache_.end()) {
      auto r = backend_.run("get_entity", {id}, "cannot read an entity");
      it = cache_.emplace(id, std::nullopt).first;
      if (PQntuples(r.get()) > 0)
        it->second = stored{entity_at(r.get(), 0), PQgetvalue(r.get(), 0, 5)};
    }
    if (!it->second)
      return false;
    out = it->second->e;
    scope = it->second->scope;
    return true;
  }

  std::vector<refusal> refusals(const std::string& client_id) override {
    auto it = refusals_.find(client_id);
    if (it == refusals_.end()) {
      it = refusals_.emplace(client_id, backend_.refusals_of({client_id})[client_id])
             .first;
    }
    return it->second;
  }

  // Refusals are rare: one statement each, at once. The cache follows, so a
  // later push of the same client in this transaction sees them.
  void add_refusal(const std::string& client_id, const refusal& r) override {
    backend_.run("add_refusal",
                 {client_id, num(r.mutation_id),
                  std::to_string(static_cast<int>(r.reason.code)), r.reason.message},
                 "cannot keep a refusal");
    auto& kept = refusals_[client_id];
    kept.insert(std::upper_bound(kept.begin(), kept.end(), r,
                                 [](const refusal& a, const refusal& b) {
                                   return a.mutation_id < b.mutation_id;
                                 }),
                r);
  }

  void drop_refusals(const std::string& client_id, uint64_t below) override {
    backend_.run("drop_refusals", {client_id, num(below)}, "cannot forget refusals");
    auto& kept = refusals_[client_id];
    kept.erase(kept.begin(),
               std::find_if(kept.begin(), kept.end(),
                            [&](const refusal& r) { return r.mutation_id >= below; }));
  }

  uint64_t write_entity(const entity& e, const std::string& scope,
                        const std::string& client_id, uint64_t mutation_id) override {
    entity before;
    std::string scope_before;
    if (load_entity(e.id, before, scope_before) && scope_before != scope)
      moves_[{scope_before, e.id}] = head_ + 1; // the latest move out of it
    auto& row = cache_[e.id];
    row = stored{e, scope};
    row->e.version = ++head_;
    writes_.push_back({e.id, client_id, mutation_id, head_, e.deleted});
    return head_;
  }

  void commit() override {
    if (!writes_.empty()) {
      write_rows();
      backend_.run("set_head", {num(head_), num(commit_id_)}, "cannot write the head");
      backend_.run("notify", {backend_.channel_, notify_payload()},
                   "cannot notify other servers");
    }
    done_ = true;
    backend_.commit_tx("commit failed");
    backend_.head_ = head_;
    if (!writes_.empty())
      backend_.head_commit_ = commit_id_;
  }

private:
  /// What the other server nodes hear of this commit (postgres_listener):
  /// the head, then every scope it touched (before or after a change), so
  /// that they poke only the sessions of those scopes. Scope names hold no
  /// spaces. A list that would not fit NOTIFY's payload is left out: the
  /// head alone pokes every session.
  std::string notify_payload() const {
    constexpr std::size_t max_payload = 7900; // PostgreSQL takes up to 8000 bytes
    std::set<std::string_view> touched;
    for (auto& [id, row] : cache_)
      if (row && row->e.version > base_)
        touched.insert(row->scope);
    for (auto& [key, version] : moves_)
      touched.insert(key.first);
    auto out = num(head_);
    for (auto scope : touched) {
      if (out.size() + 1 + scope.size() > max_payload)
        return num(head_);
      out += ' ';
      out += scope;
    }
    return out;
  }

  struct log_row {
    std::string entity_id;
    std::string client_id;
    uint64_t mutation_id;
    uint64_t version;
    bool deleted;
  };

  // Entities: the final state of each id (one row per id: an upsert may not
  // touch a row twice); the log: every write.
  void write_rows() {
    array_literal ids, types, datas, versions, deleted, scopes;
    for (auto& [id, row] : cache_)
      if (row && row->e.version > base_) { // written by this transaction
        auto& e = row->e;
        ids.add(e.id);
        types.add(e.type);
        datas.add(e.data);
        versions.add(num(e.version));
        deleted.add(e.deleted ? "t" : "f");
        scopes.add(row->scope);
      }
    backend_.run("write_entities",
                 {ids.str(), types.str(), datas.str(), versions.str(), deleted.str(),
                  scopes.str()},
                 "cannot write entities");
    if (!moves_.empty()) { // rare: no round trip for the others
      array_literal from, moved, at;
      for (auto& [key, version] : moves_) {
        from.add(key.first);
        moved.add(key.second);
        at.add(num(version));
      }
      backend_.run("write_moves", {from.str(), moved.str(), at.str()},
                   "cannot write moves");
    }
    array_literal log_versions, clients, mutations, entity_ids, log_deleted;
    for (auto& w : writes_) {
      log_versions.add(num(w.version));
      clients.add(w.client_id);
      mutations.add(num(w.mutation_id));
      entity_ids.add(w.entity_id);
      log_deleted.add(w.deleted ? "t" : "f");
    }
    backend_.run("write_log",
                 {log_versions.str(), num(commit_id_), clients.str(), mutations.str(),
                  entity_ids.str(), log_deleted.str()},
                 "cannot write the log");
  }

  postgres_backend& backend_;
  uint64_t base_ = 0; // the head this transaction started from
  uint64_t head_ = 0; // becomes the backend's only once committed
  uint64_t commit_id_ = new_commit_id();
  struct stored {
    entity e;
    std::string scope;
  };
  // What this transaction read or wrote; nullopt: no such entity.
  std::unordered_map<std::string, std::optional<stored>> cache_;
  // (scope, id) -> version: the moves this transaction made, the latest
  // per scope and entity (one row each: an upsert may not touch one twice).
  std::map<std::pair<std::string, std::string>, uint64_t> moves_;
  std::vector<log_row> writes_;
  // Per client read so far, kept in step with this transaction's writes.
  std::unordered_map<std::string, std::vector<refusal>> refusals_;
  bool done_ = false;
};

postgres_backend::postgres_backend(std::string conninfo, std::string schema)
    : conninfo_(std::move(conninfo)), schema_(quote_identifier(schema)),
      channel_(std::move(schema)) {
  char* err = nullptr;
  auto* options = PQconninfoParse(conninfo_.c_str(), &err); // no connection yet
  std::string what = err ? err : "";
  PQfreemem(err);
  if (!options)
    throw storage_error("invalid PostgreSQL connection string: " + what, false);
  PQconninfoFree(options);
  connect();
}

postgres_backend::~postgres_backend() {
  if (conn_)
    PQfinish(conn_);
}

void postgres_backend::connect() {
  if (conn_)
    PQfinish(conn_);
  in_tx_ = false;
  shapes_.clear(); // prepared on the connection that is gone
  conn_ = PQconnectdb(conninfo_.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    auto what = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw storage_error("cannot connect to PostgreSQL: " + what, true);
  }
  // Notices (IF NOT EXISTS, ROLLBACK outside a transaction) are expected.
  PQsetNoticeProcessor(
    conn_, [](void*, const char*) {}, nullptr);
  try {
    // A commit is acknowledged only once durable, whatever the server's default.
    run_sql("SELECT set_config('synchronous_commit', 'on', false) "
            "WHERE current_setting('synchronous_commit') = 'off'",
            "cannot configure the connection");
    create_schema();
    // Databases made before cookies were signed get their secret now; of
    // several nodes starting at once, the first one's insert counts.
    run_sql(with_schema("INSERT INTO @.meta VALUES ('cookie_secret', "
                        "replace(gen_random_uuid()::text || gen_random_uuid()::text, "
                        "'-', '')) ON CONFLICT (key) DO NOTHING",
                        schema_),
            "cannot create the cookie secret");
    auto meta = run_sql(with_schema("SELECT key, value FROM @.meta", schema_),
                        "cannot read the head");
    auto found = read_meta(meta.get());
    epoch_ = found.epoch;
    if (found.schema < 2) // only once the schema proved to be ours
      run_sql(with_schema(schema_v2, schema_), "cannot upgrade the schema to scopes");
    // Only once the schema proved to be ours.
    run_sql(with_schema(refusals_table, schema_), "cannot create the refusals table");
    for (auto& [name, sql] : statements)
      if (planned_per_call(name))
        per_call_[name] = with_schema(sql, schema_);
      else
        prepare(name, with_schema(sql, schema_));
  } catch (...) {
    if (conn_)
      PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

void postgres_backend::create_schema() {
  auto& s = schema_;
  prepare("find_schema", "SELECT to_regclass($1) IS NOT NULL");
  auto found = run("find_schema", {s + ".meta"}, "cannot look for the schema");
  if (*PQgetvalue(found.get(), 0, 0) != 't') {
    in_tx_ = true;
    try {
      run_sql(with_schema(schema_v1, s), "cannot create the schema");
      prepare("init_meta",
              with_schema("INSERT INTO @.meta VALUES ('epoch', $1), "
                          "('head_version', '0'), ('head_commit', '0'), "
                          "('schema_version', $2) ON CONFLICT (key) DO NOTHING",
                          s));
      // Schema 1 as it always was; connect() upgrades it at once.
      run("init_meta", {new_epoch(), "1"}, "cannot create the schema");
      commit_tx("cannot create the schema");
    } catch (...) {
      rollback_quietly();
      throw;
    }
  }
}

void postgres_backend::prepare(const char* name, const std::string& sql) {
  result r{PQprepare(conn_, name, sql.c_str(), 0, nullptr), PQclear};
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
    fail(r.get(), std::string("cannot prepare ") + name);
}

postgres_backend::result postgres_backend::run(const char* name,
                                               const std::vector<std::string>& params,
                                               const std::string& what) {
  std::vector<const char*> values;
  for (auto& p : params)
    values.push_back(p.c_str());
  auto text = per_call_.find(name);
  auto n = static_cast<int>(values.size());
  result r{text != per_call_.end()
             ? PQexecParams(conn_, text->second.c_str(), n, nullptr, values.data(),
                            nullptr, nullptr, 0)
             : PQexecPrepared(conn_, name, n, values.data(), nullptr, nullptr, 0),
           PQclear};
  auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    fail(r.get(), what);
  return r;
}

postgres_backend::result postgres_backend::run_sql(const std::string& sql,
                                                   const std::string& what) {
  result r{PQexec(conn_, sql.c_str()), PQclear};
  auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    fail(r.get(), what);
  return r;
}

void postgres_backend::fail(const pg_result* res, const std::string& what) {
  auto* field = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string state = field ? field : "";
  auto message = trimmed(res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                           : PQerrorMessage(conn_));
  bool lost = PQstatus(conn_) != CONNECTION_OK || connection_state(state);
  if (lost) { // the next call connects again
    PQfinish(conn_);
    conn_ = nullptr;
    in_tx_ = false;
  }
  if (!state.empty())
    message += " [" + state + "]";
  throw storage_error(what + ": " + message, lost || retryable_state(state));
}

void postgres_backend::commit_tx(const std::string& what) {
  auto r = run_sql("COMMIT", what);
  in_tx_ = false;
  if (std::string(PQcmdStatus(r.get())) != "COMMIT") // it had failed before
    throw storage_error(what + ": the transaction was rolled back", true);
}

void postgres_backend::rollback_quietly() {
  if (conn_ && in_tx_)
    PQclear(PQexec(conn_, "ROLLBACK"));
  in_tx_ = false;
}

void postgres_backend::ensure_open() {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK)
    connect();
}

postgres_backend::meta_row postgres_backend::read_meta(const pg_result* rows) {
  std::map<std::string, std::string> values;
  for (int i = 0; i < PQntuples(rows); ++i)
    values[PQgetvalue(rows, i, 0)] = PQgetvalue(rows, i, 1);
  for (auto key :
       {"epoch", "head_version", "head_commit", "schema_version", "cookie_secret"})
    if (!values.count(key))
      throw storage_error("schema " + schema_ + " is not a memsync server database",
                          false);
  if (to_u64(values["schema_version"]) > server_schema_version)
    throw storage_error("schema " + schema_ + " has a newer version ("
                          + values["schema_version"] + ")",
                        false);
  // Committed, if perhaps by another server.
  head_ = to_u64(values["head_version"]);
  head_commit_ = to_u64(values["head_commit"]);
  cookie_secret_ = values["cookie_secret"];
  return {values["epoch"], head_, head_commit_, to_u64(values["schema_version"])};
}

postgres_backend::meta_row postgres_backend::begin_write() {
  ensure_open();
  in_tx_ = true;
  try {
    // Lock the head row first, then read: in READ COMMITTED each statement
    // sees every commit before it, so this one sees the last writer's head.
    auto rows = run_sql(with_schema("BEGIN ISOLATION LEVEL READ COMMITTED; "
                                    "SELECT 1 FROM @.meta WHERE key = "
                                    "'head_version' FOR UPDATE; "
                                    "SELECT key, value FROM @.meta",
                                    schema_),
                        "cannot begin a transaction");
    return read_meta(rows.get());
  } catch (...) {
    rollback_quietly();
    throw;
  }
}

std::unique_ptr<storage_tx> postgres_backend::begin() {
  auto out = std::make_unique<tx>(*this);
  out->start(); // throws: out rolls back
  return out;
}

bool postgres_backend::issued(const cookie& c, uint64_t head) {
  if (c.version == 0)
    return true;
  if (c.version > head)
    return false;
  auto r = run("commit_of", {num(c.version)}, "cannot read the log");
  return PQntuples(r.get()) == 1 && to_u64(PQgetvalue(r.get(), 0, 0)) == c.commit;
}

void postgres_backend::renew_epoch(const cookie& since) {
  auto meta = begin_write();
  try {
    // Checked again under the lock: another server may have renewed it.
    if (meta.epoch == since.epoch && !issued(since, meta.head)) {
      auto epoch = new_epoch();
      run("set_meta", {"epoch", epoch}, "cannot renew the epoch");
      commit_tx("cannot renew the epoch");
      epoch_ = epoch;
    } else {
      rollback_quietly();
      epoch_ = meta.epoch;
    }
  } catch (...) {
    rollback_quietly();
    throw;
  }
}

pull_reply postgres_backend::pull_page(const std::string& client_id, const cookie& since,
                                       const page_request& page) {
  for (int attempt = 0;; ++attempt) {
    ensure_open();
    in_tx_ = true;
    try {
      // One snapshot for every row below.
      run_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "pull failed");
      auto meta = read_meta(run("read_meta", {}, "pull failed").get());
      epoch_ = meta.epoch;
      if (since.epoch == meta.epoch && !issued(since, meta.head)) {
        rollback_quietly(); // this database is an older copy of the history
        if (attempt > 0)
          throw storage_error("pull failed: the epoch keeps changing", true);
        renew_epoch(since);
        continue;
      }
      pull_reply out;
      out.reset = since.epoch != meta.epoch;
      auto ranges = page_ranges(out.reset, since, page);
      page_filler fill{out, page.max_bytes};
      if (ranges.size() > 1 || ranges.front().pattern != "*") {
        pull_parts(ranges, page.after == 0, fill, out);
      } else { // every scope, the default: prepared statements
        auto& range = ranges.front();
        std::string tombstones = range.tombstones ? "true" : "false";
        if (page.after == 0)
          out.total = to_u64(PQgetvalue(
            run("count_rows", {num(range.after), tombstones}, "pull failed").get(), 0,
            0));
        // In chunks of rows, all in this transaction's snapshot, until the
        // page is full: a page never reads the rest of a large state.
        for (bool full = false;;) {
          auto rows = run("page_rows", {num(range.after), tombstones, num(chunk)},
                          "pull failed");
          int n = PQntuples(rows.get());
          for (int i = 0; i < n && !full; ++i) {
            auto e = entity_at(rows.get(), i);
            range.after = e.version;
            full = !fill.add(std::move(e));
          }
          if (full || n < chunk)
            break;
        }
      }
      auto client = run("get_client", {client_id}, "pull failed");
      out.last_mutation_id = PQntuples(client.get()) > 0
                               ? to_u64(PQgetvalue(client.get(), 0, 0))
                               : 0;
      out.refused = std::move(refusals_of({client_id})[client_id]);
      commit_tx("pull failed");
      out.next = {meta.epoch, meta.head, meta.head_commit};
      return out;
    } catch (...) {
      rollback_quietly();
      throw;
    }
  }
}

namespace {

// A statement's text with its parameters, numbered as they are added.
struct query {
  std::string sql;
  std::vector<std::string> params;

  std::string param(std::string value) {
    params.push_back(std::move(value));
    return std::string("$").append(std::to_string(params.size()));
  }
  // A part's condition on the table `t`: its scopes and versions above
  // `after`, and (entities) whether its tombstones come.
  void add_part(const page_rows& part, const scope_range& range, uint64_t after,
                const std::string& t, bool entities) {
    sql += "(";
    if (range.kind == scope_range::exact)
      sql += t + ".scope = " + param(range.lo) + " AND ";
    else if (range.kind == scope_range::prefix)
      sql += t + ".scope >= " + param(range.lo) + " AND " + t + ".scope < "
             + param(range.hi) + " AND ";
    sql += t + ".version > " + param(num(after)) + "::bigint";
    if (entities && !part.tombstones)
      sql += " AND NOT " + t + ".deleted";
    sql += ")";
  }
};

} // namespace

postgres_backend::result
postgres_backend::run_text(const std::string& sql, const std::vector<std::string>& params,
                           const std::string& what) {
  // Bounded: subscriptions of many parts could make shapes without end;
  // past the bound a shape is planned per call.
  constexpr std::size_t max_shapes = 128;
  auto shape = shapes_.find(sql);
  if (shape == shapes_.end() && shapes_.size() < max_shapes) {
    auto name = std::string("shape_").append(std::to_string(shapes_.size()));
    prepare(name.c_str(), sql);
    shape = shapes_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  for (auto& p : params)
    values.push_back(p.c_str());
  auto n = static_cast<int>(values.size());
  result r{shape != shapes_.end() ? PQexecPrepared(conn_, shape->second.c_str(), n,
                                                   values.data(), nullptr, nullptr, 0)
                                  : PQexecParams(conn_, sql.c_str(), n, nullptr,
                                                 values.data(), nullptr, nullptr, 0),
           PQclear};
  auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    fail(r.get(), what);
  return r;
}

void postgres_backend::pull_parts(const std::vector<page_rows>& ranges, bool first_page,
                                  page_filler& fill, pull_reply& out) {
  std::vector<scope_range> scopes;
  for (auto& r : ranges)
    scopes.push_back(scope_range_of(r.pattern));
  const std::string entities = schema_ + ".entities";
  // Removals: the latest move of each entity out of a part's scopes since
  // its progress (only parts that get tombstones), of entities no part
  // brings as they are now (see removals).
  std::vector<entity> gone;
  bool every_scope = every_scope_with_tombstones(ranges);
  query moved{"SELECT m.id, e.type, e.scope, max(m.version), e.deleted FROM " + schema_
                + ".moves m JOIN " + entities + " e ON e.id = m.id WHERE ",
              {}};
  bool any_moved = false;
  for (size_t i = 0; i < ranges.size() && !every_scope; ++i)
    if (ranges[i].tombstones) {
      if (any_moved)
        moved.sql += " OR ";
      moved.add_part(ranges[i], scopes[i], ranges[i].after, "m", false);
      any_moved = true;
    }
  if (any_moved) {
    moved.sql += " GROUP BY m.id, e.type, e.scope, e.deleted";
    auto rows = run_text(moved.sql, moved.params, "pull failed");
    std::vector<moved_out> candidates;
    for (int i = 0; i < PQntuples(rows.get()); ++i)
      candidates.push_back({PQgetvalue(rows.get(), i, 0), PQgetvalue(rows.get(), i, 1),
                            PQgetvalue(rows.get(), i, 2),
                            to_u64(PQgetvalue(rows.get(), i, 3)),
                            PQgetvalue(rows.get(), i, 4)[0] == 't'});
    gone = removals(std::move(candidates), ranges);
  }
  if (first_page) { // the union of the parts' rows counts once per entity
    query counted{"SELECT count(*) FROM " + entities + " WHERE ", {}};
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (i > 0)
        counted.sql += " OR ";
      counted.add_part(ranges[i], scopes[i], ranges[i].after, entities, true);
    }
    auto n = run_text(counted.sql, counted.params, "pull failed");
    out.total = to_u64(PQgetvalue(n.get(), 0, 0)) + gone.size();
  }
  // Chunks of the parts' rows in version order: each part through its index
  // (at most a chunk of it), merged. An entity two parts read comes twice,
  // with one version: fill_merged keeps one.
  uint64_t cursor = 0; // the last version of the chunks read
  auto chunk_of = [&] {
    query q{"SELECT * FROM (", {}};
    for (size_t i = 0; i < ranges.size(); ++i) {
      q.sql += (i > 0 ? " UNION ALL " : "") + std::string("(SELECT id, type, data, ")
               + "version, deleted FROM " + entities + " WHERE ";
      q.add_part(ranges[i], scopes[i], std::max(ranges[i].after, cursor), entities, true);
      q.sql += " ORDER BY version LIMIT " + std::to_string(chunk) + ")";
    }
    q.sql += ") AS parts ORDER BY version LIMIT " + std::to_string(chunk);
    return run_text(q.sql, q.params, "pull failed");
  };
  result rows{nullptr, PQclear};
  int next_row = 0;
  bool more = true; // the last chunk was full
  row_stream parts = [&](entity& e) {
    if (!rows || next_row == PQntuples(rows.get())) {
      if (!more)
        return false;
      rows = chunk_of();
      next_row = 0;
      more = PQntuples(rows.get()) == chunk;
      if (PQntuples(rows.get()) == 0)
        return false;
    }
    e = entity_at(rows.get(), next_row++);
    cursor = e.version;
    return true;
  };
  size_t next_gone = 0;
  row_stream removed = [&](entity& e) {
    if (next_gone == gone.size())
      return false;
    e = std::move(gone[next_gone++]);
    return true;
  };
  fill_merged(fill, {parts, removed});
}

std::map<std::string, std::vector<refusal>>
postgres_backend::refusals_of(const std::vector<std::string>& clients) {
  array_literal ids;
  for (auto& id : clients)
    ids.add(id);
  auto rows = run("get_refusals", {ids.str()}, "cannot read refusals");
  std::map<std::string, std::vector<refusal>> out;
  for (int i = 0; i < PQntuples(rows.get()); ++i)
    out[PQgetvalue(rows.get(), i, 0)].push_back(
      {to_u64(PQgetvalue(rows.get(), i, 1)),
       {static_cast<sync_errc>(std::stoi(PQgetvalue(rows.get(), i, 2))),
        PQgetvalue(rows.get(), i, 3)}});
  return out;
}

std::vector<log_entry> postgres_backend::read_log(uint64_t after, std::size_t max) {
  ensure_open();
  // One statement outside a transaction: its rows come from one snapshot.
  auto rows = run("log_after", {num(after), num(std::min<std::size_t>(max, INT64_MAX))},
                  "cannot read the log");
  std::vector<log_entry> out;
  for (int i = 0; i < PQntuples(rows.get()); ++i)
    out.push_back({to_u64(PQgetvalue(rows.get(), i, 0)), PQgetvalue(rows.get(), i, 1),
                   to_u64(PQgetvalue(rows.get(), i, 2)), PQgetvalue(rows.get(), i, 3),
                   *PQgetvalue(rows.get(), i, 4) == 't'});
  return out;
}

} // namespace memsync
