// The checker's JSON edge: /admin/state snapshots read into the analysers'
// inputs, and violations and reports written for every command's --json
// (one shape of a violation everywhere: `verify`, scenarios, `simulate`, `check`).
#pragma once

#include <string>
#include <vector>

#include "sagalab/history.hpp"
#include "sagalab/invariants.hpp"
#include "sagalab/json_codec.hpp"
#include "sagalab/rules.hpp"
#include "sagalab/violation.hpp"

namespace sagalab {

// {"rule", "invariant", "saga", "message", "records", "faults", "exchanges"}: "faults" are the
// faults that fired at the services (objects with their "service") and those the proxy put on
// the saga's exchanges (objects with "action", "at" and "exchanges").
Json to_json(const Violation& v);
Json to_json(const InvariantReport& r);
// "[rule] (invariant N) saga ID: message", then a line per record, fault and the exchanges, each
// indented by four spaces and ending in a newline: how every command prints a violation.
std::string describe(const Violation& v);
// The rules these inputs judge and those they cannot: {"judged": [names], "not_judged": [{"rule", "needs"}]}.
Json coverage_json(unsigned inputs);
// `states` has one key per program: "orquestador", "ms-compras", "ms-pagos",
// "ms-inventario" (each the body of its /admin/state); a "fallos" key may map
// each program to its fired-fault log, to name the faults behind a violation.
SystemState system_state_from_json(const Json& states);
// The sagas' histories as their snapshots show them (the attempts, in order).
std::vector<SagaHistory> histories_from_json(const Json& states, const SagaDefinition& def);
// The six invariants and the history checker's rules, from what `verify` reads (kVerifyInputs).
InvariantReport check_invariants(const Json& states);

}  // namespace sagalab
