// A throwaway PostgreSQL cluster for tests: initdb into a fresh temp
// directory, start on a free loopback port (and a unix socket in that
// directory), stop and remove everything when destroyed. Run as root, the
// server binaries run as the `postgres` OS user. A watchdog process removes
// the cluster if the test process dies without running its destructors
// (a crash, SIGKILL).
// The server binaries come from $MEMSYNC_PG_BINDIR, else from the directory
// CMake found (MEMSYNC_PG_BINDIR).
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

struct pg_conn;

namespace memsync::testing {

class pg_cluster {
public:
  /// initdb and start; throws std::runtime_error with the server's log.
  pg_cluster();
  /// Stops the server (immediate) and removes the directory.
  ~pg_cluster();

  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  /// One cluster per test binary, started on first use and removed when the
  /// test program ends (a GoogleTest environment), also after failures.
  static pg_cluster& shared();
  /// Removes the shared cluster now (the environment's TearDown).
  static void remove_shared();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  /// A libpq connection string for `database` as the superuser.
  std::string conninfo(const std::string& database) const;

  /// Runs SQL as the superuser on the maintenance database; throws.
  void execute(const std::string& sql);
  /// Runs SQL on `database` and returns the first column of the first row
  /// ("" if none); throws.
  std::string query(const std::string& database, const std::string& sql);
  /// A name no database of this cluster has had: test_<n>.
  std::string new_database_name();
  /// CREATE DATABASE `name` (a new name if empty); returns the name.
  std::string create_database(std::string name = {});
  /// Replaces `to` (if it exists) by a copy of `from`, which must have no
  /// connections (CREATE DATABASE ... TEMPLATE).
  void copy_database(const std::string& from, const std::string& to);
  void drop_database(const std::string& name);
  /// Ends every connection to `database` (as if the network dropped them).
  void terminate_connections(const std::string& database);

private:
  void cleanup();
  std::vector<std::string> as_owner(std::vector<std::string> argv) const;
  void run(const std::vector<std::string>& argv, const std::string& what) const;
  void start_watchdog();
  bool try_start(); // false: the port was taken
  std::string log_tail() const;

  std::string bindir_;
  std::string dir_;  // owned by the server's user; removed at the end
  std::string data_; // dir_/data
  int port_ = 0;
  bool running_ = false;
  int watchdog_fd_ = -1; // write end; the watchdog cleans up on EOF
  pid_t watchdog_ = -1;
  int next_db_ = 0;
  std::mutex mutex_;
  pg_conn* admin_ = nullptr;
};

} // namespace memsync::testing
