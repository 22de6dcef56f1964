// The clients: each purchase's request, its acknowledgement, repeats with the
// same idempotency key, waits on the outcome; and the probes, clients other
// than the orchestrator whose stray requests by id alone must change nothing.
#include "world.hpp"

namespace sagalab::sim_world {

std::string Sim::idem_key_of(int idx) { return numbered("sim-", idx, 6); }

// A client asks for purchase `idx` (again, after a crash: with the same
// idempotency key, as a careful client does).
void Sim::start_saga(int idx) {
  const int k = pick_orchestrator();
  if (k < 0) {
    at(now_ + 50, Ev::StartSaga, {.saga = idx});  // the client retries
    return;
  }
  SagaContext ctx = request_of(idx);
  const bool first = !awaiting_ack_.count(idx) && tries_[static_cast<std::size_t>(idx)] == 0;
  awaiting_ack_[idx] = k;
  pending_start_ = idx;
  program(k).obj->start(std::move(ctx), idem_key_of(idx),
                        [this, idx, k](const std::string& id, bool existed, std::exception_ptr error) {
                          acknowledged(idx, k, id, existed, error);
                        });
  pending_start_ = -1;
  // Now and then the client sends its request again at once (a retry after
  // its own timeout): it races the first one's write to the log.
  if (first && chance(mix_.dup / 2)) at(now_ + net_rng_.uniform(0, 3), Ev::ClientRepeat, {.saga = idx});
}

Sim::ClientAmount Sim::client_amount_of(int idx, const SagaPlan& plan) const {
  ClientAmount a;
  if (mix_.client_amount <= 0) return a;
  SplitMix64 r(cfg_.seed * 0x2545F4914F6CDD1DULL + static_cast<std::uint64_t>(idx) * 0x9E3779B97F4A7C15ULL + 7);
  if (r.unit() >= mix_.client_amount) return a;
  const double right = price_of(plan);
  a.wrong = r.unit() < 0.5;
  a.sent = !a.wrong ? right : plan.cantidad > 1 ? right / static_cast<double>(plan.cantidad)  // the unit price
                                                : right + 0.01 * static_cast<double>(r.uniform(1, 500));
  return a;
}

// The catalog's price times the quantity, to the cent.
double Sim::price_of(const SagaPlan& plan) {
  static const auto catalog = default_catalog();
  for (const auto& p : catalog) {
    if (p.nombre == plan.product) return std::round(p.precio * static_cast<double>(plan.cantidad) * 100.0) / 100.0;
  }
  throw std::logic_error("the plan names a product the catalog does not have: " + plan.product);
}

SagaContext Sim::request_of(int idx) const {
  const auto plan = plan_of(cfg_, mix_, idx);
  SagaContext ctx;
  ctx.usuario_id = plan.user;
  ctx.producto_solicitado = plan.product;
  ctx.cantidad = plan.cantidad;
  ctx.monto_cliente = client_amount_of(idx, plan).sent;
  return ctx;
}

// The orchestrator names a new saga: the try of the client's request being started.
std::string Sim::next_saga_id() {
  if (pending_start_ < 0) throw std::logic_error("the orchestrator made a saga id outside a client's request");
  auto& tries = tries_[static_cast<std::size_t>(pending_start_)];
  return saga_id(pending_start_, ++tries);
}

// The orchestrator's answer to a client's request for purchase idx.
void Sim::acknowledged(int idx, int k, const std::string& id, bool existed, std::exception_ptr error) {
  if (!awaiting_ack_.erase(idx)) return;
  if (error) {  // refused: the client asks again a little later
    client_retrying_.insert(idx);
    at(now_ + 50, Ev::ClientRetry, {.saga = idx});
    return;
  }
  check_same_saga(idx, id, existed);
  const auto [i, attempt] = parse_saga_id(id);
  if (i == idx && attempt != logged_try_[static_cast<std::size_t>(idx)]) acked_unlogged_[idx] = attempt;
  // Now and then the client sends its request again (a retry after a lost
  // answer): it must be told the same saga, while it runs and after it ended.
  if (!existed && chance(mix_.dup / 2)) at(now_ + 1 + net_rng_.uniform(0, 100), Ev::ClientRepeat, {.saga = idx});
  // One client in twenty waits for its saga's end, as POST /compra does (the program's
  // default response timeout): answered once it settles, or with its state at the timeout.
  if (!existed && chance(0.05)) {  // a waiter costs a snapshot (to_json), a fifth of a saga
    program(k).obj->wait(id, kClientWaitMs,
                         [this, idx, id, k, inc = program(k).inc, since = now_](std::optional<Json> snap) {
                           waited(idx, id, k, inc, since, snap);
                         });
  }
}

// A waiting client's answer: a settled saga's state, or any state once its wait ran out.
void Sim::waited(int idx, const std::string& id, int k, int inc, std::int64_t since,
                 const std::optional<Json>& snap) {
  if (!alive(k, inc)) return;  // its orchestrator crashed: the connection is gone
  auto slot = slots_.find(idx);
  if (slot == slots_.end()) return;
  const std::string estado = snap && snap->is_object() ? snap->value("estado", "") : "";
  const bool settled = estado == "completada" || estado == "compensada" || estado == "atascada";
  if (!settled && now_ - since < kClientWaitMs) {
    Violation v;
    v.invariant = 7;
    v.rule = "waiter-settled";
    v.saga_id = id;
    v.message = "the client waiting for saga " + id + " was answered " +
                (estado.empty() ? std::string("with nothing") : "'" + estado + "'") + " after " +
                std::to_string(now_ - since) + " ms, before the saga settled and before its wait of " +
                std::to_string(kClientWaitMs) + " ms ran out";
    v.faults = slot->second.hits;
    checker_.add(std::move(v));
    return;
  }
  if (estado == "completada" || estado == "compensada") {
    slot->second.waited_id = id;
    slot->second.waited_estado = estado;
  }
}

// A saga whose id the client was given must be in the log: checked when the
// orchestrator crashes (what it had not written is lost then) and at the end.
void Sim::check_acknowledged() {
  for (const auto& [idx, attempt] : acked_unlogged_) {
    if (attempt == logged_try_[static_cast<std::size_t>(idx)]) continue;
    Violation v;
    v.invariant = 7;
    v.rule = "acknowledged-durable";
    v.saga_id = saga_id(idx, attempt);
    v.message = "the client was told saga " + v.saga_id + " for its request (key " + idem_key_of(idx) +
                "), but the saga's start is not in the log";
    if (auto s = slots_.find(idx); s != slots_.end()) v.faults = s->second.hits;
    checker_.add(std::move(v));
  }
  acked_unlogged_.clear();
}

void Sim::repeat_request(int idx) {
  const bool retired = logged_try_[static_cast<std::size_t>(idx)] != 0 && !slots_.count(idx);
  const int k = pick_orchestrator();
  if (k < 0 || retired) return;  // retired: the key's saga is forgotten
  res_.faults_by_kind[kRepeat]++;
  SagaContext ctx = request_of(idx);
  pending_start_ = idx;
  program(k).obj->start(std::move(ctx), idem_key_of(idx),
               [this, idx](const std::string& id, bool existed, std::exception_ptr error) {
                 if (!error) check_same_saga(idx, id, existed);
               });
  pending_start_ = -1;
}

// The answer to a request with purchase idx's key must name the key's one saga.
void Sim::check_same_saga(int idx, const std::string& id, bool existed) {
  const auto [i, attempt] = parse_saga_id(id);
  const int logged = logged_try_[static_cast<std::size_t>(idx)];
  if (existed && i == idx && logged == 0) {
    // Told of a saga whose start is not durable yet: a crash now would lose it.
    Violation v;
    v.invariant = 7;
    v.rule = "acknowledged-durable";
    v.saga_id = id;
    v.message = "the client's repeated request (key " + idem_key_of(idx) + ") was answered with saga " + id +
                " before that saga's start was in the log";
    if (auto s = slots_.find(idx); s != slots_.end()) v.faults = s->second.hits;
    checker_.add(std::move(v));
    return;
  }
  if (i != idx || (existed && attempt != logged)) {
    Violation v;
    v.invariant = 7;
    v.rule = "idempotent-start";
    v.saga_id = logged > 0 ? saga_id(idx, logged) : id;
    v.message = "the client's request with idempotency key " + idem_key_of(idx) + " was answered with saga " + id +
                (existed ? " (an existing one)" : "") + ", but the saga of that key is " +
                (logged > 0 ? saga_id(idx, logged) : std::string("none"));
    if (auto s = slots_.find(idx); s != slots_.end()) v.faults = s->second.hits;
    checker_.add(std::move(v));
  }
}

// Requests from another client (an operator's script, a second system) to
// a compensated saga's records: each compensation again by its id alone,
// with no idempotency key or forward key, and a confirmation of the
// cancelled purchase. Services must answer them without changing anything.
// They reach the services without faults, before the saga is retired, and
// nobody reads their answers.
void Sim::send_stray(int idx, const std::string& saga, int node, Request req, std::int64_t after) {
  res_.faults_by_kind[kStray]++;
  req.saga_id = saga;
  auto slot = hold_request(std::move(req));
  requests_[slot].refs++;
  at(now_ + after, Ev::Stray, {.saga = idx, .node = node, .slot = slot});
}

void Sim::send_strays(int idx, const SagaState& s) {
  auto send = [&](int node, Request req, std::int64_t after) { send_stray(idx, s.id, node, std::move(req), after); };
  auto compensate = [&](int node, IdField field, const std::string& id, std::int64_t after) {
    if (id.empty()) return;
    Request req;
    req.endpoint = "compensacion";
    req.body = Compensar{field, id, ""};
    send(node, std::move(req), after);
  };
  const std::int64_t base = 1 + net_rng_.uniform(0, 200);
  compensate(kInventario, IdField::Reserva, s.ctx.reserva_id, base);
  compensate(kPagos, IdField::Pago, s.ctx.pago_id, base + 1);
  compensate(kCompras, IdField::Compra, s.ctx.compra_id, base + 2);
  if (!s.ctx.compra_id.empty()) {
    Request req;
    req.endpoint = "confirmacion";
    req.body = Confirmar{s.ctx.compra_id};
    req.idempotency_key = s.id + ":stray-confirmacion";
    send(kCompras, std::move(req), base + 3);
  }
}

// Another client's own operation on each service whose steps are undone,
// as DESIGN's tombstone rule states it: its forward call, a compensation by
// the record's id alone (no keys: the service must find the forward call's
// key itself), then a late copy of the forward call, which must be refused
// with 409 and change nothing. It runs at once (no faults, no time passes),
// with the bodies of a compensated saga under an id of its own, and takes
// its records away again: they must all be undone.
void Sim::probe_tombstones(const SagaState& s) {
  const auto& def = engine_.definition();
  SagaState other = s;
  other.id = s.id + "~otro-cliente";
  for (std::size_t k = 0; k < def.steps.size(); ++k) {
    const auto kind = def.steps[k].kind;
    if (kind != StepKind::Compensatable && kind != StepKind::Pivot) continue;
    const int n = node_of(def.steps[k].service);
    if (n < 0 || !nodes_[n].up) continue;
    auto& node = nodes_[n];
    Command fwd;
    fwd.type = Command::Type::Call;
    fwd.step = static_cast<int>(k);
    fwd.forward_key = fwd.idempotency_key = other.id + ":" + def.steps[k].name;
    auto call = build_step_call(def, other, fwd);
    auto send = [&](const StepCall& c, const std::string& key) {
      Request req;
      req.endpoint = c.endpoint;
      req.body = c.body;
      req.idempotency_key = key;
      req.saga_id = other.id;
      req.now_ms = now_;
      if (cfg_.rewrite_request) cfg_.rewrite_request(node.logic->name(), req);
      return node.logic->handle(node.store, req);
    };
    auto first = send(call, fwd.idempotency_key);
    if (!first.ok() || first.receipt.id.empty()) continue;  // refused (no stock, say): nothing to undo
    fwd.compensation = true;
    auto comp_call = build_step_call(def, other, fwd);
    auto& comp = std::get<Compensar>(comp_call.body);
    comp.id = first.receipt.id;
    comp.forward_key.clear();
    auto compensated = send(comp_call, "");
    auto late = send(call, fwd.idempotency_key);
    auto effects = take_effects(other.id);
    if (compensated.ok() && late.status != 409) {
      Violation v;
      v.invariant = 7;
      v.rule = "late-forward-refused";
      v.saga_id = other.id;
      v.message = "another client's " + def.steps[k].name + " (key " + fwd.idempotency_key + "), compensated by id " +
                  first.receipt.id + " alone, then sent again, was answered " + std::to_string(late.status) +
                  " instead of 409: the compensation left no tombstone for the forward call's key";
      checker_.add(std::move(v));
    }
    // What it left must be undone, as a compensated saga's (invariant 3).
    auto all_undone = [](const auto& records) {
      return std::all_of(records.begin(), records.end(), [](const auto& r) { return undone(r); });
    };
    bool undone_all = all_undone(effects.cs) && all_undone(effects.ps) && all_undone(effects.rs);
    if (!undone_all) {
      Violation v;
      v.invariant = 3;
      v.rule = "effects-undone";
      v.saga_id = other.id;
      v.message = "another client's " + def.steps[k].name + ", compensated by id alone, left a record that is not undone";
      for (auto& c : effects.cs) v.records.emplace_back(std::move(c));
      for (auto& p : effects.ps) v.records.emplace_back(std::move(p));
      for (auto& r : effects.rs) v.records.emplace_back(std::move(r));
      checker_.add(std::move(v));
    }
  }
}

}  // namespace sagalab::sim_world
