// The scopes file: rules in file order, comments, and every bad line an
// error naming file, line and what is wrong.
#include "actors/server/scope_rules_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

using namespace memsync;

namespace {

scope_rules parse(const std::string& text) {
  std::istringstream in{text};
  return parse_scope_rules(in, "scopes.txt");
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

TEST(scope_rules_file, lines_become_rules_in_file_order) {
  auto rules = parse("# which field names an entity's scope\n"
                     "\n"
                     "comment   team   # review comments by team\n"
                     "task project\n");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].type, "comment");
  EXPECT_EQ(rules[0].field, "team");
  EXPECT_EQ(rules[1].type, "task");
  EXPECT_EQ(rules[1].field, "project");
  ASSERT_NE(scope_field(rules, "task"), nullptr);
  EXPECT_EQ(*scope_field(rules, "task"), "project");
  EXPECT_EQ(scope_field(rules, "note"), nullptr) << "types without a rule: default";
  EXPECT_TRUE(parse("# nothing\n\n").empty());
}

TEST(scope_rules_file, bad_lines_are_errors_naming_file_and_line) {
  EXPECT_EQ(error_of("task project\ncomment\n"),
            "scopes.txt:2: type 'comment': expected 'TYPE FIELD' (the field is missing)");
  EXPECT_EQ(error_of("task project\ncomment team\ntask owner\n"),
            "scopes.txt:3: type 'task' listed twice (one rule per type)");
  EXPECT_EQ(error_of("task project extra\n"),
            "scopes.txt:1: expected 'TYPE FIELD', got more after 'project': 'extra'");
  auto bad_type = error_of("\n Task project\n");
  EXPECT_EQ(bad_type.rfind("scopes.txt:2: type 'Task': ", 0), 0u) << bad_type;
  EXPECT_EQ(error_of("a-very-long-type-" + std::string(60, 'x') + " f\n")
              .rfind("scopes.txt:1: type ", 0),
            0u);
}

TEST(scope_rules_file, an_unreadable_file_is_an_error_naming_it) {
  try {
    load_scope_rules("/nonexistent/scopes.txt");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/scopes.txt: cannot read scopes file");
  }
  memsync::testing::temp_dir dir;
  std::ofstream{dir.file("scopes.txt")} << "comment team\n";
  auto rules = load_scope_rules(dir.file("scopes.txt"));
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].field, "team");
}
