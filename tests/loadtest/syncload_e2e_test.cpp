// syncload's multi-process setting run whole and small: a `syncnode server`
// process and K clients spread over P processes of syncload itself. Asserts
// that every client held every entity, that all client states are identical
// and exactly the K x M writes, and that bad options are refused clearly.
// No assertion on speed: this machine is shared.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/process.hpp"

using namespace std::chrono_literals;
using memsync::testing::child_process;

namespace {

/// Runs syncload with `args` after the binary and config dir; returns its
/// exit code and everything it printed.
std::pair<int, std::string> syncload(std::vector<std::string> args) {
  std::vector<std::string> argv{SYNCLOAD_PATH, SYNCNODE_PATH,
                                std::string{MEMSYNC_SOURCE_DIR} + "/config"};
  argv.insert(argv.end(), args.begin(), args.end());
  child_process p{argv};
  std::string out, line;
  while (p.read_line(line, 60s))
    out += line + "\n";
  return {p.wait(10s), out};
}

} // namespace

TEST(syncload_processes, clients_spread_over_processes_converge_on_every_write) {
  auto [rc, out] = syncload({"7", "40", "--processes=3"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("K=7 clients x M=40 entities in 3 processes"), std::string::npos)
    << out;
  EXPECT_NE(out.find("every client held all 280 entities after"), std::string::npos)
    << out;
  EXPECT_NE(out.find("convergence: 7 client states after sync, identical, each exactly "
                     "the K x M writes"),
            std::string::npos)
    << out;
}

TEST(syncload_processes, bad_options_are_refused_with_the_usage) {
  std::vector<std::pair<std::vector<std::string>, std::string>> cases{
    {{"4", "10", "--processes=0"}, "--processes: expected a number >= 1, got '0'"},
    {{"4"}, "expected 4 or 5 arguments, got 3"},
    {{"4", "10", "--local-db=disk"}, "unknown option '--local-db=disk'"},
    {{"1", "10"}, "K: expected a number >= 2, got '1'"},
    {{"4", "ten"}, "M: expected a number >= 1, got 'ten'"},
  };
  for (auto& [args, why] : cases) {
    auto [rc, out] = syncload(args);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("error: " + why), std::string::npos) << out;
    EXPECT_NE(out.find("usage: syncload"), std::string::npos) << out;
  }
}
