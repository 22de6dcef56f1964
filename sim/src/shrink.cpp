// Shrinking (see sim.hpp): delta debugging over the faults that hit the
// first violating saga, each candidate run in scripted mode.
#include <map>
#include <set>

#include "saga_ids.hpp"
#include "sagalab/sim.hpp"

namespace sagalab {

using sim_ids::parse_saga_id;

std::optional<std::vector<ScriptedFault>> shrink_failure(const SimConfig& cfg,
                                                        const std::vector<ScriptedFault>& fired, int& runs,
                                                        int max_runs) {
  runs = 0;
  std::map<std::string, std::size_t> per_program;
  for (const auto& f : fired) {
    if (++per_program[f.service] > FaultSet::kMaxRules) return std::nullopt;  // a program cannot hold them
  }
  SimConfig sc = cfg;
  sc.scripted = true;
  auto fails = [&](const std::vector<ScriptedFault>& script) {
    ++runs;
    sc.script = script;
    return !run_simulation(sc).ok();
  };
  runs = 0;
  if (fails({})) return std::vector<ScriptedFault>{};
  std::vector<ScriptedFault> current = fired;
  if (!fails(current)) return std::nullopt;
  std::size_t n = 2;
  while (current.size() >= 2 && runs < max_runs) {
    std::size_t chunk = (current.size() + n - 1) / n;
    bool reduced = false;
    for (std::size_t i = 0; i < current.size() && !reduced && runs < max_runs; i += chunk) {
      std::vector<ScriptedFault> part(current.begin() + static_cast<long>(i),
                                      current.begin() + static_cast<long>(std::min(i + chunk, current.size())));
      if (fails(part)) {
        current = part;
        n = 2;
        reduced = true;
        break;
      }
      std::vector<ScriptedFault> rest(current.begin(), current.begin() + static_cast<long>(i));
      rest.insert(rest.end(), current.begin() + static_cast<long>(std::min(i + chunk, current.size())), current.end());
      if (n > 2 && fails(rest)) {
        current = rest;
        n = std::max<std::size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.size()) break;
      n = std::min(n * 2, current.size());
    }
  }
  return current;
}

ShrinkOutcome shrink(const SimConfig& cfg, const SimResult& failed, int max_runs) {
  ShrinkOutcome out;
  if (failed.fired.empty() && failed.violations.empty()) {
    out.why_not = "nothing failed";
    return out;
  }
  // Start from the faults of the first violating saga: a scenario replays
  // one saga at a time, and fault rules per program are capped.
  std::vector<ScriptedFault> start, faults_only;
  int first = -1;
  for (const auto& f : failed.fired) {
    if (first < 0) first = f.saga;
    if (f.saga != first) continue;
    start.push_back(f);
    if (!f.evidence) faults_only.push_back(f);
  }
  // The services' own refusals are evidence, not faults: the failure is first
  // shrunk without them (a bug that makes them gives them again by itself),
  // and only if it needs them (stock that other sagas held) with them.
  const std::size_t per_program_cap = FaultSet::kMaxRules;
  auto too_many = [&](const std::vector<ScriptedFault>& script, std::string& why) {
    std::map<std::string, std::size_t> per_program;
    for (const auto& f : script) per_program[f.service]++;
    for (const auto& [svc, n] : per_program) {
      if (n <= per_program_cap) continue;
      why = "the first violating saga was hit by " + std::to_string(n) + " faults on " + svc + ", more than the " +
            std::to_string(per_program_cap) + " rules a program holds";
      return true;
    }
    return false;
  };
  if (too_many(faults_only, out.why_not)) return out;
  if (start.empty()) {
    // No fault hit a violating saga: the failure may still replay with its saga alone.
    for (const auto& v : failed.violations) {
      auto [idx, attempt] = parse_saga_id(v.saga_id);
      (void)attempt;
      if (idx >= 0 && (first < 0 || idx < first)) first = idx;
    }
    if (first < 0) {
      out.why_not = "the violation names no saga and no fault hit one";
      return out;
    }
  }
  // The violating saga runs in every candidate, so a failure that needs no
  // fault at all shrinks to its purchase alone.
  SimConfig base = cfg;
  base.script_sagas = {first};
  // Then with the first refusal of each endpoint (what made the saga
  // compensate: stock another saga held), then with all of them.
  std::vector<ScriptedFault> first_refusals = faults_only;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& f : start) {
    if (f.evidence && seen.insert({f.service, f.rule.endpoint}).second) first_refusals.push_back(f);
  }
  out.script = shrink_failure(base, faults_only, out.runs, max_runs);
  for (const auto* more : {&first_refusals, &start}) {
    if (out.script || more->size() == faults_only.size()) continue;
    std::string why;
    if (too_many(*more, why)) {
      out.why_not = "without the services' own refusals the failure does not happen; with them, " + why;
      return out;
    }
    int runs = 0;
    out.script = shrink_failure(base, *more, runs, max_runs);
    out.runs += runs;
  }
  if (out.script) {
    std::set<int> sagas{first};
    for (const auto& f : *out.script) sagas.insert(f.saga);
    out.sagas.assign(sagas.begin(), sagas.end());
  } else {
    out.why_not = "with its sagas run one at a time the failure does not happen; it needs the seed's concurrency or "
                  "message timing";
  }
  return out;
}

}  // namespace sagalab
