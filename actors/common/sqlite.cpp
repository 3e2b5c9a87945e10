#include "actors/common/sqlite.hpp"

#include <sqlite3.h>

namespace memsync {

namespace {

[[noreturn]] void raise(sqlite3* db, int rc, std::string_view context) {
  std::string msg{context};
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw sqlite_error(rc & 0xff, msg);
}

} // namespace

sqlite_stmt::sqlite_stmt(sqlite3* db, std::string_view sql) : db_(db) {
  auto rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                               SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK)
    raise(db, rc, "prepare");
}

sqlite_stmt::sqlite_stmt(sqlite_stmt&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

sqlite_stmt& sqlite_stmt::operator=(sqlite_stmt&& other) noexcept {
  std::swap(db_, other.db_);
  std::swap(stmt_, other.stmt_);
  return *this;
}

sqlite_stmt::~sqlite_stmt() {
  sqlite3_finalize(stmt_);
}

sqlite_stmt& sqlite_stmt::bind(int index, int64_t value) {
  auto rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK)
    raise(db_, rc, "bind");
  return *this;
}

sqlite_stmt& sqlite_stmt::bind(int index, std::string_view value) {
  // SQLITE_STATIC: no copy; see the contract in the header.
  auto rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                              SQLITE_STATIC);
  if (rc != SQLITE_OK)
    raise(db_, rc, "bind");
  return *this;
}

bool sqlite_stmt::step() {
  auto rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  sqlite3_reset(stmt_);
  raise(db_, rc, "step");
}

void sqlite_stmt::exec() {
  while (step())
    ; // discard rows
  reset();
}

void sqlite_stmt::reset() {
  sqlite3_reset(stmt_);
}

int64_t sqlite_stmt::column_int(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string sqlite_stmt::column_text(int index) const {
  return std::string{column_view(index)};
}

std::string_view sqlite_stmt::column_view(int index) const {
  auto ptr = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  if (ptr == nullptr)
    return {};
  return {ptr, static_cast<size_t>(sqlite3_column_bytes(stmt_, index))};
}

sqlite_db::sqlite_db(const std::string& path, bool create) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create)
    flags |= SQLITE_OPEN_CREATE;
  auto rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw sqlite_error(rc & 0xff, "cannot open " + path + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 0);
}

sqlite_db::~sqlite_db() {
  sqlite3_close_v2(db_);
}

void sqlite_db::exec(std::string_view sql) {
  std::string text{sql};
  char* err = nullptr;
  auto rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw sqlite_error(rc & 0xff, msg);
  }
}

sqlite_stmt sqlite_db::prepare(std::string_view sql) {
  return sqlite_stmt{db_, sql};
}

int64_t sqlite_db::query_int(std::string_view sql) {
  auto stmt = prepare(sql);
  return stmt.step() ? stmt.column_int(0) : 0;
}

std::string sqlite_db::query_text(std::string_view sql) {
  auto stmt = prepare(sql);
  return stmt.step() ? stmt.column_text(0) : std::string{};
}

sqlite_stmt& sqlite_db::control(sqlite_stmt& stmt, std::string_view sql) {
  if (!stmt.prepared())
    stmt = prepare(sql);
  return stmt;
}

void sqlite_db::begin() {
  control(begin_, "BEGIN IMMEDIATE").exec();
}

void sqlite_db::begin_read() {
  control(begin_read_, "BEGIN").exec();
}

void sqlite_db::commit() {
  control(commit_, "COMMIT").exec();
}

void sqlite_db::rollback() {
  control(rollback_, "ROLLBACK").exec();
}

sqlite_tx::sqlite_tx(sqlite_db& db) : db_(db) {
  db_.begin();
}

sqlite_tx::~sqlite_tx() {
  if (!done_) {
    try {
      db_.rollback();
    } catch (...) {
      // the transaction may already be gone after an I/O error
    }
  }
}

void sqlite_tx::commit() {
  db_.commit();
  done_ = true;
}

} // namespace memsync
