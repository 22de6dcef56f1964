// sagactl top: a live view of a running stack, read from each program's
// /metrics once per interval: sagas per second by final state, saga latency
// percentiles over the interval, faults firing, stuck and running sagas.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "sagalab/metrics.hpp"

namespace sagactl {

namespace {

using Samples = std::map<std::string, std::vector<sagalab::MetricSample>>;  // by program

struct TopOptions {
  double interval_s = 1.0;
  int samples = 0;  // 0: until interrupted
};

Samples scrape(const GlobalOptions& g) {
  Samples out;
  for (const auto& p : programs()) {
    auto a = call(g, p, "GET", "/metrics", nullptr, true);
    if (a.status != 200 || !a.body.contains("raw"))
      throw CliError(kExitFailed, p + " answered " + std::to_string(a.status) + " to GET /metrics");
    out[p] = sagalab::parse_metrics_text(a.body["raw"].get<std::string>());
  }
  return out;
}

// The latency (ms) under which a fraction q of the sagas that finished in the
// interval fell, from the histogram's buckets; null when none finished.
Json percentile_ms(const std::vector<sagalab::MetricSample>& a, const std::vector<sagalab::MetricSample>& b, double q) {
  std::vector<std::pair<double, double>> buckets;  // (le, count in the interval)
  for (const auto& s : b) {
    if (s.name != "sagalab_saga_duration_seconds_bucket" || !s.labels.count("le")) continue;
    double le = s.labels.at("le") == "+Inf" ? INFINITY : std::stod(s.labels.at("le"));
    buckets.emplace_back(le, s.value - sagalab::metric_sum(a, s.name, {{"le", s.labels.at("le")}}));
  }
  std::sort(buckets.begin(), buckets.end());
  if (buckets.empty() || buckets.back().second <= 0) return nullptr;
  double total = buckets.back().second;
  for (const auto& [le, n] : buckets) {
    if (n >= q * total) return std::isinf(le) ? Json("inf") : Json(le * 1000.0);
  }
  return nullptr;
}

Json sample(const Samples& a, const Samples& b, double dt) {
  const auto& oa = a.at("orquestador");
  const auto& ob = b.at("orquestador");
  auto rate = [dt](double x, double y) { return std::round((y - x) / dt * 10.0) / 10.0; };
  Json by_state = Json::object(), totals = Json::object();
  for (const char* estado : {"completada", "compensada"}) {
    by_state[estado] = rate(sagalab::metric_sum(oa, "sagalab_sagas_finished_total", {{"estado", estado}}),
                            sagalab::metric_sum(ob, "sagalab_sagas_finished_total", {{"estado", estado}}));
    totals[estado] = sagalab::metric_sum(ob, "sagalab_sagas_finished_total", {{"estado", estado}});
  }
  double started = sagalab::metric_sum(ob, "sagalab_sagas_started_total");
  double finished = sagalab::metric_sum(ob, "sagalab_sagas_finished_total");
  totals["started"] = started;
  Json faults = Json::object();
  for (const auto& p : programs())
    faults[p] = rate(sagalab::metric_sum(a.at(p), "sagalab_faults_fired_total"),
                     sagalab::metric_sum(b.at(p), "sagalab_faults_fired_total"));
  return {{"interval_s", dt},
          {"started_per_s", rate(sagalab::metric_sum(oa, "sagalab_sagas_started_total"), started)},
          {"finished_per_s", by_state},
          {"p50_ms", percentile_ms(oa, ob, 0.5)},
          {"p99_ms", percentile_ms(oa, ob, 0.99)},
          {"running", started - finished},
          {"atascadas", sagalab::metric_sum(ob, "sagalab_sagas_atascadas")},
          {"retries_per_s", rate(sagalab::metric_sum(oa, "sagalab_step_retries_total"),
                                 sagalab::metric_sum(ob, "sagalab_step_retries_total"))},
          {"faults_per_s", faults},
          {"totals", totals}};
}

std::string ms_text(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return "> 30 s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "<= %g ms", v.get<double>());
  return buf;
}

void draw(const Json& s) {
  std::cout << "\033[H\033[2J" << paint("sagalab top", "1") << "  (every " << s["interval_s"].get<double>()
            << " s; Ctrl-C to stop)\n\n";
  std::printf("  sagas/s   started %-8g completada %-8g compensada %g\n", s["started_per_s"].get<double>(),
              s["finished_per_s"]["completada"].get<double>(), s["finished_per_s"]["compensada"].get<double>());
  std::printf("  latency   p50 %-14s p99 %s\n", ms_text(s["p50_ms"]).c_str(), ms_text(s["p99_ms"]).c_str());
  std::printf("  now       running %-8g atascadas %g\n", s["running"].get<double>(), s["atascadas"].get<double>());
  std::printf("  retries/s %g\n", s["retries_per_s"].get<double>());
  std::cout << "  faults/s ";
  for (const auto& [p, v] : s["faults_per_s"].items()) std::cout << " " << p << " " << v.get<double>();
  std::printf("\n  totals    started %g completada %g compensada %g\n", s["totals"]["started"].get<double>(),
              s["totals"]["completada"].get<double>(), s["totals"]["compensada"].get<double>());
  std::cout << std::flush;
}

int run_top(const GlobalOptions& g, const TopOptions& o) {
  auto prev = scrape(g);
  auto t0 = std::chrono::steady_clock::now();
  for (int n = 0; o.samples == 0 || n < o.samples || g.json; ++n) {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.interval_s));
    auto next = scrape(g);
    auto t1 = std::chrono::steady_clock::now();
    auto s = sample(prev, next, std::chrono::duration<double>(t1 - t0).count());
    if (g.json) {
      print_json(s);
      return kExitOk;
    }
    draw(s);
    prev = std::move(next);
    t0 = t1;
  }
  return kExitOk;
}

}  // namespace

void setup_top(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<TopOptions>();
  auto* sub = app.add_subcommand("top", "A live view of a running stack, from its /metrics");
  sub->footer(
      "Redraws once per --interval: sagas per second by final state, saga latency p50/p99 over the\n"
      "interval (upper bounds of the histogram's buckets), running and atascada sagas, retries and\n"
      "faults firing per program. --json prints one sample (two scrapes one interval apart) and exits.\n\n"
      "Examples:\n  sagactl top\n  sagactl top --json --interval 5");
  sub->add_option("--interval", o->interval_s, "seconds between samples")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  sub->add_option("--samples", o->samples, "stop after this many screens (0: until Ctrl-C)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  sub->callback([&g, o] { throw CliError(run_top(g, *o), ""); });
}

}  // namespace sagactl
