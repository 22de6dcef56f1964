// The checker adapter: what a settled saga left in the services, checked
// against its log and its request; the history rules; the run's verdict and
// the evidence (faults, histories) of the sagas that broke one.
#include "world.hpp"

namespace sagalab::sim_world {

void Sim::note_fault(const std::string& id, const std::string& svc, FiredFault f) {
  auto [idx, attempt] = parse_saga_id(id);
  (void)attempt;
  if (idx < 0) return;
  Slot* s = slot_of(id);
  if (!s) s = &slots_[idx];  // not logged yet: kept with the saga's slot all the same
  s->hits.push_back({svc, std::move(f)});
  s->disturbed_at = now_;
}

// A fault that fired, as the rule that replays it in a script or a scenario.
FaultRule Sim::replay_rule(const FiredFault& f) {
  FaultRule rule;
  rule.action = f.action;
  rule.endpoint = f.endpoint;
  rule.attempts = {std::max(f.attempt, 1)};
  if (f.action == FaultAction::Error || f.action == FaultAction::CommitThenError) rule.status = f.status;
  if (f.action == FaultAction::Latency) rule.latency_ms = f.delay_ms;
  if (f.action == FaultAction::Hang) rule.duration_ms = f.delay_ms;
  return rule;
}

// Checks a saga against the invariants and forgets it (unless it broke one).
void Sim::check_and_forget(int idx, const SagaSummary& summary) {
  auto it = slots_.find(idx);
  auto effects = take_effects(summary.saga_id);
  std::size_t before = checker_.violations();
  static const std::vector<ServiceFault> none;
  const auto& hits = it == slots_.end() ? none : it->second.hits;
  checker_.saga(summary, effects.cs, effects.ps, effects.rs, hits);
  check_request(idx, summary, effects, hits);
  if (it != slots_.end()) check_waiter(summary, it->second);
  if (it != slots_.end()) check_protocol(idx, summary, it->second);
  if (checker_.violations() > before && it != slots_.end()) keep_evidence(idx, it->second);
  if (it != slots_.end()) slots_.erase(it);
  idem_.erase(idem_key_of(idx));
  // The real log forgets it too: a run's log then holds only the sagas in
  // flight, and its writes cost the same at the millionth saga as at the first.
  if (sqlite_log_) sqlite_log_->forget(summary.saga_id);
}

// The records against what the client asked for and against each other:
// the amount charged is the catalog's price times the quantity to the cent
// (and a wrong amount of the client's is never charged); the purchase, the
// payment and the reservation name the client's product, quantity and user;
// the payment names the saga's purchase.
void Sim::check_request(int idx, const SagaSummary& summary, const Effects& e, const std::vector<ServiceFault>& hits) {
  const auto plan = plan_of(cfg_, mix_, idx);
  const double price = price_of(plan);
  const auto amount = client_amount_of(idx, plan);
  std::vector<std::string> wrong;
  auto money = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return std::string(buf);
  };
  auto off = [](double a, double b) { return std::fabs(a - b) > 0.005; };
  if (summary.estado == Estado::Completada) {
    if (amount.wrong)
      wrong.push_back("the client sent the amount " + money(*amount.sent) + " for a purchase of " + money(price) +
                      ", and the saga completed");
    for (const auto& c : e.cs) {
      if (c.estado == CompraEstado::Confirmada && off(c.monto, price))
        wrong.push_back("purchase " + c.compra_id + " is for " + money(c.monto) + ", the catalog's price times " +
                        std::to_string(plan.cantidad) + " is " + money(price));
    }
    for (const auto& p : e.ps) {
      if (p.estado == PagoEstado::Aprobado && off(p.monto, price))
        wrong.push_back("payment " + p.pago_id + " charged " + money(p.monto) + ", the catalog's price times " +
                        std::to_string(plan.cantidad) + " is " + money(price));
    }
  }
  for (const auto& c : e.cs) {
    if (c.producto != plan.product || c.cantidad != plan.cantidad || c.usuario_id != plan.user)
      wrong.push_back("purchase " + c.compra_id + " is " + std::to_string(c.cantidad) + " x '" + c.producto +
                      "' for " + c.usuario_id + "; the client asked for " + std::to_string(plan.cantidad) + " x '" +
                      plan.product + "' for " + plan.user);
  }
  for (const auto& p : e.ps) {
    const bool names_purchase =
        std::any_of(e.cs.begin(), e.cs.end(), [&](const Compra& c) { return c.compra_id == p.compra_id; });
    if (p.usuario_id != plan.user || (!e.cs.empty() && !names_purchase))
      wrong.push_back("payment " + p.pago_id + " of " + p.usuario_id + " names purchase '" + p.compra_id +
                      "', not the saga's" + (e.cs.empty() ? std::string() : " (" + e.cs.front().compra_id + ")") +
                      " of " + plan.user);
  }
  for (const auto& r : e.rs) {
    if (r.producto != inventory_key(plan.product) || r.cantidad != plan.cantidad)
      wrong.push_back("reservation " + r.reserva_id + " holds " + std::to_string(r.cantidad) + " x " + r.producto +
                      "; the client asked for " + std::to_string(plan.cantidad) + " x " + inventory_key(plan.product));
  }
  if (wrong.empty()) return;
  Violation v;
  v.invariant = 2;
  v.rule = "records-match-request";
  v.saga_id = summary.saga_id;
  v.message = wrong.front() + (wrong.size() > 1 ? " (and " + std::to_string(wrong.size() - 1) + " more)" : "");
  for (const auto& c : e.cs) v.records.emplace_back(c);
  for (const auto& p : e.ps) v.records.emplace_back(p);
  for (const auto& r : e.rs) v.records.emplace_back(r);
  v.faults = hits;
  checker_.add(std::move(v));
}

// The history checker over the saga's log and the calls its logged try issued.
// A waiting client told that its saga finished was told how it finished.
void Sim::check_waiter(const SagaSummary& summary, const Slot& slot) {
  if (slot.waited_id != summary.saga_id || slot.waited_estado == to_string(summary.estado)) return;
  Violation v;
  v.invariant = 7;
  v.rule = "waiter-truthful";
  v.saga_id = summary.saga_id;
  v.message = "the client waiting for saga " + summary.saga_id + " was told '" + slot.waited_estado +
              "', but the saga ended " + to_string(summary.estado);
  v.faults = slot.hits;
  checker_.add(std::move(v));
}

void Sim::check_protocol(int idx, const SagaSummary& summary, Slot& slot) {
  SagaHistory h;
  h.saga_id = summary.saga_id;
  h.estado = summary.estado;
  h.has_log = true;
  h.log = std::move(slot.log);
  auto logged = logged_try_[static_cast<std::size_t>(idx)];
  for (std::size_t k = 0; k < slot.calls.size(); ++k) {
    if (slot.call_tries[k] == logged) h.calls.push_back(std::move(slot.calls[k]));
  }
  for (auto& v : check_history(engine_.definition(), h)) {
    v.faults = slot.hits;
    checker_.add(std::move(v));
  }
  slot.log = std::move(h.log);
}

// A try that never reached the log must not have issued a call.
void Sim::check_unlogged_try(int idx, Slot& slot, int try_no) {
  for (std::size_t k = 0; k < slot.calls.size(); ++k) {
    if (slot.call_tries[k] != try_no) continue;
    Violation v;
    v.invariant = 7;
    v.rule = "log-before-call";
    v.saga_id = saga_id(idx, try_no);
    v.message = "the saga issued a call (" + engine_.definition().steps[static_cast<std::size_t>(slot.calls[k].step)].name +
                ") although its start never reached the log";
    v.faults = slot.hits;
    checker_.add(std::move(v));
    return;
  }
}

void Sim::keep_evidence(int idx, Slot& slot) {
  if (res_.histories.size() < 5 && !slot.log.empty() && !slot.log.front().saga_id.empty())
    res_.histories[slot.log.front().saga_id] = slot.log;
  (void)idx;
  for (const auto& h : slot.hits) {
    auto [i, attempt] = parse_saga_id(h.fault.saga_id);
    (void)attempt;
    res_.fired.push_back({i < 0 ? idx : i, h.service, replay_rule(h.fault)});
  }
  for (const auto& r : slot.refusals) {
    bool by_fault = std::any_of(slot.hits.begin(), slot.hits.end(), [&](const ServiceFault& h) {
      return h.service == r.service && h.fault.endpoint == r.fault.endpoint && h.fault.attempt == r.fault.attempt;
    });
    if (!by_fault) res_.fired.push_back({idx, r.service, replay_rule(r.fault), true});
  }
  slot.hits.clear();
  slot.refusals.clear();
}

void Sim::retire(int idx) {
  auto it = slots_.find(idx);
  if (it == slots_.end() || !it->second.terminal) return;
  auto summary = it->second.summary;
  check_and_forget(idx, summary);
}

void Sim::finish() {
  check_acknowledged();
  res_.seed = cfg_.seed;
  res_.sagas = cfg_.sagas;
  res_.mix = mix_;
  res_.virtual_ms = now_;
  if (aborted_ || !stuck_.empty()) {
    // The run ended early, at a fatal error or at a stuck saga: the sagas
    // still running are not judged, and what was left unfinished says nothing more.
    auto report = checker_.finish({});
    res_.by_state = report.by_state;
    for (auto& v : report.violations) {
      if (v.invariant != 5) res_.violations.push_back(std::move(v));
    }
    for (int idx : aborted_ ? std::vector<int>{} : stuck_) {  // a fatal error is the verdict alone
      auto& slot = slots_[idx];
      Violation v;
      v.invariant = 1;
      v.rule = "saga-settled";
      v.saga_id = slot.log.front().saga_id;
      v.message = "saga did not end within the liveness bound (" + std::to_string(quiet_bound_) +
                  " ms with no fault or crash touching it: time for every step and compensation to run once more, "
                  "four times over)";
      v.faults = slot.hits;
      res_.violations.push_back(std::move(v));
      keep_evidence(idx, slot);
    }
    res_.live = false;
    return;
  }
  // Settled sagas not yet retired, then those that never settled.
  std::vector<int> left;
  for (const auto& [idx, slot] : slots_) {
    if (!slot.log.empty()) left.push_back(idx);
  }
  std::sort(left.begin(), left.end());
  std::vector<Violation> stuck;
  for (int idx : left) {
    auto& slot = slots_[idx];
    SagaSummary summary = slot.summary;
    if (!slot.terminal) {
      SplitMix64 rng(0);
      auto s = engine_.replay(slot.log, rng);
      summary = {s.id, s.estado, "", s.ctx.monto.value_or(0), s.ctx.cantidad};
      res_.live = false;
      Violation v;
      v.invariant = 1;
      v.rule = "saga-settled";
      v.saga_id = s.id;
      v.message = "saga did not end within the liveness bound after the faults healed";
      v.faults = slot.hits;
      stuck.push_back(std::move(v));
    }
    check_and_forget(idx, summary);
  }
  // What is left in the stores belongs to no saga that was checked: a saga
  // never logged, or an effect that arrived after its saga had settled.
  std::set<std::string> others;
  for (int n : {kCompras, kPagos, kInventario}) {
    for (auto& id : nodes_[n].store.saga_ids()) others.insert(id);
  }
  for (const auto& id : others) {
    auto effects = take_effects(id);
    auto [idx, attempt] = parse_saga_id(id);
    bool was_logged = idx >= 0 && idx < cfg_.sagas && logged_try_[static_cast<std::size_t>(idx)] == attempt;
    std::string why = was_logged ? "effect on a saga after it had settled" : "";
    Slot* evidence = nullptr;
    if (auto it = stale_.find(id); it != stale_.end()) evidence = &it->second;
    static const std::vector<ServiceFault> none;
    const auto& hits = evidence ? evidence->hits : none;
    std::size_t before = checker_.violations();
    for (const auto& c : effects.cs) checker_.orphan(c, why, hits);
    for (const auto& p : effects.ps) checker_.orphan(p, why, hits);
    for (const auto& r : effects.rs) checker_.orphan(r, why, hits);
    if (checker_.violations() > before && evidence) keep_evidence(idx, *evidence);
  }
  std::vector<std::pair<std::string, StockLevel>> stock;
  nodes_[kInventario].store.transact([&](Tx& tx) {
    tx.for_each(Table::Stock, [&](const std::string& k, const Record& r) {
      if (const auto* s = std::get_if<StockLevel>(&r)) stock.emplace_back(k, *s);
    });
    return false;
  });
  auto report = checker_.finish(stock);
  res_.by_state = report.by_state;
  res_.violations = std::move(report.violations);
  for (auto& v : stuck) res_.violations.push_back(std::move(v));
}

}  // namespace sagalab::sim_world
