// The SVG swimlane picture of one change's path (see trace_model.hpp).
#include <algorithm>
#include <cstdio>
#include <map>

#include "tools/trace/trace_model.hpp"

namespace memsync::trace {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Layout, in pixels.
constexpr double left = 300, right = 40, top = 50, lane_h = 34, box_h = 20;
constexpr double plot_w = 1000, min_box = 4;

} // namespace

std::string svg(const trace_set& set, const std::vector<step>& steps) {
  std::vector<std::string> lanes;
  std::map<std::string, std::size_t> lane_of;
  for (auto& s : steps) {
    auto name = set.files[s.ev->file].node + " " + s.ev->actor;
    if (lane_of.emplace(name, lanes.size()).second)
      lanes.push_back(name);
  }
  int64_t t0 = steps.empty() ? 0 : steps.front().ev->t_ns;
  int64_t t1 = t0 + 1;
  for (auto& s : steps)
    t1 = std::max(t1, s.ev->t_ns + s.ev->dur_ns);
  auto span = static_cast<double>(t1 - t0);
  auto x = [&](int64_t t) {
    return left + plot_w * static_cast<double>(t - t0) / span;
  };
  auto y = [&](std::size_t lane) {
    return top + lane_h * static_cast<double>(lane);
  };
  double width = left + plot_w + right;
  double height = top + lane_h * static_cast<double>(lanes.size()) + 40;

  std::string out;
  char buf[512];
  std::snprintf(
    buf, sizeof(buf),
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
    "font-family=\"monospace\" font-size=\"12\">\n"
    "<defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"8\" "
    "refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#555\"/>"
    "</marker></defs>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    "<text x=\"10\" y=\"20\" font-size=\"14\">path of one change: %.3f ms, "
    "%zu steps (server clock)</text>\n",
    width, height, span / 1e6, steps.size());
  out += buf;
  for (std::size_t i = 0; i < lanes.size(); ++i) {
    std::snprintf(
      buf, sizeof(buf),
      "<rect x=\"0\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\"/>\n"
      "<text x=\"10\" y=\"%.1f\">%s</text>\n",
      y(i), width, lane_h, i % 2 ? "#f4f4f4" : "#e8eef8", y(i) + lane_h / 2 + 4,
      escape(lanes[i]).c_str());
    out += buf;
  }
  // Time axis: five ticks.
  for (int k = 0; k <= 4; ++k) {
    auto t = t0 + static_cast<int64_t>(span * k / 4);
    auto base = y(lanes.size()) + 15;
    std::snprintf(
      buf, sizeof(buf),
      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\"/>"
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3f ms</text>\n",
      x(t), top, x(t), base - 10, x(t), base + 5, (t - t0) / 1e6);
    out += buf;
  }
  double prev_x = -1, prev_y = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto& ev = *steps[i].ev;
    auto lane = lane_of[set.files[ev.file].node + " " + ev.actor];
    double bx = x(ev.t_ns);
    double bw = std::max(min_box, x(ev.t_ns + ev.dur_ns) - bx);
    double by = y(lane) + (lane_h - box_h) / 2;
    if (prev_x >= 0) {
      std::snprintf(
        buf, sizeof(buf),
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
        "marker-end=\"url(#arrow)\"/>\n",
        prev_x, prev_y, bx, by + box_h / 2);
      out += buf;
    }
    std::snprintf(
      buf, sizeof(buf),
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" fill=\"#3b7dd8\" "
      "stroke=\"#1d4f91\"><title>%zu. %s %s at %.3f ms, handling %.3f ms%s"
      "</title></rect>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%zu</text>\n",
      bx, by, bw, box_h, i + 1, escape(ev.kind).c_str(), escape(steps[i].note).c_str(),
      (ev.t_ns - t0) / 1e6, ev.dur_ns / 1e6,
      ev.wait_ns >= 0
        ? (", mailbox wait " + std::to_string(ev.wait_ns / 1000) + " us").c_str()
        : "",
      bx, by - 2, i + 1);
    out += buf;
    prev_x = bx + bw;
    prev_y = by + box_h / 2;
  }
  out += "</svg>\n";
  return out;
}

} // namespace memsync::trace
