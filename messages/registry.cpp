#include "messages/registry.hpp"

#include <caf/actor_system_config.hpp>

#include <caf/message.hpp>

#include "messages/client_local.hpp"
#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"
#include "messages/server_local.hpp"

namespace memsync {

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<trace_context>("memsync::trace_context")
    .add_message_type<entity>("memsync::entity")
    .add_message_type<change>("memsync::change")
    .add_message_type<sync_error>("memsync::sync_error")
    .add_message_type<cookie>("memsync::cookie")
    .add_message_type<scope_rule>("memsync::scope_rule")
    .add_message_type<grant>("memsync::grant")
    .add_message_type<scope_since>("memsync::scope_since")
    .add_message_type<scope_rules>("std::vector<memsync::scope_rule>")
    .add_message_type<grants>("std::vector<memsync::grant>")
    .add_message_type<hello_request>("memsync::hello_request")
    .add_message_type<hello_reply>("memsync::hello_reply")
    .add_message_type<push_request>("memsync::push_request")
    .add_message_type<refusal>("memsync::refusal")
    .add_message_type<push_reply>("memsync::push_reply")
    .add_message_type<pull_request>("memsync::pull_request")
    .add_message_type<pull_reply>("memsync::pull_reply")
    .add_message_type<poke>("memsync::poke")
    .add_message_type<pushed_answer>("memsync::pushed_answer")
    .add_message_type<flushed_change>("memsync::flushed_change")
    .add_message_type<flush_report>("memsync::flush_report")
    .add_message_type<log_push>("memsync::log_push")
    .add_message_type<log_pull>("memsync::log_pull")
    .add_message_type<log_stats>("memsync::log_stats")
    .add_message_type<relayed_commit>("memsync::relayed_commit")
    .add_message_type<sync_status>("memsync::sync_status")
    .add_message_type<scope_subscription>("memsync::scope_subscription")
    // Actor handles: the client's listener crosses the network in the
    // handshake, the session in the reply; a session listens for the log's
    // pokes inside the server.
    .add_message_type<poke_listener_actor>("memsync::poke_listener_actor")
    .add_message_type<client_listener_actor>("memsync::client_listener_actor")
    .add_message_type<session_actor>("memsync::session_actor")
    .add_message_type<gateway_actor>("memsync::gateway_actor")
    .add_message_type<std::vector<uint64_t>>("std::vector<uint64_t>");
  // CAF 0.17.6's add_error_category<T> does not compile; give the renderer.
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out = "memsync: ";
                           out += to_string(static_cast<sync_errc>(code));
                           if (ctx.match_elements<std::string>()) {
                             out += ": ";
                             out += ctx.get_as<std::string>(0);
                           }
                           return out;
                         });
}

} // namespace memsync
