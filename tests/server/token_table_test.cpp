// The tokens file: plain and hashed tokens, errors naming file and line, and
// lookups that answer only "this client" or "not permitted".
#include "actors/server/token_table.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

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
  EXPECT_EQ(error_of("a alice\nlonely\n"), "tokens.txt:2: expected 'TOKEN CLIENT-NAME'");
  EXPECT_EQ(error_of("a alice extra\n"), "tokens.txt:1: expected 'TOKEN CLIENT-NAME'");
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
