#include "node/client/client_config.hpp"
#include "node/config/config.hpp"
#include "node/server/server_node.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "tests/support/temp_dir.hpp"

using namespace std::chrono_literals;
using memsync::config_error;
using memsync::config_schema;
using memsync::config_values;
using memsync::load_config;
using memsync::parse_duration;

namespace {

namespace fs = std::filesystem;

config_schema make_schema() {
  config_schema s;
  s.add_string("node.name", "n1", "node name")
    .add_string("storage.sync", "normal", "SQLite synchronous mode",
                {"normal", "full", "off"})
    .add_integer("net.port", 4242, 1, 65535, "listen port")
    .add_integer("net.backlog", -1, -1, 1000, "listen backlog")
    .add_boolean("net.tls", false, "use TLS")
    .add_duration("net.timeout", 100ms, 1ms, 1min, "request timeout")
    .add_integer("caf.middleman.workers", 2, 1, 64, "I/O workers");
  return s;
}

// Returns the config_error message, or "no error" if `fn` did not throw one.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const config_error& e) {
    return e.what();
  }
  return "no error";
}

class config_test : public ::testing::Test {
protected:
  std::string write(const std::string& content, const std::string& name = "test.ini") {
    auto path = (dir_ / name).string();
    std::ofstream{path} << content;
    return path;
  }

  // Loads `content` from a fresh file; returns the error message.
  std::string load_error(const std::string& content,
                         const std::vector<std::string>& overrides = {}) {
    path_ = write(content);
    return error_of([&] { load_config(schema_, path_, overrides); });
  }

  config_schema schema_ = make_schema();
  memsync::testing::temp_dir tmp_;
  fs::path dir_{tmp_.path()};
  std::string path_;
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// -- valid input --------------------------------------------------------------

TEST_F(config_test, valid_file_with_every_kind) {
  auto path = write("# leading comment\n"
                    "; another comment\n"
                    "\n"
                    "[node]\n"
                    "name = \"a \\\"quoted\\\" \\\\ name\\n\\t#x;y\"  # trailing\n"
                    "[storage]\n"
                    "  sync=\"full\" ; trailing\n"
                    "[net]\n"
                    "port = +8080\n"
                    "backlog = -1 # trailing\n"
                    "tls = true\n"
                    "timeout = 2s\n"
                    "[caf.middleman]\n"
                    "workers = 8\r\n");
  auto cfg = load_config(schema_, path);
  EXPECT_EQ(cfg.get_string("node.name"), "a \"quoted\" \\ name\n\t#x;y");
  EXPECT_EQ(cfg.get_string("storage.sync"), "full");
  EXPECT_EQ(cfg.get_integer("net.port"), 8080);
  EXPECT_EQ(cfg.get_integer("net.backlog"), -1);
  EXPECT_TRUE(cfg.get_boolean("net.tls"));
  EXPECT_EQ(cfg.get_duration("net.timeout"), 2s);
  EXPECT_EQ(cfg.get_integer("caf.middleman.workers"), 8);
  EXPECT_EQ(cfg.origin("node.name"), path + ":5");
  EXPECT_EQ(cfg.origin("net.timeout"), path + ":12");
  EXPECT_EQ(cfg.origin("caf.middleman.workers"), path + ":14");
  EXPECT_TRUE(cfg.is_set("net.port"));
}

TEST_F(config_test, defaults_used_when_not_set) {
  auto path = write("[net]\nport = 9000\n");
  auto cfg = load_config(schema_, path);
  EXPECT_EQ(cfg.get_integer("net.port"), 9000);
  EXPECT_EQ(cfg.get_string("node.name"), "n1");
  EXPECT_EQ(cfg.get_string("storage.sync"), "normal");
  EXPECT_EQ(cfg.get_integer("net.backlog"), -1);
  EXPECT_FALSE(cfg.get_boolean("net.tls"));
  EXPECT_EQ(cfg.get_duration("net.timeout"), 100ms);
  EXPECT_EQ(cfg.origin("net.timeout"), "default");
  EXPECT_FALSE(cfg.is_set("net.timeout"));
}

TEST_F(config_test, empty_path_uses_defaults) {
  auto cfg = load_config(schema_, "");
  EXPECT_EQ(cfg.get_integer("net.port"), 4242);
  EXPECT_EQ(cfg.origin("net.port"), "default");
}

TEST_F(config_test, string_default_with_escapes_round_trips) {
  config_schema s;
  s.add_string("a.b", "say \"hi\"\\\n\t", "tricky");
  EXPECT_EQ(s.find("a.b")->default_value, "\"say \\\"hi\\\"\\\\\\n\\t\"");
  EXPECT_EQ(load_config(s, "").get_string("a.b"), "say \"hi\"\\\n\t");
}

TEST_F(config_test, overrides_beat_the_file) {
  auto path = write("[net]\nport = 9000\ntimeout = 2s\n[node]\nname = \"f\"\n");
  auto cfg = load_config(schema_, path,
                         {"--net.port=7000", "--node.name=bare words",
                          "--storage.sync=\"off\"", "--net.tls=true",
                          "--net.timeout=5ms"});
  EXPECT_EQ(cfg.get_integer("net.port"), 7000);
  EXPECT_EQ(cfg.get_string("node.name"), "bare words");
  EXPECT_EQ(cfg.get_string("storage.sync"), "off");
  EXPECT_TRUE(cfg.get_boolean("net.tls"));
  EXPECT_EQ(cfg.get_duration("net.timeout"), 5ms);
  EXPECT_EQ(cfg.origin("net.port"), "command line");
  EXPECT_TRUE(cfg.is_set("storage.sync"));
}

TEST_F(config_test, describe_lists_options_sorted) {
  config_schema s;
  s.add_integer("z.port", 1, 0, 10, "the port")
    .add_duration("a.wait", 1500ms, 0ns, 1h, "how long")
    .add_string("m.name", "x", "a name");
  EXPECT_EQ(s.describe(), "  a.wait  (duration, default: 1500ms)  how long\n"
                          "  m.name  (string, default: \"x\")  a name\n"
                          "  z.port  (integer, default: 1)  the port\n");
}

// -- errors in the file -------------------------------------------------------

TEST_F(config_test, unknown_key) {
  auto msg = load_error("[net]\nport = 1\nprot = 2\n");
  EXPECT_EQ(msg, path_ + ":3: net.prot: unknown option");
}

TEST_F(config_test, unknown_section) {
  auto msg = load_error("[net]\nport = 1\n\n[nett]\n");
  EXPECT_EQ(msg, path_ + ":4: nett: unknown section");
}

TEST_F(config_test, parent_of_dotted_section_is_unknown) {
  auto msg = load_error("[caf]\n");
  EXPECT_EQ(msg, path_ + ":1: caf: unknown section");
}

TEST_F(config_test, unquoted_string) {
  auto msg = load_error("[node]\nname = n2\n");
  EXPECT_TRUE(contains(msg, path_ + ":2: node.name: strings must be quoted")) << msg;
}

TEST_F(config_test, wrong_kind_integer) {
  auto msg = load_error("[net]\nport = \"80\"\n");
  EXPECT_EQ(msg, path_ + ":2: net.port: expected an integer, got '\"80\"'");
  msg = load_error("[net]\nport = 80x\n");
  EXPECT_EQ(msg, path_ + ":2: net.port: expected an integer, got '80x'");
}

TEST_F(config_test, wrong_kind_boolean) {
  auto msg = load_error("[net]\n\ntls = yes\n");
  EXPECT_EQ(msg, path_ + ":3: net.tls: expected true or false, got 'yes'");
}

TEST_F(config_test, integer_out_of_range) {
  auto msg = load_error("[net]\nport = 70000\n");
  EXPECT_EQ(msg, path_ + ":2: net.port: value 70000 out of range [1, 65535]");
  msg = load_error("[net]\nport = 99999999999999999999\n");
  EXPECT_TRUE(contains(msg, path_
                              + ":2: net.port: value 99999999999999999999 "
                                "out of range"))
    << msg;
}

TEST_F(config_test, duration_without_unit) {
  auto msg = load_error("[net]\ntimeout = 100\n");
  EXPECT_EQ(msg, path_
                   + ":2: net.timeout: expected a duration with a unit "
                     "(ns, us, ms, s, min, h), got '100'");
}

TEST_F(config_test, quoted_duration) {
  auto msg = load_error("[net]\ntimeout = \"100ms\"\n");
  EXPECT_TRUE(contains(msg, path_ + ":2: net.timeout: expected a duration")) << msg;
}

TEST_F(config_test, duration_out_of_range) {
  auto msg = load_error("[net]\ntimeout = 2h\n");
  EXPECT_EQ(msg, path_ + ":2: net.timeout: value 2h out of range [1ms, 1min]");
}

TEST_F(config_test, string_not_in_choices) {
  auto msg = load_error("[storage]\nsync = \"fast\"\n");
  EXPECT_TRUE(contains(msg, path_
                              + ":2: storage.sync: expected one of "
                                "\"normal\", \"full\", \"off\""))
    << msg;
}

TEST_F(config_test, key_set_twice) {
  auto msg = load_error("[net]\nport = 1\n[node]\n[net]\nport = 2\n");
  EXPECT_EQ(msg, path_ + ":5: net.port: already set at line 2");
}

TEST_F(config_test, missing_bracket) {
  auto msg = load_error("[net]\nport = 1\n[node\n");
  EXPECT_EQ(msg, path_ + ":3: missing ']' in section header");
}

TEST_F(config_test, missing_equals) {
  auto msg = load_error("[net]\nport 1\n");
  EXPECT_EQ(msg, path_ + ":2: expected '=' after key 'port'");
}

TEST_F(config_test, missing_value) {
  auto msg = load_error("[net]\nport = # nothing\n");
  EXPECT_EQ(msg, path_ + ":2: net.port: missing value");
}

TEST_F(config_test, unterminated_string) {
  auto msg = load_error("[node]\nname = \"abc\\\"\n");
  EXPECT_EQ(msg, path_ + ":2: node.name: unterminated string");
}

TEST_F(config_test, text_after_closing_quote) {
  auto msg = load_error("[node]\nname = \"abc\" def\n");
  EXPECT_EQ(msg, path_ + ":2: node.name: unexpected text after closing quote");
}

TEST_F(config_test, key_outside_any_section) {
  auto msg = load_error("# header\nport = 1\n");
  EXPECT_TRUE(contains(msg, path_ + ":2: port: ")) << msg;
  EXPECT_TRUE(contains(msg, "outside any section")) << msg;
}

TEST_F(config_test, missing_file) {
  auto path = (dir_ / "absent.ini").string();
  auto msg = error_of([&] { load_config(schema_, path); });
  EXPECT_EQ(msg, path + ": cannot read config file (No such file or directory)");
}

TEST_F(config_test, directory_is_unreadable) {
  auto msg = error_of([&] { load_config(schema_, dir_.string()); });
  EXPECT_TRUE(contains(msg, dir_.string() + ": cannot read config file (")) << msg;
}

// -- errors on the command line -----------------------------------------------

TEST_F(config_test, override_syntax_errors) {
  EXPECT_EQ(error_of([&] { load_config(schema_, "", {"net.port=1"}); }),
            "command line: net.port=1: expected --section.key=value");
  EXPECT_EQ(error_of([&] { load_config(schema_, "", {"--net.port"}); }),
            "command line: --net.port: expected --section.key=value");
}

TEST_F(config_test, override_unknown_option) {
  EXPECT_EQ(error_of([&] { load_config(schema_, "", {"--net.prot=1"}); }),
            "command line: --net.prot=1: unknown option");
}

TEST_F(config_test, override_bad_values) {
  EXPECT_EQ(error_of([&] { load_config(schema_, "", {"--net.timeout=100"}); }),
            "command line: --net.timeout=100: expected a duration with a unit "
            "(ns, us, ms, s, min, h), got '100'");
  EXPECT_EQ(error_of([&] { load_config(schema_, "", {"--net.port=0"}); }),
            "command line: --net.port=0: value 0 out of range [1, 65535]");
  EXPECT_TRUE(
    contains(error_of([&] { load_config(schema_, "", {"--storage.sync=fast"}); }),
             "command line: --storage.sync=fast: expected one of"));
}

TEST_F(config_test, override_is_validated_even_when_file_is_fine) {
  auto path = write("[net]\nport = 1\n");
  auto msg = error_of([&] { load_config(schema_, path, {"--net.tls=1"}); });
  EXPECT_EQ(msg, "command line: --net.tls=1: expected true or false, got '1'");
}

// -- programming errors -------------------------------------------------------

TEST_F(config_test, bad_default_is_a_logic_error) {
  config_schema s;
  s.add_integer("a.n", 50, 1, 10, "default outside its own range");
  EXPECT_THROW(load_config(s, ""), std::logic_error);
  config_schema c;
  c.add_string("a.mode", "bogus", "default not a choice", {"x", "y"});
  EXPECT_THROW(load_config(c, ""), std::logic_error);
}

TEST_F(config_test, duplicate_declaration_is_a_logic_error) {
  config_schema s;
  s.add_boolean("a.b", true, "first");
  EXPECT_THROW(s.add_boolean("a.b", false, "again"), std::logic_error);
  EXPECT_THROW(s.add_boolean("nodot", false, "no section"), std::logic_error);
}

TEST_F(config_test, get_with_wrong_kind_or_name_is_a_logic_error) {
  auto cfg = load_config(schema_, "");
  EXPECT_THROW(cfg.get_string("net.port"), std::logic_error);
  EXPECT_THROW(cfg.get_integer("net.tls"), std::logic_error);
  EXPECT_THROW(cfg.get_boolean("net.timeout"), std::logic_error);
  EXPECT_THROW(cfg.get_duration("node.name"), std::logic_error);
  EXPECT_THROW(cfg.get_integer("net.nope"), std::logic_error);
  EXPECT_THROW(cfg.origin("net.nope"), std::logic_error);
  EXPECT_THROW(cfg.is_set("net.nope"), std::logic_error);
}

// -- parse_duration -----------------------------------------------------------

TEST(parse_duration_test, every_unit) {
  const std::pair<const char*, std::chrono::nanoseconds> cases[] = {
    {"10ns", 10ns}, {"500us", 500us}, {"250ms", 250ms},
    {"1s", 1s},     {"2min", 2min},   {"1h", 1h},
  };
  for (auto [text, expected] : cases)
    EXPECT_EQ(parse_duration(text), expected) << text;
}

TEST(parse_duration_test, rejects_malformed_input) {
  for (const char* bad : {"", "100", "ms", "10 ms", "10sec", "1.5s", "s10", "--1s"}) {
    try {
      parse_duration(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_TRUE(contains(e.what(), "(ns, us, ms, s, min, h)")) << e.what();
    }
  }
}

TEST(parse_duration_test, rejects_overflow) {
  EXPECT_THROW(parse_duration("9999999999h"), std::invalid_argument);
  EXPECT_THROW(parse_duration("99999999999999999999ns"), std::invalid_argument);
}

TEST(parse_duration_test, accepts_signs) {
  EXPECT_EQ(parse_duration("-5ms"), -5ms);
  EXPECT_EQ(parse_duration("+5ms"), 5ms);
}

// -- the server node's options ---------------------------------------------

memsync::server_config shipped_server_config(const std::string& name,
                                             std::vector<std::string> overrides = {}) {
  overrides.push_back("--server.tokens-file=" MEMSYNC_SOURCE_DIR "/config/tokens.txt");
  return memsync::make_server_config(load_config(
    memsync::server_schema(), MEMSYNC_SOURCE_DIR "/config/" + name, overrides));
}

TEST(server_config_test, the_two_node_example_shares_one_postgres_history) {
  auto a = shipped_server_config("server-node-a.ini");
  auto b = shipped_server_config("server-node-b.ini");
  EXPECT_EQ(a.backend, "postgres");
  EXPECT_EQ(a.postgres, b.postgres);
  EXPECT_EQ(a.postgres_schema, b.postgres_schema);
  EXPECT_NE(a.server_id, b.server_id);
  EXPECT_NE(a.port, b.port);
  EXPECT_EQ(shipped_server_config("server.ini").backend, "sqlite");
}

TEST(server_config_test, postgres_without_a_connection_string_names_the_key) {
  auto err = error_of(
    [] { shipped_server_config("server.ini", {"--server.backend=postgres"}); });
  EXPECT_TRUE(contains(err, "server.postgres: required")) << err;
  EXPECT_TRUE(contains(err, "command line")) << err; // where backend was set
}

TEST(server_config_test, an_unknown_backend_lists_the_choices) {
  auto err = error_of(
    [] { shipped_server_config("server.ini", {"--server.backend=mysql"}); });
  EXPECT_TRUE(contains(err, "server.backend")) << err;
  EXPECT_TRUE(contains(err, "postgres")) << err;
}

TEST(server_config_test, the_guard_is_on_and_its_limits_come_from_the_file) {
  auto cfg = shipped_server_config("server.ini");
  EXPECT_TRUE(cfg.guard);
  EXPECT_EQ(cfg.front.max_frame_bytes, 32u << 20);
  EXPECT_EQ(cfg.front.handshake_timeout, 10s);
  EXPECT_EQ(cfg.front.max_connections, 256u);
  EXPECT_EQ(cfg.front.max_connections_per_address, 64u);
  EXPECT_EQ(cfg.front.max_queued_bytes, 64u << 20);
  EXPECT_EQ(cfg.max_sessions, 64u);
  auto tuned = shipped_server_config(
    "server.ini", {"--server.handshake-timeout=250ms", "--server.max-connections=8",
                   "--server.max-connections-per-address=2", "--limits.max-sessions=3",
                   "--server.guard=false"});
  EXPECT_EQ(tuned.front.handshake_timeout, 250ms);
  EXPECT_EQ(tuned.front.max_connections, 8u);
  EXPECT_EQ(tuned.front.max_connections_per_address, 2u);
  EXPECT_EQ(tuned.max_sessions, 3u);
  EXPECT_FALSE(tuned.guard);
}

TEST_F(config_test, guard_limits_out_of_range_name_file_line_and_key) {
  schema_ = memsync::server_schema();
  auto err = load_error("[server]\nid = \"s\"\nmax-connections = 0\n");
  EXPECT_TRUE(contains(err, path_ + ":3")) << err;
  EXPECT_TRUE(contains(err, "server.max-connections")) << err;
  err = load_error("[server]\nhandshake-timeout = 10\n");
  EXPECT_TRUE(contains(err, path_ + ":2")) << err;
  EXPECT_TRUE(contains(err, "server.handshake-timeout")) << err;
  err = load_error("[limits]\nmax-sessions = 0\n");
  EXPECT_TRUE(contains(err, "limits.max-sessions")) << err;
}

TEST(server_config_test, a_frame_limit_below_the_largest_push_is_refused) {
  auto err = error_of(
    [] { shipped_server_config("server.ini", {"--server.max-frame-bytes=1048576"}); });
  EXPECT_TRUE(contains(err, "server.max-frame-bytes")) << err;
  EXPECT_TRUE(contains(err, "limits.max-push-bytes")) << err;
  EXPECT_TRUE(contains(err, "command line")) << err;
  // Raising the push size past the default frame limit names where it was set.
  err = error_of([] {
    shipped_server_config("server.ini", {"--limits.max-push-bytes=67108864",
                                         "--server.max-frame-bytes=33554432"});
  });
  EXPECT_TRUE(contains(err, "server.max-frame-bytes")) << err;
}

TEST(server_config_test, the_pull_page_size_comes_from_the_file_and_must_fit_the_queue) {
  EXPECT_EQ(shipped_server_config("server.ini").limits.max_pull_bytes, 4u << 20);
  EXPECT_EQ(shipped_server_config("server.ini", {"--limits.max-pull-bytes=4096"})
              .limits.max_pull_bytes,
            4096u);
  // A page the front could never queue towards a client would end every
  // large pull in a disconnect.
  auto err = error_of(
    [] { shipped_server_config("server.ini", {"--limits.max-pull-bytes=67108864"}); });
  EXPECT_TRUE(contains(err, "server.max-queued-bytes")) << err;
  EXPECT_TRUE(contains(err, "limits.max-pull-bytes")) << err;
  EXPECT_TRUE(contains(err, "server.ini:")) << err; // where the queue limit is set
}

TEST(server_config_test, more_connections_per_address_than_in_all_is_refused) {
  auto err = error_of([] {
    shipped_server_config("server.ini", {"--server.max-connections=4",
                                         "--server.max-connections-per-address=5"});
  });
  EXPECT_TRUE(contains(err, "server.max-connections-per-address")) << err;
  EXPECT_TRUE(contains(err, "command line")) << err;
}

TEST_F(config_test, the_scopes_file_is_read_at_start_and_its_errors_name_file_and_line) {
  auto tokens = "--server.tokens-file=" MEMSYNC_SOURCE_DIR "/config/tokens.txt";
  auto server = [&](const std::string& ini) {
    return memsync::make_server_config(
      load_config(memsync::server_schema(), write(ini, "server.ini"), {tokens}));
  };
  // Default: no rules, every entity in 'default'.
  auto plain = server("[server]\nid = \"s\"\n");
  EXPECT_TRUE(plain.rules.empty());
  EXPECT_EQ(plain.scopes_file, "");
  EXPECT_EQ(plain.tokens_file, MEMSYNC_SOURCE_DIR "/config/tokens.txt");
  auto rules_path = write("comment team # by team\ntask project\n", "scopes.txt");
  auto ruled = server("[server]\nscopes-file = \"" + rules_path + "\"\n");
  ASSERT_EQ(ruled.rules.size(), 2u);
  EXPECT_EQ(ruled.rules[1].type, "task");
  EXPECT_EQ(ruled.rules[1].field, "project");
  EXPECT_EQ(ruled.scopes_file, rules_path);
  // A bad line: the scopes file's name and line.
  auto bad_path = write("comment team\nComment team\n", "bad-scopes.txt");
  auto err = error_of([&] { server("[server]\nscopes-file = \"" + bad_path + "\"\n"); });
  EXPECT_TRUE(contains(err, bad_path + ":2: type 'Comment'")) << err;
  // A file that cannot be read: the config's file, line and key.
  err = error_of(
    [&] { server("[server]\nid = \"s\"\nscopes-file = \"/nonexistent\"\n"); });
  EXPECT_TRUE(
    contains(err, "server.ini:3: server.scopes-file: cannot read '/nonexistent'"))
    << err;
}

TEST_F(config_test, grants_in_the_tokens_file_are_checked_at_start) {
  auto bad = write("t1 alice read:team-a\nt2 bob rread:team-b\n", "tokens.txt");
  auto err = error_of([&] {
    memsync::make_server_config(load_config(memsync::server_schema(),
                                            write("[server]\nid = \"s\"\n", "server.ini"),
                                            {"--server.tokens-file=" + bad}));
  });
  EXPECT_TRUE(contains(err, bad + ":2: grant 'rread:team-b'")) << err;
}

} // namespace

// -- lists, and the client's scopes --------------------------------------------

TEST_F(config_test, a_list_of_strings_from_the_file_and_the_command_line) {
  schema_.add_string_list("node.tags", {"*"}, "tags");
  auto v = load_config(schema_, write("[node]\ntags = [\"a\", \"b-*\"] # two\n"));
  EXPECT_EQ(v.get_string_list("node.tags"), (std::vector<std::string>{"a", "b-*"}));
  EXPECT_EQ(load_config(schema_, "").get_string_list("node.tags"),
            (std::vector<std::string>{"*"}));
  v = load_config(schema_, "", {"--node.tags=x,y"});
  EXPECT_EQ(v.get_string_list("node.tags"), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(load_config(schema_, write("[node]\ntags = []\n"))
                .get_string_list("node.tags")
                .empty());
}

TEST_F(config_test, a_malformed_list_names_the_file_line_and_key) {
  schema_.add_string_list("node.tags", {}, "tags");
  for (auto* bad : {"tags = a\n", "tags = [a]\n", "tags = [\"a\" \"b\"]\n",
                    "tags = [\"a\",]\n", "tags = [\"a\"\n", "tags = \"a\"\n"}) {
    auto err = load_error(std::string{"[node]\n"} + bad);
    EXPECT_TRUE(contains(err, "test.ini:2")) << bad << ": " << err;
    EXPECT_TRUE(contains(err, "node.tags")) << bad << ": " << err;
  }
}

TEST_F(config_test, client_scopes_default_to_every_scope_and_are_validated) {
  using memsync::client_schema;
  using memsync::make_client_config;
  auto client = [&](const std::string& extra) {
    return make_client_config(
      load_config(client_schema(), write("[client]\nid = \"app\"\n" + extra)));
  };
  EXPECT_EQ(client("").scopes, (std::vector<std::string>{"*"}));
  EXPECT_EQ(client("scopes = [\"team-a\", \"project-*\"]\n").scopes,
            (std::vector<std::string>{"team-a", "project-*"}));
  auto err = error_of([&] { client("scopes = [\"team a\"]\n"); });
  EXPECT_TRUE(contains(err, "test.ini:3")) << err;
  EXPECT_TRUE(contains(err, "client.scopes")) << err;
  EXPECT_TRUE(contains(err, "team a")) << err;
  err = error_of([&] { client("scopes = [\"a*b\"]\n"); });
  EXPECT_TRUE(contains(err, "client.scopes")) << err;
  err = error_of([&] { client("scopes = []\n"); });
  EXPECT_TRUE(contains(err, "test.ini:3")) << err;
  EXPECT_TRUE(contains(err, "at least one")) << err;
}
