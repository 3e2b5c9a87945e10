// The load test's checks after the clients went quiet: does every client
// hold the server's state, and did the server apply every change the
// clients made exactly once, ending with the last one it accepted?
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "node/loadtest/loadtest_report.hpp"
#include "node/loadtest/loadtest_sim.hpp"

namespace memsync::loadtest {

/// A client's visible state as comparable text: "id\ttype\tdata", sorted.
std::vector<std::string> visible_state(client_node& node);

/// Reads a server's SQLite database (entities and replication log) and
/// compares it with what its `clients` recorded: every mutation made exactly
/// once in the log (less those the server refused: `refused` holds the
/// mutation ids by client index) and every entity equal to the write of its
/// last log entry. Adds to the counters of `report`.
void check_server_log(const std::string& db_path, const std::vector<sim_client*>& clients,
                      const std::map<std::size_t, std::set<uint64_t>>& refused,
                      loadtest_report& report);

} // namespace memsync::loadtest
