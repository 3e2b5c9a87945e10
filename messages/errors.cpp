#include "messages/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace memsync {

const char* to_string(sync_errc x) {
  switch (x) {
    case sync_errc::none: return "none";
    case sync_errc::invalid_id: return "invalid_id";
    case sync_errc::invalid_type: return "invalid_type";
    case sync_errc::invalid_json: return "invalid_json";
    case sync_errc::too_large: return "too_large";
    case sync_errc::too_deep: return "too_deep";
    case sync_errc::not_found: return "not_found";
    case sync_errc::invalid_request: return "invalid_request";
    case sync_errc::db_error: return "db_error";
    case sync_errc::db_corrupt: return "db_corrupt";
    case sync_errc::db_locked: return "db_locked";
    case sync_errc::db_schema_newer: return "db_schema_newer";
    case sync_errc::db_foreign: return "db_foreign";
    case sync_errc::protocol_mismatch: return "protocol_mismatch";
    case sync_errc::unauthorized: return "unauthorized";
    case sync_errc::mutation_gap: return "mutation_gap";
    case sync_errc::timeout: return "timeout";
    case sync_errc::unavailable: return "unavailable";
    case sync_errc::forbidden: return "forbidden";
  }
  return "unknown";
}

std::string sync_error::describe() const {
  std::string out = to_string(code);
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

caf::error make_error(sync_errc code, std::string message) {
  return {static_cast<uint8_t>(code), error_category,
          caf::make_message(std::move(message))};
}

caf::error make_error(const sync_error& err) {
  return make_error(err.code, err.message);
}

sync_error to_sync_error(const caf::error& err) {
  if (!err)
    return {};
  if (err.category() == error_category) {
    std::string msg;
    if (err.context().match_elements<std::string>())
      msg = err.context().get_as<std::string>(0);
    return {static_cast<sync_errc>(err.code()), std::move(msg)};
  }
  if (err == caf::sec::request_timeout)
    return {sync_errc::timeout, "request timed out"};
  return {sync_errc::unavailable, caf::to_string(err)};
}

} // namespace memsync
