// The deterministic simulation driver: the real saga engine and the real
// service logic in one thread, on a virtual clock and a simulated network.
// A seed decides everything: arrivals, delays, drops, duplicates, every fault,
// crashes and restarts. Stores keep what was committed and lose nothing else.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/faults.hpp"
#include "sagalab/invariants.hpp"
#include "sagalab/saga.hpp"

namespace sagalab {

// One fault aimed at one saga's call: what shrinking works on, and what a
// scenario file replays against the real stack.
struct ScriptedFault {
  int saga = 0;          // index of the saga in the workload
  std::string service;   // "ms-pagos", ... or "orquestador" (log crash points)
  Json rule;             // a fault rule (action, endpoint, attempts, ...) without saga_id
};

struct SimConfig {
  std::uint64_t seed = 1;
  int sagas = 1000;
  double fault_rate = 0.05;     // chance that a service request meets a fault (spread over the actions)
  double crash_rate = 0.002;    // chance that a request / saga-log write crashes its node
  double drop_rate = 0.01;      // chance that a message is lost
  double dup_rate = 0.01;       // chance that a message is delivered twice
  std::int64_t net_delay_ms = 4;         // one-way delay: 1..net_delay_ms
  std::int64_t restart_delay_ms = 150;   // a crashed node is back after this
  std::int64_t arrival_gap_ms = 2;       // mean time between saga starts
  std::int64_t liveness_bound_ms = 300000;  // after faults heal, every saga ends within this
  std::string planted_defect;  // "", "skip-compensation", "non-idempotent-reservation", "no-log-before-call"
  // Scripted mode: only these faults, no random ones, no network faults, and
  // only the sagas the script names, one at a time (as a scenario replays them).
  bool scripted = false;
  std::vector<ScriptedFault> script;
};

struct SagaPlan {
  std::string user;
  std::string product;  // a catalog name
  int cantidad = 1;
};

struct SimResult {
  std::uint64_t seed = 0;
  int sagas = 0;
  std::map<std::string, int> by_state;
  std::map<std::string, int> faults_by_kind;  // actions, plus "crash-orquestador", "drop", "duplicate"
  std::int64_t virtual_ms = 0;
  std::int64_t events = 0;
  bool live = true;  // every saga terminal within the bound after healing
  std::vector<Violation> violations;
  std::vector<ScriptedFault> fired;             // every fault that fired, as a script
  std::map<std::string, Json> histories;        // saga id -> event log, for violating sagas
  std::vector<SagaPlan> workload;
  std::map<std::string, std::int64_t> stock;  // the initial stock of the run
  bool ok() const { return live && violations.empty(); }
};

SagaDefinition simulation_definition(const std::string& planted_defect);
SimResult run_simulation(const SimConfig& cfg);

// Delta debugging (ddmin) over the faults that fired: the smallest script
// that still fails in scripted mode (sagas one at a time, as a scenario runs
// them). Empty when the failure does not reproduce that way (it needs the
// concurrency or the message timing of the seed). `runs` counts the simulations.
std::optional<std::vector<ScriptedFault>> shrink_failure(const SimConfig& cfg, const std::vector<ScriptedFault>& fired,
                                          int& runs, int max_runs = 400);

Json to_json(const SimResult& r, bool with_details);
std::string planted_defects_help();

}  // namespace sagalab
