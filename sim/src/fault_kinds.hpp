// The simulator's fault kinds, each in one place: how a mix names it, its rate
// in the mix, how a swarm seed draws it, and the service fault rules it
// becomes. Adding a kind is an entry in fault_kinds.cpp and a field of
// FaultMix, plus its effect where the network or a service acts on it.
#pragma once

#include <cstdint>
#include <vector>

#include "sagalab/faults.hpp"
#include "sagalab/sim.hpp"

namespace sagalab::sim_world {

struct FaultKind {
  const char* name;         // in FaultMix::describe and to_json
  double FaultMix::*rate;   // its chance per request (per message for the network's kinds)
  double swarm_on;          // the chance that a swarm seed turns it on ...
  double swarm_lo, swarm_hi;  // ... with a rate in this range
  // Drawn after the workload's parameters: kinds added later, so that every
  // seed's draws before them, and so its mix, stay what they were.
  bool drawn_late;
  int digits;  // of its rate, in describe()
  // The rules a service's fault set gets for this kind at this rate (none for
  // the network's kinds); `hang_ms` holds a hung request past the call timeout.
  std::vector<FaultRule> (*rules)(double rate, std::int64_t hang_ms);
};

// In the order a service's fault set holds their rules.
const std::vector<FaultKind>& fault_kinds();

}  // namespace sagalab::sim_world
