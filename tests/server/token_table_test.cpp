// The tokens file: plain and hashed tokens, grants, errors naming file and
// line, and lookups that answer only "this client" (with its grants) or "not
// permitted".
#include "actors/server/token_table.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

using memsync::grants;
using memsync::token_table;

namespace {

token_table parse(const std::string& text) {
  std::istringstream in{text};
  return token_table::parse(in, "tokens.txt");
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

} // namespace

TEST(token_table, plain_and_hashed_tokens_name_their_client) {
  auto t = parse("# who may connect\n"
                 "alice-token alice\n"
                 "\n"
                 + token_table::hash_line("bob-token") + "   bob  # hashed\n");
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.client_of("alice-token"), "alice");
  EXPECT_EQ(t.client_of("bob-token"), "bob");
  // The hashed line itself is not a token.
  EXPECT_EQ(t.client_of(token_table::hash_line("bob-token")), "");
  EXPECT_EQ(t.client_of("alice-token "), "");
  EXPECT_EQ(t.client_of(""), "");
  EXPECT_EQ(t.client_of("mallory"), "");
}

TEST(token_table, hash_line_is_the_sha256_of_the_token) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(token_table::hash_line("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Upper-case hex in the file is accepted.
  auto t = parse("SHA256:x x\n" // not the prefix: an ordinary token
                 "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
                 " carol\n");
  EXPECT_EQ(t.client_of("abc"), "carol");
  EXPECT_EQ(t.client_of("SHA256:x"), "x");
}

TEST(token_table, bad_lines_are_errors_naming_file_and_line) {
  EXPECT_EQ(error_of("a alice\nlonely\n"),
            "tokens.txt:2: expected 'TOKEN CLIENT-NAME [GRANT...]'");
  EXPECT_EQ(error_of("sha256:abcd alice\n"),
            "tokens.txt:1: expected 'sha256:' and 64 hex digits");
  EXPECT_EQ(error_of("sha256:" + std::string(64, 'g') + " alice\n"),
            "tokens.txt:1: expected 'sha256:' and 64 hex digits");
  // The same token twice, once plain and once hashed, is still twice.
  EXPECT_EQ(error_of("t alice\n" + token_table::hash_line("t") + " bob\n"),
            "tokens.txt:2: token listed twice");
  EXPECT_NE(error_of("t \x01"
                     "bad\n")
              .find("tokens.txt:1: client name: "),
            std::string::npos);
}

TEST(token_table, an_unreadable_file_is_an_error_naming_it) {
  try {
    token_table::load("/nonexistent/tokens.txt");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/tokens.txt: cannot read tokens file");
  }
}

TEST(token_table, tokens_added_in_code_and_plain_tokens_for_a_load_tester) {
  token_table t;
  t.add("t1", "c1");
  EXPECT_EQ(t.client_of("t1"), "c1");
  EXPECT_THROW(t.add("t1", "c2"), std::invalid_argument);
  memsync::testing::temp_dir dir;
  std::ofstream{dir.file("tokens.txt")} << "plain-a a\n"
                                        << token_table::hash_line("secret-b") << " b\n";
  auto plain = token_table::plain_tokens_by_client(dir.file("tokens.txt"));
  EXPECT_EQ(plain, (std::map<std::string, std::string>{{"a", "plain-a"}}));
}

namespace {

/// As the tokens file writes them.
std::vector<std::string> written(const grants& g) {
  std::vector<std::string> out;
  for (auto& x : g)
    out.push_back(memsync::to_string(x));
  return out;
}

using lines = std::vector<std::string>;

} // namespace

TEST(token_table, grants_follow_the_client_name) {
  auto t = parse("reader alice read:team-a read:project-*\n"
                 + token_table::hash_line("writer") + " bob write:team-* read:default\n");
  auto alice = t.lookup("reader");
  EXPECT_EQ(alice.client, "alice");
  EXPECT_EQ(written(alice.granted), (lines{"read:team-a", "read:project-*"}));
  auto bob = t.lookup("writer");
  EXPECT_EQ(bob.client, "bob");
  EXPECT_EQ(written(bob.granted), (lines{"write:team-*", "read:default"}));
  // A reload finds a session's token again by its digest, never by the token.
  EXPECT_EQ(t.find(bob.hash).client, "bob");
  EXPECT_EQ(written(t.find(bob.hash).granted), written(bob.granted));
  auto nobody = t.lookup("mallory");
  EXPECT_EQ(nobody.client, "");
  EXPECT_TRUE(nobody.granted.empty()) << "an unknown token is granted nothing";
  EXPECT_EQ(t.find(nobody.hash).client, "");
}

TEST(token_table, a_line_without_grants_may_write_everything) {
  auto t = parse("old-style alice\n");
  EXPECT_EQ(written(t.lookup("old-style").granted), lines{"write:*"});
  token_table added;
  added.add("t", "c");
  EXPECT_EQ(written(added.lookup("t").granted), lines{"write:*"});
}

TEST(token_table, a_bad_grant_is_an_error_naming_file_line_and_grant) {
  auto expected = [](int line, const std::string& g) {
    return "tokens.txt:" + std::to_string(line) + ": grant '" + g
           + "': expected 'read:PATTERN' or 'write:PATTERN', PATTERN a scope name or a "
             "prefix followed by '*'";
  };
  EXPECT_EQ(error_of("a alice extra\n"), expected(1, "extra"));
  EXPECT_EQ(error_of("a alice read:team-a\nb bob admin:team-a\n"),
            expected(2, "admin:team-a"));
  EXPECT_EQ(error_of("a alice read:\n"), expected(1, "read:"));
  EXPECT_EQ(error_of("a alice write:te*am\n"), expected(1, "write:te*am"));
  EXPECT_EQ(error_of("a alice read:team/a\n"), expected(1, "read:team/a"));
}

TEST(token_table, plain_tokens_by_client_ignore_grants) {
  memsync::testing::temp_dir dir;
  std::ofstream{dir.file("tokens.txt")} << "plain-a a read:team-a write:team-b\n";
  auto plain = token_table::plain_tokens_by_client(dir.file("tokens.txt"));
  EXPECT_EQ(plain, (std::map<std::string, std::string>{{"a", "plain-a"}}));
}
