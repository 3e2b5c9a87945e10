// Registers every message type and the error category with an actor system
// configuration. Call it once per actor_system_config, before the system starts.
#pragma once

namespace caf {
class actor_system_config;
}

namespace memsync {

void register_message_types(caf::actor_system_config& cfg);

} // namespace memsync
