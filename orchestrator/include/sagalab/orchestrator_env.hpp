// What the orchestrator touches outside its own memory, as small interfaces.
// The program wires Asio strands and timers, the wall clock, the HTTP client
// and a crash of the process (orchestrator/src/asio_env.cpp); the simulator
// wires its event queue, its virtual clock, its simulated network and a crash
// that destroys the orchestrator object (sim/src/). The Orchestrator class is
// the same in both worlds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sagalab/json_codec.hpp"
#include "sagalab/purchase.hpp"
#include "sagalab/saga.hpp"

namespace sagalab {

// Runs one saga's continuations one at a time, in the order they were posted.
class Strand {
 public:
  virtual ~Strand() = default;
  virtual void post(std::function<void()> f) = 0;
  // Runs f at once when called from this strand's own work, else posts it
  // (Asio's dispatch): a completion that may arrive on another thread.
  virtual void dispatch(std::function<void()> f) { post(std::move(f)); }
};

// A pending timer. cancel() (or destroying it) makes sure its callback never runs.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void cancel() = 0;
};

// A job that runs every so often until it is destroyed (the lease keeper).
class Ticker {
 public:
  virtual ~Ticker() = default;
};

// Time, execution and names.
class Runtime {
 public:
  virtual ~Runtime() = default;
  // Milliseconds since the epoch (events carry it; the saga log stores it).
  virtual std::int64_t now_ms() = 0;
  // Seconds on a monotonic clock, for latencies.
  virtual double monotonic_s() = 0;
  virtual std::unique_ptr<Strand> make_strand() = 0;
  // fire() runs on `on` after delay_ms, unless the timer is cancelled first.
  virtual std::unique_ptr<Timer> start_timer(Strand& on, std::int64_t delay_ms, std::function<void()> fire) = 0;
  // tick() runs every every_ms, off the strands, until the ticker is destroyed.
  virtual std::unique_ptr<Ticker> every(std::int64_t every_ms, std::function<void()> tick) = 0;
  // A fresh saga id, unique in this log.
  virtual std::string new_saga_id() = 0;
  // The saga log failed in a way the orchestrator cannot go on from: the
  // program exits (recovery resumes from what was written); never returns.
  [[noreturn]] virtual void fatal(const std::string& why) = 0;
};

// One call of a step to its service.
struct CallMeta {
  std::string saga_id;
  int step = 0;
  const std::string* step_name = nullptr;  // the step's, in the saga's definition (which outlives the call)
  bool compensation = false;  // X-Saga-Step: "<step>" or "<step>:compensacion"
  int attempt = 1;
  std::string idempotency_key;
  std::string trace_id;  // empty: none
  std::int64_t timeout_ms = 0;
};
// What became of a call: the service's answer, or why there was none.
struct CallOutcome {
  std::optional<Answer> answer;
  std::string error;  // "timeout", a connection error, ...
};
class Transport {
 public:
  virtual ~Transport() = default;
  // done() runs exactly once, on any thread, within about meta.timeout_ms.
  virtual void call(StepCall call, CallMeta meta, std::function<void(CallOutcome)> done) = 0;
};

// Where a saga-log write of the orchestrator may be crashed on purpose: the
// fault rules' "log:<step>:before|after" points.
struct CrashSpot {
  int step = 0;
  const char* when = "before";  // "before" or "after" the write
  const std::string* saga_id = nullptr;
  int attempt = 1;              // the step's attempt (at least 1), read from the state before the event
  bool compensating = false;    // the saga, before the event
};
std::string crash_point_name(const SagaDefinition& def, const CrashSpot& spot);
class CrashPoints {
 public:
  virtual ~CrashPoints() = default;
  // True: the orchestrator is down from here on (the program never returns
  // from a crash; the simulator then destroys the object and builds a new one
  // over the same log).
  virtual bool crash(const SagaDefinition& def, const CrashSpot& spot) = 0;
};

// What the orchestrator reports as it goes: metrics and log lines. Every
// method does nothing unless overridden (the simulator's observer).
class OrchestratorObserver {
 public:
  virtual ~OrchestratorObserver() = default;
  virtual void saga_started() {}
  virtual void log_appended() {}
  // A saga's state changed from `before` to `after` (duration: since its start).
  virtual void state_changed(Estado before, Estado after, std::int64_t duration_ms) {
    (void)before, (void)after, (void)duration_ms;
  }
  // A saga that was stuck (atascada) is adopted (+1) or dropped (-1) here.
  virtual void stuck_held(int delta) { (void)delta; }
  virtual void call_sent(const std::string& step, int attempt, bool compensation) {
    (void)step, (void)attempt, (void)compensation;
  }
  virtual void call_answered(const std::string& step, bool compensation, Outcome outcome, double seconds) {
    (void)step, (void)compensation, (void)outcome, (void)seconds;
  }
  // A line for the program's log (error: for standard error).
  virtual void log(const Json& line, bool error) { (void)line, (void)error; }
};

}  // namespace sagalab
