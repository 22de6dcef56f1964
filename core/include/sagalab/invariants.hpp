// The invariant checker of DESIGN.md, over the `/admin/state` snapshots of the
// orchestrator and the services. `sagactl verify`, the tests and the simulator
// use it.
#pragma once

#include <string>
#include <vector>

#include "sagalab/store.hpp"

namespace sagalab {

struct Violation {
  int invariant = 0;  // 1..6 as numbered in DESIGN.md
  std::string saga_id;
  std::string message;
  Json records = Json::array();
  Json faults = Json::array();
};

struct InvariantReport {
  std::vector<Violation> violations;
  Json summary;  // sagas by state, stock and money balances
  bool ok() const { return violations.empty(); }
};

// `states` has one key per program: "orquestador", "ms-compras", "ms-pagos",
// "ms-inventario" (each the body of its /admin/state); a "fallos" key may map
// each program to its fired-fault log, to name the faults behind a violation.
InvariantReport check_invariants(const Json& states);
Json to_json(const Violation& v);
Json to_json(const InvariantReport& r);

}  // namespace sagalab
