// The invariant checker finds each kind of violation, and only those.
#include <catch2/catch.hpp>

#include "sagalab/invariants.hpp"
#include "sagalab/checker_json.hpp"

using namespace sagalab;

namespace {

Json consistent() {
  return {
      {"orquestador",
       {{"sagas",
         {{{"saga_id", "s1"}, {"estado", "completada"}, {"contexto", {{"monto", 1500.0}, {"cantidad", 1}}}},
          {{"saga_id", "s2"}, {"estado", "compensada"}, {"contexto", {{"cantidad", 1}}}}}}}},
      {"ms-compras",
       {{"compras",
         {{{"compra_id", "c1"}, {"estado", "confirmada"}, {"saga_id", "s1"}},
          {{"compra_id", "c2"}, {"estado", "cancelada"}, {"saga_id", "s2"}}}}}},
      {"ms-pagos",
       {{"pagos",
         {{{"pago_id", "p1"}, {"estado", "aprobado"}, {"monto", 1500.0}, {"saga_id", "s1"}},
          {{"pago_id", "p2"}, {"estado", "reembolsado"}, {"monto", 25.99}, {"saga_id", "s2"}}}}}},
      {"ms-inventario",
       {{"stock", {{"LAPTOP", {{"inicial", 5}, {"stock", 4}, {"reservado", 1}}}}},
        {"reservas",
         {{{"reserva_id", "r1"}, {"producto", "LAPTOP"}, {"cantidad", 1}, {"estado", "reservada"}, {"saga_id", "s1"}},
          {{"reserva_id", "r2"}, {"producto", "LAPTOP"}, {"cantidad", 1}, {"estado", "liberada"}, {"saga_id", "s2"}}}}}},
      {"fallos", {{"ms-pagos", {{{"saga_id", "s1"}, {"action", "latency"}, {"endpoint", "transaccion"}}}}}}};
}

bool has(const InvariantReport& r, int inv, const std::string& saga) {
  for (const auto& v : r.violations) {
    if (v.invariant == inv && v.saga_id == saga) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a consistent state has no violation", "[invariants]") {
  auto r = check_invariants(consistent());
  CHECK(r.ok());
  CHECK(r.by_state["completada"] == 1);
}

TEST_CASE("a reservation released behind a completed saga is named", "[invariants]") {
  auto s = consistent();
  s["ms-inventario"]["reservas"][0]["estado"] = "liberada";
  s["ms-inventario"]["stock"]["LAPTOP"] = {{"inicial", 5}, {"stock", 5}, {"reservado", 0}};
  auto r = check_invariants(s);
  CHECK(has(r, 2, "s1"));
  // The violation names the faults that hit the saga.
  for (const auto& v : r.violations) {
    if (v.saga_id == "s1") {
      CHECK(v.faults.size() == 1);
    }
  }
}

TEST_CASE("each invariant is checked", "[invariants]") {
  SECTION("1: a saga not terminal") {
    auto s = consistent();
    s["orquestador"]["sagas"][1]["estado"] = "atascada";
    CHECK(has(check_invariants(s), 1, "s2"));
  }
  SECTION("3: a compensated saga that left a payment") {
    auto s = consistent();
    s["ms-pagos"]["pagos"][1]["estado"] = "aprobado";
    auto r = check_invariants(s);
    CHECK(has(r, 3, "s2"));
    CHECK(has(r, 5, ""));
  }
  SECTION("4: stock not conserved") {
    auto s = consistent();
    s["ms-inventario"]["stock"]["LAPTOP"]["stock"] = 3;
    CHECK(has(check_invariants(s), 4, ""));
  }
  SECTION("6: a double charge, and a record no saga accounts for") {
    auto s = consistent();
    s["ms-pagos"]["pagos"].push_back({{"pago_id", "p3"}, {"estado", "aprobado"}, {"monto", 1500.0}, {"saga_id", "s1"}});
    s["ms-compras"]["compras"].push_back({{"compra_id", "c9"}, {"estado", "pendiente"}, {"saga_id", "ghost"}});
    auto r = check_invariants(s);
    CHECK(has(r, 6, "s1"));
    CHECK(has(r, 6, "ghost"));
  }
}
