// Prometheus metrics of one program (prometheus-cpp's core registry and text
// serializer, served as GET /metrics by the program's own HTTP server).
// Names and labels are listed in the README.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sagalab {

class Metrics {
 public:
  // The process's metrics (one program per process).
  static Metrics& get();
  // The registry in the Prometheus text format.
  std::string text() const;

  // Every program.
  prometheus::Family<prometheus::Counter>& requests;      // sagalab_http_requests_total{route,method,status}
  prometheus::Family<prometheus::Counter>& faults_fired;  // sagalab_faults_fired_total{endpoint,action}
  prometheus::Histogram& commit_batch;                    // sagalab_group_commit_batch_size
  // The orchestrator.
  prometheus::Counter& sagas_started;                     // sagalab_sagas_started_total
  prometheus::Family<prometheus::Counter>& sagas_finished;  // sagalab_sagas_finished_total{estado}
  prometheus::Histogram& saga_duration;                   // sagalab_saga_duration_seconds
  prometheus::Family<prometheus::Histogram>& step_calls;  // sagalab_step_call_seconds{step,outcome}
  prometheus::Family<prometheus::Counter>& retries;       // sagalab_step_retries_total{step}
  prometheus::Family<prometheus::Counter>& compensations; // sagalab_compensation_calls_total{step}
  prometheus::Gauge& stuck;                               // sagalab_sagas_atascadas
  prometheus::Counter& log_events;                        // sagalab_saga_log_events_total

 private:
  explicit Metrics(std::shared_ptr<prometheus::Registry> r);
  std::shared_ptr<prometheus::Registry> registry_;
};

// One sample of the Prometheus text format, as scraped from /metrics (by
// `sagactl top` and the tests; prometheus-cpp only writes the format).
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<MetricSample> parse_metrics_text(const std::string& text);
// The sum of the samples named `name` whose labels include `want`.
double metric_sum(const std::vector<MetricSample>& all, const std::string& name,
                  const std::map<std::string, std::string>& want = {});

// Latency buckets, in seconds, of step calls and of whole sagas.
const prometheus::Histogram::BucketBoundaries& latency_buckets();

}  // namespace sagalab
