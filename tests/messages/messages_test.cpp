#include "messages/client_local.hpp"
#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/protocol.hpp"
#include "messages/registry.hpp"
#include "messages/remote.hpp"
#include "messages/server_local.hpp"
#include "messages/validation.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include <nlohmann/json.hpp>

using namespace memsync;

namespace {

// One actor system for the whole file: starting one per test is slow.
class messages_test : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    cfg_ = std::make_unique<caf::actor_system_config>();
    register_message_types(*cfg_);
    sys_ = std::make_unique<caf::actor_system>(*cfg_);
  }

  static void TearDownTestSuite() {
    sys_.reset();
    cfg_.reset();
  }

  // Serializes `in`, deserializes into a fresh T and checks that every byte
  // was consumed.
  template <class T>
  static T round_trip(T in) {
    std::vector<char> buf;
    caf::binary_serializer sink{*sys_, buf};
    auto err = sink(in);
    EXPECT_FALSE(err) << caf::to_string(err);
    EXPECT_FALSE(buf.empty());
    caf::binary_deserializer source{*sys_, buf};
    T out;
    err = source(out);
    EXPECT_FALSE(err) << caf::to_string(err);
    EXPECT_EQ(source.remaining(), 0u);
    return out;
  }

  static std::unique_ptr<caf::actor_system_config> cfg_;
  static std::unique_ptr<caf::actor_system> sys_;
};

std::unique_ptr<caf::actor_system_config> messages_test::cfg_;
std::unique_ptr<caf::actor_system> messages_test::sys_;

change make_change(uint64_t seq, change_kind kind, std::string id, std::string data) {
  change c;
  c.seq = seq;
  c.mutation_id = seq + 100;
  c.kind = kind;
  c.id = std::move(id);
  c.type = "todo_item";
  c.data = std::move(data);
  c.trace = {0xfedcba9876543210ull + seq, 0x1122334455667788ull + seq};
  return c;
}

} // namespace

// -- binary round trips --------------------------------------------------------

TEST_F(messages_test, trace_context_round_trips) {
  trace_context in{0xffffffffffffffffull, 42, 1700000000123456789};
  auto out = round_trip(in);
  EXPECT_EQ(out, in);
  EXPECT_EQ(out.sent_ns, in.sent_ns);
}

TEST_F(messages_test, entity_round_trips) {
  entity in{"user/1", "user", R"({"name":"ada"})", 77, true};
  auto out = round_trip(in);
  EXPECT_EQ(out, in);
  EXPECT_TRUE(out.deleted);
  EXPECT_EQ(out.version, 77u);
}

TEST_F(messages_test, change_round_trips_every_kind) {
  for (auto kind : {change_kind::put, change_kind::patch, change_kind::del}) {
    auto in = make_change(9, kind, "k\xc3\xa9y",
                          kind == change_kind::del ? "" : R"({"a":[1,2]})");
    auto out = round_trip(in);
    EXPECT_EQ(out, in) << to_string(kind);
    EXPECT_EQ(out.kind, kind);
  }
}

TEST_F(messages_test, sync_error_round_trips) {
  sync_error in{sync_errc::db_schema_newer, "schema 2 is newer than 1"};
  EXPECT_EQ(round_trip(in), in);
}

TEST_F(messages_test, cookie_round_trips) {
  cookie in{"epoch-3f2a", 123456789012ull, 0xfeedbeefull};
  auto out = round_trip(in);
  EXPECT_EQ(out.epoch, in.epoch);
  EXPECT_EQ(out.version, in.version);
  EXPECT_EQ(out.commit, in.commit);
}

TEST_F(messages_test, hello_request_round_trips) {
  hello_request in;
  in.protocol = 7;
  in.client_id = "alice-0123456789abcdef";
  in.token = "s3cret";
  in.client_time_us = -1234567890123;
  auto out = round_trip(in);
  EXPECT_EQ(out.protocol, 7u);
  EXPECT_EQ(out.client_id, in.client_id);
  EXPECT_EQ(out.token, in.token);
  EXPECT_EQ(out.client_time_us, in.client_time_us);
}

TEST_F(messages_test, hello_reply_round_trips) {
  hello_reply in;
  in.protocol = 9;
  in.server_id = "server-a";
  in.epoch = "e1";
  in.server_time_us = 987654321;
  auto out = round_trip(in);
  EXPECT_EQ(out.protocol, 9u);
  EXPECT_EQ(out.server_id, in.server_id);
  EXPECT_EQ(out.epoch, in.epoch);
  EXPECT_EQ(out.server_time_us, in.server_time_us);
  EXPECT_EQ(out.max_data_bytes, in.max_data_bytes);
}

TEST_F(messages_test, hello_reply_carries_the_server_limits) {
  hello_reply in;
  in.max_data_bytes = 1000;
  in.max_data_depth = 7;
  in.max_push_changes = 3;
  in.max_push_bytes = 4096;
  auto out = round_trip(in);
  EXPECT_EQ(out.max_data_bytes, 1000u);
  EXPECT_EQ(out.max_data_depth, 7u);
  EXPECT_EQ(out.max_push_changes, 3u);
  EXPECT_EQ(out.max_push_bytes, 4096u);
}

TEST_F(messages_test, push_bytes_counts_id_type_and_data) {
  change c;
  c.mutation_id = 99;
  c.kind = change_kind::put;
  c.id = "abc";
  c.type = "note";
  c.data = R"({"x":1})";
  EXPECT_EQ(push_bytes(c), 3u + 4u + 7u);
  c.kind = change_kind::del;
  c.data.clear();
  EXPECT_EQ(push_bytes(c), 7u); // a delete still counts its id and type
}

TEST_F(messages_test, push_request_round_trips_several_changes) {
  push_request in;
  in.client_id = "bob-00000000deadbeef";
  in.epoch = "epoch-7";
  in.changes.push_back(make_change(1, change_kind::put, "a", R"({"x":1})"));
  in.changes.push_back(make_change(2, change_kind::patch, "b", R"({"y":null})"));
  in.changes.push_back(make_change(3, change_kind::del, "c", ""));
  auto out = round_trip(in);
  EXPECT_EQ(out.client_id, in.client_id);
  EXPECT_EQ(out.epoch, in.epoch);
  ASSERT_EQ(out.changes.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(out.changes[i], in.changes[i]) << "change " << i;
}

TEST_F(messages_test, refusal_round_trips) {
  refusal in{55, {sync_errc::invalid_type, "bad type"}};
  auto out = round_trip(in);
  EXPECT_EQ(out.mutation_id, 55u);
  EXPECT_EQ(out.reason, in.reason);
}

TEST_F(messages_test, push_reply_round_trips_refusals) {
  push_reply in;
  in.last_mutation_id = 12;
  in.refused.push_back({4, {sync_errc::invalid_id, "entity id must not be empty"}});
  in.refused.push_back({9, {sync_errc::too_large, "data is 2000000 bytes"}});
  auto out = round_trip(in);
  EXPECT_EQ(out.last_mutation_id, 12u);
  ASSERT_EQ(out.refused.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out.refused[i].mutation_id, in.refused[i].mutation_id);
    EXPECT_EQ(out.refused[i].reason, in.refused[i].reason);
  }
}

TEST_F(messages_test, pull_request_round_trips) {
  pull_request in{"carol-1111222233334444", {"ep", 99}};
  auto out = round_trip(in);
  EXPECT_EQ(out.client_id, in.client_id);
  EXPECT_EQ(out.since.epoch, "ep");
  EXPECT_EQ(out.since.version, 99u);
}

TEST_F(messages_test, pull_reply_round_trips_with_tombstone) {
  pull_reply in;
  in.next = {"epoch-x", 314, 99};
  in.last_mutation_id = 27;
  in.reset = true;
  in.entities.push_back({"a", "note", R"({"t":"hi"})", 300, false});
  in.entities.push_back({"b", "note", "", 314, true});
  in.traces = {0xfeedull, 0};
  in.server_time_us = 1700000000123456;
  auto out = round_trip(in);
  EXPECT_EQ(out.traces, in.traces);
  EXPECT_EQ(out.server_time_us, in.server_time_us);
  EXPECT_EQ(out.next.epoch, in.next.epoch);
  EXPECT_EQ(out.next.version, in.next.version);
  EXPECT_EQ(out.next.commit, in.next.commit);
  EXPECT_EQ(out.last_mutation_id, 27u);
  EXPECT_TRUE(out.reset);
  ASSERT_EQ(out.entities.size(), 2u);
  EXPECT_EQ(out.entities[0], in.entities[0]);
  EXPECT_EQ(out.entities[1], in.entities[1]);
  EXPECT_TRUE(out.entities[1].deleted);
}

TEST_F(messages_test, poke_round_trips) {
  poke in{0x0123456789abcdefull, 0xfedcba9876543210ull};
  EXPECT_EQ(round_trip(in).version, in.version);
  EXPECT_EQ(round_trip(in).trace_id, in.trace_id);
}

TEST_F(messages_test, flushed_change_round_trips) {
  flushed_change in{"item-7", 40, 17};
  auto out = round_trip(in);
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.last_seq, 40u);
  EXPECT_EQ(out.mutation_id, 17u);
}

TEST_F(messages_test, flush_report_round_trips) {
  flush_report in;
  in.changes.push_back({"a", 3, 1});
  in.changes.push_back({"b", 5, 2});
  in.durable_seq = 5;
  auto out = round_trip(in);
  EXPECT_EQ(out.durable_seq, 5u);
  ASSERT_EQ(out.changes.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out.changes[i].id, in.changes[i].id);
    EXPECT_EQ(out.changes[i].last_seq, in.changes[i].last_seq);
    EXPECT_EQ(out.changes[i].mutation_id, in.changes[i].mutation_id);
  }
}

TEST_F(messages_test, message_with_push_request_round_trips) {
  push_request in;
  in.client_id = "dave-abcdefabcdefabcd";
  in.changes.push_back(make_change(1, change_kind::put, "a", R"({"x":1})"));
  in.changes.push_back(make_change(2, change_kind::del, "b", ""));
  auto msg = caf::make_message(in);
  std::vector<char> buf;
  caf::binary_serializer sink{*sys_, buf};
  auto err = sink(msg);
  ASSERT_FALSE(err) << caf::to_string(err);
  caf::binary_deserializer source{*sys_, buf};
  caf::message out;
  err = source(out);
  ASSERT_FALSE(err) << caf::to_string(err);
  ASSERT_TRUE(out.match_elements<push_request>());
  auto& got = out.get_as<push_request>(0);
  EXPECT_EQ(got.client_id, in.client_id);
  ASSERT_EQ(got.changes.size(), 2u);
  EXPECT_EQ(got.changes[0], in.changes[0]);
  EXPECT_EQ(got.changes[1], in.changes[1]);
}

TEST_F(messages_test, message_with_pull_reply_round_trips) {
  pull_reply in;
  in.next = {"e", 2};
  in.last_mutation_id = 1;
  in.entities.push_back({"a", "t", "", 2, true});
  auto msg = caf::make_message(in);
  std::vector<char> buf;
  caf::binary_serializer sink{*sys_, buf};
  ASSERT_FALSE(sink(msg));
  caf::binary_deserializer source{*sys_, buf};
  caf::message out;
  ASSERT_FALSE(source(out));
  ASSERT_TRUE(out.match_elements<pull_reply>());
  auto& got = out.get_as<pull_reply>(0);
  EXPECT_EQ(got.next.epoch, "e");
  ASSERT_EQ(got.entities.size(), 1u);
  EXPECT_EQ(got.entities[0], in.entities[0]);
}

// -- errors --------------------------------------------------------------------

TEST_F(messages_test, make_error_keeps_code_and_message) {
  auto err = make_error(sync_errc::db_locked, "file is in use");
  ASSERT_TRUE(err);
  EXPECT_EQ(err.category(), error_category);
  auto back = to_sync_error(err);
  EXPECT_EQ(back.code, sync_errc::db_locked);
  EXPECT_EQ(back.message, "file is in use");
}

TEST_F(messages_test, make_error_from_sync_error_keeps_both) {
  sync_error in{sync_errc::mutation_gap, "expected 4, got 6"};
  EXPECT_EQ(to_sync_error(make_error(in)), in);
}

TEST_F(messages_test, error_survives_serialization) {
  auto err = make_error(sync_errc::unauthorized, "bad token");
  std::vector<char> buf;
  caf::binary_serializer sink{*sys_, buf};
  ASSERT_FALSE(sink(err));
  caf::binary_deserializer source{*sys_, buf};
  caf::error out;
  ASSERT_FALSE(source(out));
  auto back = to_sync_error(out);
  EXPECT_EQ(back.code, sync_errc::unauthorized);
  EXPECT_EQ(back.message, "bad token");
}

TEST_F(messages_test, request_timeout_becomes_timeout) {
  auto back = to_sync_error(caf::make_error(caf::sec::request_timeout));
  EXPECT_EQ(back.code, sync_errc::timeout);
  EXPECT_FALSE(back.message.empty());
}

TEST_F(messages_test, other_caf_error_becomes_unavailable) {
  auto back = to_sync_error(caf::make_error(caf::sec::cannot_connect_to_node));
  EXPECT_EQ(back.code, sync_errc::unavailable);
  EXPECT_FALSE(back.message.empty());
}

TEST_F(messages_test, no_error_is_ok) {
  EXPECT_TRUE(to_sync_error(caf::error{}).ok());
}

TEST_F(messages_test, describe_joins_code_and_message) {
  sync_error e{sync_errc::invalid_id, "entity id must not be empty"};
  EXPECT_EQ(e.describe(), "invalid_id: entity id must not be empty");
}

// -- validation: ids -----------------------------------------------------------

TEST(validate_id, empty_rejected) {
  auto err = validate_id("");
  EXPECT_EQ(err.code, sync_errc::invalid_id);
  EXPECT_NE(err.message.find("empty"), std::string::npos) << err.message;
}

TEST(validate_id, simple_accepted) {
  EXPECT_TRUE(validate_id("todo/42").ok());
}

TEST(validate_id, max_length_accepted) {
  EXPECT_TRUE(validate_id(std::string(max_id_bytes, 'x')).ok());
  EXPECT_EQ(max_id_bytes, 256u);
}

TEST(validate_id, too_long_rejected) {
  auto err = validate_id(std::string(257, 'x'));
  EXPECT_EQ(err.code, sync_errc::invalid_id);
  EXPECT_NE(err.message.find("257"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("256"), std::string::npos) << err.message;
}

TEST(validate_id, control_chars_rejected) {
  for (std::string id : {std::string{"a\nb"}, std::string{"a\x01"}, std::string{"\x7f"},
                         std::string{"a\0b", 3}}) {
    auto err = validate_id(id);
    EXPECT_EQ(err.code, sync_errc::invalid_id) << id;
    EXPECT_NE(err.message.find("control character"), std::string::npos) << err.message;
  }
}

TEST(validate_id, utf8_text_accepted) {
  for (std::string id :
       {"caf\u00e9", "\u4e2d\u6587", "emoji-\U0001F600", "max-\U0010FFFF"})
    EXPECT_TRUE(validate_id(id).ok()) << id;
}

TEST(validate_id, ill_formed_utf8_rejected_with_its_position) {
  const std::pair<std::string, const char*> cases[] = {
    {"ab\xff", "byte 2"},           // never a UTF-8 byte
    {"a\xc3", "byte 1"},            // truncated sequence
    {"a\xc3(", "byte 1"},           // bad continuation byte
    {"\xc0\xaf", "byte 0"},         // overlong '/'
    {"x\xe0\x80\xaf", "byte 1"},    // overlong, three bytes
    {"\xed\xa0\x80", "byte 0"},     // a UTF-16 surrogate
    {"\xf4\x90\x80\x80", "byte 0"}, // above U+10FFFF
    {"\x80", "byte 0"},             // a lone continuation byte
  };
  for (auto& [id, where] : cases) {
    auto err = validate_id(id);
    EXPECT_EQ(err.code, sync_errc::invalid_id) << where;
    EXPECT_NE(err.message.find("UTF-8"), std::string::npos) << err.message;
    EXPECT_NE(err.message.find(where), std::string::npos) << err.message;
  }
}

TEST(validate_id, control_char_position_reported) {
  auto err = validate_id("abc\ndef");
  EXPECT_NE(err.message.find("byte 3"), std::string::npos) << err.message;
}

TEST(validate_id, utf8_accepted) {
  EXPECT_TRUE(validate_id("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80").ok());
}

// -- validation: types ---------------------------------------------------------

TEST(validate_type, allowed_chars_accepted) {
  EXPECT_TRUE(validate_type("todo_item-2").ok());
  EXPECT_TRUE(validate_type("a").ok());
}

TEST(validate_type, max_length_accepted) {
  EXPECT_TRUE(validate_type(std::string(64, 'a')).ok());
}

TEST(validate_type, too_long_rejected) {
  auto err = validate_type(std::string(65, 'a'));
  EXPECT_EQ(err.code, sync_errc::invalid_type);
  EXPECT_NE(err.message.find("64"), std::string::npos) << err.message;
}

TEST(validate_type, empty_rejected) {
  auto err = validate_type("");
  EXPECT_EQ(err.code, sync_errc::invalid_type);
  EXPECT_NE(err.message.find("1 to 64"), std::string::npos) << err.message;
}

TEST(validate_type, bad_chars_rejected) {
  for (std::string type : {"Todo", "to do", "to.do", "todo/x", "t\xc3\xa9"}) {
    auto err = validate_type(type);
    EXPECT_EQ(err.code, sync_errc::invalid_type) << type;
    EXPECT_NE(err.message.find("'" + type + "'"), std::string::npos) << err.message;
    EXPECT_NE(err.message.find("a-z"), std::string::npos) << err.message;
  }
}

// -- validation: parse_object --------------------------------------------------

namespace {

std::string nested(char open, char close, size_t depth) {
  return std::string(depth, open) + std::string(depth, close);
}

// An object nested `depth` levels deep: {"a":{"a":...{}}}.
std::string nested_object(size_t depth) {
  std::string out;
  for (size_t i = 1; i < depth; ++i)
    out += "{\"a\":";
  out += "{}";
  out += std::string(depth - 1, '}');
  return out;
}

// An object whose member is an array nested to a total depth of `depth`.
std::string object_with_array(size_t depth) {
  return "{\"a\":" + nested('[', ']', depth - 1) + "}";
}

} // namespace

// What a client checks on every entity a server sends.
TEST(validate_entity, objects_and_tombstones_accepted) {
  EXPECT_TRUE(
    validate_entity({"e1", "note", R"({"a":[1,{"b":null}]})", 3, false}, {}).ok());
  EXPECT_TRUE(validate_entity({"e1", "note", " \n{}", 3, false}, {}).ok());
  EXPECT_TRUE(validate_entity({"e1", "note", "", 4, true}, {}).ok());
}

TEST(validate_entity, anything_but_a_json_object_rejected) {
  for (std::string data : {"", "[1]", " [1]", "\"text\"", "42", "null", "{", R"({"a":})",
                           "{} x", R"({"a":1}})", "{\"a\xff\":1}"}) {
    auto err = validate_entity({"e1", "note", data, 1, false}, {});
    EXPECT_EQ(err.code, sync_errc::invalid_json) << data;
  }
}

TEST(validate_entity, bad_ids_types_and_limits_rejected) {
  EXPECT_EQ(validate_entity({"", "note", "{}", 1, false}, {}).code,
            sync_errc::invalid_id);
  EXPECT_EQ(validate_entity({"e\xff", "note", "{}", 1, false}, {}).code,
            sync_errc::invalid_id);
  EXPECT_EQ(validate_entity({"e1", "No te", "{}", 1, false}, {}).code,
            sync_errc::invalid_type);
  data_limits small;
  small.max_depth = 2;
  EXPECT_EQ(validate_entity({"e1", "note", R"({"a":{"b":{}}})", 1, false}, small).code,
            sync_errc::too_deep);
  small = {};
  small.max_bytes = 8;
  EXPECT_EQ(validate_entity({"e1", "note", R"({"a":"long"})", 1, false}, small).code,
            sync_errc::too_large);
}

TEST(parse_object, object_accepted) {
  nlohmann::json out;
  auto err = parse_object(R"({"b":[1,2],"a":{"c":null}})", {}, out);
  ASSERT_TRUE(err.ok()) << err.describe();
  EXPECT_EQ(out, nlohmann::json::parse(R"({"a":{"c":null},"b":[1,2]})"));
}

TEST(parse_object, non_objects_rejected) {
  for (std::string text : {"[1,2]", "42", "\"str\"", "null", "true"}) {
    nlohmann::json out;
    auto err = parse_object(text, {}, out);
    EXPECT_EQ(err.code, sync_errc::invalid_json) << text;
    EXPECT_NE(err.message.find("must be a JSON object"), std::string::npos)
      << err.message;
  }
}

TEST(parse_object, non_object_names_its_type) {
  nlohmann::json out;
  auto err = parse_object("[1]", {}, out);
  EXPECT_NE(err.message.find("array"), std::string::npos) << err.message;
}

TEST(parse_object, malformed_rejected) {
  for (std::string text : {"{", "{\"a\":}", "{'a':1}", "", "{\"a\":1}x", "{\"a\":1,}"}) {
    nlohmann::json out;
    auto err = parse_object(text, {}, out);
    EXPECT_EQ(err.code, sync_errc::invalid_json) << text;
    EXPECT_NE(err.message.find("not valid JSON"), std::string::npos) << err.message;
  }
}

TEST(parse_object, size_cap_inclusive) {
  std::string text = R"({"k":"vvvvvvvvvv"})";
  data_limits limits;
  limits.max_bytes = text.size();
  nlohmann::json out;
  EXPECT_TRUE(parse_object(text, limits, out).ok());
  limits.max_bytes = text.size() - 1;
  auto err = parse_object(text, limits, out);
  EXPECT_EQ(err.code, sync_errc::too_large);
  EXPECT_NE(err.message.find(std::to_string(text.size())), std::string::npos)
    << err.message;
  EXPECT_NE(err.message.find(std::to_string(text.size() - 1)), std::string::npos)
    << err.message;
}

TEST(parse_object, object_depth_cap_inclusive) {
  data_limits limits;
  limits.max_depth = 5;
  nlohmann::json out;
  auto ok = parse_object(nested_object(5), limits, out);
  EXPECT_TRUE(ok.ok()) << ok.describe();
  auto err = parse_object(nested_object(6), limits, out);
  EXPECT_EQ(err.code, sync_errc::too_deep);
  EXPECT_NE(err.message.find("5"), std::string::npos) << err.message;
}

TEST(parse_object, array_depth_cap_inclusive) {
  data_limits limits;
  limits.max_depth = 4;
  nlohmann::json out;
  auto ok = parse_object(object_with_array(4), limits, out);
  EXPECT_TRUE(ok.ok()) << ok.describe();
  EXPECT_EQ(parse_object(object_with_array(5), limits, out).code, sync_errc::too_deep);
}

TEST(parse_object, default_depth_cap) {
  nlohmann::json out;
  data_limits limits;
  EXPECT_TRUE(parse_object(nested_object(limits.max_depth), limits, out).ok());
  EXPECT_EQ(parse_object(nested_object(limits.max_depth + 1), limits, out).code,
            sync_errc::too_deep);
}

TEST(parse_object, brackets_in_strings_do_not_count) {
  data_limits limits;
  limits.max_depth = 2;
  nlohmann::json out;
  std::string text = R"({"a":{"s":"[[[{{{\"[[[{{{"},"[{[{":"x"})";
  auto err = parse_object(text, limits, out);
  ASSERT_TRUE(err.ok()) << err.describe();
  EXPECT_EQ(out["a"]["s"], "[[[{{{\"[[[{{{");
}

TEST(parse_object, very_deep_input_rejected) {
  nlohmann::json out;
  auto err = parse_object(nested('[', ']', 100000), {}, out);
  EXPECT_EQ(err.code, sync_errc::too_deep);
  err = parse_object("{\"a\":" + nested('{', '}', 100000) + "}", {}, out);
  EXPECT_EQ(err.code, sync_errc::too_deep);
  // Unterminated, as a hostile peer would send it.
  err = parse_object(std::string(100000, '['), {}, out);
  EXPECT_EQ(err.code, sync_errc::too_deep);
}

// -- validation: validate_change -----------------------------------------------

namespace {

change valid_change(change_kind kind) {
  change c;
  c.kind = kind;
  c.id = "item-1";
  c.type = "item";
  c.data = kind == change_kind::del ? "" : R"({"a":1})";
  return c;
}

} // namespace

TEST(validate_change, valid_changes_accepted) {
  for (auto kind : {change_kind::put, change_kind::patch, change_kind::del}) {
    auto err = validate_change(valid_change(kind), {});
    EXPECT_TRUE(err.ok()) << to_string(kind) << ": " << err.describe();
  }
}

TEST(validate_change, unknown_kind_rejected) {
  auto c = valid_change(change_kind::put);
  c.kind = static_cast<change_kind>(9);
  auto err = validate_change(c, {});
  EXPECT_EQ(err.code, sync_errc::invalid_request);
  EXPECT_NE(err.message.find("kind 9"), std::string::npos) << err.message;
}

TEST(validate_change, delete_with_data_rejected) {
  auto c = valid_change(change_kind::del);
  c.data = R"({"a":1})";
  auto err = validate_change(c, {});
  EXPECT_EQ(err.code, sync_errc::invalid_request);
  EXPECT_NE(err.message.find("delete"), std::string::npos) << err.message;
}

TEST(validate_change, put_with_non_object_rejected) {
  auto c = valid_change(change_kind::put);
  c.data = "[1,2,3]";
  EXPECT_EQ(validate_change(c, {}).code, sync_errc::invalid_json);
  c.data = "";
  EXPECT_EQ(validate_change(c, {}).code, sync_errc::invalid_json);
}

TEST(validate_change, patch_with_non_object_rejected) {
  auto c = valid_change(change_kind::patch);
  c.data = "null";
  EXPECT_EQ(validate_change(c, {}).code, sync_errc::invalid_json);
}

TEST(validate_change, bad_id_rejected) {
  auto c = valid_change(change_kind::put);
  c.id = "";
  EXPECT_EQ(validate_change(c, {}).code, sync_errc::invalid_id);
}

TEST(validate_change, bad_type_rejected) {
  auto c = valid_change(change_kind::del);
  c.type = "Item";
  EXPECT_EQ(validate_change(c, {}).code, sync_errc::invalid_type);
}

TEST(validate_change, limits_applied) {
  auto c = valid_change(change_kind::put);
  data_limits limits;
  limits.max_bytes = c.data.size() - 1;
  EXPECT_EQ(validate_change(c, limits).code, sync_errc::too_large);
  limits = {};
  limits.max_depth = 1;
  c.data = R"({"a":{"b":1}})";
  EXPECT_EQ(validate_change(c, limits).code, sync_errc::too_deep);
}

TEST(validation, the_canonical_form_must_fit_the_limits_too) {
  // 60 times `1e9` (3 bytes) becomes 60 times `1000000000.0` (12 bytes).
  std::string data = R"({"a":[)";
  for (int i = 0; i < 60; ++i)
    data += i ? ",1e9" : "1e9";
  data += "]}";
  data_limits limits{256, 16};
  ASSERT_TRUE(check_limits(data, limits).ok()) << data.size();
  change c{0, 1, change_kind::put, "c1", "note", data, {}};
  auto err = canonicalize_change(c, limits);
  EXPECT_EQ(err.code, sync_errc::too_large) << err.describe();
  EXPECT_NE(err.message.find("in canonical form"), std::string::npos) << err.message;
  EXPECT_EQ(c.data, data) << "a refused change was rewritten";
}
