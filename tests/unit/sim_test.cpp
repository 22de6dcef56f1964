// The simulator: determinism, every fault kind firing with no violation, a
// bug put in front of a service by the test caught within a few seeds, and
// shrinking to a small script. (Bugs in the programs' own code are source
// mutations: tests/mutants/ and `make mutants`.)
#include <catch2/catch.hpp>

#include <memory>
#include <set>

#include "sagalab/sim.hpp"

using namespace sagalab;

namespace {

SimConfig config(std::uint64_t seed, int sagas) {
  SimConfig c;
  c.seed = seed;
  c.sagas = sagas;
  return c;
}

// The test's bug: ms-inventario sees every delivery of a reservation with a
// key of its own, so a retried or duplicated reservation reserves again.
SimConfig with_non_idempotent_reservations(SimConfig c) {
  auto n = std::make_shared<int>(0);
  c.rewrite_request = [n](const std::string& service, Request& req) {
    if (service == "ms-inventario" && req.endpoint == "transaccion")
      req.idempotency_key = "fresh-" + std::to_string(++*n);
  };
  return c;
}

// The test's bug, in front of ms-inventario: every release names a
// reservation and a key it does not have, so none is ever released (a
// compensating saga never ends).
SimConfig with_unreleasable_reservations(SimConfig c) {
  c.rewrite_request = [](const std::string& service, Request& req) {
    if (service != "ms-inventario" || req.endpoint != "compensacion") return;
    if (auto* comp = std::get_if<Compensar>(&req.body)) {
      comp->id = "reserva_desconocida";
      comp->forward_key = "clave-desconocida";
    }
  };
  return c;
}

// The result of the first seed from cfg.seed on (at most seed 20) that fails; cfg.seed is left at it.
SimResult first_failing(SimConfig& cfg) {
  auto r = run_simulation(cfg);
  while (r.ok() && cfg.seed < 20) {
    ++cfg.seed;
    r = run_simulation(cfg);
  }
  return r;
}

}  // namespace

TEST_CASE("the same seed gives the same run, and another seed another run", "[sim]") {
  auto a = to_json(run_simulation(config(5, 300)), true).dump();
  auto b = to_json(run_simulation(config(5, 300)), true).dump();
  auto c = to_json(run_simulation(config(6, 300)), true).dump();
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("a run with every fault kind ends with every saga terminal and no violation", "[sim]") {
  auto cfg = config(1, 2000);
  cfg.fault_rate = 0.15;
  cfg.crash_rate = 0.01;
  auto r = run_simulation(cfg);
  INFO(to_json(r, true).dump(2));
  CHECK(r.ok());
  CHECK(r.live);
  CHECK(r.by_state["completada"] + r.by_state["compensada"] == 2000);
  for (const char* kind : {"error", "latency", "hang", "commit-then-error", "commit-then-drop", "crash-before",
                           "crash-after", "crash-orquestador", "drop", "duplicate"})
    CHECK(r.faults_by_kind[kind] > 0);
}

TEST_CASE("a service that ignores idempotency keys is caught within 5 seeds, and the same seeds pass without it",
          "[sim][defects]") {
  bool caught = false;
  for (std::uint64_t seed = 1; seed <= 5 && !caught; ++seed) {
    auto r = run_simulation(with_non_idempotent_reservations(config(seed, 1000)));
    caught = !r.ok();
    CHECK(run_simulation(config(seed, 1000)).ok());
  }
  CHECK(caught);
}

TEST_CASE("a caught bug shrinks to a few faults that still fail when replayed, the same way every time",
          "[sim][shrink]") {
  // The first seed of a short campaign that catches it.
  auto cfg = with_non_idempotent_reservations(config(1, 1000));
  auto r = first_failing(cfg);
  REQUIRE_FALSE(r.ok());
  auto shrunk = shrink(cfg, r);
  INFO(shrunk.why_not);
  REQUIRE(shrunk.script);
  auto& script = shrunk.script;
  CHECK(script->size() <= 3);
  CHECK(script->size() <= r.fired.size());  // r.fired holds only the faults that hit the violating sagas
  auto again = shrink(cfg, run_simulation(cfg));
  REQUIRE(again.script);
  CHECK(again.script->size() == script->size());
  for (std::size_t i = 0; i < script->size() && i < again.script->size(); ++i) {
    CHECK((*again.script)[i].saga == (*script)[i].saga);
    CHECK((*again.script)[i].service == (*script)[i].service);
  }
  auto replay = cfg;
  replay.scripted = true;
  replay.script = *script;
  CHECK_FALSE(run_simulation(replay).ok());
  replay.rewrite_request = nullptr;
  CHECK(run_simulation(replay).ok());  // the same faults without the bug are harmless
}

TEST_CASE("another client's forward call sent again after its compensation by id alone must be refused", "[sim]") {
  // The test's bug, in front of every service: the probing client's second copy
  // of a forward call gets a key of its own, so no tombstone can stop it.
  bool caught = false;
  for (std::uint64_t seed = 1; seed <= 20 && !caught; ++seed) {
    auto c = config(seed, 300);
    c.swarm = true;
    auto seen = std::make_shared<std::set<std::string>>();
    c.rewrite_request = [seen](const std::string&, Request& req) {
      if (req.saga_id.find("~otro-cliente") == std::string::npos || req.endpoint == "compensacion") return;
      if (!seen->insert(req.idempotency_key).second) req.idempotency_key += ":otra-vez";
    };
    for (const auto& v : run_simulation(c).violations) caught = caught || v.rule == "late-forward-refused";
  }
  CHECK(caught);
}

TEST_CASE("shrinking never asks a program for more fault rules than it holds", "[sim][shrink]") {
  // More faults on one program than FaultSet::kMaxRules: no script, and no exception.
  std::vector<ScriptedFault> many;
  for (int i = 0; i < static_cast<int>(FaultSet::kMaxRules) + 10; ++i) {
    FaultRule r;
    r.action = FaultAction::Error;
    r.endpoint = "transaccion";
    r.attempts = {1};
    many.push_back({i % 50, "ms-pagos", r});
  }
  int runs = 0;
  std::optional<std::vector<ScriptedFault>> script;
  REQUIRE_NOTHROW(script = shrink_failure(config(1, 100), many, runs));
  CHECK_FALSE(script);
  // Every fault recorded by a run replays as a valid rule: attempts are positive.
  auto cfg = with_non_idempotent_reservations(config(2, 2000));
  cfg.fault_rate = 0.3;
  auto r = run_simulation(cfg);
  for (const auto& f : r.fired) {
    for (int a : f.rule.attempts) CHECK(a >= 1);
    CHECK_NOTHROW(parse_fault_rule(scenario_rule_json(f.rule),
                                   {"transaccion", "compensacion", "confirmacion", "buscar", "producto_id",
                                    "catalogo_completo", "log:buscar_producto:before", "log:buscar_producto:after",
                                    "log:crear_compra:before", "log:crear_compra:after", "log:reservar_stock:before",
                                    "log:reservar_stock:after", "log:cobrar_pago:before", "log:cobrar_pago:after",
                                    "log:confirmar_compra:before", "log:confirmar_compra:after"}));
  }
}

TEST_CASE("every simulated saga's history keeps the protocol's rules", "[sim][history]") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    auto cfg = config(seed, 3000);
    cfg.swarm = true;
    auto r = run_simulation(cfg);
    INFO(to_json(r, true).dump(2));
    CHECK(r.ok());
  }
}

TEST_CASE("a failure is shrunk without the services' own refusals first, and a stuck replay ends at its liveness bound",
          "[sim][shrink]") {
  auto cfg = with_unreleasable_reservations(config(1, 300));
  auto r = first_failing(cfg);
  REQUIRE_FALSE(r.ok());
  auto shrunk = shrink(cfg, r);
  INFO(shrunk.why_not);
  REQUIRE(shrunk.script);
  CHECK(shrunk.script->size() <= 3);
  // The bug gives its own refusals again by itself: what stays is at most the
  // refusal that made the saga compensate (its first of an endpoint).
  std::set<std::pair<std::string, std::string>> refused;
  for (const auto& f : *shrunk.script) {
    if (f.evidence) CHECK(refused.insert({f.service, f.rule.endpoint}).second);
  }
  auto replay = cfg;
  replay.scripted = true;
  replay.script = *shrunk.script;
  auto failed = run_simulation(replay);
  CHECK_FALSE(failed.ok());
  CHECK(failed.virtual_ms < 2'000'000);  // ended at the stuck saga's bound, not at the script's far deadline
  replay.rewrite_request = nullptr;
  CHECK(run_simulation(replay).ok());
}

TEST_CASE("a failure that needs no fault shrinks to its purchase alone, with zero faults", "[sim][shrink]") {
  // The test's bug, in front of ms-compras: a purchase of several units is
  // recorded at the price of one. No fault is needed to see it.
  auto cfg = config(1, 300);
  cfg.rewrite_request = [](const std::string& service, Request& req) {
    if (service != "ms-compras" || req.endpoint != "transaccion") return;
    if (auto* c = std::get_if<CrearCompra>(&req.body); c && c->cantidad >= 2) c->monto /= static_cast<double>(c->cantidad);
  };
  auto r = first_failing(cfg);
  REQUIRE_FALSE(r.ok());
  auto shrunk = shrink(cfg, r);
  INFO(shrunk.why_not);
  REQUIRE(shrunk.script);
  CHECK(shrunk.script->empty());
  REQUIRE(shrunk.sagas.size() == 1);
  CHECK(plan_of(cfg, shrunk.sagas[0]).cantidad >= 2);
  auto replay = cfg;
  replay.scripted = true;
  replay.script_sagas = shrunk.sagas;
  auto failed = run_simulation(replay);
  CHECK_FALSE(failed.ok());
  CHECK(failed.by_state["completada"] + failed.by_state["compensada"] == 1);  // that purchase, and only it
  replay.rewrite_request = nullptr;
  CHECK(run_simulation(replay).ok());
}

TEST_CASE("a stuck saga is reported once the liveness bound has passed with no fault on it, not when the run ends",
          "[sim][liveness]") {
  auto cfg = config(1, 3000);
  auto clean = run_simulation(cfg);
  REQUIRE(clean.ok());
  auto r = run_simulation(with_unreleasable_reservations(cfg));
  INFO("clean " << clean.virtual_ms << " ms, " << clean.events << " events; stuck " << r.virtual_ms << " ms, " << r.events);
  CHECK_FALSE(r.live);
  // The sagas arrive within seconds; the faults heal a second after the last.
  // Waiting for that and the liveness bound after it would end past the bound.
  CHECK(r.virtual_ms < cfg.liveness_bound_ms / 4);
  int stuck = 0;
  for (const auto& v : r.violations) stuck += v.message.find("liveness bound") != std::string::npos;
  CHECK(stuck >= 1);
}

TEST_CASE("two orchestrators over one shared log: a frozen or crashed owner's sagas are taken over, its late writes "
          "refused, and every saga and waiting client still ends right",
          "[sim][orchestrators]") {
  int takeovers = 0, freezes = 0;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto cfg = config(seed, 2000);
    cfg.orchestrators = 2;
    cfg.crash_rate = 0.004;
    auto r = run_simulation(cfg);
    INFO("seed " << seed << ": " << to_json(r, false).dump());
    CHECK(r.ok());
    CHECK(r.mix.orchestrators == 2);
    CHECK(r.by_state["completada"] + r.by_state["compensada"] == 2000);
    takeovers += r.takeovers;
    freezes += r.faults_by_kind["freeze-orquestador"];
  }
  // It saw what it is about: owners froze, and the other took their sagas over.
  CHECK(freezes > 0);
  CHECK(takeovers > 0);
}

TEST_CASE("the shared log is chosen only where it can be: several orchestrators and SQLite's log are refused together",
          "[sim][orchestrators]") {
  auto cfg = config(1, 10);
  cfg.orchestrators = 2;
  cfg.saga_log = "sqlite";
  CHECK_THROWS_AS(cfg.mix(), std::invalid_argument);
  cfg.saga_log = "memory";
  CHECK(cfg.mix().orchestrators == 2);
  cfg.orchestrators = 0;
  cfg.swarm = true;
  int two = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    cfg.seed = seed;
    two += cfg.mix().orchestrators == 2;
  }
  CHECK(two > 5);   // a swarm knob: some seeds run two ...
  CHECK(two < 55);  // ... and most one
}
