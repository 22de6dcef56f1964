// Scenario files as typed values (scenario/): parsed once, each step its own type, written back.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

#include "sagalab/scenario.hpp"

using namespace sagactl;

namespace {

std::string write_temp(const std::string& text) {
  static int n = 0;
  auto path = "/tmp/sagalab-scenario-unit-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".yaml";
  std::ofstream(path) << text;
  return path;
}

Scenario load_text(const std::string& text) {
  auto path = write_temp(text);
  auto s = load_scenario(path);
  std::remove(path.c_str());
  return s;
}

const char* kEveryStep = R"(name: every-step
description: one step of each kind
seed: 7
setup: {reset: true, stock: {LAPTOP: 3}}
faults:
  - {service: pagos, action: error, endpoint: transaccion, status: 503, times: 2}
steps:
  - buy: {user: ana, product: Laptop Gamer, qty: 2, expect: compensada, label: first}
  - load: {count: 5, concurrency: 2, fault_rate: 0.1}
  - inject: {service: inventario, action: latency, latency_ms: 40, jitter_ms: 5, attempts: [1, 2]}
  - crash: pagos
  - restart: orquestador
  - wait-until-quiet: {timeout_ms: 5000}
  - sleep: {ms: 20}
  - clear-faults: compras
  - reset: true
expect:
  invariants: true
)";

}  // namespace

TEST_CASE("scenario steps are typed values: each kind parsed into its own type", "[scenario]") {
  auto s = load_text(kEveryStep);
  REQUIRE(s.steps.size() == 9);
  const auto& b = std::get<step::Buy>(s.steps[0].body);
  CHECK(b.user == "ana");
  CHECK(b.qty == 2);
  CHECK(b.label == "first");
  CHECK(s.steps[0].line == 8);
  CHECK(std::get<step::Load>(s.steps[1].body).fault_rate == Approx(0.1));
  const auto& inj = std::get<step::Inject>(s.steps[2].body);
  CHECK(inj.service == "ms-inventario");
  CHECK(inj.rule.action == sagalab::FaultAction::Latency);
  CHECK(inj.rule.latency_ms == 40);
  CHECK(inj.rule.attempts == std::vector<int>{1, 2});
  CHECK(std::get<step::Crash>(s.steps[3].body).service == "ms-pagos");
  CHECK(std::get<step::Restart>(s.steps[4].body).service == "orquestador");
  CHECK(std::get<step::WaitUntilQuiet>(s.steps[5].body).timeout_ms == 5000);
  CHECK(std::get<step::Sleep>(s.steps[6].body).ms == 20);
  CHECK(std::get<step::ClearFaults>(s.steps[7].body).service == "ms-compras");
  CHECK(std::holds_alternative<step::Reset>(s.steps[8].body));
  REQUIRE(s.faults.size() == 1);
  CHECK(s.faults[0].rule.status == 503);
  CHECK(s.faults[0].rule.times == 2);
  REQUIRE(s.stock);
  CHECK(s.stock->at("LAPTOP") == 3);
}

TEST_CASE("a scenario written back reads as the same scenario", "[scenario]") {
  auto s = load_text(kEveryStep);
  auto text = emit_scenario(s);
  auto again = load_text(text);
  CHECK(emit_scenario(again) == text);
  REQUIRE(again.steps.size() == s.steps.size());
  for (std::size_t i = 0; i < s.steps.size(); ++i) CHECK(again.steps[i].body.index() == s.steps[i].body.index());
  CHECK(std::get<step::Inject>(again.steps[2].body).rule.jitter_ms == 5);
  CHECK(again.faults.size() == 1);
}

TEST_CASE("a bad fault rule field is reported at its own line", "[scenario]") {
  auto path = write_temp(R"(name: bad
description: an unknown endpoint
steps:
  - inject:
      service: pagos
      action: error
      endpoint: reserva
)");
  try {
    load_scenario(path);
    FAIL("the scenario was accepted");
  } catch (const CliError& e) {
    CHECK_THAT(e.what(), Catch::Contains(":7: steps[0].inject: fault rule field 'endpoint': unknown endpoint 'reserva'"));
  }
  std::remove(path.c_str());
}
