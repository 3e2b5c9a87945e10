#include "actors/storage/postgres_listener.hpp"

#include "actors/common/backoff.hpp"
#include "actors/storage/postgres_backend.hpp" // quote_identifier

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include <libpq-fe.h>

namespace memsync {

namespace {

using connection = std::unique_ptr<PGconn, void (*)(PGconn*)>;

bool exec_ok(PGconn* conn, const std::string& sql) {
  auto* res = PQexec(conn, sql.c_str());
  auto status = PQresultStatus(res);
  PQclear(res);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

// The committed head, or nothing if it cannot be read (yet: a fresh
// database has no schema until the first server node creates it).
bool read_head(PGconn* conn, const std::string& schema, uint64_t& out) {
  auto sql = "SELECT value FROM " + quote_identifier(schema)
             + ".meta WHERE key = 'head_version'";
  auto* res = PQexec(conn, sql.c_str());
  bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
  if (ok)
    out = std::strtoull(PQgetvalue(res, 0, 0), nullptr, 10);
  PQclear(res);
  return ok;
}

} // namespace

bool postgres_listener::parse_payload(std::string_view payload, uint64_t& head,
                                      std::optional<std::vector<std::string>>& scopes) {
  auto end = payload.find(' ');
  auto number = payload.substr(0, end);
  if (number.empty() || number.size() > 20
      || !std::all_of(number.begin(), number.end(),
                      [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  head = std::strtoull(std::string{number}.c_str(), nullptr, 10);
  scopes.reset();
  if (end == std::string_view::npos)
    return true; // the head alone: any scope
  std::vector<std::string> named;
  for (auto rest = payload.substr(end + 1); !rest.empty();) {
    auto next = rest.find(' ');
    if (auto scope = rest.substr(0, next); !scope.empty())
      named.emplace_back(scope);
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
  }
  if (!named.empty())
    scopes = std::move(named);
  return true;
}

postgres_listener::postgres_listener(std::string conninfo, std::string schema,
                                     on_head callback,
                                     std::chrono::milliseconds retry_max)
    : conninfo_(std::move(conninfo)), schema_(std::move(schema)),
      callback_(std::move(callback)), retry_max_(retry_max) {
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0)
    throw std::runtime_error("postgres_listener: cannot create a pipe");
  thread_ = std::thread([this] { run(); });
}

postgres_listener::~postgres_listener() {
  char byte = 1;
  [[maybe_unused]] auto n = write(stop_pipe_[1], &byte, 1);
  thread_.join();
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
}

postgres_listener::woke postgres_listener::wait(int fd,
                                                std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{stop_pipe_[0], POLLIN, 0}, {fd, POLLIN, 0}};
  int n = poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
  if (fds[0].revents & POLLIN)
    return woke::stopped;
  return n > 0 ? woke::readable : woke::timeout;
}

PGconn* postgres_listener::connect() {
  // A connect_timeout of our own, unless the connection string names one
  // (values expanded from dbname override the keywords before it).
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", conninfo_.c_str(), nullptr};
  return PQconnectdbParams(keys, values, 1);
}

void postgres_listener::run() {
  constexpr auto retry_min = std::chrono::milliseconds(50);
  uint64_t failures = 0; // consecutive failed connects
  uint64_t reported = 0;
  auto report = [&](uint64_t head,
                    const std::optional<std::vector<std::string>>& scopes) {
    if (head > reported) {
      reported = head;
      callback_(head, scopes);
    }
  };
  for (;;) {
    connection conn{connect(), PQfinish};
    bool ok = PQstatus(conn.get()) == CONNECTION_OK
              && exec_ok(conn.get(), "LISTEN " + quote_identifier(schema_));
    if (!ok) {
      if (wait(-1, backoff_delay(retry_min, retry_max_, ++failures)) == woke::stopped)
        return;
      continue;
    }
    failures = 0;
    ++connects_;
    listening_ = true;
    // Commits made while we were not listening sent notifications nobody heard.
    uint64_t head = 0;
    if (read_head(conn.get(), schema_, head))
      report(head, std::nullopt);
    auto fd = PQsocket(conn.get());
    for (bool alive = true; alive;) {
      switch (wait(fd, std::chrono::seconds(2))) {
        case woke::stopped: listening_ = false; return;
        case woke::timeout:
          // Quiet: make sure the server is still there (a dead peer that
          // sent no FIN would otherwise leave us deaf).
          alive = exec_ok(conn.get(), "SELECT 1");
          break;
        case woke::readable: alive = PQconsumeInput(conn.get()) != 0; break;
      }
      while (auto* note = PQnotifies(conn.get())) {
        uint64_t head = 0;
        std::optional<std::vector<std::string>> scopes;
        if (parse_payload(note->extra, head, scopes))
          report(head, scopes);
        PQfreemem(note);
      }
    }
    listening_ = false;
  }
}

} // namespace memsync
