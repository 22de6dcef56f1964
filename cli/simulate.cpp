// sagactl simulate: the real engine and service logic through many seeded
// fault schedules, in one process on a virtual clock. A failing seed is
// reported with its violation and history, shrunk to the smallest set of
// faults that still fails, and written as a scenario that `sagactl run`
// replays against the real stack.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <set>

#include "commands.hpp"
#include "sagalab/sim.hpp"
#include "scenario.hpp"

namespace sagactl {

namespace {

struct SimulateOptions {
  std::uint64_t seed = 1;
  int sagas = 1000;
  int runs = 1;
  double fault_rate = 0.05;
  double crash_rate = 0.002;
  double drop_rate = 0.01;
  double dup_rate = 0.01;
  std::string planted_defect;
  std::string scenario_out;
  bool no_shrink = false;
};

Scenario shrunk_scenario(const SimulateOptions& o, const sagalab::SimResult& r,
                         const std::vector<sagalab::ScriptedFault>& script) {
  Scenario s;
  s.name = "sim-seed-" + std::to_string(r.seed);
  s.description = "Shrunk by `sagactl simulate --seed " + std::to_string(r.seed) + " --sagas " +
                  std::to_string(o.sagas) + (o.planted_defect.empty() ? "" : " --plant-defect " + o.planted_defect) +
                  "`: the smallest set of faults (" + std::to_string(script.size()) +
                  ") that still breaks an invariant, replayed one purchase at a time.";
  s.seed = r.seed;
  s.stock = r.stock;
  if (!o.planted_defect.empty())
    s.description += " With the bug planted in the real stack too: sagactl run --plant-defect " + o.planted_defect +
                     " <this file>.";
  std::set<int> sagas;
  for (const auto& f : script) sagas.insert(f.saga);
  for (int idx : sagas) {
    for (const auto& f : script) {
      if (f.saga != idx) continue;
      ScenarioStep inj;
      inj.kind = ScenarioStep::Kind::Inject;
      inj.service = f.service;
      inj.rule = f.rule;
      inj.rule["times"] = 1;
      // The simulator's calls time out after 80 ms; the run's orchestrator waits 500 ms.
      if (inj.rule.value("action", "") == "hang") inj.rule["duration_ms"] = 1500;
      s.steps.push_back(inj);
    }
    const auto& plan = r.workload[static_cast<std::size_t>(idx)];
    ScenarioStep buy;
    buy.kind = ScenarioStep::Kind::Buy;
    buy.user = plan.user;
    buy.product = plan.product;
    buy.qty = plan.cantidad;
    buy.expect = "any";
    s.steps.push_back(buy);
    ScenarioStep quiet;
    quiet.kind = ScenarioStep::Kind::WaitUntilQuiet;
    s.steps.push_back(quiet);
    ScenarioStep clear;
    clear.kind = ScenarioStep::Kind::ClearFaults;
    s.steps.push_back(clear);
  }
  return s;
}

int run_simulate(const GlobalOptions& g, const SimulateOptions& o) {
  const bool tty = ::isatty(STDERR_FILENO);
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, int> by_state, by_fault;
  long long total_sagas = 0;
  Json runs_json = Json::array();
  for (int i = 0; i < o.runs; ++i) {
    sagalab::SimConfig cfg;
    cfg.seed = o.seed + static_cast<std::uint64_t>(i);
    cfg.sagas = o.sagas;
    cfg.fault_rate = o.fault_rate;
    cfg.crash_rate = o.crash_rate;
    cfg.drop_rate = o.drop_rate;
    cfg.dup_rate = o.dup_rate;
    cfg.planted_defect = o.planted_defect;
    auto r = sagalab::run_simulation(cfg);
    total_sagas += r.sagas;
    for (const auto& [k, v] : r.by_state) by_state[k] += v;
    for (const auto& [k, v] : r.faults_by_kind) by_fault[k] += v;
    if (tty) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cerr << "\r[" << (i + 1) << "/" << o.runs << "] seed " << cfg.seed << "  " << total_sagas << " sagas  "
                << static_cast<long long>(static_cast<double>(total_sagas) / std::max(secs, 1e-9)) << " sagas/s   "
                << std::flush;
    }
    if (g.json) runs_json.push_back(sagalab::to_json(r, false));
    if (r.ok()) continue;

    if (tty) std::cerr << "\n";
    Json failure{{"seed", cfg.seed}, {"violaciones", Json::array()}, {"historias", r.histories}};
    for (const auto& v : r.violations) failure["violaciones"].push_back(sagalab::to_json(v));
    std::vector<sagalab::ScriptedFault> script;
    int shrink_runs = 0;
    std::string out_file;
    bool shrunk = false;
    if (!o.no_shrink) {
      auto result = sagalab::shrink_failure(cfg, r.fired, shrink_runs);
      failure["ejecuciones_para_reducir"] = shrink_runs;
      if (result) {
        shrunk = true;
        script = *result;
        Json js = Json::array();
        for (const auto& f : script) js.push_back({{"saga", f.saga}, {"service", f.service}, {"rule", f.rule}});
        failure["faults_minimos"] = js;
        out_file = o.scenario_out.empty() ? "sim-failure-seed-" + std::to_string(cfg.seed) + ".yaml" : o.scenario_out;
        std::ofstream(out_file) << emit_scenario(shrunk_scenario(o, r, script));
        failure["escenario"] = out_file;
      } else {
        failure["faults_minimos"] = nullptr;
      }
    }
    if (g.json) {
      print_json({{"ok", false}, {"runs", runs_json}, {"fallo", failure}});
      return kExitFailed;
    }
    std::cout << paint("✘ seed " + std::to_string(cfg.seed) + " breaks an invariant", "31;1") << "\n";
    for (std::size_t k = 0; k < r.violations.size() && k < 5; ++k) {
      const auto& v = r.violations[k];
      std::cout << "  [invariant " << v.invariant << "] " << (v.saga_id.empty() ? "" : v.saga_id + ": ") << v.message
                << "\n";
    }
    if (r.violations.size() > 5) std::cout << "  ... and " << r.violations.size() - 5 << " more\n";
    for (const auto& [id, h] : r.histories) {
      std::cout << "  history of " << id << ":\n";
      for (const auto& e : h) std::cout << "    " << e.dump() << "\n";
      break;
    }
    if (!o.no_shrink && !shrunk) {
      std::cout << "  not shrunk: with its sagas run one at a time the failure does not happen; it needs the\n"
                   "  seed's concurrency or message timing (" << shrink_runs << " simulations tried)\n";
    }
    if (shrunk) {
      std::cout << "  shrunk in " << shrink_runs << " simulations to " << script.size() << " fault(s):\n";
      for (const auto& f : script)
        std::cout << "    saga #" << f.saga << " " << f.service << " " << f.rule.dump() << "\n";
      std::cout << "  replay against the real stack: sagactl run " << out_file << "\n";
    }
    std::cout << "  reproduce: sagactl simulate --seed " << cfg.seed << " --sagas " << o.sagas
              << (o.planted_defect.empty() ? "" : " --plant-defect " + o.planted_defect) << "\n";
    return kExitFailed;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty) std::cerr << "\n";
  std::cerr << "simulated " << total_sagas << " sagas in " << secs << " s ("
            << static_cast<long long>(static_cast<double>(total_sagas) / std::max(secs, 1e-9)) << " sagas/s)\n";
  if (g.json) {
    print_json({{"ok", true}, {"sagas", total_sagas}, {"por_estado", by_state}, {"fallos", by_fault}, {"runs", runs_json}});
    return kExitOk;
  }
  std::cout << paint("✔ " + std::to_string(o.runs) + " seed(s), " + std::to_string(total_sagas) +
                         " sagas, every invariant holds",
                     "32;1")
            << "\n  sagas:";
  for (const auto& [k, v] : by_state) std::cout << "  " << k << " " << v;
  std::cout << "\n  faults fired:";
  for (const auto& [k, v] : by_fault) std::cout << "  " << k << " " << v;
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

void setup_simulate(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<SimulateOptions>();
  auto* sub = app.add_subcommand("simulate", "Run the real saga logic through seeded fault schedules, in one process");
  sub->footer(
      "Each run simulates --sagas purchases on a virtual clock with random faults, crashes of any\n"
      "node, dropped and duplicated messages; after the faults heal every saga must end, and every\n"
      "invariant must hold. The same seed gives the same output. A failure is shrunk to the fewest\n"
      "faults that still fail and written as a scenario file for 'sagactl run'.\n\n"
      "Examples:\n  sagactl simulate --seed 1 --sagas 10000 --runs 10\n"
      "  sagactl simulate --runs 100 --fault-rate 0.2 --crash-rate 0.01 --json");
  sub->add_option("--seed", o->seed, "first seed; run k uses seed+k")->capture_default_str();
  sub->add_option("--sagas", o->sagas, "sagas per run")->check(CLI::Range(1, 10000000))->capture_default_str();
  sub->add_option("--runs", o->runs, "number of seeds")->check(CLI::Range(1, 1000000))->capture_default_str();
  sub->add_option("--fault-rate", o->fault_rate, "chance a service request meets a fault")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--crash-rate", o->crash_rate, "chance a request or a log write crashes its node")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--drop-rate", o->drop_rate, "chance a message is lost")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--dup-rate", o->dup_rate, "chance a message is duplicated")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--scenario-out", o->scenario_out, "where to write the shrunk failing scenario");
  sub->add_flag("--no-shrink", o->no_shrink, "report a failure without shrinking it");
  sub->add_option("--plant-defect", o->planted_defect, "plant a known bug: " + sagalab::planted_defects_help())
      ->group("")
      ->check(CLI::IsMember({"skip-compensation", "non-idempotent-reservation", "no-log-before-call"}));
  sub->callback([&g, o] { throw CliError(run_simulate(g, *o), ""); });
}

}  // namespace sagactl
