// Checks the six invariants: terminal sagas, completed and compensated sagas'
// effects, stock and money conservation, one effect per (saga, step).
#include "sagalab/invariants.hpp"

#include <cmath>
#include <map>
#include <set>

namespace sagalab {

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

struct Records {
  std::map<std::string, std::vector<Json>> by_saga;
  std::vector<Json> orphans;
};

Records group(const Json& list, const std::set<std::string>& sagas) {
  Records r;
  for (const auto& rec : list) {
    auto s = str(rec, "saga_id");
    if (!s.empty() && sagas.count(s)) {
      r.by_saga[s].push_back(rec);
    } else {
      r.orphans.push_back(rec);
    }
  }
  return r;
}

}  // namespace

Json to_json(const Violation& v) {
  return {{"invariant", v.invariant}, {"saga_id", v.saga_id.empty() ? Json(nullptr) : Json(v.saga_id)},
          {"message", v.message},     {"records", v.records},
          {"faults", v.faults}};
}

Json to_json(const InvariantReport& r) {
  Json vs = Json::array();
  for (const auto& v : r.violations) vs.push_back(to_json(v));
  return {{"ok", r.ok()}, {"violations", vs}, {"summary", r.summary}};
}

InvariantReport check_invariants(const Json& states) {
  InvariantReport rep;
  const Json& orq = states.value("orquestador", Json::object());
  const Json& compras_state = states.value("ms-compras", Json::object());
  const Json& pagos_state = states.value("ms-pagos", Json::object());
  const Json& inv_state = states.value("ms-inventario", Json::object());

  std::map<std::string, Json> sagas;
  std::set<std::string> ids;
  for (const auto& s : array_at(orq, "sagas")) {
    sagas[str(s, "saga_id")] = s;
    ids.insert(str(s, "saga_id"));
  }
  auto compras = group(array_at(compras_state, "compras"), ids);
  auto pagos = group(array_at(pagos_state, "pagos"), ids);
  auto reservas = group(array_at(inv_state, "reservas"), ids);

  // Faults that hit each saga, from every program's fired log.
  std::map<std::string, Json> faults_by_saga;
  if (states.contains("fallos") && states["fallos"].is_object()) {
    for (const auto& [prog, list] : states["fallos"].items()) {
      if (!list.is_array()) continue;
      for (auto f : list) {
        auto s = str(f, "saga_id");
        if (s.empty()) continue;
        f["servicio"] = prog;
        if (!faults_by_saga.count(s)) faults_by_saga[s] = Json::array();
        faults_by_saga[s].push_back(f);
      }
    }
  }

  auto violate = [&](int inv, const std::string& saga, const std::string& msg, Json recs = Json::array()) {
    Violation v{inv, saga, msg, std::move(recs), Json::array()};
    if (faults_by_saga.count(saga)) v.faults = faults_by_saga[saga];
    rep.violations.push_back(std::move(v));
  };
  auto recs_of = [&](const std::string& id) {
    Json out = Json::array();
    for (auto* g : {&compras, &pagos, &reservas}) {
      if (g->by_saga.count(id)) {
        for (const auto& r : g->by_saga[id]) out.push_back(r);
      }
    }
    return out;
  };

  std::map<std::string, int> by_state;
  double completed_money = 0;
  for (const auto& [id, s] : sagas) {
    auto estado = str(s, "estado");
    by_state[estado]++;
    const Json ctx = s.value("contexto", Json::object());
    auto& cs = compras.by_saga[id];
    auto& ps = pagos.by_saga[id];
    auto& rs = reservas.by_saga[id];
    // 6: at most one effect per (saga, step).
    if (cs.size() > 1) violate(6, id, "saga has " + std::to_string(cs.size()) + " purchases", recs_of(id));
    if (ps.size() > 1) violate(6, id, "saga has " + std::to_string(ps.size()) + " payments", recs_of(id));
    if (rs.size() > 1) violate(6, id, "saga has " + std::to_string(rs.size()) + " reservations", recs_of(id));

    if (estado == "completada") {
      double monto = num(ctx, "monto");
      completed_money += monto;
      bool confirmed = cs.size() == 1 && str(cs[0], "estado") == "confirmada";
      bool paid = ps.size() == 1 && str(ps[0], "estado") == "aprobado" &&
                  std::fabs(num(ps[0], "monto") - monto) < 0.005;
      bool held = rs.size() == 1 && str(rs[0], "estado") == "reservada" &&
                  num(rs[0], "cantidad") == num(ctx, "cantidad");
      if (!confirmed) violate(2, id, "completed saga without exactly one confirmed purchase", recs_of(id));
      if (!paid) violate(2, id, "completed saga without exactly one approved payment of its amount", recs_of(id));
      if (!held) violate(2, id, "completed saga without its reservation held", recs_of(id));
    } else if (estado == "compensada") {
      for (const auto& c : cs) {
        if (str(c, "estado") != "cancelada") violate(3, id, "compensated saga left a purchase " + str(c, "estado"), recs_of(id));
      }
      for (const auto& p : ps) {
        if (str(p, "estado") != "reembolsado") violate(3, id, "compensated saga left a payment " + str(p, "estado"), recs_of(id));
      }
      for (const auto& r : rs) {
        if (str(r, "estado") != "liberada") violate(3, id, "compensated saga left a reservation " + str(r, "estado"), recs_of(id));
      }
    } else {
      violate(1, id, "saga is '" + estado + "', not completada or compensada", recs_of(id));
    }
  }
  for (auto* g : {&compras, &pagos, &reservas}) {
    for (const auto& r : g->orphans) {
      auto s = str(r, "saga_id");
      violate(6, s, "record that no saga accounts for" + (s.empty() ? std::string() : " (unknown saga " + s + ")"),
              Json::array({r}));
    }
  }

  // 4: stock conservation.
  Json stock_summary = Json::object();
  std::map<std::string, std::int64_t> held;
  for (const auto& r : array_at(inv_state, "reservas")) {
    if (str(r, "estado") == "reservada") held[str(r, "producto")] += static_cast<std::int64_t>(num(r, "cantidad"));
  }
  if (inv_state.is_object() && inv_state.contains("stock") && inv_state["stock"].is_object()) {
    for (const auto& [k, v] : inv_state["stock"].items()) {
      auto inicial = static_cast<std::int64_t>(num(v, "inicial"));
      auto disponible = static_cast<std::int64_t>(num(v, "stock"));
      auto reservado = static_cast<std::int64_t>(num(v, "reservado"));
      stock_summary[k] = {{"inicial", inicial}, {"disponible", disponible}, {"reservado", reservado},
                          {"reservas_activas", held[k]}};
      if (disponible < 0 || reservado < 0) violate(4, "", "stock of " + k + " is negative");
      if (inicial != disponible + held[k] || reservado != held[k])
        violate(4, "", "stock of " + k + " not conserved: initial " + std::to_string(inicial) + " != available " +
                           std::to_string(disponible) + " + held " + std::to_string(held[k]) +
                           " (counter says " + std::to_string(reservado) + ")");
    }
  }

  // 5: money conservation.
  double approved = 0, refunded = 0;
  for (const auto& p : array_at(pagos_state, "pagos")) {
    if (str(p, "estado") == "aprobado") approved += num(p, "monto");
    if (str(p, "estado") == "reembolsado") refunded += num(p, "monto");
  }
  if (std::fabs(approved - completed_money) > 0.005 * (1 + static_cast<double>(sagas.size())))
    violate(5, "", "money not conserved: approved payments " + std::to_string(approved) +
                       " != completed sagas' amounts " + std::to_string(completed_money));

  Json states_json = Json::object();
  for (const auto& [k, n] : by_state) states_json[k] = n;
  rep.summary = {{"sagas", sagas.size()},
                 {"por_estado", states_json},
                 {"stock", stock_summary},
                 {"dinero", {{"aprobado", approved}, {"reembolsado", refunded}, {"completadas", completed_money}}}};
  return rep;
}

}  // namespace sagalab
