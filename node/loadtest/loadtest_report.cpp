#include "node/loadtest/loadtest_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace memsync {

namespace {

double ms(uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

std::string fmt(const char* format, double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, x);
  return buf;
}

void latency_row(std::ostream& out, const char* name, const log_histogram& h) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "  %-20s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %10llu\n",
                name, ms(h.percentile(0.5)), ms(h.percentile(0.9)),
                ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max),
                h.mean() / 1000.0, static_cast<unsigned long long>(h.count));
  out << buf;
}

} // namespace

nlohmann::json latency_json(const log_histogram& h) {
  return {{"count", h.count},
          {"p50", ms(h.percentile(0.5))},
          {"p90", ms(h.percentile(0.9))},
          {"p99", ms(h.percentile(0.99))},
          {"p99_9", ms(h.percentile(0.999))},
          {"max", ms(h.max)},
          {"mean", h.mean() / 1000.0}};
}

nlohmann::json to_json(const loadtest_report& r) {
  nlohmann::json timeline = nlohmann::json::array();
  for (auto& s : r.timeline)
    timeline.push_back({{"at_s", s.at_s},
                        {"writes_per_s", s.writes_per_s},
                        {"applied_per_s", s.applied_per_s},
                        {"propagation_p99_ms", ms(s.p99_us)},
                        {"connected", s.connected}});
  nlohmann::json histogram = nlohmann::json::array();
  for (size_t i = 0; i < r.propagation.buckets.size(); ++i)
    if (r.propagation.buckets[i] > 0)
      histogram.push_back({{"from_ms", ms(log_histogram::lower_bound(i))},
                           {"to_ms", ms(log_histogram::lower_bound(i + 1))},
                           {"count", r.propagation.buckets[i]}});
  nlohmann::json j;
  j["mode"] = r.mode;
  j["server"] = r.server;
  j["clients"] = r.clients;
  j["client_systems"] = r.client_systems;
  j["scopes"] = r.scopes;
  j["latency_observers"] = r.latency_observers;
  j["connect_s"] = r.connect_s;
  j["measured_s"] = r.measured_s;
  j["throughput"] = {{"writes", r.writes},
                     {"writes_per_s", r.writes_per_s},
                     {"changes_pushed_per_s", r.pushed_per_s},
                     {"changes_applied_per_s", r.applied_per_s},
                     {"pulls_per_s", r.pulls_per_s},
                     {"pulls_read_ahead_per_s", r.pulls_ahead_per_s},
                     {"server_pulls_per_write",
                      r.server_pulls_per_write < 0
                        ? nlohmann::json(nullptr)
                        : nlohmann::json(r.server_pulls_per_write)}};
  j["propagation_latency_ms"] = latency_json(r.propagation);
  j["propagation_histogram"] = histogram;
  j["layers_ms"] = {{"flush_wait", latency_json(r.flush_wait)},
                    {"push_round_trip", latency_json(r.push_round_trip)},
                    {"poke_to_pull", latency_json(r.poke_to_pull)},
                    {"apply", latency_json(r.apply)}};
  j["errors"] = r.errors;
  j["convergence"] = {{"settle_s", r.settle_s},
                      {"clients_checked", r.clients_checked},
                      {"clients_differing", r.clients_differing},
                      {"foreign_changes", r.foreign_changes},
                      {"server_entities", r.server_entities},
                      {"changes_checked", r.changes_checked},
                      {"changes_made", r.changes_made},
                      {"changes_on_server", r.changes_on_server},
                      {"changes_lost", r.changes_lost},
                      {"changes_unaccounted", r.changes_unaccounted},
                      {"changes_duplicated", r.changes_duplicated},
                      {"final_values_wrong", r.final_values_wrong}};
  if (r.mode == "fixed")
    j["fixed"] = {{"clients", r.clients},
                  {"entities_per_client", r.fixed_entities_per_client},
                  {"all_visible", r.all_visible},
                  {"time_to_all_visible_s", r.time_to_all_visible_s}};
  if (r.mode == "drain")
    j["drain"] = {{"offline_clients", r.drain.offline_clients},
                  {"pending_per_client", r.drain.pending_per_client},
                  {"write_s", r.drain.write_s},
                  {"drained", r.drain.drained},
                  {"drain_s", r.drain.drain_s},
                  {"changes_per_s", r.drain.changes_per_s},
                  {"push_batches", r.drain.push_batches},
                  {"all_visible", r.drain.all_visible},
                  {"visible_s", r.drain.visible_s}};
  if (r.mode == "storm")
    j["storm"] = {{"outage_s", r.storm.outage_s},
                  {"restart_s", r.storm.restart_s},
                  {"outage_writes", r.storm.outage_writes},
                  {"reconverged", r.storm.reconverged},
                  {"reconnect_s", r.storm.reconnect_s},
                  {"reconnected_ms", latency_json(r.storm.reconnected)},
                  {"drained_s", r.storm.drained_s},
                  {"reconverged_s", r.storm.reconverged_s},
                  {"connects", r.storm.connects},
                  {"outage_changes_made", r.storm.outage_changes_made},
                  {"outage_changes_on_server", r.storm.outage_changes_on_server}};
  j["resources"] = {{"bytes_per_client_connected", r.bytes_per_client_connected},
                    {"bytes_per_client_end", r.bytes_per_client_end},
                    {"peak_rss_bytes", r.peak_rss_bytes},
                    {"server_peak_rss_bytes", r.server_peak_rss_bytes},
                    {"threads", r.threads},
                    {"open_files", r.open_files}};
  j["timeline"] = timeline;
  j["notes"] = r.notes;
  return j;
}

void print_table(const loadtest_report& r, std::ostream& out) {
  out << "== loadtest: " << r.clients << " clients (" << r.client_systems
      << " connection(s) to each server"
      << (r.scopes > 1 ? ", in " + std::to_string(r.scopes) + " scopes" : std::string{})
      << "), " << r.mode << " workload, server " << r.server << "\n";
  out << "  all connected after " << fmt("%.2f", r.connect_s) << " s; measured "
      << fmt("%.2f", r.measured_s)
      << (r.mode == "fixed"   ? " s from the first write\n"
          : r.mode == "drain" ? " s from the reconnect\n"
          : r.mode == "storm" ? " s from the restart\n"
                              : " s after the warm-up\n");
  if (r.mode == "fixed")
    out << "  " << r.clients << " x " << r.fixed_entities_per_client << " entities: "
        << (r.all_visible ? "every client held all of them after "
                              + fmt("%.3f", r.time_to_all_visible_s) + " s"
                          : std::string{"NOT every client saw every entity"})
        << "\n";
  if (r.mode == "drain") {
    auto& d = r.drain;
    out << "  " << d.offline_clients << " offline client(s) wrote "
        << d.pending_per_client << " pending changes each in " << fmt("%.2f", d.write_s)
        << " s (flushed locally)\n"
        << "  reconnected: "
        << (d.drained ? "every change acknowledged after " + fmt("%.3f", d.drain_s)
                          + " s (" + fmt("%.0f", d.changes_per_s) + " changes/s, "
                          + std::to_string(d.push_batches) + " push batches)"
                      : std::string{"NOT every change was acknowledged"})
        << "\n  "
        << (d.all_visible
              ? "every client held them all after " + fmt("%.3f", d.visible_s) + " s"
              : std::string{"NOT every client held them all"})
        << "\n";
  }
  if (r.mode == "storm") {
    auto& s = r.storm;
    out << "  server killed (SIGKILL) and restarted: down " << fmt("%.2f", s.outage_s)
        << " s (the new process listened after " << fmt("%.2f", s.restart_s) << " s); "
        << s.outage_writes << " writes made meanwhile\n";
    if (s.reconverged)
      out << "  after the restart: every client connected after "
          << fmt("%.3f", s.reconnect_s) << " s, every change acknowledged after "
          << fmt("%.3f", s.drained_s)
          << " s, every client pulled the server's head after "
          << fmt("%.3f", s.reconverged_s) << " s (" << s.connects << " connects)\n"
          << "  each client connected again after p50 "
          << fmt("%.0f", ms(s.reconnected.percentile(0.5))) << " ms, p90 "
          << fmt("%.0f", ms(s.reconnected.percentile(0.9))) << " ms, p99 "
          << fmt("%.0f", ms(s.reconnected.percentile(0.99))) << " ms, max "
          << fmt("%.0f", ms(s.reconnected.max)) << " ms\n";
    else
      out << "  NOT reconverged after the restart\n";
    if (r.changes_checked)
      out << "  changes that end with a write of the outage: " << s.outage_changes_made
          << ", on the server: " << s.outage_changes_on_server << "\n";
  }
  out << "== throughput (per second)\n"
      << "  writes " << fmt("%.0f", r.writes_per_s) << "   changes pushed "
      << fmt("%.0f", r.pushed_per_s) << "   changes applied "
      << fmt("%.0f", r.applied_per_s) << "   pulls " << fmt("%.0f", r.pulls_per_s)
      << " (read ahead " << fmt("%.0f", r.pulls_ahead_per_s) << ")"
      << "\n  server pulls per write "
      << (r.server_pulls_per_write < 0
            ? std::string{"n/a (the server is not in this process)"}
            : fmt("%.2f", r.server_pulls_per_write))
      << "\n";
  out << "== latency (ms)           p50       p90       p99     p99.9       max      "
         "mean      count\n";
  latency_row(out, "propagation", r.propagation);
  latency_row(out, "flush wait", r.flush_wait);
  latency_row(out, "push round trip", r.push_round_trip);
  latency_row(out, "poke to pull", r.poke_to_pull);
  latency_row(out, "apply", r.apply);
  out << "== errors\n";
  if (r.errors.empty())
    out << "  none\n";
  for (auto& [kind, n] : r.errors)
    out << "  " << kind << ": " << n << "\n";
  out << "== convergence (after " << fmt("%.2f", r.settle_s) << " s to settle)\n"
      << "  clients differing from the server: " << r.clients_differing << " of "
      << r.clients_checked << " (server holds " << r.server_entities << " entities"
      << (r.scopes > 1 ? "; each client must hold exactly its scope's" : "") << ")\n";
  if (r.scopes > 1)
    out << "  changes that reached a client outside their scope: " << r.foreign_changes
        << "\n";
  if (r.changes_checked)
    out << "  changes made " << r.changes_made << ", on the server "
        << r.changes_on_server << ", lost " << r.changes_lost << ", duplicated "
        << r.changes_duplicated << ", final values wrong " << r.final_values_wrong
        << "\n";
  if (r.changes_unaccounted > 0)
    out << "  " << r.changes_unaccounted
        << " patches/deletes are missing from the log without a refusal reported"
           " (a refusal in a push reply that timed out is never reported)\n";
  out << "== resources\n"
      << "  memory per client " << fmt("%.1f", r.bytes_per_client_connected / 1024)
      << " KiB connected, " << fmt("%.1f", r.bytes_per_client_end / 1024)
      << " KiB at the end; " << r.threads << " threads, " << r.open_files
      << " open files\n"
      << "  peak resident memory " << fmt("%.1f", r.peak_rss_bytes / 1048576.0)
      << " MiB (this process)";
  if (r.server_peak_rss_bytes > 0)
    out << ", " << fmt("%.1f", r.server_peak_rss_bytes / 1048576.0)
        << " MiB (the server process)";
  out << "\n";
  for (auto& note : r.notes)
    out << "note: " << note << "\n";
}

namespace {

// A polyline chart of one series over time in a box at (x, y).
void line_chart(std::ostringstream& svg, double x, double y, double w, double h,
                const std::string& title, const std::vector<double>& ts,
                const std::vector<double>& vs, const std::string& color,
                const std::string& unit) {
  svg << "<g transform='translate(" << x << "," << y << ")'>"
      << "<rect width='" << w << "' height='" << h << "' fill='none' stroke='#999'/>"
      << "<text x='4' y='-6' font-size='13'>" << title << "</text>";
  double tmax = ts.empty() ? 1 : std::max(1e-9, ts.back());
  double vmax = 1e-9;
  for (double v : vs)
    vmax = std::max(vmax, v);
  svg << "<text x='-4' y='10' font-size='10' text-anchor='end'>" << fmt("%.4g", vmax)
      << "</text>"
      << "<text x='-4' y='" << h << "' font-size='10' text-anchor='end'>0</text>"
      << "<text x='" << w << "' y='" << h + 14 << "' font-size='10' text-anchor='end'>"
      << fmt("%.1f", tmax) << " s</text><text x='" << w / 2 << "' y='" << h + 14
      << "' font-size='10' text-anchor='middle'>" << unit << "</text>";
  svg << "<polyline fill='none' stroke='" << color << "' stroke-width='1.5' points='";
  for (size_t i = 0; i < ts.size(); ++i)
    svg << fmt("%.1f", ts[i] / tmax * w) << "," << fmt("%.1f", h - vs[i] / vmax * h)
        << " ";
  svg << "'/></g>\n";
}

} // namespace

std::string render_svg(const loadtest_report& r) {
  const double w = 640, h = 160;
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='760' height='780' "
         "font-family='sans-serif'>\n"
      << "<text x='20' y='24' font-size='15'>loadtest: " << r.clients << " clients, "
      << r.mode << " workload</text>\n";
  std::vector<double> ts, writes, applied, p99;
  for (auto& s : r.timeline) {
    ts.push_back(s.at_s);
    writes.push_back(s.writes_per_s);
    applied.push_back(s.applied_per_s);
    p99.push_back(ms(s.p99_us));
  }
  line_chart(svg, 80, 60, w, h, "writes per second (all clients)", ts, writes, "#1f77b4",
             "time");
  line_chart(svg, 80, 270, w, h, "remote changes applied per second (all clients)", ts,
             applied, "#2ca02c", "time");
  line_chart(svg, 80, 480, w, h, "propagation latency p99 per interval (ms)", ts, p99,
             "#d62728", "time");
  // Histogram of propagation latency: one bar per non-empty bucket, on a
  // logarithmic time axis (the buckets are logarithmic already).
  double y = 690, hh = 70;
  svg << "<g transform='translate(80," << y << ")'>"
      << "<text x='4' y='-6' font-size='13'>propagation latency histogram "
         "(log time axis; p50 "
      << fmt("%.2f", ms(r.propagation.percentile(0.5))) << " ms, p99 "
      << fmt("%.2f", ms(r.propagation.percentile(0.99))) << " ms)</text>"
      << "<rect width='" << w << "' height='" << hh << "' fill='none' stroke='#999'/>";
  size_t first = r.propagation.buckets.size(), last = 0;
  uint64_t top = 1;
  for (size_t i = 0; i < r.propagation.buckets.size(); ++i)
    if (r.propagation.buckets[i] > 0) {
      first = std::min(first, i);
      last = i;
      top = std::max(top, r.propagation.buckets[i]);
    }
  if (first <= last) {
    double bw = w / static_cast<double>(last - first + 1);
    for (size_t i = first; i <= last; ++i) {
      double bh = static_cast<double>(r.propagation.buckets[i]) / static_cast<double>(top)
                  * hh;
      svg << "<rect x='" << fmt("%.1f", (i - first) * bw) << "' y='"
          << fmt("%.1f", hh - bh) << "' width='" << fmt("%.1f", std::max(1.0, bw - 1))
          << "' height='" << fmt("%.1f", bh) << "' fill='#9467bd'/>";
    }
    svg << "<text x='0' y='" << hh + 14 << "' font-size='10'>"
        << fmt("%.2f", ms(log_histogram::lower_bound(first))) << " ms</text>"
        << "<text x='" << w << "' y='" << hh + 14 << "' font-size='10' text-anchor='end'>"
        << fmt("%.2f", ms(log_histogram::lower_bound(last + 1))) << " ms</text>";
  }
  svg << "</g>\n</svg>\n";
  return svg.str();
}

} // namespace memsync
