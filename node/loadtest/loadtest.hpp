// `syncnode loadtest`: many simulated clients in one process, each a real
// client_node (memory store, flush scheduler, local database, network
// syncer) in one shared actor system, against server nodes started in this
// process (each in an actor system of its own, over loopback TCP) or
// running elsewhere. See config/loadtest.ini for the workload settings.
#pragma once

#include <ostream>

#include "node/config/config.hpp"
#include "node/loadtest/loadtest_config.hpp"
#include "node/loadtest/loadtest_report.hpp"

namespace memsync {

/// Runs the whole test: start, workload, settle, convergence check.
/// `values` carries the CAF settings (scheduler, heartbeats) for every actor
/// system. Prints one live progress line to `progress` (if not null).
/// Throws config_error or std::runtime_error when it cannot start.
loadtest_report run_loadtest(const loadtest_config& cfg, const config_values& values,
                             std::ostream* progress);

} // namespace memsync
