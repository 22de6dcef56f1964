// The one violation type of every checker in this module: the invariants on
// the services' records, the history rules on a saga's log and calls, the
// simulated clients' rules, and `sagactl check`'s rules on a recording. Each
// names its rule (rules.hpp) and carries the evidence of the input it was
// found in; the evidence of other inputs stays empty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sagalab/faults.hpp"
#include "sagalab/records.hpp"

namespace sagalab {

// A fault that fired at a service (its fault gate, or the simulator's).
struct ServiceFault {
  std::string service;
  FiredFault fault;
};

// A fault the proxy put on some of a saga's recorded exchanges.
struct ExchangeFault {
  std::string action;                   // the proxy rule's action: "drop", "commit-then-error", ...
  std::string at;                       // "compras POST /compras"
  std::vector<std::int64_t> exchanges;  // seq numbers
};

struct Violation {
  std::string rule;   // its canonical name in rules()
  int invariant = 0;  // 1..6: DESIGN.md's invariant the rule checks; 7: a rule of the saga protocol
  std::string saga_id;  // the saga ("" for stock and money, which no one saga owns); a recording's saga by its id or "#seq"
  std::string message;
  // Evidence, by the input it came from:
  std::vector<EffectRecord> records;          // the services' records
  std::vector<ServiceFault> faults;           // faults that fired at the services on the saga
  std::vector<std::int64_t> exchanges;        // a recording's exchanges (seq numbers)
  std::vector<ExchangeFault> exchange_faults; // the proxy's faults on the saga's exchanges
};

}  // namespace sagalab
