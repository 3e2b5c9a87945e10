#include "node/client_cli.hpp"

#include <algorithm>
#include <iostream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace memsync {

namespace {

const char* help_text = "commands:\n"
                        "  put ID TYPE JSON   create or replace an entity\n"
                        "  patch ID JSON      apply a JSON merge patch\n"
                        "  del ID             delete an entity\n"
                        "  get ID             print an entity as JSON\n"
                        "  ls [TYPE]          print every entity (of TYPE), one per "
                        "line\n"
                        "  status             print the client's state as JSON\n"
                        "  subscribe SCOPE    hold SCOPE too (a name, or a prefix "
                        "and '*')\n"
                        "  unsubscribe SCOPE  drop SCOPE and its entities (pending "
                        "writes stay)\n"
                        "  scopes             print the scopes held, as JSON\n"
                        "  watch [TYPE]       print change events as they happen\n"
                        "  sync               wait until every change is flushed\n"
                        "  quit               flush and exit";

/// Data that is not JSON (only a misbehaving server could send it) is shown
/// as a string rather than ending the client.
nlohmann::json data_of(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

std::string to_json_line(const entity& e) {
  nlohmann::json j;
  j["id"] = e.id;
  j["type"] = e.type;
  j["version"] = e.version;
  j["data"] = data_of(e.data);
  return j.dump();
}

std::string event_line(const change_event& ev) {
  nlohmann::json j;
  j["event"] = !ev.refusal.ok() ? "refused" : ev.value ? "put" : "del";
  if (!ev.refusal.ok())
    j["reason"] = ev.refusal.describe();
  j["id"] = ev.id;
  j["type"] = ev.type;
  if (ev.value)
    j["data"] = data_of(ev.value->data);
  return j.dump();
}

/// Splits off the next space-separated word; the rest keeps its spaces.
std::string next_word(std::string_view& rest) {
  auto start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  auto end = rest.find(' ');
  std::string word{rest.substr(0, end)};
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  auto more = rest.find_first_not_of(' ');
  rest.remove_prefix(more == std::string_view::npos ? rest.size() : more);
  return word;
}

class cli {
public:
  cli(client_node& node, const client_config& cfg, std::ostream& out)
      : node_(node), cfg_(cfg), out_(out) {}

  /// Returns false when the loop should end.
  bool execute(std::string_view line) {
    auto cmd = next_word(line);
    if (cmd.empty())
      return true;
    if (cmd == "quit" || cmd == "exit")
      return false;
    if (cmd == "put") {
      auto id = next_word(line);
      auto type = next_word(line);
      if (id.empty() || type.empty() || line.empty())
        return usage("put ID TYPE JSON");
      return report(node_.app().put_json(id, type, line));
    }
    if (cmd == "patch") {
      auto id = next_word(line);
      if (id.empty() || line.empty())
        return usage("patch ID JSON");
      return report(node_.app().patch_json(id, line));
    }
    if (cmd == "del") {
      auto id = next_word(line);
      if (id.empty() || !line.empty())
        return usage("del ID");
      return report(node_.app().erase(id));
    }
    if (cmd == "get") {
      auto id = next_word(line);
      if (id.empty() || !line.empty())
        return usage("get ID");
      auto e = node_.app().get(id);
      print(e ? to_json_line(*e) : "not found");
      return true;
    }
    if (cmd == "ls") {
      auto type = next_word(line);
      if (!line.empty())
        return usage("ls [TYPE]");
      auto all = type.empty() ? node_.app().all() : node_.app().by_type(type);
      std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a->id < b->id; });
      std::lock_guard<std::mutex> guard{mtx_};
      for (auto& e : all)
        out_ << to_json_line(*e) << '\n';
      out_.flush();
      return true;
    }
    if (cmd == "status") {
      print(status_line());
      return true;
    }
    if (cmd == "subscribe" || cmd == "unsubscribe") {
      auto scope = next_word(line);
      if (scope.empty() || !line.empty())
        return usage(cmd == "subscribe" ? "subscribe SCOPE" : "unsubscribe SCOPE");
      return report(cmd == "subscribe"
                      ? node_.subscribe(scope, std::chrono::seconds(5))
                      : node_.unsubscribe(scope, std::chrono::seconds(5)));
    }
    if (cmd == "scopes") {
      if (!line.empty())
        return usage("scopes");
      print(nlohmann::json(node_.scopes(std::chrono::seconds(5))).dump());
      return true;
    }
    if (cmd == "watch") {
      auto type = next_word(line);
      watch_ = node_.app().subscribe(type, [this](const auto& events) {
        for (auto& ev : events)
          print(event_line(ev));
      });
      print("ok");
      return true;
    }
    if (cmd == "sync") {
      if (node_.sync(cfg_.sync_timeout))
        print("ok");
      else
        print(std::string{"error: timeout: not everything was "}
              + (node_.has_server() ? "pushed, acknowledged and pulled" : "flushed")
              + " within "
              + std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.sync_timeout)
                  .count())
              + " ms");
      return true;
    }
    if (cmd == "help") {
      print(help_text);
      return true;
    }
    print("error: unknown command '" + cmd + "' (try 'help')");
    return true;
  }

  void print(const std::string& line) {
    std::lock_guard<std::mutex> guard{mtx_};
    out_ << line << std::endl;
  }

  void stop_watching() { watch_.cancel(); }

private:
  bool usage(const char* text) {
    print(std::string{"error: usage: "} + text);
    return true;
  }

  bool report(const sync_error& err) {
    print(err.ok() ? "ok" : "error: " + err.describe());
    return true;
  }

  std::string status_line() {
    auto counts = node_.app().counts();
    nlohmann::json j;
    j["client_id"] = node_.client_id();
    j["connected"] = false;
    j["cookie"] = node_.cursor().version;
    j["epoch"] = node_.cursor().epoch;
    j["last_mutation_id"] = node_.last_mutation_id();
    j["scopes"] = cfg_.scopes;
    if (auto st = node_.sync_state(std::chrono::seconds(5))) {
      j["client_id"] = st->client_id; // a restored database moves to a new one
      j["connected"] = st->connected;
      j["cookie"] = st->cursor.version;
      j["epoch"] = st->cursor.epoch;
      j["last_mutation_id"] = st->last_mutation_id;
      if (!st->last_error.empty())
        j["last_error"] = st->last_error;
      j["scopes"] = st->scopes;
      if (st->pull_total != 0) // a large answer, arriving in pages
        j["pulling"] = {{"received", st->pull_received}, {"total", st->pull_total}};
    }
    if (auto err = node_.local_error(std::chrono::seconds(5)); !err.empty())
      j["local_error"] = err; // e.g. a full disk; the writes stay pending
    if (auto tls = node_.tls_error(); !tls.empty())
      j["tls_error"] = tls; // e.g. the server's certificate failed verification
    j["pending"] = counts.pending;
    j["entities"] = counts.entities;
    auto refused = node_.app().refusals();
    j["refused"] = refused.size();
    if (auto* trace = node_.trace())
      j["trace"] = {{"mode", to_string(trace->mode())},
                    {"recorded", trace->recorded()},
                    {"dropped", trace->dropped()}};
    if (!refused.empty())
      j["last_refusal"] = "mutation " + std::to_string(refused.back().mutation_id) + " ("
                          + refused.back().id + "): " + refused.back().reason.describe();
    return j.dump();
  }

  client_node& node_;
  const client_config& cfg_;
  std::ostream& out_;
  std::mutex mtx_;
  subscription watch_;
};

} // namespace

int run_client_cli(client_node& node, const client_config& cfg, std::istream& in,
                   std::ostream& out, bool interactive) {
  cli session{node, cfg, out};
  std::string line;
  for (;;) {
    if (interactive) {
      out << "> " << std::flush;
    }
    if (!std::getline(in, line))
      break;
    if (!session.execute(line))
      break;
  }
  session.stop_watching();
  if (!node.flush_now(cfg.sync_timeout)) {
    session.print("error: timeout: some changes were not flushed before exit");
    return 1;
  }
  return 0;
}

} // namespace memsync
