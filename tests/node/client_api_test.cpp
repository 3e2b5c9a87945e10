// The public client interface (node/client/memsync.hpp) as an application
// uses it: errors that name what was wrong, writes that survive closing and
// opening again, and a database that two clients cannot share.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "node/client/client_config.hpp"
#include "node/client/memsync.hpp"
#include "tests/support/temp_dir.hpp"

using namespace memsync;
using memsync::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

struct client_api_test : ::testing::Test {
  temp_dir dir;

  /// An offline client config with `extra` appended; returns its path.
  std::string write_config(const std::string& extra = "") {
    auto path = dir.file("app.ini");
    std::ofstream out{path};
    out << "[client]\nid = \"app\"\ndb-path = \"" << dir.file("app.db") << "\"\n"
        << extra;
    return path;
  }
};

TEST_F(client_api_test, a_bad_option_names_the_file_line_and_key) {
  auto path = write_config("[flush]\ndebounce = 100\n");
  try {
    client::open(path);
    FAIL() << "a duration without a unit was accepted";
  } catch (const config_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("app.ini:5"), std::string::npos) << what;
    EXPECT_NE(what.find("flush.debounce"), std::string::npos) << what;
  }
  EXPECT_THROW(client::open(write_config(), {"--flush.no-such-key=1"}), config_error);
}

TEST_F(client_api_test, a_flushed_write_is_there_when_the_client_opens_again) {
  auto path = write_config();
  std::string id;
  {
    auto c = client::open(path);
    id = c->client_id();
    ASSERT_TRUE(c->store().put("n1", "note", {{"text", "hi"}}).ok());
    ASSERT_TRUE(c->flushed(5s));
    auto st = c->status();
    EXPECT_FALSE(st.has_server);
    EXPECT_FALSE(st.connected);
    EXPECT_EQ(st.client_id, id);
    EXPECT_EQ(st.entities, 1u);
    EXPECT_EQ(st.pending, 1u); // no server has confirmed it
  }
  auto c = client::open(path);
  EXPECT_EQ(c->client_id(), id);
  auto e = c->store().get("n1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->data, R"({"text":"hi"})");
}

TEST_F(client_api_test, settings_built_in_code_open_the_same_client) {
  client_config cfg;
  cfg.client_name = "app";
  cfg.db.path = dir.file("app.db");
  cfg.db.client_name = "app";
  std::string id;
  {
    auto c = client::open(cfg);
    id = c->client_id();
    ASSERT_TRUE(c->store().put("n1", "note", {{"text", "coded"}}).ok());
    ASSERT_TRUE(c->flushed(5s));
  }
  // The config file naming the same database finds the same client.
  auto c = client::open(write_config());
  EXPECT_EQ(c->client_id(), id);
  ASSERT_TRUE(c->store().get("n1"));
}

TEST_F(client_api_test, closing_flushes_what_was_written) {
  // Only the destructor's flush can make the write durable: the debounce
  // would hold it for an hour.
  auto path = write_config("[flush]\ndebounce = 1h\n");
  {
    auto c = client::open(path);
    ASSERT_TRUE(c->store().put("n1", "note", {{"text", "bye"}}).ok());
  }
  auto c = client::open(path);
  auto e = c->store().get("n1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->data, R"({"text":"bye"})");
}

TEST_F(client_api_test, a_database_in_use_by_another_client_is_refused) {
  auto path = write_config();
  auto first = client::open(path);
  ASSERT_TRUE(first->store().put("n1", "note", {{"text", "mine"}}).ok());
  // (Not waiting for the lock to be released: it will not be.)
  EXPECT_THROW(client::open(path, {"--local-db.busy-timeout=0ns"}), local_db_error);
  // The first client is not disturbed.
  ASSERT_TRUE(first->store().put("n2", "note", {{"text", "still mine"}}).ok());
  EXPECT_TRUE(first->flushed(5s));
  EXPECT_EQ(first->store().size(), 2u);
}

} // namespace
