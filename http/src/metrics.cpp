// The program's Prometheus registry (see metrics.hpp).
#include "sagalab/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <regex>
#include <sstream>

namespace sagalab {

using namespace prometheus;

const Histogram::BucketBoundaries& latency_buckets() {
  static const Histogram::BucketBoundaries b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return b;
}

Metrics& Metrics::get() {
  static Metrics m(std::make_shared<Registry>());
  return m;
}

Metrics::Metrics(std::shared_ptr<Registry> r)
    : requests(BuildCounter().Name("sagalab_http_requests_total").Help("HTTP requests answered, by route, method and status").Register(*r)),
      faults_fired(BuildCounter().Name("sagalab_faults_fired_total").Help("Fault rules fired, by endpoint and action").Register(*r)),
      commit_batch(BuildHistogram()
                       .Name("sagalab_group_commit_batch_size")
                       .Help("Transactions committed together by one group commit (one fsync)")
                       .Register(*r)
                       .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128})),
      sagas_started(BuildCounter().Name("sagalab_sagas_started_total").Help("Sagas started").Register(*r).Add({})),
      sagas_finished(BuildCounter().Name("sagalab_sagas_finished_total").Help("Sagas that ended, by final state").Register(*r)),
      saga_duration(BuildHistogram()
                        .Name("sagalab_saga_duration_seconds")
                        .Help("Time from a saga's start to its end")
                        .Register(*r)
                        .Add({}, latency_buckets())),
      step_calls(BuildHistogram().Name("sagalab_step_call_seconds").Help("Calls to the services, by step and outcome (ok, failed, unknown); compensations are step:compensacion").Register(*r)),
      retries(BuildCounter().Name("sagalab_step_retries_total").Help("Calls that repeat an earlier attempt, by step").Register(*r)),
      compensations(BuildCounter().Name("sagalab_compensation_calls_total").Help("Compensation calls, by step").Register(*r)),
      stuck(BuildGauge().Name("sagalab_sagas_atascadas").Help("Sagas now atascada (a compensation keeps failing)").Register(*r).Add({})),
      log_events(BuildCounter().Name("sagalab_saga_log_events_total").Help("Events appended to the saga log").Register(*r).Add({})),
      registry_(std::move(r)) {}

std::vector<MetricSample> parse_metrics_text(const std::string& text) {
  static const std::regex line(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([-+0-9.eEinfNa]+)( [0-9]+)?$)");
  static const std::regex label(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::vector<MetricSample> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (l.empty() || l[0] == '#' || !std::regex_match(l, m, line)) continue;
    MetricSample s;
    s.name = m[1];
    try {
      s.value = std::stod(m[4]);
    } catch (const std::exception&) {
      continue;
    }
    const std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it)
      s.labels[(*it)[1]] = (*it)[2];
    out.push_back(std::move(s));
  }
  return out;
}

double metric_sum(const std::vector<MetricSample>& all, const std::string& name,
                  const std::map<std::string, std::string>& want) {
  double sum = 0;
  for (const auto& s : all) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) sum += s.value;
  }
  return sum;
}

std::string Metrics::text() const { return TextSerializer().Serialize(registry_->Collect()); }

}  // namespace sagalab
