// A small "cluster" for end-to-end tests of sync: one `syncnode server` on a
// free loopback port and any number of `syncnode client` children, all with
// fast timers, in one temporary directory. Plus readers of a stopped
// server's database (live state, replication log rows).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/entity.hpp"
#include "tests/support/process.hpp"

namespace memsync::testing {

/// A running `syncnode client`, driven line by line.
class sync_client {
public:
  sync_client(std::string name, std::vector<std::string> argv);

  const std::string& name() const { return name_; }
  child_process& process() { return *proc_; }

  /// Sends one command and returns its one-line result ("" on timeout).
  std::string cmd(const std::string& line,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// Sends many commands at once, then reads one result per command.
  std::vector<std::string>
  batch(const std::vector<std::string>& lines,
        std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// `ls`, every line (sorted by id, as printed).
  std::vector<std::string> ls();
  /// `status`, parsed ({} when the answer was not JSON).
  nlohmann::json status();
  /// `sync`: "ok" or the error line.
  std::string sync() { return cmd("sync", std::chrono::seconds(40)); }
  /// Polls `status` until `pred` holds or `timeout` passes.
  template <class Pred>
  bool wait_status(Pred pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto st = status();
      if (pred(st))
        return true;
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  /// `quit` and wait for the exit code (-1 on timeout).
  int quit();
  void kill_hard() { proc_->kill_hard(); }

private:
  std::string name_;
  std::unique_ptr<child_process> proc_;
};

/// A temporary directory with a tokens file, a server and clients.
class cluster {
public:
  cluster();
  ~cluster();

  const temp_dir& dir() const { return dir_; }
  std::string server_db() const { return dir_.file("server.db"); }

  /// Starts the server (port 0: any free port; else that port, e.g. after a
  /// restart) and returns its port. Fails the test on error.
  uint16_t start_server(uint16_t port = 0, std::vector<std::string> extra = {});
  /// SIGTERM; expects "server server-1 stopped". Returns whether it also
  /// exited with code 0 within 2 s; if not, it is killed, and that is a test
  /// failure only with `require_exit` (see the server_exits_after_sigterm
  /// test for the bug this works around).
  bool stop_server(bool require_exit = false);
  /// How many stops so far did not end in a clean exit.
  static int hung_stops() { return hung_stops_; }
  /// SIGKILL.
  void kill_server();
  bool server_running() const { return static_cast<bool>(server_); }
  child_process* server() { return server_.get(); }
  uint16_t port() const { return port_; }
  /// A port nobody listens on: a server is started on a free port and stopped.
  uint16_t reserve_port();

  /// The client's token: config/tokens.txt for alice and bob (and
  /// config/tokens-teams.txt for them, carol and dave), our own file
  /// for any other name.
  static std::string token_of(const std::string& name);

  /// True when MEMSYNC_E2E_TLS=1: the cluster makes a private CA
  /// (tools/make_certs.sh), its server requires TLS and its clients verify
  /// the server's certificate, so the same tests run over TLS.
  static bool tls();
  /// The CA file clients trust in TLS mode.
  std::string ca_file() const { return dir_.file("certs/ca.pem"); }

  /// Starts a client named `name` (db file DIR/name.db unless overridden by
  /// a later --client.db-path in `extra`), connected to port() (or `port`).
  std::unique_ptr<sync_client> start_client(const std::string& name,
                                            std::vector<std::string> extra = {},
                                            uint16_t port = 0);
  std::vector<std::string> client_args(const std::string& name,
                                       std::vector<std::string> extra, uint16_t port);

private:
  temp_dir dir_;
  std::string tokens_path_;
  std::unique_ptr<child_process> server_;
  uint16_t port_ = 0;
  static int hung_stops_;
};

// -- reading a stopped server's database -----------------------------------

/// The full live state (no tombstones), sorted by id.
std::vector<entity> server_state(const std::string& db_path);

struct log_summary {
  int64_t rows = 0;
  int64_t distinct_mutations = 0;
  int64_t min_mutation = 0;
  int64_t max_mutation = 0;
};
/// Rows of the replication log written for `client_id`.
log_summary server_log(const std::string& db_path, const std::string& client_id);
/// The server's record of the client's last mutation id (0: unknown).
int64_t server_last_mutation_id(const std::string& db_path, const std::string& client_id);
std::string server_epoch(const std::string& db_path);

// -- comparable text ---------------------------------------------------------

/// "id\ttype\tdata" lines (data canonical), sorted by id.
std::vector<std::string> canonical(const std::vector<entity>& state);
/// The same from `ls` lines.
std::vector<std::string> canonical(const std::vector<std::string>& ls_lines);

} // namespace memsync::testing
