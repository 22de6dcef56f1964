// The history checker: every saga's history (its saga-log events and the calls
// it issued) against the protocol rules of DESIGN.md, not only its final
// state. It does not replay the engine: it reads what happened, so that a bug
// in the engine cannot hide from it. The simulator feeds it every saga (with
// the calls seen on the simulated network); `sagactl verify` and the scenario
// runner feed it what `/sagas/{id}` shows (the attempts, without the calls'
// keys and bodies), and the rules that need more are not judged there
// (rules.hpp says which).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sagalab/saga.hpp"
#include "sagalab/violation.hpp"

namespace sagalab {

struct CallRecord {
  int step = 0;
  bool compensation = false;
  int attempt = 0;
  // Known only where the call itself was seen (the simulator):
  bool seen = false;
  std::string idempotency_key;
  std::string id_sent;      // compensations: the id the call carried ("" for none)
  std::size_t logged = 0;   // events in the durable log when the call was issued
  // Known only from a snapshot: how the attempt ended.
  bool answered = false;
  Outcome outcome = Outcome::Unknown;
  int status = 0;  // the answer's HTTP status (0: none)
};

struct SagaHistory {
  std::string saga_id;
  Estado estado = Estado::EnCurso;
  bool has_log = false;
  std::vector<Event> log;  // the saga log, in order
  std::vector<CallRecord> calls;  // in the order they were issued
};

// Violations of the protocol rules (rules.hpp, invariant 7). A history from
// the simulator (has_log, calls seen) is kSagaLog | kCalls; one from a
// snapshot is kAttempts, and the rules that need more are not judged.
std::vector<Violation> check_history(const SagaDefinition& def, const SagaHistory& h);

}  // namespace sagalab
