// The history checker (see history.hpp). Each rule reads the calls in the
// order they were issued and the saga-log events in the order they were
// written; none of them asks the engine what it would have done.
#include "sagalab/history.hpp"

#include <algorithm>
#include <climits>
#include <map>

namespace sagalab {

namespace {

// The id a forward step returned, as its logged result carries it.
std::string output_id(const StepOutput& o) {
  if (!o.compra_id.empty()) return o.compra_id;
  if (!o.reserva_id.empty()) return o.reserva_id;
  return o.pago_id;
}

std::string describe(const SagaDefinition& def, const CallRecord& c) {
  return (c.compensation ? "compensation of " : "") + def.steps[static_cast<std::size_t>(c.step)].name + " attempt " +
         std::to_string(c.attempt);
}

}  // namespace

std::vector<Violation> check_history(const SagaDefinition& def, const SagaHistory& h) {
  std::vector<Violation> out;
  auto violate = [&](const char* rule, std::string msg) {
    Violation v;
    v.invariant = 7;
    v.rule = rule;
    v.saga_id = h.saga_id;
    v.message = std::move(msg);
    out.push_back(std::move(v));
  };
  const int pivot = def.pivot();
  const int nsteps = static_cast<int>(def.steps.size());
  auto valid_step = [&](int s) { return s >= 0 && s < nsteps; };

  // What the log says, with the position each fact was written at.
  struct Logged {
    std::size_t forward_ok = SIZE_MAX;  // position of the forward step's Ok result
    std::size_t comp_ok = SIZE_MAX;     // position of its compensation's Ok result
    std::string id;                     // the id its forward call returned
  };
  std::vector<Logged> logged(def.steps.size());
  for (std::size_t i = 0; i < h.log.size(); ++i) {
    const auto& e = h.log[i];
    if (e.type != Event::Type::Result || !valid_step(e.step)) continue;
    auto& l = logged[static_cast<std::size_t>(e.step)];
    if (e.outcome != Outcome::Ok) continue;
    if (e.compensation) {
      if (l.comp_ok == SIZE_MAX) l.comp_ok = i;
    } else if (l.forward_ok == SIZE_MAX) {
      l.forward_ok = i;
      l.id = output_id(e.data);
    }
  }

  // Each retry's timer against the failure just before it in the log.
  for (std::size_t i = 1; i < h.log.size(); ++i) {
    const auto& t = h.log[i];
    const auto& f = h.log[i - 1];
    if (t.type != Event::Type::Timer || f.type != Event::Type::Result || !valid_step(t.step) || f.step != t.step ||
        f.compensation != t.compensation || t.attempt < 2)
      continue;
    const RetryPolicy& p = t.compensation ? def.compensation : def.steps[static_cast<std::size_t>(t.step)].retry;
    const std::int64_t d = backoff_span(p, t.attempt - 1);
    if (t.now_ms - f.now_ms < d / 2)
      violate("retry-backoff", std::string(t.compensation ? "compensation of " : "") +
                                   def.steps[static_cast<std::size_t>(t.step)].name + " attempt " +
                                   std::to_string(t.attempt) + " was retried " + std::to_string(t.now_ms - f.now_ms) +
                                   " ms after attempt " + std::to_string(t.attempt - 1) + " failed; its backoff is at least " +
                                   std::to_string(d / 2) + " ms");
  }

  // Each result against the answer it read (from the log, or from a
  // snapshot's attempts); and where a refusal at or before the pivot was
  // written, so that no later call repeats that step.
  auto check_reading = [&](int step, bool comp, int attempt, int st, Outcome got) {
    const Outcome expected = st == 0 || st >= 500 || st == 408 || st == 429 || st < 200 ? Outcome::Unknown
                             : st >= 300                                                ? Outcome::Failed
                                                                                        : Outcome::Ok;
    // A 2xx whose body cannot be read may be logged as a failure: only a
    // non-2xx answer read as anything but what its status says breaks the rule.
    if (expected != Outcome::Ok && got != expected)
      violate("answer-reading", std::string(comp ? "compensation of " : "") +
                                    def.steps[static_cast<std::size_t>(step)].name + " attempt " +
                                    std::to_string(attempt) + " was answered " +
                                    (st == 0 ? std::string("with no answer") : "HTTP " + std::to_string(st)) +
                                    " and read as " + to_string(got) + ", not " + to_string(expected));
  };
  std::vector<std::size_t> refused_at(def.steps.size(), SIZE_MAX);
  for (std::size_t i = 0; i < h.log.size(); ++i) {
    const auto& e = h.log[i];
    if (e.type != Event::Type::Result || !valid_step(e.step)) continue;
    check_reading(e.step, e.compensation, e.attempt, e.status, e.outcome);
    if (!e.compensation && e.outcome == Outcome::Failed && e.step <= pivot &&
        refused_at[static_cast<std::size_t>(e.step)] == SIZE_MAX)
      refused_at[static_cast<std::size_t>(e.step)] = i;
  }
  // From a snapshot (no log): the attempts' own outcomes.
  std::vector<bool> refused(def.steps.size(), false);

  bool compensating = false;
  int last_comp_step = INT_MAX;
  std::map<std::pair<int, bool>, std::string> keys;
  std::vector<bool> called(def.steps.size(), false);
  std::vector<bool> compensated(def.steps.size(), false);  // from the attempts' outcomes (snapshots)
  bool any_compensation = false;
  for (std::size_t i = 0; i < h.calls.size(); ++i) {
    const auto& c = h.calls[i];
    if (!valid_step(c.step)) continue;
    const auto& l = logged[static_cast<std::size_t>(c.step)];
    if (c.seen && h.has_log) {
      const bool first = i == 0;
      if ((first && c.logged == 0) || (!first && h.calls[i - 1].seen && c.logged <= h.calls[i - 1].logged))
        violate("log-before-call", describe(def, c) + " was issued with " + std::to_string(c.logged) +
                                       " event(s) in the log, none of them newer than the previous call");
      if (!c.compensation && l.forward_ok < c.logged)
        violate("repeated-step", describe(def, c) + " was issued after the log recorded that step's success");
      if (c.compensation && l.comp_ok < c.logged)
        violate("repeated-step", describe(def, c) + " was issued after the log recorded that compensation's success");
      if (!c.compensation && refused_at[static_cast<std::size_t>(c.step)] < c.logged)
        violate("refusal-not-retried", describe(def, c) + " was issued after the log recorded that step's refusal");
    }
    if (c.compensation) {
      compensating = any_compensation = true;
      if (c.step > pivot)
        violate("compensation-after-pivot", describe(def, c) + ": that step comes after the pivot");
      const auto& p = logged[static_cast<std::size_t>(pivot)];
      if (c.seen && h.has_log && p.forward_ok < c.logged)
        violate("compensation-after-pivot", describe(def, c) + " was issued after the pivot had succeeded");
      if (c.step > last_comp_step)
        violate("compensation-order", describe(def, c) + " came after the compensation of " +
                                          def.steps[static_cast<std::size_t>(last_comp_step)].name +
                                          ", an earlier step");
      last_comp_step = std::min(last_comp_step, c.step);
      if (c.seen && h.has_log && !l.id.empty() && c.id_sent != l.id)
        violate("compensation-output", describe(def, c) + " carried id '" + c.id_sent + "' but the forward call returned '" +
                                           l.id + "'");
      if (c.answered && c.outcome == Outcome::Ok) compensated[static_cast<std::size_t>(c.step)] = true;
    } else {
      called[static_cast<std::size_t>(c.step)] = true;
      // Judged where the calls were seen with the very definition that made them (the simulator).
      if (c.seen && c.step <= pivot) {
        const int limit = def.steps[static_cast<std::size_t>(c.step)].retry.max_attempts;
        if (c.attempt > limit)
          violate("attempt-limit", describe(def, c) + " was issued, but the step allows " + std::to_string(limit) +
                                       " attempt(s)");
      }
      if (compensating) violate("forward-after-compensation", describe(def, c) + " was issued while compensating");
      if (!c.seen && refused[static_cast<std::size_t>(c.step)])
        violate("refusal-not-retried", describe(def, c) + " was issued after an earlier attempt was refused");
      if (!c.seen && c.answered && c.outcome == Outcome::Failed && c.step <= pivot)
        refused[static_cast<std::size_t>(c.step)] = true;
    }
    if (!c.seen && !h.has_log && c.answered) check_reading(c.step, c.compensation, c.attempt, c.status, c.outcome);
    if (c.seen && !c.idempotency_key.empty()) {
      auto [it, inserted] = keys.emplace(std::make_pair(c.step, c.compensation), c.idempotency_key);
      if (!inserted && it->second != c.idempotency_key)
        violate("idempotency-key", describe(def, c) + " carried key '" + c.idempotency_key + "', attempt 1 carried '" +
                                       it->second + "'");
    }
  }

  if (h.estado == Estado::Compensada) {
    for (int s = 0; s <= pivot && s < nsteps; ++s) {
      auto kind = def.steps[static_cast<std::size_t>(s)].kind;
      if (!called[static_cast<std::size_t>(s)] || (kind != StepKind::Compensatable && kind != StepKind::Pivot)) continue;
      bool done = h.has_log ? logged[static_cast<std::size_t>(s)].comp_ok != SIZE_MAX : compensated[static_cast<std::size_t>(s)];
      if (!done)
        violate("uncompensated-step", "the saga ended compensada but " + def.steps[static_cast<std::size_t>(s)].name +
                                          ", which it called, was never compensated");
    }
  }
  if (h.estado == Estado::Completada && any_compensation)
    violate("completed-with-compensation", "the saga ended completada after issuing compensations");
  return out;
}

}  // namespace sagalab
