#include "tests/support/e2e_helpers.hpp"

#include <cstdlib>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "actors/common/sqlite.hpp"
#include "actors/storage/sqlite_backend.hpp"

namespace memsync::testing {

namespace {

// Fast timers on both sides; the middleman values must match.
const std::vector<std::string> middleman_options{
  "--middleman.heartbeat-interval=200ms",
  "--middleman.connection-timeout=2s",
};

const std::vector<std::string> fast_client_options{
  "--flush.debounce=0ns",   "--sync.push-debounce=0ns", "--sync.retry-min=20ms",
  "--sync.retry-max=300ms", "--sync.pull-interval=1s",  "--sync.request-timeout=2s",
  "--timeout=20s",
};

} // namespace

// -- sync_client ----------------------------------------------------------------

sync_client::sync_client(std::string name, std::vector<std::string> argv)
    : name_(std::move(name)), proc_(std::make_unique<child_process>(std::move(argv))) {}

std::string sync_client::cmd(const std::string& line, std::chrono::milliseconds timeout) {
  proc_->send(line);
  std::string out;
  if (!proc_->read_line(out, timeout))
    return {};
  return out;
}

std::vector<std::string> sync_client::batch(const std::vector<std::string>& lines,
                                            std::chrono::milliseconds timeout) {
  std::string text;
  for (auto& l : lines)
    proc_->send(l);
  std::vector<std::string> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line;
    if (!proc_->read_line(line, timeout))
      break;
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<std::string> sync_client::ls() {
  // `ls` prints nothing after its last entity: `status` marks the end.
  proc_->send("ls");
  proc_->send("status");
  std::vector<std::string> out;
  std::string line;
  while (proc_->read_line(line, std::chrono::seconds(20))) {
    if (line.rfind("{\"client_id\"", 0) == 0)
      return out;
    out.push_back(line);
  }
  ADD_FAILURE() << name_ << ": ls did not end with a status line";
  return out;
}

nlohmann::json sync_client::status() {
  auto line = cmd("status");
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << name_ << ": status answered '" << line << "'";
    return nlohmann::json::object();
  }
  return j;
}

int sync_client::quit() {
  proc_->send("quit");
  return proc_->wait(std::chrono::seconds(20));
}

// -- cluster --------------------------------------------------------------------

cluster::cluster() {
  tokens_path_ = dir_.file("tokens.txt");
  std::ofstream out{tokens_path_};
  // The shipped tokens, and one per other client name.
  std::ifstream shipped{MEMSYNC_SOURCE_DIR "/config/tokens.txt"};
  out << shipped.rdbuf() << '\n';
  for (auto name : {"carol", "dave", "erin", "frank", "grace", "c1", "c2", "c3", "c4",
                    "c5", "mallory"})
    out << token_of(name) << ' ' << name << '\n';
  if (tls()) {
    auto cmd = std::string{MEMSYNC_SOURCE_DIR "/tools/make_certs.sh "}
               + dir_.file("certs") + " localhost 127.0.0.1 >/dev/null";
    if (std::system(cmd.c_str()) != 0)
      ADD_FAILURE() << "tools/make_certs.sh failed";
  }
}

bool cluster::tls() {
  auto* env = std::getenv("MEMSYNC_E2E_TLS");
  return env && std::string{env} == "1";
}

cluster::~cluster() {
  if (server_)
    server_->kill_hard();
}

std::string cluster::token_of(const std::string& name) {
  if (name == "alice")
    return "alice-token-9f2c";
  if (name == "bob")
    return "bob-token-41d7";
  if (name == "carol") // also in config/tokens-teams.txt
    return "carol-token-6b1e";
  if (name == "dave")
    return "dave-token-c3a0";
  return "token-of-" + name;
}

uint16_t cluster::start_server(uint16_t port, std::vector<std::string> extra) {
  if (server_) {
    ADD_FAILURE() << "server already running";
    return port_;
  }
  std::vector<std::string> args{SYNCNODE_PATH,
                                "server",
                                "--config",
                                MEMSYNC_SOURCE_DIR "/config/server.ini",
                                "--server.port=" + std::to_string(port),
                                "--server.db-path=" + server_db(),
                                "--server.tokens-file=" + tokens_path_};
  if (tls()) {
    args.push_back("--server.tls-cert=" + dir_.file("certs/server.pem"));
    args.push_back("--server.tls-key=" + dir_.file("certs/server.key"));
  }
  args.insert(args.end(), middleman_options.begin(), middleman_options.end());
  args.insert(args.end(), extra.begin(), extra.end());
  server_ = std::make_unique<child_process>(args);
  std::string line;
  const std::string marker = "listening on 127.0.0.1:";
  while (server_->read_line(line, std::chrono::seconds(15))) {
    if (auto pos = line.find(marker); pos != std::string::npos) {
      port_ = static_cast<uint16_t>(std::stoi(line.substr(pos + marker.size())));
      return port_;
    }
  }
  ADD_FAILURE() << "server did not start (last line: '" << line << "')";
  server_->kill_hard();
  server_.reset();
  return 0;
}

int cluster::hung_stops_ = 0;

bool cluster::stop_server(bool require_exit) {
  if (!server_)
    return true;
  ::kill(server_->pid(), SIGTERM);
  std::string line;
  bool stopped = false;
  while (server_->read_line(line, std::chrono::seconds(15)))
    if (line.find("server server-1 stopped") != std::string::npos) {
      stopped = true;
      break;
    }
  EXPECT_TRUE(stopped) << "server did not report its stop";
  // Drain what it prints while it ends (until EOF: it never blocks on a full
  // pipe). A clean exit takes milliseconds.
  std::string rest;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline
         && server_->read_line(line, std::chrono::milliseconds(500)))
    rest += line + "\n";
  auto rc = server_->wait(std::chrono::milliseconds(500));
  bool clean = stopped && rc == 0;
  if (!clean) {
    // Known product bug (see server_exits_after_sigterm): the process can
    // hang after "stopped". Its database is complete by then (the
    // replication log closed it); tests that only need the data go on.
    ++hung_stops_;
    if (require_exit)
      ADD_FAILURE() << "server did not exit within 2 s after SIGTERM (rc " << rc
                    << "); output after its stop:\n"
                    << rest;
    server_->kill_hard();
  }
  server_.reset();
  return clean;
}

void cluster::kill_server() {
  if (!server_)
    return;
  server_->kill_hard();
  server_.reset();
}

uint16_t cluster::reserve_port() {
  auto port = start_server();
  stop_server();
  return port;
}

std::vector<std::string> cluster::client_args(const std::string& name,
                                              std::vector<std::string> extra,
                                              uint16_t port) {
  bool shipped = name == "alice" || name == "bob";
  std::vector<std::string> args{SYNCNODE_PATH,
                                "client",
                                "--config",
                                std::string{MEMSYNC_SOURCE_DIR "/config/client-"}
                                  + (shipped ? name : "alice") + ".ini",
                                "--client.db-path=" + dir_.file(name + ".db"),
                                "--server.port="
                                  + std::to_string(port != 0 ? port : port_)};
  if (!shipped) {
    args.push_back("--client.id=" + name);
    args.push_back("--server.token=" + token_of(name));
  }
  if (tls())
    args.push_back("--server.tls-ca=" + ca_file());
  args.insert(args.end(), fast_client_options.begin(), fast_client_options.end());
  args.insert(args.end(), middleman_options.begin(), middleman_options.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::unique_ptr<sync_client> cluster::start_client(const std::string& name,
                                                   std::vector<std::string> extra,
                                                   uint16_t port) {
  return std::make_unique<sync_client>(name, client_args(name, std::move(extra), port));
}

// -- server database ------------------------------------------------------------

std::vector<entity> server_state(const std::string& db_path) {
  sqlite_backend backend{db_path};
  auto reply = backend.pull("e2e-test-probe", cookie{});
  EXPECT_TRUE(reply.reset);
  auto out = std::move(reply.entities);
  std::sort(out.begin(), out.end(),
            [](const entity& a, const entity& b) { return a.id < b.id; });
  return out;
}

log_summary server_log(const std::string& db_path, const std::string& client_id) {
  sqlite_db db{db_path, false};
  auto stmt = db.prepare(
    "SELECT count(*), count(DISTINCT mutation_id), ifnull(min(mutation_id), 0), "
    "ifnull(max(mutation_id), 0) FROM log WHERE client_id = ?1");
  stmt.bind(1, client_id);
  log_summary out;
  if (stmt.step())
    out = {stmt.column_int(0), stmt.column_int(1), stmt.column_int(2),
           stmt.column_int(3)};
  stmt.reset();
  return out;
}

int64_t server_last_mutation_id(const std::string& db_path,
                                const std::string& client_id) {
  sqlite_db db{db_path, false};
  auto stmt = db.prepare("SELECT last_mutation_id FROM clients WHERE client_id = ?1");
  stmt.bind(1, client_id);
  int64_t out = stmt.step() ? stmt.column_int(0) : 0;
  stmt.reset();
  return out;
}

std::string server_epoch(const std::string& db_path) {
  sqlite_db db{db_path, false};
  return db.query_text("SELECT value FROM meta WHERE key = 'epoch'");
}

// -- comparable text -------------------------------------------------------------

std::vector<std::string> canonical(const std::vector<entity>& state) {
  std::vector<std::string> out;
  for (auto& e : state) {
    if (e.deleted)
      continue;
    out.push_back(e.id + "\t" + e.type + "\t" + nlohmann::json::parse(e.data).dump());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> canonical(const std::vector<std::string>& ls_lines) {
  std::vector<std::string> out;
  for (auto& line : ls_lines) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("id") || !j.contains("data")) {
      out.push_back("<not an entity: " + line + ">");
      continue;
    }
    out.push_back(j["id"].get<std::string>() + "\t" + j["type"].get<std::string>() + "\t"
                  + j["data"].dump());
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace memsync::testing
