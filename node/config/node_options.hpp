// The options every node kind shares (CAF's scheduler and middleman, actor
// traces) and their translation into CAF's configuration.
#pragma once

#include <initializer_list>

#include "actors/common/trace_sink.hpp"
#include "node/config/config.hpp"

namespace caf {
class actor_system_config;
}

namespace memsync {

/// Declares the options every node kind has: CAF's scheduler and
/// middleman (heartbeats) settings.
void add_node_options(config_schema& schema);

/// Declares [trace] (client and server nodes).
void add_trace_options(config_schema& schema);

/// The [trace] section. Throws config_error when tracing is on without a file.
trace_settings make_trace_settings(const config_values& values);

/// The certificate options both node kinds have: each of `files` that is
/// set must be readable, and server.tls-cert and server.tls-key come
/// together. Throws config_error naming where the value was set.
void check_tls_files(const config_values& values,
                     std::initializer_list<const char*> files);

/// Applies those options to CAF's configuration and loads the middleman.
void apply_caf_settings(const config_values& values, caf::actor_system_config& cfg);

} // namespace memsync
