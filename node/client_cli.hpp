// The command loop of `syncnode client`: one command per line on stdin, one
// result per line on stdout (a prompt only when stdin is a terminal).
#pragma once

#include <iosfwd>

#include "node/client/client_node.hpp"

namespace memsync {

/// Runs commands until `quit` or end of input. Returns the exit code.
int run_client_cli(client_node& node, const client_config& cfg, std::istream& in,
                   std::ostream& out, bool interactive);

} // namespace memsync
