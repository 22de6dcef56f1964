// GET /metrics on every program: after a few purchases and one fault, the
// counters have moved by exactly what happened.
#include <catch2/catch.hpp>
#include <map>
#include <chrono>
#include <sstream>
#include <thread>

#include "process.hpp"
#include "sagalab/metrics.hpp"

using namespace testsupport;

namespace {

using Sample = sagalab::MetricSample;

std::vector<Sample> scrape(const std::string& url) {
  auto r = get(url, "/metrics");
  REQUIRE(r.answer);
  REQUIRE(r.answer->status == 200);
  REQUIRE(r.answer->body.contains("raw"));  // text, not JSON
  return sagalab::parse_metrics_text(r.answer->body["raw"].get<std::string>());
}

double value(const std::vector<Sample>& all, const std::string& name, const std::map<std::string, std::string>& want = {}) {
  return sagalab::metric_sum(all, name, want);
}

}  // namespace

TEST_CASE("every program's /metrics counts what happened: sagas, calls, retries, faults, requests", "[metrics]") {
  Stack st(fast_orchestrator());
  for (int i = 0; i < 3; ++i) {
    auto r = post(st.url("orquestador"), "/compra", {{"usuario_id", "m" + std::to_string(i)}}, {}, 30000);
    REQUIRE(r.answer);
    REQUIRE(r.answer->status == 200);
  }
  // One 503 on the next charge: the saga retries it and completes.
  auto f = post(st.url("ms-pagos"), "/admin/faults",
                {{"action", "error"}, {"status", 503}, {"endpoint", "transaccion"}, {"times", 1}});
  REQUIRE(f.answer);
  REQUIRE(f.answer->status == 201);
  auto r = post(st.url("orquestador"), "/compra", {{"usuario_id", "m3"}}, {}, 30000);
  REQUIRE(r.answer);
  REQUIRE(r.answer->status == 200);
  REQUIRE(st.wait_quiet());

  auto orq = scrape(st.url("orquestador"));
  CHECK(value(orq, "sagalab_sagas_started_total") == 4);
  CHECK(value(orq, "sagalab_sagas_finished_total", {{"estado", "completada"}}) == 4);
  CHECK(value(orq, "sagalab_sagas_finished_total", {{"estado", "compensada"}}) == 0);
  CHECK(value(orq, "sagalab_saga_duration_seconds_count") == 4);
  CHECK(value(orq, "sagalab_step_retries_total", {{"step", "cobrar_pago"}}) == 1);
  CHECK(value(orq, "sagalab_step_retries_total") == 1);
  CHECK(value(orq, "sagalab_compensation_calls_total") == 0);
  CHECK(value(orq, "sagalab_step_call_seconds_count", {{"step", "cobrar_pago"}, {"outcome", "unknown"}}) == 1);
  CHECK(value(orq, "sagalab_step_call_seconds_count", {{"step", "cobrar_pago"}, {"outcome", "ok"}}) == 4);
  CHECK(value(orq, "sagalab_step_call_seconds_count", {{"outcome", "ok"}}) == 20);  // 5 steps x 4 sagas
  // Start and 5 answers: 6 events per saga; the retried charge adds its unknown
  // answer and the backoff timer's event.
  CHECK(value(orq, "sagalab_saga_log_events_total") == 6 * 3 + 8);
  // Every append is in a group commit (reads of the log, such as /admin/state, too).
  CHECK(value(orq, "sagalab_group_commit_batch_size_sum") >= 26);
  CHECK(value(orq, "sagalab_sagas_atascadas") == 0);
  CHECK(value(orq, "sagalab_http_requests_total", {{"route", "/compra"}, {"method", "POST"}, {"status", "200"}}) == 4);

  auto pagos = scrape(st.url("ms-pagos"));
  CHECK(value(pagos, "sagalab_faults_fired_total", {{"endpoint", "transaccion"}, {"action", "error"}}) == 1);
  CHECK(value(pagos, "sagalab_faults_fired_total") == 1);
  CHECK(value(pagos, "sagalab_http_requests_total", {{"method", "POST"}, {"status", "503"}}) == 1);
  CHECK(value(pagos, "sagalab_http_requests_total", {{"method", "POST"}, {"status", "201"}}) +
            value(pagos, "sagalab_http_requests_total", {{"method", "POST"}, {"status", "200"}}) ==
        4 + 1);  // four charges and the fault rule
  for (const char* p : {"ms-catalogo", "ms-compras", "ms-inventario"}) {
    INFO(p);
    auto m = scrape(st.url(p));
    CHECK(value(m, "sagalab_faults_fired_total") == 0);
    CHECK(value(m, "sagalab_http_requests_total", {{"status", "503"}}) == 0);
  }
  auto compras = scrape(st.url("ms-compras"));
  // crear_compra and confirmar_compra for each saga, each in a group commit.
  CHECK(value(compras, "sagalab_group_commit_batch_size_sum") >= 8);
}

TEST_CASE("one saga's trace id is in its log lines in all five programs", "[metrics][trace]") {
  Stack st({}, {}, false);  // every program logs a line per request
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto r = post(st.url("orquestador"), "/compra", {{"usuario_id", "trazada"}},
                {{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}}, 30000);
  REQUIRE(r.answer);
  REQUIRE(r.answer->status == 200);
  auto saga = r.answer->body["saga_id"].get<std::string>();
  // The saga keeps the trace: its snapshot says so.
  auto detail = get(st.url("orquestador"), "/sagas/" + saga);
  REQUIRE(detail.ok());
  CHECK(detail.answer->body["contexto"].value("trace_id", "") == trace);
  for (const char* p : {"orquestador", "ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) {
    INFO(p);
    int lines = 0;
    std::istringstream log(st[p].log());
    for (std::string l; std::getline(log, l);) {
      auto j = Json::parse(l, nullptr, false);
      if (j.is_discarded() || j.value("trace_id", "") != trace) continue;
      CHECK(j.value("saga_id", "") == saga);
      ++lines;
    }
    CHECK(lines >= 1);
  }
  // A purchase without a traceparent gets a trace of its own, on every call too.
  auto other = post(st.url("orquestador"), "/compra", {{"usuario_id", "sin-traza"}}, {}, 30000);
  REQUIRE(other.answer);
  auto other_saga = other.answer->body["saga_id"].get<std::string>();
  auto other_detail = get(st.url("orquestador"), "/sagas/" + other_saga);
  auto other_trace = other_detail.answer->body["contexto"].value("trace_id", "");
  CHECK(other_trace.size() == 32);
  CHECK(other_trace != trace);
  CHECK_THAT(st["ms-pagos"].log(), Catch::Contains("\"trace_id\":\"" + other_trace + "\""));
}

TEST_CASE("sagactl top --json prints one sample of a running stack: rates, latency, running and stuck sagas",
          "[metrics][top]") {
  TempDir d;
  auto dir = " --stack-dir " + shell_quote(d.path() + "/stack");
  struct Down {
    std::string cmd;
    ~Down() { run_command(cmd); }  // stops exactly this stack's processes (by the pids it recorded)
  } down{bin("sagactl") + dir + " down"};
  auto up = run_command(bin("sagactl") + dir + " up --fresh --base-port 0");
  INFO(up.out);
  REQUIRE(up.code == 0);
  // A load in the background while top samples, then the totals after it.
  auto load = run_command("(" + bin("sagactl") + dir + " bench --sagas 600 --concurrency 4 --no-verify > /dev/null &) ; " +
                          bin("sagactl") + dir + " top --json --interval 1");
  INFO(load.out);
  REQUIRE(load.code == 0);
  auto s = Json::parse(load.out, nullptr, false);
  REQUIRE_FALSE(s.is_discarded());
  CHECK(s["interval_s"].get<double>() >= 1.0);
  CHECK(s["started_per_s"].get<double>() > 0);
  CHECK(s["finished_per_s"]["completada"].get<double>() + s["finished_per_s"]["compensada"].get<double>() > 0);
  CHECK(s["p50_ms"].is_number());
  CHECK(s["p99_ms"].get<double>() >= s["p50_ms"].get<double>());
  CHECK(s["atascadas"] == 0);
  CHECK(s["faults_per_s"].contains("ms-pagos"));
  // After the load: every saga counted once.
  Json last;
  for (int i = 0; i < 100; ++i) {
    auto t = run_command(bin("sagactl") + dir + " top --json --interval 0.1");
    last = Json::parse(t.out, nullptr, false);
    if (!last.is_discarded() && last["totals"]["completada"].get<double>() + last["totals"]["compensada"].get<double>() == 600)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // The default stock runs out early: most of the 600 end compensada, each counted once.
  CHECK(last["totals"]["completada"].get<double>() + last["totals"]["compensada"].get<double>() == 600);
  CHECK(last["totals"]["completada"].get<double>() > 0);
  CHECK(last["totals"]["started"] == 600);
  CHECK(last["running"] == 0);
}
