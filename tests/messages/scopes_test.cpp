// Scope names, patterns, rules and grants: the logic both the server (to
// enforce) and the client (to refuse at once, and to know what it holds)
// rely on.
#include "messages/scopes.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace memsync;

TEST(scopes_test, scope_names_and_patterns_are_validated) {
  EXPECT_TRUE(validate_scope("team-a").ok());
  EXPECT_TRUE(validate_scope("org:acme.team_1@eu").ok());
  EXPECT_FALSE(validate_scope("").ok());
  EXPECT_FALSE(validate_scope("team a").ok());
  EXPECT_FALSE(validate_scope("team-*").ok());
  EXPECT_FALSE(validate_scope(std::string(max_scope_bytes + 1, 'a')).ok());
  EXPECT_TRUE(validate_pattern("*").ok());
  EXPECT_TRUE(validate_pattern("team-*").ok());
  EXPECT_TRUE(validate_pattern("team-a").ok());
  EXPECT_FALSE(validate_pattern("te*m").ok());
  EXPECT_FALSE(validate_pattern("**").ok());
  EXPECT_NE(validate_pattern("a b*").message.find("'a b*'"), std::string::npos);
}

TEST(scopes_test, patterns_match_names_and_prefixes) {
  EXPECT_TRUE(pattern_matches("*", "anything"));
  EXPECT_TRUE(pattern_matches("team-*", "team-a"));
  EXPECT_TRUE(pattern_matches("team-*", "team-"));
  EXPECT_FALSE(pattern_matches("team-*", "team"));
  EXPECT_TRUE(pattern_matches("team-a", "team-a"));
  EXPECT_FALSE(pattern_matches("team-a", "team-ab"));
}

TEST(scopes_test, covering_and_intersection_follow_the_named_sets) {
  EXPECT_TRUE(pattern_covers("*", "team-*"));
  EXPECT_TRUE(pattern_covers("team-*", "team-a*"));
  EXPECT_TRUE(pattern_covers("team-*", "team-a"));
  EXPECT_FALSE(pattern_covers("team-a", "team-*"));
  EXPECT_FALSE(pattern_covers("team-a*", "team-*"));
  EXPECT_FALSE(pattern_covers("team-a", "team-b"));
  EXPECT_EQ(pattern_intersection("*", "team-a"), "team-a");
  EXPECT_EQ(pattern_intersection("team-*", "team-a*"), "team-a*");
  EXPECT_EQ(pattern_intersection("team-a*", "team-*"), "team-a*");
  EXPECT_FALSE(pattern_intersection("team-a", "team-b"));
  EXPECT_FALSE(pattern_intersection("team-a*", "team-b*"));
  EXPECT_FALSE(pattern_intersection("team-*", "project-1"));
}

TEST(scopes_test, a_rule_takes_the_scope_from_a_string_field) {
  scope_rules rules{{"task", "team"}};
  std::string scope;
  ASSERT_TRUE(derive_scope(rules, "task", R"({"team":"team-a","t":1})", scope).ok());
  EXPECT_EQ(scope, "team-a");
  ASSERT_TRUE(derive_scope(rules, "note", R"({"team":"team-a"})", scope).ok());
  EXPECT_EQ(scope, default_scope);
  for (auto bad : {R"({"t":1})", R"({"team":7})", R"({"team":"a b"})", "not json"}) {
    auto err = derive_scope(rules, "task", bad, scope);
    EXPECT_EQ(err.code, sync_errc::invalid_request) << bad;
    EXPECT_NE(err.message.find("field 'team'"), std::string::npos) << err.message;
  }
  // Nested fields do not count: the rule names a top-level field.
  EXPECT_FALSE(derive_scope(rules, "task", R"({"x":{"team":"team-a"}})", scope).ok());
}

TEST(scopes_test, grants_parse_and_write_implies_read) {
  grant g;
  ASSERT_TRUE(parse_grant("write:team-*", g));
  EXPECT_TRUE(g.write);
  EXPECT_EQ(g.pattern, "team-*");
  EXPECT_EQ(to_string(g), "write:team-*");
  ASSERT_TRUE(parse_grant("read:project-42", g));
  EXPECT_FALSE(g.write);
  EXPECT_FALSE(parse_grant("admin:*", g));
  EXPECT_FALSE(parse_grant("read:", g));
  EXPECT_FALSE(parse_grant("write:te*m", g));
  EXPECT_EQ(g.pattern, "project-42"); // unchanged by the failures

  grants token{{"team-*", true}, {"project-42", false}};
  EXPECT_TRUE(can_write(token, "team-b"));
  EXPECT_TRUE(can_read(token, "team-b"));
  EXPECT_TRUE(can_read(token, "project-42"));
  EXPECT_FALSE(can_write(token, "project-42"));
  EXPECT_FALSE(can_read(token, "default"));
  EXPECT_TRUE(can_write(all_grants(), "default"));
}

TEST(scopes_test, the_readable_part_of_a_subscription_is_minimal) {
  grants token{{"team-*", true}, {"team-a", false}, {"project-42", false}};
  EXPECT_EQ(readable_part(token, "*"),
            (std::vector<std::string>{"project-42", "team-*"}));
  EXPECT_EQ(readable_part(token, "team-a"), (std::vector<std::string>{"team-a"}));
  EXPECT_TRUE(readable_part(token, "other").empty());
  EXPECT_EQ(minimal_patterns({"b", "a*", "ab", "b", "*x"}),
            (std::vector<std::string>{"*x", "a*", "b"}));
}
