// The load test's checks after the clients went quiet: does every client
// hold the server's state, and did the server apply every change the
// clients made exactly once, ending with the last one it accepted?
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "actors/storage/storage_backend.hpp"
#include "messages/scopes.hpp"
#include "node/loadtest/loadtest_report.hpp"
#include "node/loadtest/loadtest_sim.hpp"
#include "node/server/server_config.hpp"

namespace memsync::loadtest {

/// A client's visible state as comparable text: "id\ttype\tdata", sorted.
std::vector<std::string> visible_state(client_node& node);

/// A visible_state split by the scope `rules` give each entity (types
/// without a rule, and entities without a valid scope, under "default").
std::map<std::string, std::vector<std::string>>
split_by_scope(const std::vector<std::string>& state, const scope_rules& rules);

/// Opens the storage of a server node as `cfg` configures it (its SQLite
/// file or its PostgreSQL schema), beside the running node, to read it.
/// Throws storage_error.
std::unique_ptr<storage_backend> open_server_storage(const server_config& cfg);

/// Reads a server's state through its storage backend (the history and the
/// entities, on any backend) and compares it with what its `clients`
/// recorded: every mutation made exactly once in the history (less those
/// the server refused: `refused` holds the mutation ids by client index)
/// and every entity equal to the write of its last history entry. Adds to
/// the counters of `report` (also those of the writes made while the
/// server was down, `report.storm`). Throws storage_error.
void check_server_log(storage_backend& server, const std::vector<sim_client*>& clients,
                      const std::map<std::size_t, std::set<uint64_t>>& refused,
                      loadtest_report& report);

} // namespace memsync::loadtest
