// The orchestrator against the real services: purchases that complete, that
// compensate, that compete for the last units, and that survive kill -9.
#include <catch2/catch.hpp>
#include <mutex>
#include <fstream>
#include <set>
#include <thread>

#include "process.hpp"
#include "sagalab/checker_json.hpp"

using namespace testsupport;

namespace {

sagalab::HttpAnswer buy(Stack& st, const Json& body, const httplib::Headers& h = {}, const std::string& path = "/compra") {
  auto r = post(st.url("orquestador"), path, body, h, 30000);
  REQUIRE(r.answer);
  return *r.answer;
}

void require_invariants(Stack& st) {
  REQUIRE(st.wait_quiet());
  auto report = sagalab::check_invariants(st.states());
  INFO(sagalab::to_json(report).dump(2));
  REQUIRE(report.ok());
}

Json admin_state(Stack& st, const std::string& program) {
  auto r = get(st.url(program), "/admin/state");
  REQUIRE(r.ok());
  return r.answer->body;
}

}  // namespace

TEST_CASE("the original README's call completes a purchase recorded by all four services", "[orchestrator]") {
  Stack st(fast_orchestrator());
  auto a = buy(st, {{"usuario_id", "user123"}});
  REQUIRE(a.status == 200);
  CHECK(a.body["success"] == true);
  CHECK(a.body["mensaje"] == "Compra procesada exitosamente");
  CHECK(a.body["estado"] == "completada");
  const auto& d = a.body["datos"];
  for (const char* f : {"producto", "compra_id", "pago_id", "reserva_id"}) CHECK(d.contains(f));
  for (const char* f : {"id", "nombre", "precio", "categoria"}) CHECK(d["producto"].contains(f));
  auto saga = a.body["saga_id"].get<std::string>();
  auto compras = admin_state(st, "ms-compras")["compras"];
  REQUIRE(compras.size() == 1);
  CHECK(compras[0]["estado"] == "confirmada");
  CHECK(compras[0]["saga_id"] == saga);
  auto pagos = admin_state(st, "ms-pagos")["pagos"];
  REQUIRE(pagos.size() == 1);
  CHECK(pagos[0]["monto"] == d["producto"]["precio"]);
  CHECK(admin_state(st, "ms-inventario")["reservas"][0]["estado"] == "reservada");
  auto detail = get(st.url("orquestador"), "/sagas/" + saga);
  REQUIRE(detail.ok());
  CHECK(detail.answer->body["pasos"].size() == 5);
  CHECK(detail.answer->body["intentos"].size() == 5);
  require_invariants(st);
}

TEST_CASE("producto, monto and cantidad as the API describes them", "[orchestrator]") {
  Stack st(fast_orchestrator());
  auto a = buy(st, {{"usuario_id", "u"}, {"producto", "AURICULARES BLUETOOTH"}, {"monto", 159.98}, {"cantidad", 2}});
  REQUIRE(a.status == 200);
  CHECK(a.body["datos"]["producto"]["id"] == "prod_005");
  CHECK(admin_state(st, "ms-pagos")["pagos"][0]["monto"] == 159.98);
  CHECK(buy(st, {{"usuario_id", "u"}, {"producto", "prod_002"}}).status == 200);
  auto wrong = buy(st, {{"usuario_id", "u"}, {"producto", "Laptop Gamer"}, {"monto", 1.0}});
  CHECK(wrong.status == 400);
  CHECK(wrong.body["success"] == false);
  auto unknown = buy(st, {{"usuario_id", "u"}, {"producto", "Tostadora"}});
  CHECK(unknown.status == 404);
  CHECK(unknown.body["paso_fallido"] == "buscar_producto");
  require_invariants(st);
}

TEST_CASE("bad purchase requests are refused before any saga starts", "[orchestrator][hostile]") {
  Stack st(fast_orchestrator());
  for (const Json& bad : {Json::object(), Json{{"usuario_id", 5}}, Json{{"usuario_id", ""}},
                          Json{{"usuario_id", "u"}, {"cantidad", 0}}, Json{{"usuario_id", "u"}, {"cantidad", -2}},
                          Json{{"usuario_id", "u"}, {"cantidad", 1000000}}, Json{{"usuario_id", "u"}, {"producto", 3}},
                          Json{{"usuario_id", "u"}, {"monto", "mucho"}}, Json::array()}) {
    INFO(bad.dump());
    auto a = buy(st, bad);
    CHECK(a.status == 400);
    CHECK(a.body["success"] == false);
  }
  CHECK(admin_state(st, "orquestador")["sagas"].empty());
  CHECK(get(st.url("orquestador"), "/sagas/saga_nope").answer->status == 404);
  CHECK(get(st.url("orquestador"), "/sagas?estado=feliz").answer->status == 400);
  CHECK(get(st.url("orquestador"), "/sagas?limit=abc").answer->status == 400);
  CHECK(get(st.url("orquestador"), "/nada").answer->status == 404);
}

TEST_CASE("a service answering 503 leads to a compensated saga with every earlier effect undone", "[orchestrator]") {
  Stack st(fast_orchestrator());
  REQUIRE(post(st.url("ms-inventario"), "/admin/faults", {{"action", "error"}, {"status", 503}, {"endpoint", "transaccion"}}).ok());
  auto a = buy(st, {{"usuario_id", "u"}, {"producto", "Laptop Gamer"}});
  CHECK(a.status == 409);
  CHECK(a.body["estado"] == "compensada");
  CHECK(a.body["paso_fallido"] == "reservar_stock");
  CHECK(a.body["compensaciones"] == Json::array({"reservar_stock", "crear_compra"}));
  CHECK(admin_state(st, "ms-compras")["compras"][0]["estado"] == "cancelada");
  CHECK(admin_state(st, "ms-pagos")["pagos"].empty());
  CHECK(admin_state(st, "ms-inventario")["stock"]["LAPTOP"]["stock"] == 5);
  require_invariants(st);
}

TEST_CASE("16 concurrent purchases of the last 3 units: exactly 3 complete, stock 0", "[orchestrator]") {
  TempDir files;
  std::ofstream(files.path() + "/stock.json") << R"({"LAPTOP": 5, "MOUSE": 10, "TECLADO": 3, "AURICULARES": 15, "MONITOR": 8})";
  Stack st(fast_orchestrator(), {{"ms-inventario", {"--stock", files.path() + "/stock.json"}}});
  std::atomic<int> ok{0}, compensated{0};
  std::mutex mu;
  std::vector<std::string> others;  // any other answer, to name it when the counts are off
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto r = post(st.url("orquestador"), "/compra", {{"usuario_id", "u" + std::to_string(i)}, {"producto", "Teclado Mecánico"}},
                    {}, 30000);
      if (r.answer && r.answer->status == 200) ++ok;
      else if (r.answer && r.answer->status == 409) ++compensated;
      else {
        std::lock_guard lock(mu);
        others.push_back(r.answer ? std::to_string(r.answer->status) + " " + r.answer->body.dump() : r.error);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string other_answers;
  for (const auto& o : others) other_answers += "\n  " + o;
  INFO("answers other than 200 and 409:" << other_answers);
  CHECK(ok == 3);
  CHECK(compensated == 13);
  auto inv = admin_state(st, "ms-inventario");
  CHECK(inv["stock"]["TECLADO"]["stock"] == 0);
  CHECK(inv["stock"]["TECLADO"]["reservado"] == 3);
  require_invariants(st);
}

TEST_CASE("the same Idempotency-Key on /compra returns the first saga", "[orchestrator]") {
  Stack st(fast_orchestrator());
  auto a = buy(st, {{"usuario_id", "u"}, {"producto", "MOUSE"}}, {{"Idempotency-Key", "order-1"}});
  auto b = buy(st, {{"usuario_id", "u"}, {"producto", "MOUSE"}}, {{"Idempotency-Key", "order-1"}});
  REQUIRE(a.status == 200);
  CHECK(b.status == 200);
  CHECK(a.body["saga_id"] == b.body["saga_id"]);
  CHECK(admin_state(st, "ms-compras")["compras"].size() == 1);
  CHECK(admin_state(st, "orquestador")["sagas"].size() == 1);
}

TEST_CASE("async purchases answer 202 and finish in the background", "[orchestrator]") {
  Stack st(fast_orchestrator());
  auto a = buy(st, {{"usuario_id", "u"}}, {}, "/compra?async=true");
  REQUIRE(a.status == 202);
  auto id = a.body["saga_id"].get<std::string>();
  REQUIRE(st.wait_quiet());
  auto s = get(st.url("orquestador"), "/sagas/" + id);
  CHECK(s.answer->body["estado"] == "completada");
  auto list = get(st.url("orquestador"), "/sagas?estado=completada&limit=5");
  CHECK(list.answer->body["sagas"].size() == 1);
}

TEST_CASE("the orchestrator killed with SIGKILL mid-saga finishes every saga after a restart", "[orchestrator][recovery]") {
  Stack st(fast_orchestrator());
  // Slow the later steps so that sagas are in flight when the kill lands.
  REQUIRE(post(st.url("ms-pagos"), "/admin/faults", {{"action", "latency"}, {"latency_ms", 150}, {"endpoint", "transaccion"}}).ok());
  REQUIRE(post(st.url("ms-compras"), "/admin/faults", {{"action", "latency"}, {"latency_ms", 100}, {"endpoint", "confirmacion"}}).ok());
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    auto a = buy(st, {{"usuario_id", "u" + std::to_string(i)}, {"producto", i % 2 ? "MOUSE" : "MONITOR"}}, {},
                 "/compra?async=true");
    REQUIRE(a.status == 202);
    ids.insert(a.body["saga_id"].get<std::string>());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  st["orquestador"].kill9();
  st.restart_orchestrator();
  // Some sagas were unfinished in the log and were driven on after the restart.
  CHECK_THAT(st["orquestador"].log(), Catch::Contains("\"event\":\"recovering\""));
  REQUIRE(st.wait_quiet(30000));
  auto sagas = admin_state(st, "orquestador")["sagas"];
  REQUIRE(sagas.size() == 10);
  for (const auto& s : sagas) {
    CHECK(ids.count(s["saga_id"]) == 1);
    CHECK((s["estado"] == "completada" || s["estado"] == "compensada"));
  }
  require_invariants(st);  // includes: nothing charged twice, nothing held for a compensated saga
}
