// The saga engine: a pure state machine. It consumes events (a step answered
// ok / failed / unknown, a timer fired, the orchestrator recovered) and returns
// commands (call a step or its compensation, schedule a timer, finish). It
// never sleeps, reads a clock or does I/O: the HTTP driver and the simulator
// feed it the same events.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/records.hpp"
#include "sagalab/rng.hpp"

namespace sagalab {

enum class StepKind { Read, Compensatable, Pivot, Retriable };
std::string to_string(StepKind k);

struct RetryPolicy {
  int max_attempts = 3;            // forward attempts before the step is abandoned
  std::int64_t timeout_ms = 2000;  // per attempt
  std::int64_t backoff_base_ms = 50;
  std::int64_t backoff_max_ms = 1000;
};
// The span of the wait before the retry that follows failed attempt `attempt`:
// the base, doubled per attempt, at most the maximum. The engine waits its
// fixed half plus a random part of the other half ("equal jitter").
std::int64_t backoff_span(const RetryPolicy& p, int attempt);

struct StepDef {
  std::string name;     // e.g. "reservar_stock"
  std::string service;  // e.g. "ms-inventario"
  StepKind kind = StepKind::Compensatable;
  RetryPolicy retry;
};

struct SagaDefinition {
  std::vector<StepDef> steps;
  RetryPolicy compensation{0, 2000, 50, 2000};  // max_attempts unused: compensations never give up
  int stuck_after = 8;  // attempts of a compensation / post-pivot step before the saga is `atascada`

  int pivot() const;  // index of the pivot step
  int index_of(const std::string& step) const;  // -1 when unknown
  static SagaDefinition default_purchase();
};

enum class Estado { EnCurso, Completada, Compensando, Compensada, Atascada };
std::string to_string(Estado e);
Estado estado_from_string(const std::string& s);
bool is_terminal(Estado e);

enum class Outcome { Ok, Failed, Unknown };
std::string to_string(Outcome o);
Outcome outcome_from_string(const std::string& s);  // throws std::invalid_argument

enum class StepStatus { Pendiente, EnCurso, Ok, Fallido, Incierto, Compensando, Compensado };
std::string to_string(StepStatus s);

struct AttemptRecord {
  int step = 0;
  int n = 0;
  bool compensation = false;
  std::int64_t started_ms = 0;
  std::int64_t ended_ms = -1;
  std::string outcome = "pending";  // pending | ok | failed | unknown
  int status = 0;                   // HTTP status, 0 when none
  std::string detail;
};

struct StepState {
  StepStatus status = StepStatus::Pendiente;
  int attempts = 0;
  int comp_attempts = 0;
};

// What a step returned, merged into the saga's context when it succeeds.
struct StepOutput {
  std::optional<Product> producto;
  std::optional<double> monto;
  std::string compra_id, reserva_id, pago_id;
  bool empty() const {
    return !producto && !monto && compra_id.empty() && reserva_id.empty() && pago_id.empty();
  }
};

// The purchase saga's context: the request, then what each step returned.
struct SagaContext {
  std::string usuario_id;
  std::string producto_solicitado;  // empty: pick one from the catalog by `seleccion`
  std::int64_t cantidad = 1;
  std::optional<double> monto_cliente;
  std::uint64_t seleccion = 0;
  std::optional<Product> producto;
  std::optional<double> monto;
  std::string compra_id, reserva_id, pago_id;
  // W3C trace context: the saga's trace id (32 hex digits), sent on every
  // call so that one saga can be followed through the five logs.
  std::string trace_id;
  void merge(const StepOutput& o);
};

struct SagaState {
  std::string id;
  Estado estado = Estado::EnCurso;
  SagaContext ctx;
  int current = 0;            // step being run forward, or compensated
  bool compensating = false;
  std::vector<StepState> steps;
  std::vector<AttemptRecord> attempts;
  // What the engine waits for: a call's answer or a timer.
  bool awaiting_call = false;
  bool awaiting_timer = false;
  std::int64_t timer_at_ms = 0;
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = -1;
  std::string paso_fallido;
  std::string error;
  int error_status = 0;  // status of the failing answer (404 unknown product, ...)
  std::vector<std::string> compensaciones;  // steps compensated, in order
};

struct Event {
  enum class Type { Start, Result, Timer, Recovered } type = Type::Start;
  std::int64_t now_ms = 0;
  // Start
  std::string saga_id;
  // The client's request, out of line: every event of a saga is moved into
  // its log batch and its log, and only the first carries a context (held
  // inline, its dozen strings were most of the cost of moving any event).
  std::shared_ptr<const SagaContext> ctx;
  // Result / Timer
  int step = 0;
  int attempt = 0;
  bool compensation = false;
  Outcome outcome = Outcome::Ok;
  int status = 0;
  StepOutput data;  // merged into ctx on Ok
  std::string detail;
};

// The step whose saga-log write an event is: what `log:<step>:before|after`
// crash points name, in the orchestrator and in the simulator alike.
int log_step_of(const Event& e, const SagaState& s);

struct Command {
  enum class Type { Call, Schedule, Finish } type = Type::Call;
  int step = 0;
  int attempt = 0;
  bool compensation = false;
  std::int64_t timeout_ms = 0;
  std::int64_t at_ms = 0;  // Schedule
  std::string idempotency_key;
  std::string forward_key;  // for a compensation: the key of the call it undoes
};

class SagaEngine {
 public:
  explicit SagaEngine(SagaDefinition def) : def_(std::move(def)) {}
  const SagaDefinition& definition() const { return def_; }

  // Applies one event to the state and returns what the driver must do next.
  std::vector<Command> apply(SagaState& s, const Event& e, Rng& rng) const;
  // Rebuilds a saga from its log; the state then needs a Recovered event.
  SagaState replay(const std::vector<Event>& log, Rng& rng) const;

  std::string forward_key(const SagaState& s, int step) const;
  std::int64_t backoff(const RetryPolicy& p, int attempt, Rng& rng) const;

 private:
  std::vector<Command> start(SagaState& s, const Event& e) const;
  std::vector<Command> on_result(SagaState& s, const Event& e, Rng& rng) const;
  std::vector<Command> on_timer(SagaState& s, const Event& e) const;
  std::vector<Command> on_recovered(SagaState& s, const Event& e, Rng& rng) const;
  std::vector<Command> call(SagaState& s, int step, bool comp, std::int64_t now) const;
  std::vector<Command> retry_later(SagaState& s, const RetryPolicy& p, int attempt,
                                   std::int64_t now, Rng& rng) const;
  std::vector<Command> begin_compensation(SagaState& s, std::int64_t now) const;
  std::vector<Command> next_compensation(SagaState& s, std::int64_t now) const;
  std::vector<Command> finish(SagaState& s, Estado e, std::int64_t now) const;
  bool compensable(int step) const;
  void check_contracts(const SagaState& s, const Event& e, Estado before, const std::vector<Command>& out) const;

  SagaDefinition def_;
};

// How a saga moves on, in the orchestrator and in the simulator alike. The
// event is applied to `next` (the caller's copy of the saga's state: it must
// outlive the call until act runs); append(e, before, next, durable) writes
// the event to the saga log and calls durable() once the log holds it (never,
// when the write failed or the orchestrator went down); only then does
// act(commands) adopt `next` and carry out its commands. So no call is issued,
// and no answer given, for an event the log could still lose.
template <class Append, class Act>
void advance_saga(const SagaEngine& engine, SagaState& next, const Event& e, Rng& rng, Append&& append, Act act) {
  const Estado before = next.estado;
  auto commands = engine.apply(next, e, rng);
  append(e, before, static_cast<const SagaState&>(next),
         [commands = std::move(commands), act = std::move(act)]() mutable { act(std::move(commands)); });
}

}  // namespace sagalab
