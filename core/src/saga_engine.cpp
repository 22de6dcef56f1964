// The saga engine's transitions. Rules (DESIGN.md): before the pivot, a failed
// or abandoned step compensates every completed or maybe-completed step in
// reverse order; after the pivot only forward recovery; compensations retry
// until they succeed, and a saga that keeps failing shows as `atascada`.
#include "sagalab/saga.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#include "sagalab/contract.hpp"

namespace sagalab {

int SagaDefinition::pivot() const {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].kind == StepKind::Pivot) return static_cast<int>(i);
  }
  return static_cast<int>(steps.size()) - 1;
}

int SagaDefinition::index_of(const std::string& step) const {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].name == step) return static_cast<int>(i);
  }
  return -1;
}

SagaDefinition SagaDefinition::default_purchase() {
  SagaDefinition d;
  RetryPolicy r{3, 2000, 50, 1000};
  d.steps = {{"buscar_producto", "ms-catalogo", StepKind::Read, r},
             {"crear_compra", "ms-compras", StepKind::Compensatable, r},
             {"reservar_stock", "ms-inventario", StepKind::Compensatable, r},
             {"cobrar_pago", "ms-pagos", StepKind::Pivot, r},
             {"confirmar_compra", "ms-compras", StepKind::Retriable, r}};
  return d;
}

void SagaContext::merge(const StepOutput& o) {
  if (o.producto) producto = o.producto;
  if (o.monto) monto = o.monto;
  if (!o.compra_id.empty()) compra_id = o.compra_id;
  if (!o.reserva_id.empty()) reserva_id = o.reserva_id;
  if (!o.pago_id.empty()) pago_id = o.pago_id;
}

std::string to_string(Estado e) {
  switch (e) {
    case Estado::EnCurso: return "en_curso";
    case Estado::Completada: return "completada";
    case Estado::Compensando: return "compensando";
    case Estado::Compensada: return "compensada";
    case Estado::Atascada: return "atascada";
  }
  return "?";
}

Estado estado_from_string(const std::string& s) {
  for (auto e : {Estado::EnCurso, Estado::Completada, Estado::Compensando, Estado::Compensada,
                 Estado::Atascada}) {
    if (to_string(e) == s) return e;
  }
  throw std::invalid_argument("unknown saga state '" + s + "'");
}

bool is_terminal(Estado e) { return e == Estado::Completada || e == Estado::Compensada; }

std::string to_string(Outcome o) {
  switch (o) {
    case Outcome::Ok: return "ok";
    case Outcome::Failed: return "failed";
    case Outcome::Unknown: return "unknown";
  }
  return "?";
}

std::string to_string(StepStatus s) {
  switch (s) {
    case StepStatus::Pendiente: return "pendiente";
    case StepStatus::EnCurso: return "en_curso";
    case StepStatus::Ok: return "ok";
    case StepStatus::Fallido: return "fallido";
    case StepStatus::Incierto: return "incierto";
    case StepStatus::Compensando: return "compensando";
    case StepStatus::Compensado: return "compensado";
  }
  return "?";
}

std::string to_string(StepKind k) {
  switch (k) {
    case StepKind::Read: return "read";
    case StepKind::Compensatable: return "compensatable";
    case StepKind::Pivot: return "pivot";
    case StepKind::Retriable: return "retriable";
  }
  return "?";
}

Outcome outcome_from_string(const std::string& s) {
  if (s == "ok") return Outcome::Ok;
  if (s == "failed") return Outcome::Failed;
  if (s == "unknown") return Outcome::Unknown;
  throw std::invalid_argument("unknown outcome '" + s + "'");
}

int log_step_of(const Event& e, const SagaState& s) {
  switch (e.type) {
    case Event::Type::Start: return 0;
    case Event::Type::Result:
    case Event::Type::Timer: return e.step;
    case Event::Type::Recovered: return s.current;
  }
  return 0;
}

// ---------------------------------------------------------------------------

std::string SagaEngine::forward_key(const SagaState& s, int step) const {
  const auto& name = def_.steps[static_cast<std::size_t>(step)].name;
  std::string key;
  key.reserve(s.id.size() + 1 + name.size());  // one allocation (operator+ makes two)
  key.append(s.id).append(1, ':').append(name);
  return key;
}

std::int64_t backoff_span(const RetryPolicy& p, int attempt) {
  std::int64_t d = p.backoff_base_ms;
  for (int i = 1; i < attempt && d < p.backoff_max_ms; ++i) d *= 2;
  return std::min(d, p.backoff_max_ms);
}

std::int64_t SagaEngine::backoff(const RetryPolicy& p, int attempt, Rng& rng) const {
  const std::int64_t d = backoff_span(p, attempt);
  // "Equal jitter": half fixed, half random, so retries of many sagas spread out.
  return d / 2 + rng.uniform(0, d - d / 2);
}

bool SagaEngine::compensable(int step) const {
  auto k = def_.steps[static_cast<std::size_t>(step)].kind;
  return k == StepKind::Compensatable || k == StepKind::Pivot;
}

namespace {
// One command, moved in (`return {c}` copies it twice: into the list, then out of it).
std::vector<Command> one(Command&& c) {
  std::vector<Command> out;
  out.push_back(std::move(c));
  return out;
}
}  // namespace

std::vector<Command> SagaEngine::apply(SagaState& s, const Event& e, Rng& rng) const {
  const Estado before = s.estado;
  std::vector<Command> out;
  switch (e.type) {
    case Event::Type::Start: out = start(s, e); break;
    case Event::Type::Result: out = on_result(s, e, rng); break;
    case Event::Type::Timer: out = on_timer(s, e); break;
    case Event::Type::Recovered: out = on_recovered(s, e, rng); break;
  }
  check_contracts(s, e, before, out);
  return out;
}

// What every transition keeps: a terminal saga never changes nor acts; the
// current step is a step; each call carries its step's attempt counter and
// key; a retry is never scheduled in the past.
void SagaEngine::check_contracts(const SagaState& s, const Event& e, Estado before,
                                 const std::vector<Command>& out) const {
  (void)s, (void)e, (void)before, (void)out;
#ifdef SAGALAB_CONTRACTS
  const auto nsteps = static_cast<int>(def_.steps.size());
  SAGALAB_ASSERT(!is_terminal(before) || (s.estado == before && out.empty()), "a terminal saga neither changes nor acts");
  if (s.id.empty()) return;  // an event before the start: ignored
  SAGALAB_ASSERT(s.current >= 0 && s.current < nsteps, "the current step is one of the saga's steps");
  SAGALAB_ASSERT(static_cast<int>(s.steps.size()) == nsteps, "a started saga has a state per step");
  for (const auto& c : out) {
    SAGALAB_ASSERT(c.step >= 0 && c.step < nsteps, "a command names one of the saga's steps");
    if (c.type == Command::Type::Call) {
      const auto& st = s.steps[static_cast<std::size_t>(c.step)];
      SAGALAB_ASSERT(c.attempt >= 1 && c.attempt == (c.compensation ? st.comp_attempts : st.attempts),
                     "a call carries its step's attempt counter, counted from 1");
      SAGALAB_ASSERT(!c.idempotency_key.empty(), "a call carries an idempotency key");
      SAGALAB_ASSERT(s.awaiting_call, "a saga that calls waits for the answer");
    } else if (c.type == Command::Type::Schedule) {
      SAGALAB_ASSERT(c.at_ms >= e.now_ms, "a retry is scheduled no earlier than the event that scheduled it");
      SAGALAB_ASSERT(s.awaiting_timer, "a saga that schedules a retry waits for its timer");
    }
  }
#endif
}

SagaState SagaEngine::replay(const std::vector<Event>& log, Rng& rng) const {
  SagaState s;
  for (const auto& e : log) apply(s, e, rng);
  return s;
}

std::vector<Command> SagaEngine::start(SagaState& s, const Event& e) const {
  if (!s.id.empty()) return {};  // a saga starts once
  s.id = e.saga_id;
  s.ctx = e.ctx ? *e.ctx : SagaContext{};
  s.steps.assign(def_.steps.size(), StepState{});
  s.attempts.reserve(2 * def_.steps.size());  // a call per step, and a compensation per undone one
  s.started_ms = e.now_ms;
  s.current = 0;
  return call(s, 0, false, e.now_ms);
}

std::vector<Command> SagaEngine::call(SagaState& s, int step, bool comp, std::int64_t now) const {
  auto& st = s.steps[static_cast<std::size_t>(step)];
  int n = comp ? ++st.comp_attempts : ++st.attempts;
  st.status = comp ? StepStatus::Compensando : StepStatus::EnCurso;
  s.attempts.push_back({step, n, comp, now});
  s.awaiting_call = true;
  s.awaiting_timer = false;
  Command c;
  c.type = Command::Type::Call;
  c.step = step;
  c.attempt = n;
  c.compensation = comp;
  c.forward_key = forward_key(s, step);
  static constexpr std::string_view kCompensation = ":compensacion";
  c.idempotency_key.reserve(c.forward_key.size() + (comp ? kCompensation.size() : 0));
  c.idempotency_key.append(c.forward_key);
  if (comp) c.idempotency_key.append(kCompensation);
  c.timeout_ms = comp ? def_.compensation.timeout_ms : def_.steps[static_cast<std::size_t>(step)].retry.timeout_ms;
  return one(std::move(c));
}

std::vector<Command> SagaEngine::retry_later(SagaState& s, const RetryPolicy& p, int attempt,
                                             std::int64_t now, Rng& rng) const {
  s.awaiting_timer = true;
  s.timer_at_ms = now + backoff(p, attempt, rng);
  if (attempt >= def_.stuck_after) s.estado = Estado::Atascada;
  Command c;
  c.type = Command::Type::Schedule;
  c.step = s.current;
  c.compensation = s.compensating;
  c.attempt = attempt + 1;
  c.at_ms = s.timer_at_ms;
  return one(std::move(c));
}

std::vector<Command> SagaEngine::finish(SagaState& s, Estado e, std::int64_t now) const {
  s.estado = e;
  s.finished_ms = now;
  s.awaiting_call = s.awaiting_timer = false;
  Command c;
  c.type = Command::Type::Finish;
  return one(std::move(c));
}

std::vector<Command> SagaEngine::begin_compensation(SagaState& s, std::int64_t now) const {
  s.compensating = true;
  s.estado = Estado::Compensando;
  return next_compensation(s, now);
}

std::vector<Command> SagaEngine::next_compensation(SagaState& s, std::int64_t now) const {
  while (s.current >= 0) {
    auto st = s.steps[static_cast<std::size_t>(s.current)].status;
    // Every step that was called is compensated, a refused one too: a refusal
    // says that this attempt had no effect, not that no copy of the request (an
    // earlier attempt still in flight, a duplicate on the network) will have
    // one later. Compensating it costs a no-op, and its tombstone refuses that
    // late request.
    const bool called = st == StepStatus::Ok || st == StepStatus::Incierto || st == StepStatus::Fallido;
    if (compensable(s.current) && called) break;
    --s.current;
  }
  if (s.current < 0) {
    s.current = 0;
    return finish(s, Estado::Compensada, now);
  }
  return call(s, s.current, true, now);
}

std::vector<Command> SagaEngine::on_result(SagaState& s, const Event& e, Rng& rng) const {
  if (is_terminal(s.estado) || !s.awaiting_call || e.step != s.current ||
      e.compensation != s.compensating)
    return {};
  auto& st = s.steps[static_cast<std::size_t>(s.current)];
  if (e.attempt != (s.compensating ? st.comp_attempts : st.attempts)) return {};  // stale answer
  for (auto it = s.attempts.rbegin(); it != s.attempts.rend(); ++it) {
    if (it->step == e.step && it->n == e.attempt && it->compensation == e.compensation) {
      it->ended_ms = e.now_ms;
      it->outcome = to_string(e.outcome);
      it->status = e.status;
      it->detail = e.detail;
      break;
    }
  }
  s.awaiting_call = false;
  const auto& def = def_.steps[static_cast<std::size_t>(s.current)];
  const bool after_pivot = s.current > def_.pivot();

  if (s.compensating) {
    if (e.outcome == Outcome::Ok) {
      st.status = StepStatus::Compensado;
      s.compensaciones.push_back(def.name);
      if (s.estado == Estado::Atascada) s.estado = Estado::Compensando;
      --s.current;
      return next_compensation(s, e.now_ms);
    }
    return retry_later(s, def_.compensation, st.comp_attempts, e.now_ms, rng);
  }

  if (e.outcome == Outcome::Ok) {
    st.status = StepStatus::Ok;
    s.ctx.merge(e.data);
    if (s.estado == Estado::Atascada) s.estado = Estado::EnCurso;
    ++s.current;
    if (s.current == static_cast<int>(def_.steps.size())) {
      s.current = static_cast<int>(def_.steps.size()) - 1;
      return finish(s, Estado::Completada, e.now_ms);
    }
    return call(s, s.current, false, e.now_ms);
  }
  if (after_pivot) return retry_later(s, def.retry, st.attempts, e.now_ms, rng);
  if (e.outcome == Outcome::Unknown && st.attempts < def.retry.max_attempts)
    return retry_later(s, def.retry, st.attempts, e.now_ms, rng);

  s.paso_fallido = def.name;
  s.error_status = e.status;
  if (e.outcome == Outcome::Failed) {
    st.status = StepStatus::Fallido;
    s.error = e.detail;
  } else {
    // Abandoned with an unknown outcome: it may have happened, so it is compensated too.
    st.status = StepStatus::Incierto;
    s.error = "sin respuesta tras " + std::to_string(st.attempts) + " intentos: " + e.detail;
  }
  return begin_compensation(s, e.now_ms);
}

std::vector<Command> SagaEngine::on_timer(SagaState& s, const Event& e) const {
  if (is_terminal(s.estado) || !s.awaiting_timer || e.step != s.current ||
      e.compensation != s.compensating)
    return {};
  const auto& st = s.steps[static_cast<std::size_t>(s.current)];
  if (e.attempt != (s.compensating ? st.comp_attempts : st.attempts) + 1) return {};
  s.awaiting_timer = false;
  return call(s, s.current, s.compensating, e.now_ms);
}

std::vector<Command> SagaEngine::on_recovered(SagaState& s, const Event& e, Rng& rng) const {
  if (s.id.empty() || is_terminal(s.estado)) return {};
  if (s.awaiting_call) {
    // The call in flight when the orchestrator stopped has an unknown outcome.
    const auto& st = s.steps[static_cast<std::size_t>(s.current)];
    Event r;
    r.type = Event::Type::Result;
    r.now_ms = e.now_ms;
    r.step = s.current;
    r.attempt = s.compensating ? st.comp_attempts : st.attempts;
    r.compensation = s.compensating;
    r.outcome = Outcome::Unknown;
    r.detail = "interrumpido por un reinicio del orquestador";
    return on_result(s, r, rng);
  }
  if (s.awaiting_timer) {
    s.awaiting_timer = false;
    return call(s, s.current, s.compensating, e.now_ms);
  }
  return {};
}

}  // namespace sagalab
