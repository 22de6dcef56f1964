// Checks the six invariants: terminal sagas, completed and compensated sagas'
// effects, stock and money conservation, one effect per (saga, step).
#include "sagalab/invariants.hpp"

#include "sagalab/contract.hpp"
#include "sagalab/rules.hpp"

#include <cmath>
#include <set>
#include <unordered_map>

namespace sagalab {

void InvariantChecker::violate(int inv, const std::string& saga, std::string msg, std::vector<EffectRecord> recs,
                               const std::vector<ServiceFault>& faults) {
  static const char* const names[] = {"", "saga-settled", "effects-done", "effects-undone", "stock-conserved",
                                      "money-conserved", "one-effect"};
  Violation v;
  v.rule = names[inv];
  v.invariant = inv;
  v.saga_id = saga;
  v.message = std::move(msg);
  v.records = std::move(recs);
  for (const auto& f : faults) {
    if (f.fault.saga_id == saga) v.faults.push_back(f);
  }
  rep_.violations.push_back(std::move(v));
}

void InvariantChecker::add(Violation v) {
  SAGALAB_ASSERT(canonical_rule(v.rule) == v.rule && !v.rule.empty(), "a violation names a rule of the catalogue");
  rep_.violations.push_back(std::move(v));
}

void InvariantChecker::account(const Pago& p) {
  if (p.estado == PagoEstado::Aprobado) rep_.approved += p.monto;
  if (p.estado == PagoEstado::Reembolsado) rep_.refunded += p.monto;
}

void InvariantChecker::account(const Reserva& r) {
  if (r.estado == ReservaEstado::Reservada) held_[r.producto] += r.cantidad;
}

void InvariantChecker::saga(const SagaSummary& s, const std::vector<Compra>& cs, const std::vector<Pago>& ps,
                            const std::vector<Reserva>& rs, const std::vector<ServiceFault>& faults) {
  ++rep_.sagas;
  rep_.by_state[s.estado_text.empty() ? to_string(s.estado) : s.estado_text]++;
  for (const auto& p : ps) account(p);
  for (const auto& r : rs) account(r);
  auto all = [&] {
    std::vector<EffectRecord> out;
    for (const auto& c : cs) out.emplace_back(c);
    for (const auto& p : ps) out.emplace_back(p);
    for (const auto& r : rs) out.emplace_back(r);
    return out;
  };
  const auto& id = s.saga_id;
  // 6: at most one effect per (saga, step).
  if (cs.size() > 1) violate(6, id, "saga has " + std::to_string(cs.size()) + " purchases", all(), faults);
  if (ps.size() > 1) violate(6, id, "saga has " + std::to_string(ps.size()) + " payments", all(), faults);
  if (rs.size() > 1) violate(6, id, "saga has " + std::to_string(rs.size()) + " reservations", all(), faults);

  if (!s.estado_text.empty()) {
    violate(1, id, "saga is '" + s.estado_text + "', not completada or compensada", all(), faults);
  } else if (s.estado == Estado::Completada) {
    rep_.completed += s.monto;
    bool confirmed = cs.size() == 1 && cs[0].estado == CompraEstado::Confirmada;
    bool paid = ps.size() == 1 && ps[0].estado == PagoEstado::Aprobado && std::fabs(ps[0].monto - s.monto) < 0.005;
    bool held = rs.size() == 1 && rs[0].estado == ReservaEstado::Reservada && rs[0].cantidad == s.cantidad;
    if (!confirmed) violate(2, id, "completed saga without exactly one confirmed purchase", all(), faults);
    if (!paid) violate(2, id, "completed saga without exactly one approved payment of its amount", all(), faults);
    if (!held) violate(2, id, "completed saga without its reservation held", all(), faults);
  } else if (s.estado == Estado::Compensada) {
    for (const auto& c : cs) {
      if (!undone(c))
        violate(3, id, std::string("compensated saga left a purchase ") + to_string(c.estado), all(), faults);
    }
    for (const auto& p : ps) {
      if (!undone(p))
        violate(3, id, std::string("compensated saga left a payment ") + to_string(p.estado), all(), faults);
    }
    for (const auto& r : rs) {
      if (!undone(r))
        violate(3, id, std::string("compensated saga left a reservation ") + to_string(r.estado), all(), faults);
    }
  } else {
    violate(1, id, "saga is '" + to_string(s.estado) + "', not completada or compensada", all(), faults);
  }
}

void InvariantChecker::orphan(const EffectRecord& r, const std::string& why, const std::vector<ServiceFault>& faults) {
  std::visit(
      [&](const auto& rec) {
        using T = std::decay_t<decltype(rec)>;
        if constexpr (!std::is_same_v<T, Compra>) account(rec);
      },
      r);
  const auto& s = std::visit([](const auto& rec) -> const std::string& { return rec.saga_id; }, r);
  violate(6, s, why.empty() ? "record that no saga accounts for" + (s.empty() ? std::string() : " (unknown saga " + s + ")") : why,
          {r}, faults);
}

InvariantReport InvariantChecker::finish(const std::vector<std::pair<std::string, StockLevel>>& stock) {
  // 4: stock conservation.
  for (const auto& [k, v] : stock) {
    auto held = held_[k];
    rep_.stock.push_back({k, v.inicial, v.stock, v.reservado, held});
    if (v.stock < 0 || v.reservado < 0) violate(4, "", "stock of " + k + " is negative", {}, {});
    if (v.inicial != v.stock + held || v.reservado != held)
      violate(4, "", "stock of " + k + " not conserved: initial " + std::to_string(v.inicial) + " != available " +
                         std::to_string(v.stock) + " + held " + std::to_string(held) + " (counter says " +
                         std::to_string(v.reservado) + ")",
              {}, {});
  }
  // 5: money conservation.
  if (std::fabs(rep_.approved - rep_.completed) > 0.005 * (1 + static_cast<double>(rep_.sagas)))
    violate(5, "", "money not conserved: approved payments " + std::to_string(rep_.approved) +
                       " != completed sagas' amounts " + std::to_string(rep_.completed),
            {}, {});
  return std::move(rep_);
}

InvariantReport check_invariants(const SystemState& st) {
  InvariantChecker checker;
  std::set<std::string> ids;
  for (const auto& s : st.sagas) ids.insert(s.saga_id);
  struct Mine {
    std::vector<Compra> cs;
    std::vector<Pago> ps;
    std::vector<Reserva> rs;
  };
  std::unordered_map<std::string, Mine> by_saga;
  std::vector<EffectRecord> orphans;
  for (const auto& c : st.compras) {
    if (!c.saga_id.empty() && ids.count(c.saga_id)) by_saga[c.saga_id].cs.push_back(c); else orphans.emplace_back(c);
  }
  for (const auto& p : st.pagos) {
    if (!p.saga_id.empty() && ids.count(p.saga_id)) by_saga[p.saga_id].ps.push_back(p); else orphans.emplace_back(p);
  }
  for (const auto& r : st.reservas) {
    if (!r.saga_id.empty() && ids.count(r.saga_id)) by_saga[r.saga_id].rs.push_back(r); else orphans.emplace_back(r);
  }
  // One summary per saga id, in id order (a repeated id keeps the last).
  std::map<std::string, const SagaSummary*> sagas;
  for (const auto& s : st.sagas) sagas[s.saga_id] = &s;
  for (const auto& [id, s] : sagas) {
    auto& m = by_saga[id];
    checker.saga(*s, m.cs, m.ps, m.rs, st.faults);
  }
  for (const auto& o : orphans) checker.orphan(o, "", st.faults);
  return checker.finish(st.stock);
}

}  // namespace sagalab
