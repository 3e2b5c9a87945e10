// A thin RAII layer over the SQLite C API for the actors that own a database
// (local_db, the replication log's SQLite backend). Every failure throws
// sqlite_error with SQLite's message and code, never a silent return value.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace memsync {

class sqlite_error : public std::runtime_error {
public:
  sqlite_error(int code, const std::string& what)
      : std::runtime_error(what), code_(code) {}
  /// The primary SQLite result code (SQLITE_BUSY, SQLITE_CORRUPT, ...).
  int code() const { return code_; }

private:
  int code_;
};

class sqlite_stmt {
public:
  sqlite_stmt() = default;
  sqlite_stmt(sqlite3* db, std::string_view sql);
  sqlite_stmt(sqlite_stmt&& other) noexcept;
  sqlite_stmt& operator=(sqlite_stmt&& other) noexcept;
  ~sqlite_stmt();

  /// Parameters are 1-based, as in SQLite. Text is not copied: it must stay
  /// valid until the statement is reset (exec() resets). Bindings persist
  /// across resets, so bind every parameter before each use.
  sqlite_stmt& bind(int index, int64_t value);
  sqlite_stmt& bind(int index, std::string_view value);
  /// Advances; true while a row is available, false when done.
  bool step();
  /// Runs to completion and resets, for statements without rows.
  void exec();
  void reset();
  bool prepared() const { return stmt_ != nullptr; }

  int64_t column_int(int index) const;
  std::string column_text(int index) const;
  std::string_view column_view(int index) const;

private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class sqlite_db {
public:
  /// Opens (creating if `create`) the file at `path`; ":memory:" works.
  sqlite_db(const std::string& path, bool create);
  sqlite_db(const sqlite_db&) = delete;
  sqlite_db& operator=(const sqlite_db&) = delete;
  ~sqlite_db();

  void exec(std::string_view sql);
  sqlite_stmt prepare(std::string_view sql);
  /// BEGIN IMMEDIATE, BEGIN (a read: deferred), COMMIT and ROLLBACK through
  /// statements prepared once: a small transaction (a client's pull, a
  /// server's pull) spent much of its time parsing them again.
  void begin();
  void begin_read();
  void commit();
  void rollback();
  /// Runs a query that returns one integer (e.g. a PRAGMA).
  int64_t query_int(std::string_view sql);
  std::string query_text(std::string_view sql);
  sqlite3* handle() { return db_; }

private:
  sqlite_stmt& control(sqlite_stmt& stmt, std::string_view sql);

  sqlite3* db_ = nullptr;
  sqlite_stmt begin_, begin_read_, commit_, rollback_;
};

/// BEGIN IMMEDIATE on construction, ROLLBACK on destruction unless committed.
class sqlite_tx {
public:
  explicit sqlite_tx(sqlite_db& db);
  ~sqlite_tx();
  void commit();

private:
  sqlite_db& db_;
  bool done_ = false;
};

} // namespace memsync
