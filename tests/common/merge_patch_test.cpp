#include "actors/common/merge_patch.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

using memsync::change;
using memsync::change_kind;
using memsync::coalesce;
using memsync::compose_merge_patches;
using json = nlohmann::json;

namespace {

json patched(json doc, const json& patch) {
  doc.merge_patch(patch);
  return doc;
}

json sequential(const json& doc, const json& p1, const json& p2) {
  return patched(patched(doc, p1), p2);
}

struct compose_case {
  const char* name;
  const char* p1;
  const char* p2;
};

// Documents every composed patch is checked against.
const std::vector<const char*> docs = {
  R"({})",
  R"({"a":1,"b":{"c":2,"d":[1,2]},"k":"v"})",
  R"({"a":{"x":{"y":1}},"b":null,"c":[{"z":1}],"k":{"m":1,"n":2}})",
  R"({"a":[1],"b":"s","c":{"d":{"e":{"f":1}}},"k":3})",
};

} // namespace

// -- compose_merge_patches -----------------------------------------------------

TEST(compose_merge_patches, composed_equals_sequential) {
  const compose_case cases[] = {
    {"disjoint keys", R"({"a":1})", R"({"b":2})"},
    {"later overwrites", R"({"a":1})", R"({"a":2})"},
    {"later deletes", R"({"a":{"x":1}})", R"({"a":null})"},
    {"set after delete", R"({"a":null})", R"({"a":5})"},
    {"nested merge", R"({"b":{"c":3}})", R"({"b":{"e":4}})"},
    {"nested delete", R"({"b":{"c":3,"d":null}})", R"({"b":{"c":null}})"},
    {"deep nested", R"({"c":{"d":{"e":{"g":2}}}})",
     R"({"c":{"d":{"e":{"f":null,"h":[1]}}}})"},
    {"array replaces", R"({"a":[1,2,3]})", R"({"a":[4]})"},
    {"array replaces object", R"({"b":{"c":1}})", R"({"b":[1]})"},
    {"object after array key absent", R"({"x":[1]})", R"({"b":{"c":9}})"},
    {"only in first", R"({"a":{"q":1},"k":null})", R"({})"},
    {"only in second", R"({})", R"({"a":{"q":1},"k":null})"},
    {"scalar replaces object", R"({"k":{"m":5}})", R"({"k":7})"},
    {"object in second only nested", R"({"k":{"m":5}})",
     R"({"k":{"n":{"o":null,"p":1}}})"},
    {"empty object patch", R"({"k":{"m":1}})", R"({"k":{}})"},
    {"null inside new object", R"({"a":1})", R"({"b":{"c":null,"d":1}})"},
  };
  for (auto& c : cases) {
    auto p1 = json::parse(c.p1);
    auto p2 = json::parse(c.p2);
    auto composed = p1;
    ASSERT_TRUE(compose_merge_patches(composed, p2)) << c.name;
    for (auto d : docs) {
      auto doc = json::parse(d);
      EXPECT_EQ(patched(doc, composed), sequential(doc, p1, p2))
        << c.name << " on " << d << ": composed " << composed.dump();
    }
  }
}

TEST(compose_merge_patches, refuses_object_into_deleted) {
  auto earlier = json::parse(R"({"k":null,"z":1})");
  auto before = earlier;
  EXPECT_FALSE(compose_merge_patches(earlier, json::parse(R"({"k":{"a":1}})")));
  EXPECT_EQ(earlier, before);
}

TEST(compose_merge_patches, refuses_object_into_scalar) {
  auto earlier = json::parse(R"({"k":5,"z":1})");
  auto before = earlier;
  EXPECT_FALSE(compose_merge_patches(earlier, json::parse(R"({"k":{"a":1}})")));
  EXPECT_EQ(earlier, before);
}

TEST(compose_merge_patches, refuses_object_into_array) {
  auto earlier = json::parse(R"({"k":[1]})");
  auto before = earlier;
  EXPECT_FALSE(compose_merge_patches(earlier, json::parse(R"({"k":{"a":1}})")));
  EXPECT_EQ(earlier, before);
}

TEST(compose_merge_patches, refuses_nested_and_leaves_earlier_whole) {
  // The first member composes, the second does not: nothing may change.
  auto earlier = json::parse(R"({"a":{"x":1},"b":{"c":null}})");
  auto before = earlier;
  EXPECT_FALSE(
    compose_merge_patches(earlier, json::parse(R"({"a":{"y":2},"b":{"c":{"d":1}}})")));
  EXPECT_EQ(earlier, before);
}

namespace {

// Small random JSON for the property test: keys from a 4-letter alphabet,
// values null, small ints, arrays or objects, depth at most 3.
class generator {
public:
  explicit generator(uint32_t seed) : rng_(seed) {}

  json object(int depth) {
    json out = json::object();
    auto n = pick(0, 3);
    for (int i = 0; i < n; ++i)
      out[key()] = value(depth + 1);
    return out;
  }

  json value(int depth) {
    auto max = depth >= 3 ? 2 : 4;
    switch (pick(0, max)) {
      case 0: return nullptr;
      case 1: return pick(0, 3);
      case 2: {
        json arr = json::array();
        auto n = pick(0, 2);
        for (int i = 0; i < n; ++i)
          arr.push_back(pick(0, 3));
        return arr;
      }
      default: return object(depth);
    }
  }

private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng_); }
  std::string key() { return std::string(1, static_cast<char>('a' + pick(0, 3))); }

  std::mt19937 rng_;
};

} // namespace

TEST(compose_merge_patches, random_property) {
  generator gen{20240611};
  int composed_count = 0;
  int refused_count = 0;
  for (int i = 0; i < 2000; ++i) {
    auto p1 = gen.object(1);
    auto p2 = gen.object(1);
    auto composed = p1;
    if (!compose_merge_patches(composed, p2)) {
      ++refused_count;
      EXPECT_EQ(composed, p1) << "refusal changed earlier";
      continue;
    }
    ++composed_count;
    for (int j = 0; j < 5; ++j) {
      auto doc = gen.object(1);
      ASSERT_EQ(patched(doc, composed), sequential(doc, p1, p2))
        << "doc " << doc.dump() << " p1 " << p1.dump() << " p2 " << p2.dump()
        << " composed " << composed.dump();
    }
  }
  // The generator must exercise both outcomes for the property to mean much.
  EXPECT_GT(composed_count, 500);
  EXPECT_GT(refused_count, 50);
}

TEST(compose_merge_patches, non_objects_refused) {
  auto earlier = json::parse("[1]");
  EXPECT_FALSE(compose_merge_patches(earlier, json::parse(R"({"a":1})")));
  EXPECT_EQ(earlier, json::parse("[1]"));
  auto obj = json::parse(R"({"a":1})");
  EXPECT_FALSE(compose_merge_patches(obj, json::parse("5")));
  EXPECT_EQ(obj, json::parse(R"({"a":1})"));
}

// -- coalesce ------------------------------------------------------------------

namespace {

change make(change_kind kind, std::string data, uint64_t seq, std::string type = "note") {
  change c;
  c.seq = seq;
  c.kind = kind;
  c.id = "n1";
  c.type = std::move(type);
  c.data = std::move(data);
  c.trace = {1000 + seq, 2000 + seq};
  return c;
}

void expect_later_seq_and_trace(const change& result, const change& later) {
  EXPECT_EQ(result.seq, later.seq);
  EXPECT_EQ(result.trace, later.trace);
  EXPECT_EQ(result.id, later.id);
}

} // namespace

TEST(coalesce, put_then_put) {
  auto earlier = make(change_kind::put, R"({"a":1})", 1);
  auto later = make(change_kind::put, R"({"b":2})", 2, "memo");
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::put);
  EXPECT_EQ(json::parse(earlier.data), json::parse(later.data));
  EXPECT_EQ(earlier.type, "memo");
  expect_later_seq_and_trace(earlier, later);
}

TEST(coalesce, put_then_patch) {
  auto earlier = make(change_kind::put, R"({"a":1,"b":{"c":2,"d":3}})", 1);
  auto later = make(change_kind::patch, R"({"a":null,"b":{"c":5},"e":[1]})", 2);
  auto expected = patched(json::parse(earlier.data), json::parse(later.data));
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::put);
  EXPECT_EQ(json::parse(earlier.data), expected);
  expect_later_seq_and_trace(earlier, later);
}

TEST(coalesce, put_then_patch_stays_canonical) {
  auto earlier = make(change_kind::put, R"({"b":1})", 1);
  auto later = make(change_kind::patch, R"({"a":2})", 2);
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.data, R"({"a":2,"b":1})");
}

TEST(coalesce, patch_then_patch) {
  auto earlier = make(change_kind::patch, R"({"a":{"x":1},"b":null})", 1);
  auto later = make(change_kind::patch, R"({"a":{"y":2},"c":3})", 2);
  auto p1 = json::parse(earlier.data);
  auto p2 = json::parse(later.data);
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::patch);
  for (auto d : docs) {
    auto doc = json::parse(d);
    EXPECT_EQ(patched(doc, json::parse(earlier.data)), sequential(doc, p1, p2)) << d;
  }
  expect_later_seq_and_trace(earlier, later);
}

TEST(coalesce, patch_then_uncomposable_patch) {
  auto earlier = make(change_kind::patch, R"({"k":null})", 1);
  auto later = make(change_kind::patch, R"({"k":{"a":1}})", 2);
  auto before = earlier;
  EXPECT_FALSE(coalesce(earlier, later));
  EXPECT_EQ(earlier, before);
}

TEST(coalesce, put_then_delete) {
  auto earlier = make(change_kind::put, R"({"a":1})", 1);
  auto later = make(change_kind::del, "", 2);
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::del);
  EXPECT_TRUE(earlier.data.empty());
  expect_later_seq_and_trace(earlier, later);
}

TEST(coalesce, delete_then_put) {
  auto earlier = make(change_kind::del, "", 1);
  auto later = make(change_kind::put, R"({"z":true})", 2);
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::put);
  EXPECT_EQ(json::parse(earlier.data), json::parse(later.data));
  expect_later_seq_and_trace(earlier, later);
}

TEST(coalesce, delete_then_patch_refused) {
  auto earlier = make(change_kind::del, "", 1);
  auto later = make(change_kind::patch, R"({"a":1})", 2);
  auto before = earlier;
  EXPECT_FALSE(coalesce(earlier, later));
  EXPECT_EQ(earlier, before);
}

TEST(coalesce, patch_then_delete) {
  auto earlier = make(change_kind::patch, R"({"a":1})", 1);
  auto later = make(change_kind::del, "", 2);
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::del);
  EXPECT_TRUE(earlier.data.empty());
  expect_later_seq_and_trace(earlier, later);
}

TEST(coalesce, patch_then_put) {
  auto earlier = make(change_kind::patch, R"({"a":1})", 1);
  auto later = make(change_kind::put, R"({"b":2})", 2);
  ASSERT_TRUE(coalesce(earlier, later));
  EXPECT_EQ(earlier.kind, change_kind::put);
  EXPECT_EQ(json::parse(earlier.data), json::parse(later.data));
  expect_later_seq_and_trace(earlier, later);
}
