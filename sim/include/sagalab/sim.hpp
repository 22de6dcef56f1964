// The deterministic simulation driver: the real saga engine and the real
// service logic in one thread, on a virtual clock and a simulated network.
// A seed decides everything: the fault mix, arrivals, delays, drops,
// duplicates, every fault, crashes and restarts. Stores keep what was
// committed and lose nothing else. A saga is checked as soon as it has
// settled and then forgotten, so a run's memory does not grow with its length.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/faults.hpp"
#include "sagalab/invariants.hpp"
#include "sagalab/json_codec.hpp"
#include "sagalab/saga.hpp"

namespace sagalab {

// One fault aimed at one saga's call: what shrinking works on, and what a
// scenario file replays against the real stack.
struct ScriptedFault {
  int saga = 0;         // index of the saga in the workload
  std::string service;  // "ms-pagos", ... or "orquestador" (log crash points)
  FaultRule rule;       // action, endpoint, attempts, ... (no saga id: the saga is `saga`)
  // A service's own refusal (a 4xx no fault made), replayable as an error
  // fault: evidence that shrinking tries to do without first.
  bool evidence = false;
};
// The rule as a scenario file writes it (only the fields that matter).
Json scenario_rule_json(const FaultRule& r);

// Which faults a run injects, and how hard the workload contends.
struct FaultMix {
  // Chance per service request of each action.
  double error = 0.01, latency = 0.01, hang = 0.01, commit_then_error = 0.01, commit_then_drop = 0.01;
  double crash = 0.002;  // per service request (half before, half after) and per saga-log write
  double drop = 0.01;    // a message is lost
  double dup = 0.01;     // a message is delivered twice
  std::int64_t net_delay_ms = 4;    // one-way delay: 1..net_delay_ms
  std::int64_t arrival_gap_ms = 2;  // mean time between saga starts
  int products = 5;                 // how many catalog products the workload buys
  std::int64_t stock = 0;           // units of each product; 0: plenty (a third of the sagas)
  // Crashes aimed at recovery: the orchestrator's crash chance is multiplied by
  // this while the saga it is logging is compensating, and a restarted
  // orchestrator can crash again this soon.
  double crash_compensating = 1;
  std::int64_t min_uptime_ms = 300;
  // A service refuses a request (a 4xx, nothing done): chance per request.
  double refusal = 0;
  // Stray requests from clients other than the orchestrator: chance per
  // compensated saga that its records then get a compensation by id alone (no
  // keys) and a confirmation of its cancelled purchase. Both must change nothing.
  double stray = 0;
  // Chance per purchase that its client sends its own amount (monto): half of
  // them the catalog's price times the quantity, half a wrong one, which must
  // not be charged.
  double client_amount = 0;
  // A saga-log write takes 0..log_delay_ms to become durable (0: at once); an
  // orchestrator crash before then loses it.
  std::int64_t log_delay_ms = 0;
  // The orchestrator's log is the real SagaLog on an in-memory SQLite
  // database (its SQL, its encoding of events, its query for unfinished
  // sagas run at every restart), instead of a vector of events.
  bool sqlite_log = false;
  // How many orchestrator programs share the saga log (the in-memory one
  // with PostgreSQL's leases and fencing when more than one), and the chance
  // per saga-log write that the writing one freezes for longer than its
  // leases (another takes its sagas over; its late writes must be refused).
  int orchestrators = 1;
  double freeze = 0;
  std::string describe() const;
};
Json to_json(const FaultMix& m);
// Each seed its own mix (swarm testing): every fault kind on or off, its rate,
// the network, crashes, and contention (few products, little stock).
FaultMix swarm_mix(std::uint64_t seed);

struct SimConfig {
  std::uint64_t seed = 1;
  int sagas = 1000;
  // swarm: the mix comes from the seed; otherwise these rates pin it.
  bool swarm = false;
  double fault_rate = 0.05;  // chance that a service request meets a fault (spread over the actions)
  double crash_rate = 0.002;
  double drop_rate = 0.01;
  double dup_rate = 0.01;
  std::int64_t net_delay_ms = 4;
  std::int64_t restart_delay_ms = 150;      // a crashed node is back after this
  std::int64_t liveness_bound_ms = 300000;  // after faults heal, every saga ends within this
  // Which saga log the orchestrator keeps: "memory", "sqlite", or "mix" (the
  // real SQLite log in every fourth seed, runs of at most 200,000 sagas).
  std::string saga_log = "mix";
  // Orchestrator programs over one shared log: 0 lets the mix decide (a
  // swarm seed runs two in about a third of its seeds, runs of at most
  // 200,000 sagas; the fixed mix one).
  int orchestrators = 0;
  // Sees each request as a service receives it, and may change it (the
  // network or a proxy in front of the service). The production programs
  // never set it; tests use it to put a known bug in front of a service and
  // prove that the simulator catches it. A bug in the programs' own code is
  // planted as a source mutation instead (tests/mutants/).
  std::function<void(const std::string& service, Request& req)> rewrite_request;
  // Scripted mode: only these faults, no random ones, no network faults, and
  // only the sagas the script names, one at a time (as a scenario replays them).
  bool scripted = false;
  std::vector<ScriptedFault> script;
  // Scripted mode: sagas run even if no fault of the script names them (a
  // failure that needs no fault at all replays with its purchase alone).
  std::vector<int> script_sagas;

  FaultMix mix() const;
  FaultMix fixed_mix() const;  // the mix the rates above pin
};

struct SagaPlan {
  std::string user;
  std::string product;  // a catalog name
  int cantidad = 1;
};
// The purchase saga `idx` of a run makes (a pure function of the seed and the mix).
SagaPlan plan_of(const SimConfig& cfg, int idx);
// The same with the run's mix already drawn (the simulator's per-saga path).
SagaPlan plan_of(const SimConfig& cfg, const FaultMix& mix, int idx);
// The initial stock of a run.
std::map<std::string, std::int64_t> stock_of(const SimConfig& cfg);

struct SimResult {
  std::uint64_t seed = 0;
  int sagas = 0;
  FaultMix mix;
  std::map<std::string, int> by_state;
  std::map<std::string, int> faults_by_kind;  // actions, plus "crash-orquestador", "drop", "duplicate"
  std::int64_t virtual_ms = 0;
  std::int64_t events = 0;
  int takeovers = 0;  // appends to a saga by another orchestrator than the one before (several orchestrators)
  bool live = true;  // every saga terminal within the bound after healing
  std::vector<Violation> violations;
  std::vector<ScriptedFault> fired;                    // the faults that hit the violating sagas, as a script
  std::map<std::string, std::vector<Event>> histories;  // saga id -> event log, for (at most 5) violating sagas
  std::map<std::string, std::int64_t> stock;           // the initial stock of the run
  bool ok() const { return live && violations.empty(); }
};

SagaDefinition simulation_definition();
SimResult run_simulation(const SimConfig& cfg);

// Why shrinking did not produce a script, when it did not.
struct ShrinkOutcome {
  std::optional<std::vector<ScriptedFault>> script;
  // The sagas the script runs, in order: the first violating saga, and any
  // other its faults name. A script with no fault still names its saga here.
  std::vector<int> sagas;
  int runs = 0;
  std::string why_not;
};
// Delta debugging (ddmin) over the faults that hit the violating sagas: the
// smallest script that still fails in scripted mode (sagas one at a time, as
// a scenario runs them). No script when the failure does not reproduce that
// way (it needs the concurrency or the message timing of the seed).
ShrinkOutcome shrink(const SimConfig& cfg, const SimResult& failed, int max_runs = 400);
// The older interface, over an explicit list of faults.
std::optional<std::vector<ScriptedFault>> shrink_failure(const SimConfig& cfg, const std::vector<ScriptedFault>& fired,
                                                        int& runs, int max_runs = 400);

Json to_json(const SimResult& r, bool with_details);

}  // namespace sagalab
