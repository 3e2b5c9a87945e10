// The trace sink (bounded, never blocking, drops counted, consistent
// sampling) and the trace tool's logic (parsing with bad lines, clock
// alignment, statistics, the path of a change, the Chrome export).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/common/trace_sink.hpp"
#include "node/client/client_config.hpp"
#include "node/config/node_options.hpp"
#include "node/server/server_node.hpp"
#include "tests/support/temp_dir.hpp"
#include "tools/trace/trace_model.hpp"

using namespace memsync;
using memsync::testing::temp_dir;

namespace {

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in{path};
  std::string line;
  while (std::getline(in, line))
    out.push_back(nlohmann::json::parse(line));
  return out;
}

trace_event event_with(uint64_t trace_id, std::string entity) {
  trace_event ev;
  ev.actor = "local_db";
  ev.kind = "flush";
  ev.from = "flush_scheduler";
  ev.start_ns = trace_now_ns();
  ev.items.push_back({trace_id, std::move(entity), 0, 7});
  return ev;
}

} // namespace

TEST(trace_sink_test, writes_header_events_clock_and_final_line) {
  temp_dir dir;
  trace_settings s{trace_mode::all, dir.file("t.jsonl"), 1, 1024};
  {
    trace_sink sink{s, "alice-1", "client"};
    sink.record(event_with(0xabc, "e\"1"));
    sink.clock(1500, 4000);
  }
  auto lines = read_lines(s.file);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["ev"], "meta");
  EXPECT_EQ(lines[0]["node"], "alice-1");
  EXPECT_EQ(lines[0]["role"], "client");
  EXPECT_EQ(lines[0]["mode"], "all");
  EXPECT_EQ(lines[1]["ev"], "msg");
  EXPECT_EQ(lines[1]["actor"], "local_db");
  EXPECT_FALSE(lines[1].contains("wait_ns")); // unknown, not invented
  EXPECT_EQ(lines[1]["items"][0]["trace"], "0000000000000abc");
  EXPECT_EQ(lines[1]["items"][0]["entity"], "e\"1");
  EXPECT_EQ(lines[1]["items"][0]["mid"], 7);
  EXPECT_EQ(lines[2]["ev"], "clock");
  EXPECT_EQ(lines[2]["offset_ns"], 1500);
  EXPECT_EQ(lines[3]["ev"], "end");
  EXPECT_EQ(lines[3]["recorded"], 2);
  EXPECT_EQ(lines[3]["dropped"], 0);
}

// The writer is stuck on a pipe nobody reads: record() must still return,
// keep at most `buffer` events and count the rest as dropped.
TEST(trace_sink_test, full_buffer_drops_and_counts_without_blocking) {
  temp_dir dir;
  auto fifo = dir.file("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  trace_settings s{trace_mode::all, fifo, 1, 64};
  auto sink = std::make_unique<trace_sink>(s, "n", "client");
  const int n = 20000;
  std::string big(200, 'x'); // fills the pipe quickly
  for (int i = 0; i < n; ++i)
    sink->record(event_with(static_cast<uint64_t>(i) + 1, big));
  EXPECT_GT(sink->dropped(), 0u);
  EXPECT_EQ(sink->recorded() + sink->dropped(), static_cast<uint64_t>(n));
  // Now drain the pipe so the writer can finish.
  fcntl(reader, F_SETFL, 0);
  std::string text;
  std::thread drain{[&] {
    char buf[65536];
    ssize_t got;
    while ((got = read(reader, buf, sizeof(buf))) > 0)
      text.append(buf, static_cast<size_t>(got));
  }};
  auto dropped = sink->dropped();
  sink.reset();
  drain.join();
  close(reader);
  std::istringstream in{text};
  std::string line, last;
  size_t msgs = 0;
  while (std::getline(in, line)) {
    if (line.find("\"ev\":\"msg\"") != std::string::npos)
      ++msgs;
    last = line;
  }
  auto end = nlohmann::json::parse(last);
  EXPECT_EQ(end["ev"], "end");
  EXPECT_EQ(end["dropped"].get<uint64_t>(), dropped);
  EXPECT_EQ(msgs, static_cast<size_t>(n) - dropped);
}

TEST(trace_sink_test, sampling_is_decided_by_the_trace_id_alone) {
  temp_dir dir;
  trace_settings a{trace_mode::sampled, dir.file("a"), 10, 16};
  trace_settings b{trace_mode::sampled, dir.file("b"), 10, 16};
  trace_sink one{a, "client-a", "client"};
  trace_sink two{b, "server", "server"};
  int sampled = 0;
  uint64_t base = 0x9e3779b97f4a7c15ULL * 12345; // ids are consecutive per client
  for (uint64_t i = 0; i < 10000; ++i) {
    EXPECT_EQ(one.sampled(base + i), two.sampled(base + i));
    sampled += one.sampled(base + i);
  }
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
  EXPECT_FALSE(one.sampled(0));
  trace_settings c{trace_mode::all, dir.file("c"), 10, 16};
  trace_sink all{c, "n", "client"};
  EXPECT_TRUE(all.sampled(0));
  EXPECT_TRUE(all.sampled(base));
}

TEST(trace_sink_test, unwritable_file_throws) {
  trace_settings s{trace_mode::all, "/nonexistent-dir/x/t.jsonl", 1, 16};
  EXPECT_THROW((trace_sink{s, "n", "client"}), std::runtime_error);
}

// -- the tool's logic ---------------------------------------------------------

namespace {

const char* client_file
  = R"({"ev":"meta","format":1,"node":"alice-1","role":"client","mode":"all","sample_every":1}
{"ev":"clock","t_ns":900,"offset_ns":1000,"rtt_ns":400}
{"ev":"msg","actor":"memory_store","kind":"write","from":"-","t_ns":1000,"wait_ns":5,"dur_ns":10,"items":[{"trace":"00000000000000aa","entity":"c1"}]}
this is not json
{"ev":"msg","actor":"local_db","kind":"flush","from":"flush_scheduler","t_ns":1100,"dur_ns":50,"items":[{"trace":"00000000000000aa","entity":"c1","mid":1}]}
{"ev":"msg","actor":"network_syncer","kind":"push","from":"local_db","t_ns":1200,"dur_ns":5,"items":[{"trace":"zz","entity":"c1"}]}
{"ev":"msg","actor":"network_syncer","kind":"push","from":"local_db","t_ns":1300,"dur_ns":5,"items":[{"trace":"00000000000000aa","entity":"c1","mid":1}]}
[1,2,3]
{"ev":"msg","kind":"x"}
{"ev":"end","t_ns":5000,"recorded":4,"dropped":2}
)";

const char* server_file
  = R"({"ev":"meta","format":1,"node":"server-1","role":"server","mode":"all","sample_every":1}
{"ev":"msg","actor":"session","kind":"push","from":"remote","t_ns":2400,"dur_ns":10,"items":[{"trace":"00000000000000aa","entity":"c1","mid":1}]}
{"ev":"msg","actor":"replication_log","kind":"commit","from":"replication_log","t_ns":2500,"dur_ns":100,"version":9,"items":[{"trace":"00000000000000aa","entity":"c1","version":9,"mid":1}]}
{"ev":"msg","actor":"replication_log","kind":"poke_sent","from":"replication_log","t_ns":2600,"dur_ns":1,"version":9}
{"ev":"msg","actor":"replication_log","kind":"poke_sent","from":"replication_log","t_ns":2700,"dur_ns":1,"version":10}
{"ev":"end","t_ns":6000,"recorded":4,"dropped":0}
)";

// bob's pull names the version only (pulled from a server that did not
// know the trace id): joined on entity and version.
const char* other_file
  = R"({"ev":"meta","format":1,"node":"bob-1","role":"client","mode":"all","sample_every":1}
{"ev":"clock","t_ns":100,"offset_ns":-500,"rtt_ns":300}
{"ev":"msg","actor":"network_syncer","kind":"poke","from":"remote","t_ns":3200,"dur_ns":3,"version":9}
{"ev":"msg","actor":"local_db","kind":"rebase","from":"network_syncer","t_ns":3400,"dur_ns":20,"items":[{"trace":"0000000000000000","entity":"c1","version":9}]}
{"ev":"msg","actor":"memory_store","kind":"rebase","from":"network_syncer","t_ns":3500,"dur_ns":2,"items":[{"trace":"0000000000000000","entity":"c1","version":8}]}
)";

memsync::trace::trace_set sample_set() {
  memsync::trace::trace_set set;
  std::istringstream a{client_file}, s{server_file}, b{other_file};
  memsync::trace::parse(a, "alice.jsonl", set);
  memsync::trace::parse(s, "server.jsonl", set);
  memsync::trace::parse(b, "bob.jsonl", set);
  memsync::trace::align(set);
  return set;
}

bool has_problem(const memsync::trace::trace_set& set, const std::string& where) {
  for (auto& p : set.problems)
    if (p.where == where)
      return true;
  return false;
}

} // namespace

TEST(trace_model_test, bad_lines_are_reported_with_file_and_line_not_fatal) {
  auto set = sample_set();
  EXPECT_TRUE(has_problem(set, "alice.jsonl:4")) << "not JSON";
  EXPECT_TRUE(has_problem(set, "alice.jsonl:6")) << "bad trace id";
  EXPECT_TRUE(has_problem(set, "alice.jsonl:8")) << "not an object";
  EXPECT_TRUE(has_problem(set, "alice.jsonl:9")) << "no actor";
  EXPECT_TRUE(has_problem(set, "bob.jsonl")) << "no final line";
  EXPECT_EQ(set.files[0].events, 3u);
  EXPECT_EQ(set.files[0].dropped, 2);
  EXPECT_EQ(set.events.size(), 3u + 4u + 3u);
}

TEST(trace_model_test, unreadable_file_is_a_problem) {
  auto set = memsync::trace::load({"/nonexistent/trace.jsonl"});
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_EQ(set.problems[0].what, "cannot read");
}

TEST(trace_model_test, clients_are_shifted_to_the_server_clock) {
  auto set = sample_set();
  for (auto& ev : set.events) {
    auto& node = set.files[ev.file].node;
    if (node == "alice-1")
      EXPECT_EQ(ev.t_ns, ev.local_ns + 1000);
    else if (node == "bob-1")
      EXPECT_EQ(ev.t_ns, ev.local_ns - 500);
    else
      EXPECT_EQ(ev.t_ns, ev.local_ns);
  }
  for (size_t i = 1; i < set.events.size(); ++i)
    EXPECT_LE(set.events[i - 1].t_ns, set.events[i].t_ns);
}

TEST(trace_model_test, messages_bound_a_wrong_clock_estimate) {
  const char* client = R"({"ev":"meta","node":"c","role":"client"}
{"ev":"clock","t_ns":0,"offset_ns":0,"rtt_ns":5000}
{"ev":"msg","actor":"network_syncer","kind":"push","from":"local_db","t_ns":5000,"dur_ns":1,"items":[{"trace":"0000000000000001","entity":"x","mid":1}]}
{"ev":"end"}
)";
  const char* server = R"({"ev":"meta","node":"s","role":"server"}
{"ev":"msg","actor":"session","kind":"push","from":"remote","t_ns":4000,"dur_ns":1,"items":[{"trace":"0000000000000001","entity":"x","mid":1}]}
{"ev":"end"}
)";
  memsync::trace::trace_set set;
  std::istringstream c{client}, s{server};
  memsync::trace::parse(c, "c", set);
  memsync::trace::parse(s, "s", set);
  memsync::trace::align(set);
  ASSERT_EQ(set.events.size(), 2u);
  // The estimate (offset 0) put the send 1 us after the receipt.
  EXPECT_EQ(set.files[set.events[0].file].node, "c");
  EXPECT_EQ(set.events[0].t_ns, 4000);
  EXPECT_EQ(set.events[1].t_ns, 4000);
}

TEST(trace_model_test, path_follows_trace_id_then_version_and_poke) {
  auto set = sample_set();
  EXPECT_EQ(memsync::trace::trace_of_entity(set, "c1"), 0xaau);
  auto steps = memsync::trace::path(set, 0xaa);
  std::vector<std::string> got;
  for (auto& s : steps)
    got.push_back(set.files[s.ev->file].node + "/" + s.ev->actor + "/" + s.ev->kind);
  std::vector<std::string> want{
    "alice-1/memory_store/write",      "alice-1/local_db/flush",
    "alice-1/network_syncer/push",     "server-1/session/push",
    "server-1/replication_log/commit", "server-1/replication_log/poke_sent",
    "bob-1/network_syncer/poke",       "bob-1/local_db/rebase",
  }; // bob's memory_store applied version 8: not this change
  EXPECT_EQ(got, want);
}

TEST(trace_model_test, stats_per_actor_with_percentiles) {
  auto s = memsync::trace::summarize({5, 1, 4, 2, 3, 10, 9, 8, 7, 6});
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(s.p50, 5);
  EXPECT_EQ(s.p90, 9);
  EXPECT_EQ(s.p99, 10);
  EXPECT_EQ(s.max, 10);
  auto rows = memsync::trace::stats(sample_set());
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].node, "alice-1");
  for (auto& r : rows)
    if (r.node == "alice-1" && r.actor == "memory_store") {
      EXPECT_EQ(r.messages, 1u);
      EXPECT_EQ(r.wait.count, 1u);
      EXPECT_EQ(r.wait.max, 5);
    }
}

TEST(trace_model_test, chrome_export_is_valid_trace_event_json) {
  auto set = sample_set();
  // Through text, as a viewer reads it.
  auto j = nlohmann::json::parse(memsync::trace::chrome(set).dump());
  ASSERT_TRUE(j["traceEvents"].is_array());
  size_t complete = 0, process_names = 0;
  for (auto& e : j["traceEvents"]) {
    ASSERT_TRUE(e["name"].is_string());
    ASSERT_TRUE(e["ph"].is_string());
    ASSERT_TRUE(e["pid"].is_number_integer());
    ASSERT_TRUE(e["tid"].is_number_integer());
    if (e["ph"] == "X") {
      ++complete;
      EXPECT_TRUE(e["cat"].is_string());
      ASSERT_TRUE(e["ts"].is_number());
      ASSERT_TRUE(e["dur"].is_number());
      EXPECT_GE(e["ts"].get<double>(), 0.0);
      EXPECT_GE(e["dur"].get<double>(), 0.0);
      EXPECT_TRUE(e["args"].is_object());
    } else {
      EXPECT_EQ(e["ph"], "M");
      process_names += e["name"] == "process_name";
    }
  }
  EXPECT_EQ(complete, set.events.size());
  EXPECT_EQ(process_names, 3u);
}

TEST(trace_model_test, svg_has_a_lane_per_actor_and_a_box_per_step) {
  auto set = sample_set();
  auto steps = memsync::trace::path(set, 0xaa);
  auto picture = memsync::trace::svg(set, steps);
  EXPECT_EQ(picture.rfind("<svg", 0), 0u);
  EXPECT_NE(picture.find("</svg>"), std::string::npos);
  size_t boxes = 0;
  for (auto pos = picture.find("<title>"); pos != std::string::npos;
       pos = picture.find("<title>", pos + 1))
    ++boxes;
  EXPECT_EQ(boxes, steps.size());
  EXPECT_NE(picture.find("server-1 replication_log"), std::string::npos);
}

// -- the [trace] section of a node's config -----------------------------------

namespace {

std::string config_error_of(const std::string& text,
                            const std::vector<std::string>& overrides = {}) {
  temp_dir dir;
  auto path = dir.file("client.ini");
  std::ofstream{path} << "[client]\nid = \"alice\"\n" << text;
  try {
    make_client_config(load_config(client_schema(), path, overrides));
  } catch (const config_error& e) {
    return e.what();
  }
  return "no error";
}

} // namespace

TEST(trace_config_test, modes_file_and_sampling_are_read) {
  temp_dir dir;
  auto path = dir.file("client.ini");
  std::ofstream{path} << "[client]\nid = \"alice\"\n[trace]\nmode = \"sampled\"\n"
                         "file = \"alice.jsonl\"\nsample-every = 10\nbuffer = 1000\n";
  auto cfg = make_client_config(load_config(client_schema(), path));
  EXPECT_EQ(cfg.trace.mode, trace_mode::sampled);
  EXPECT_EQ(cfg.trace.file, "alice.jsonl");
  EXPECT_EQ(cfg.trace.sample_every, 10u);
  EXPECT_EQ(cfg.trace.buffer, 1000u);
  auto off = make_client_config(load_config(client_schema(), "", {"--client.id=alice"}));
  EXPECT_EQ(off.trace.mode, trace_mode::off);
}

TEST(trace_config_test, bad_values_name_file_line_and_key) {
  auto err = config_error_of("[trace]\nmode = \"sometimes\"\n");
  EXPECT_NE(err.find("client.ini:4"), std::string::npos) << err;
  EXPECT_NE(err.find("trace.mode"), std::string::npos) << err;
  err = config_error_of("[trace]\nsample-every = 0\n");
  EXPECT_NE(err.find("client.ini:4"), std::string::npos) << err;
  EXPECT_NE(err.find("trace.sample-every"), std::string::npos) << err;
  err = config_error_of("[trace]\nfiel = \"x\"\n");
  EXPECT_NE(err.find("trace.fiel"), std::string::npos) << err;
}

TEST(trace_config_test, tracing_on_requires_a_file) {
  auto err = config_error_of("[trace]\nmode = \"all\"\n");
  EXPECT_NE(err.find("client.ini:4"), std::string::npos) << err;
  EXPECT_NE(err.find("trace.file: required"), std::string::npos) << err;
  err = config_error_of("", {"--trace.mode=sampled"});
  EXPECT_NE(err.find("trace.file: required"), std::string::npos) << err;
}

TEST(trace_config_test, the_server_has_the_same_section) {
  temp_dir dir;
  auto path = dir.file("server.ini");
  std::ofstream{path} << "[trace]\nmode = \"all\"\nfile = \"server.jsonl\"\n";
  auto values = load_config(server_schema(), path);
  auto t = make_trace_settings(values);
  EXPECT_EQ(t.mode, trace_mode::all);
  EXPECT_EQ(t.file, "server.jsonl");
}
