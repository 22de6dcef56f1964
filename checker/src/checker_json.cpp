// The checker's JSON edge (see checker_json.hpp).
#include <stdexcept>

#include "sagalab/checker_json.hpp"

namespace sagalab {

Json to_json(const Violation& v) {
  Json recs = Json::array();
  for (const auto& r : v.records) recs.push_back(to_json(r));
  Json faults = Json::array();
  for (const auto& f : v.faults) {
    Json j = to_json(f.fault);
    j["service"] = f.service;
    faults.push_back(std::move(j));
  }
  for (const auto& f : v.exchange_faults)
    faults.push_back({{"action", f.action}, {"at", f.at}, {"exchanges", f.exchanges}});
  return {{"rule", v.rule},
          {"invariant", v.invariant},
          {"saga", v.saga_id.empty() ? Json(nullptr) : Json(v.saga_id)},
          {"message", v.message},
          {"records", recs},
          {"faults", faults},
          {"exchanges", v.exchanges}};
}

std::string describe(const Violation& v) {
  std::string out = "[" + v.rule + "]";
  if (v.invariant >= 1 && v.invariant <= 6) out += " (invariant " + std::to_string(v.invariant) + ")";
  out += (v.saga_id.empty() ? " " : " saga " + v.saga_id + ": ") + v.message + "\n";
  for (const auto& r : v.records) out += "    record " + to_json(r).dump() + "\n";
  for (const auto& f : v.faults)
    out += "    fault " + std::string(to_string(f.fault.action)) + " on " + f.service + "/" + f.fault.endpoint +
           " attempt " + std::to_string(f.fault.attempt) + "\n";
  if (!v.exchanges.empty()) {
    out += "    exchanges";
    for (auto s : v.exchanges) out += " #" + std::to_string(s);
    out += "\n";
  }
  for (const auto& f : v.exchange_faults) {
    out += "    fault " + f.action + " at " + f.at + " (";
    for (std::size_t i = 0; i < f.exchanges.size(); ++i) out += (i ? ", #" : "#") + std::to_string(f.exchanges[i]);
    out += ")\n";
  }
  return out;
}

Json coverage_json(unsigned inputs) {
  Json judged = Json::array(), not_judged = Json::array();
  for (const Rule* r : judged_from(inputs)) judged.push_back(std::string(r->name));
  for (const Rule* r : not_judged_from(inputs))
    not_judged.push_back({{"rule", std::string(r->name)}, {"needs", needs_text(*r)}});
  return {{"judged", judged}, {"not_judged", not_judged}};
}

Json to_json(const InvariantReport& r) {
  Json vs = Json::array();
  for (const auto& v : r.violations) vs.push_back(to_json(v));
  Json states = Json::object();
  for (const auto& [k, n] : r.by_state) states[k] = n;
  Json stock = Json::object();
  for (const auto& s : r.stock)
    stock[s.key] = {{"initial", s.inicial}, {"available", s.disponible}, {"reserved", s.reservado},
                    {"active_reservations", s.held}};
  Json summary{{"sagas", r.sagas},
               {"by_state", states},
               {"stock", stock},
               {"money", {{"approved", r.approved}, {"refunded", r.refunded}, {"completed_sagas", r.completed}}}};
  return {{"ok", r.ok()}, {"violations", vs}, {"summary", summary}};
}

namespace {

const Json& array_at(const Json& j, const char* k) {
  static const Json empty = Json::array();
  if (j.is_object() && j.contains(k) && j[k].is_array()) return j[k];
  return empty;
}

std::string str(const Json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

double num(const Json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0;
}

std::int64_t integer(const Json& j, const char* k, std::int64_t dflt) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? static_cast<std::int64_t>(j[k].get<double>()) : dflt;
}

// The state named `text` among `values` (the same names the records are written
// with), or `fallback` when it is none of them.
template <typename E>
E estado_or(const std::string& text, std::initializer_list<E> values, E fallback) {
  for (E e : values) {
    if (text == to_string(e)) return e;
  }
  return fallback;
}

// Records as /admin/state shows them, read leniently: a missing field keeps its
// default and an unknown state is kept as the closest one that no invariant
// accepts, so that an odd record is a finding rather than a crash of the checker.
void records(const Json& list, std::vector<Compra>& out) {
  for (const auto& j : list) {
    Compra c;
    c.compra_id = str(j, "compra_id");
    c.usuario_id = str(j, "usuario_id");
    c.producto = str(j, "producto");
    c.cantidad = integer(j, "cantidad", 1);
    c.monto = num(j, "monto");
    c.estado = estado_or(str(j, "estado"), {CompraEstado::Confirmada, CompraEstado::Cancelada}, CompraEstado::Pendiente);
    c.saga_id = str(j, "saga_id");
    out.push_back(std::move(c));
  }
}
void records(const Json& list, std::vector<Pago>& out) {
  for (const auto& j : list) {
    Pago p;
    p.pago_id = str(j, "pago_id");
    p.usuario_id = str(j, "usuario_id");
    p.monto = num(j, "monto");
    p.compra_id = str(j, "compra_id");
    p.estado = estado_or(str(j, "estado"), {PagoEstado::Reembolsado}, PagoEstado::Aprobado);
    p.saga_id = str(j, "saga_id");
    out.push_back(std::move(p));
  }
}
void records(const Json& list, std::vector<Reserva>& out) {
  for (const auto& j : list) {
    Reserva r;
    r.reserva_id = str(j, "reserva_id");
    r.producto = str(j, "producto");
    r.cantidad = integer(j, "cantidad", 0);
    r.estado = estado_or(str(j, "estado"), {ReservaEstado::Liberada}, ReservaEstado::Reservada);
    r.saga_id = str(j, "saga_id");
    out.push_back(std::move(r));
  }
}

}  // namespace

SystemState system_state_from_json(const Json& states) {
  SystemState st;
  const Json orq = states.value("orquestador", Json::object());
  for (const auto& s : array_at(orq, "sagas")) {
    SagaSummary sum;
    sum.saga_id = str(s, "saga_id");
    auto estado = str(s, "estado");
    try {
      sum.estado = estado_from_string(estado);
    } catch (const std::invalid_argument&) {
      sum.estado_text = estado.empty() ? "?" : estado;
    }
    const Json ctx = s.value("contexto", Json::object());
    sum.monto = num(ctx, "monto");
    sum.cantidad = static_cast<std::int64_t>(ctx.is_object() && ctx.contains("cantidad") && ctx["cantidad"].is_number()
                                                 ? ctx["cantidad"].get<double>()
                                                 : 1);
    st.sagas.push_back(std::move(sum));
  }
  records(array_at(states.value("ms-compras", Json::object()), "compras"), st.compras);
  records(array_at(states.value("ms-pagos", Json::object()), "pagos"), st.pagos);
  const Json inv = states.value("ms-inventario", Json::object());
  records(array_at(inv, "reservas"), st.reservas);
  if (inv.is_object() && inv.contains("stock") && inv["stock"].is_object()) {
    for (const auto& [k, v] : inv["stock"].items()) {
      st.stock.emplace_back(k, StockLevel{static_cast<std::int64_t>(num(v, "inicial")),
                                          static_cast<std::int64_t>(num(v, "stock")),
                                          static_cast<std::int64_t>(num(v, "reservado"))});
    }
  }
  if (states.contains("fallos") && states["fallos"].is_object()) {
    for (const auto& [prog, list] : states["fallos"].items()) {
      if (!list.is_array()) continue;
      for (const auto& f : list) {
        if (str(f, "saga_id").empty()) continue;
        st.faults.push_back({prog, fired_from_json(f)});
      }
    }
  }
  return st;
}

std::vector<SagaHistory> histories_from_json(const Json& states, const SagaDefinition& def) {
  std::vector<SagaHistory> out;
  const Json orq = states.value("orquestador", Json::object());
  for (const auto& s : array_at(orq, "sagas")) {
    SagaHistory h;
    h.saga_id = str(s, "saga_id");
    try {
      h.estado = estado_from_string(str(s, "estado"));
    } catch (const std::invalid_argument&) {
      continue;  // invariant 1 names it
    }
    for (const auto& a : array_at(s, "intentos")) {
      CallRecord c;
      c.step = def.index_of(str(a, "paso"));
      if (c.step < 0) continue;
      c.compensation = a.is_object() && a.contains("compensacion") && a["compensacion"].is_boolean() &&
                       a["compensacion"].get<bool>();
      c.attempt = static_cast<int>(integer(a, "intento", 0));
      auto r = str(a, "resultado");
      c.answered = r == "ok" || r == "failed" || r == "unknown";
      if (c.answered) c.outcome = outcome_from_string(r);
      c.status = static_cast<int>(integer(a, "status", 0));
      h.calls.push_back(std::move(c));
    }
    out.push_back(std::move(h));
  }
  return out;
}

InvariantReport check_invariants(const Json& states) {
  auto st = system_state_from_json(states);
  auto report = check_invariants(st);
  // The protocol, from each saga's attempts as /sagas/{id} shows them.
  const auto def = SagaDefinition::default_purchase();
  for (const auto& h : histories_from_json(states, def)) {
    for (auto& v : check_history(def, h)) {
      for (const auto& f : st.faults) {
        if (f.fault.saga_id == v.saga_id) v.faults.push_back(f);
      }
      report.violations.push_back(std::move(v));
    }
  }
  return report;
}

}  // namespace sagalab
