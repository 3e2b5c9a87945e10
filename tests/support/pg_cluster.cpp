#include "tests/support/pg_cluster.hpp"
#include "tests/support/temp_dir.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace memsync::testing {

namespace {

namespace fs = std::filesystem;

#ifndef MEMSYNC_PG_BINDIR
#define MEMSYNC_PG_BINDIR "/usr/lib/postgresql/15/bin"
#endif

// Postgres refuses to run as root: as root, run its binaries as `postgres`.
bool is_root() {
  return geteuid() == 0;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0)
      close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string quote(const std::string& name) {
  return "\"" + name + "\"";
}

std::unique_ptr<pg_cluster> shared_cluster;
std::mutex shared_mutex;

// Removes the shared cluster at the end of the test program, whatever failed.
class cluster_environment : public ::testing::Environment {
public:
  void TearDown() override { pg_cluster::remove_shared(); }
};

[[maybe_unused]] auto* const registered = ::testing::AddGlobalTestEnvironment(
  new cluster_environment);

} // namespace

pg_cluster& pg_cluster::shared() {
  std::lock_guard<std::mutex> guard{shared_mutex};
  if (!shared_cluster)
    shared_cluster = std::make_unique<pg_cluster>();
  return *shared_cluster;
}

void pg_cluster::remove_shared() {
  std::lock_guard<std::mutex> guard{shared_mutex};
  shared_cluster.reset();
}

pg_cluster::pg_cluster() {
  auto* env = std::getenv("MEMSYNC_PG_BINDIR");
  bindir_ = env && *env ? env : MEMSYNC_PG_BINDIR;
  dir_ = make_temp_directory("memsync-pg");
  data_ = dir_ + "/data";
  try {
    start_watchdog();
    if (is_root()) {
      auto* pw = getpwnam("postgres");
      if (!pw)
        throw std::runtime_error("running as root, but there is no postgres user");
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("cannot chown " + dir_);
    }
    run(as_owner({bindir_ + "/initdb", "-D", data_, "-U", "postgres", "-A", "trust", "-E",
                  "UTF8", "--locale=C", "--no-sync"}),
        "initdb failed");
    std::ofstream conf{data_ + "/postgresql.conf", std::ios::app};
    conf << "\n# memsync tests\nlisten_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "max_connections = 50\nshared_buffers = 32MB\n";
    conf.close();
    for (int attempt = 0; !running_; ++attempt) {
      port_ = free_port();
      if (!try_start() && attempt == 4)
        throw std::runtime_error("cannot start PostgreSQL:\n" + log_tail());
    }
    admin_ = PQconnectdb(conninfo("postgres").c_str());
    if (PQstatus(admin_) != CONNECTION_OK)
      throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(admin_));
    PQsetNoticeProcessor(
      admin_, [](void*, const char*) {}, nullptr);
  } catch (...) {
    cleanup(); // the destructor of a half-made object does not run
    throw;
  }
}

pg_cluster::~pg_cluster() {
  cleanup();
}

void pg_cluster::cleanup() {
  if (admin_)
    PQfinish(admin_);
  admin_ = nullptr;
  if (running_) {
    try {
      run(as_owner({bindir_ + "/pg_ctl", "-D", data_, "-m", "immediate", "-w", "stop"}),
          "pg_ctl stop failed");
    } catch (const std::exception&) {
      // The directory goes in any case; a server that lost its lock file
      // (data/postmaster.pid) shuts itself down within a minute.
    }
    running_ = false;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (watchdog_fd_ >= 0) {
    close(watchdog_fd_); // EOF: the watchdog finds nothing left and exits
    waitpid(watchdog_, nullptr, 0);
    watchdog_fd_ = -1;
  }
}

std::vector<std::string> pg_cluster::as_owner(std::vector<std::string> argv) const {
  if (is_root())
    argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  return argv;
}

// Runs argv (found on PATH) with its output appended to commands.log.
void pg_cluster::run(const std::vector<std::string>& argv,
                     const std::string& what) const {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  auto log = dir_ + "/commands.log";
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
      || WEXITSTATUS(status) != 0)
    throw std::runtime_error(what + ":\n" + log_tail());
}

// A child of its own session that waits for EOF on a pipe only this process
// holds: when the test process ends in any way, it stops the server and
// removes the directory unless the destructor already did.
void pg_cluster::start_watchdog() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  std::vector<std::string> argv{
    "/bin/sh", "-c",
    "cat >/dev/null; d=$1; shift; "
    "if [ -f \"$d/data/postmaster.pid\" ]; then \"$@\" >/dev/null 2>&1; fi; "
    "rm -rf \"$d\"",
    "watchdog", dir_};
  for (auto& a :
       as_owner({bindir_ + "/pg_ctl", "-D", data_, "-m", "immediate", "-w", "stop"}))
    argv.push_back(a);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  watchdog_ = fork();
  if (watchdog_ < 0)
    throw std::runtime_error("fork failed");
  if (watchdog_ == 0) {
    setsid(); // outlives a kill of the test's process group
    dup2(fds[0], STDIN_FILENO);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO); // holds no pipe of whoever runs the test
    dup2(null, STDERR_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[0]);
  watchdog_fd_ = fds[1];
}

bool pg_cluster::try_start() {
  try {
    run(as_owner({bindir_ + "/pg_ctl", "-D", data_, "-l", dir_ + "/postgres.log", "-o",
                  "-p " + std::to_string(port_), "-w", "-t", "60", "start"}),
        "pg_ctl start failed");
    running_ = true;
  } catch (const std::runtime_error&) {
    // Most likely someone took the port in between; try another.
  }
  return running_;
}

std::string pg_cluster::log_tail() const {
  std::string out;
  for (auto name : {"/commands.log", "/postgres.log"}) {
    std::ifstream in{dir_ + name};
    std::stringstream text;
    text << in.rdbuf();
    auto s = text.str();
    out += std::string(name + 1) + ":\n"
           + (s.size() > 3000 ? s.substr(s.size() - 3000) : s) + "\n";
  }
  return out;
}

std::string pg_cluster::conninfo(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_)
         + " user=postgres connect_timeout=10 dbname=" + database;
}

void pg_cluster::execute(const std::string& sql) {
  std::lock_guard<std::mutex> guard{mutex_};
  std::unique_ptr<PGresult, void (*)(PGresult*)> r{PQexec(admin_, sql.c_str()), PQclear};
  auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(r.get()));
}

std::string pg_cluster::query(const std::string& database, const std::string& sql) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn{PQconnectdb(conninfo(database).c_str()),
                                                  PQfinish};
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("cannot connect: ")
                             + PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, void (*)(PGresult*)> r{PQexec(conn.get(), sql.c_str()),
                                                   PQclear};
  auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(r.get()));
  return PQntuples(r.get()) > 0 && PQnfields(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0)
                                                          : "";
}

std::string pg_cluster::new_database_name() {
  std::lock_guard<std::mutex> guard{mutex_};
  return "test_" + std::to_string(++next_db_);
}

std::string pg_cluster::create_database(std::string name) {
  if (name.empty())
    name = new_database_name();
  execute("CREATE DATABASE " + quote(name));
  return name;
}

void pg_cluster::copy_database(const std::string& from, const std::string& to) {
  drop_database(to);
  execute("CREATE DATABASE " + quote(to) + " TEMPLATE " + quote(from));
}

void pg_cluster::drop_database(const std::string& name) {
  execute("DROP DATABASE IF EXISTS " + quote(name) + " WITH (FORCE)");
}

void pg_cluster::terminate_connections(const std::string& database) {
  // With a timeout, pg_terminate_backend waits until the backend is gone.
  execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
          "WHERE datname = '"
          + database + "' AND pid <> pg_backend_pid()");
}

} // namespace memsync::testing
