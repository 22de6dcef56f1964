// The four service binaries over HTTP: the original API, idempotency,
// tombstones, hostile input, concurrency on the last units, kill -9.
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "process.hpp"

using namespace testsupport;

namespace {

Json body_of(const sagalab::HttpResult& r) {
  REQUIRE(r.answer);
  return r.answer->body;
}

int status_of(const sagalab::HttpResult& r) {
  REQUIRE(r.answer);
  return r.answer->status;
}

}  // namespace

TEST_CASE("every service answers /health with its name", "[services]") {
  TempDir dir;
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) {
    Proc p(s, {"--quiet"}, dir.path());
    REQUIRE(p.wait_healthy());
    // Its pid too: whoever started it can tell it from another process holding its port.
    CHECK(body_of(get(p.url(), "/health")) == Json{{"status", "ok"}, {"service", s}, {"pid", p.pid()}});
    p.stop();
    CHECK_FALSE(p.running());
  }
}

TEST_CASE("ms-catalogo serves the original API", "[services]") {
  TempDir dir;
  Proc p("ms-catalogo", {"--quiet"}, dir.path());
  REQUIRE(p.wait_healthy());
  auto all = body_of(get(p.url(), "/catalogo_completo"));
  CHECK(all["total"] == 5);
  CHECK(all["productos"][4] ==
        Json{{"id", "prod_005"}, {"nombre", "Auriculares Bluetooth"}, {"precio", 79.99}, {"categoria", "Audio"}});
  CHECK(body_of(get(p.url(), "/producto"))["id"] == "prod_001");
  CHECK(body_of(get(p.url(), "/producto/prod_003"))["nombre"] == "Teclado Mecánico");
  CHECK(body_of(get(p.url(), "/buscar/MONITOR%2027%20PULGADAS"))["id"] == "prod_004");
  CHECK(status_of(get(p.url(), "/producto/prod_999")) == 404);
  CHECK(status_of(get(p.url(), "/buscar/tostadora")) == 404);
}

TEST_CASE("ms-catalogo and ms-inventario load their data files", "[services]") {
  TempDir dir;
  std::ofstream(dir.path() + "/cat.json") << R"([{"id":"x1","nombre":"Silla Ergonómica","precio":120.5,"categoria":"Hogar"}])";
  std::ofstream(dir.path() + "/stock.json") << R"({"SILLA": 2})";
  Proc cat("ms-catalogo", {"--quiet", "--catalog", dir.path() + "/cat.json"}, dir.path());
  Proc inv("ms-inventario", {"--quiet", "--stock", dir.path() + "/stock.json", "--catalog", dir.path() + "/cat.json"},
           dir.path());
  REQUIRE(cat.wait_healthy());
  REQUIRE(inv.wait_healthy());
  CHECK(body_of(get(cat.url(), "/catalogo_completo"))["total"] == 1);
  CHECK(body_of(get(inv.url(), "/inventario")) == Json{{"SILLA", {{"stock", 2}, {"reservado", 0}}}});
  CHECK(status_of(post(inv.url(), "/transaccion", {{"producto_id", "x1"}, {"cantidad", 2}})) == 200);
  std::ofstream(dir.path() + "/bad.json") << R"({"SILLA": -1})";
  TempDir other;
  CHECK_THROWS_WITH(Proc("ms-inventario", {"--quiet", "--stock", dir.path() + "/bad.json"}, other.path()),
                    Catch::Contains("stock.SILLA must be a non-negative integer"));
}

TEST_CASE("compras, pagos and inventario answer the original API", "[services]") {
  TempDir dir;
  Proc compras("ms-compras", {"--quiet"}, dir.path());
  Proc pagos("ms-pagos", {"--quiet"}, dir.path());
  Proc inv("ms-inventario", {"--quiet"}, dir.path());
  REQUIRE(compras.wait_healthy());
  REQUIRE(pagos.wait_healthy());
  REQUIRE(inv.wait_healthy());

  auto c = body_of(post(compras.url(), "/transaccion", {{"usuario_id", "user123"}, {"producto", "Laptop Gamer"}}));
  CHECK(c["success"] == true);
  auto compra_id = c["compra_id"].get<std::string>();
  CHECK(body_of(post(compras.url(), "/confirmacion", {{"compra_id", compra_id}}))["estado"] == "confirmada");
  auto list = body_of(get(compras.url(), "/compras"));
  CHECK(list["total_general"] == 1);
  CHECK(list["total_activas"] == 1);
  for (const char* f : {"compra_id", "usuario_id", "producto", "cantidad", "monto", "estado", "saga_id"})
    CHECK(list["compras"][0].contains(f));

  auto p = body_of(post(pagos.url(), "/transaccion", {{"usuario_id", "user123"}, {"monto", 1500.0}, {"compra_id", compra_id}}));
  CHECK(p["success"] == true);
  CHECK(body_of(post(pagos.url(), "/compensacion", {{"pago_id", p["pago_id"]}}))["success"] == true);
  auto pl = body_of(get(pagos.url(), "/pagos"));
  CHECK(pl["total"] == 1);
  CHECK(pl["pagos"][0]["estado"] == "reembolsado");
  for (const char* f : {"pago_id", "usuario_id", "monto", "compra_id", "estado", "fecha", "saga_id"})
    CHECK(pl["pagos"][0].contains(f));

  auto initial = body_of(get(inv.url(), "/inventario"));
  CHECK(initial == Json::parse(R"({"LAPTOP":{"stock":5,"reservado":0},"MOUSE":{"stock":10,"reservado":0},
      "TECLADO":{"stock":3,"reservado":0},"AURICULARES":{"stock":15,"reservado":0},"MONITOR":{"stock":8,"reservado":0}})"));
  auto r = body_of(post(inv.url(), "/transaccion", {{"producto", "Mouse Inalámbrico"}, {"cantidad", 4}}));
  CHECK(body_of(get(inv.url(), "/inventario"))["MOUSE"] == Json{{"stock", 6}, {"reservado", 4}});
  post(inv.url(), "/compensacion", {{"reserva_id", r["reserva_id"]}});
  CHECK(body_of(get(inv.url(), "/inventario"))["MOUSE"] == Json{{"stock", 10}, {"reservado", 0}});
}

TEST_CASE("a repeated call with the same key has one effect, and a late forward after compensation is refused", "[services]") {
  TempDir dir;
  Proc inv("ms-inventario", {"--quiet"}, dir.path());
  REQUIRE(inv.wait_healthy());
  httplib::Headers key{{"Idempotency-Key", "saga-x:reservar_stock"}, {"X-Saga-Id", "saga-x"}};
  Json body{{"producto", "LAPTOP"}, {"cantidad", 2}};
  auto a = body_of(post(inv.url(), "/transaccion", body, key));
  auto b = body_of(post(inv.url(), "/transaccion", body, key));
  CHECK(a == b);
  CHECK(body_of(get(inv.url(), "/inventario"))["LAPTOP"] == Json{{"stock", 3}, {"reservado", 2}});
  CHECK(status_of(post(inv.url(), "/compensacion", {{"forward_key", "saga-x:reservar_stock"}},
                       {{"Idempotency-Key", "saga-x:reservar_stock:compensacion"}})) == 200);
  CHECK(status_of(post(inv.url(), "/transaccion", body, key)) == 409);
  CHECK(body_of(get(inv.url(), "/inventario"))["LAPTOP"] == Json{{"stock", 5}, {"reservado", 0}});
  // Compensation before the forward call ever arrives: the forward is refused.
  CHECK(status_of(post(inv.url(), "/compensacion", {{"forward_key", "saga-y:reservar_stock"}})) == 200);
  CHECK(status_of(post(inv.url(), "/transaccion", body, {{"Idempotency-Key", "saga-y:reservar_stock"}})) == 409);
  CHECK(body_of(get(inv.url(), "/admin/state"))["reservas"].size() == 1);
}

TEST_CASE("bad input gets a clear 4xx and changes nothing", "[services][hostile]") {
  TempDir dir;
  Proc inv("ms-inventario", {"--quiet"}, dir.path());
  REQUIRE(inv.wait_healthy());
  auto before = body_of(get(inv.url(), "/admin/state"));
  auto raw = [&](const std::string& text) {
    httplib::Client cli("127.0.0.1", inv.port());
    cli.set_tcp_nodelay(true);
    auto r = cli.Post("/transaccion", text, "application/json");
    REQUIRE(r);
    return std::make_pair(r->status, Json::parse(r->body, nullptr, false));
  };
  for (const std::string& text :
       {std::string("{\"producto\": "), std::string("[1,2]"), std::string("\"text\""), std::string("{}"),
        std::string(R"({"producto":"LAPTOP","cantidad":-3})"), std::string(R"({"producto":"LAPTOP","cantidad":1e9})"),
        std::string(R"({"producto":"LAPTOP","cantidad":"2"})"), std::string(R"({"producto":42})"),
        std::string(40, '[') + std::string(40, ']')}) {
    INFO(text);
    auto [status, body] = raw(text);
    CHECK(status == 400);
    CHECK(body["success"] == false);
    CHECK(body["error"].get<std::string>().size() > 5);
  }
  auto [big_status, big_body] = raw("{\"producto\":\"" + std::string(100 * 1024, 'x') + "\"}");
  CHECK(big_status == 413);
  CHECK(big_body["success"] == false);
  auto unknown = get(inv.url(), "/no/such/route");
  CHECK(status_of(unknown) == 404);
  CHECK(body_of(unknown)["error"] == "unknown route GET /no/such/route");
  CHECK(body_of(get(inv.url(), "/admin/state")) == before);
}

TEST_CASE("8 concurrent reservations of the last 3 units: exactly 3 succeed, stock never negative", "[services]") {
  TempDir dir;
  Proc inv("ms-inventario", {"--quiet", "--workers", "8"}, dir.path());
  REQUIRE(inv.wait_healthy());
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = post(inv.url(), "/transaccion", {{"producto", "TECLADO"}, {"cantidad", 1}},
                    {{"Idempotency-Key", "k" + std::to_string(i)}});
      if (r.answer && r.answer->status == 200) ++ok;
      if (r.answer && r.answer->status == 409) ++refused;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 3);
  CHECK(refused == 5);
  CHECK(body_of(get(inv.url(), "/inventario"))["TECLADO"] == Json{{"stock", 0}, {"reservado", 3}});
}

TEST_CASE("a service killed with SIGKILL right after acknowledging a reservation still has it", "[services][durability]") {
  TempDir dir;
  auto inv = std::make_unique<Proc>("ms-inventario", std::vector<std::string>{"--quiet"}, dir.path());
  REQUIRE(inv->wait_healthy());
  auto r = body_of(post(inv->url(), "/transaccion", {{"producto", "MONITOR"}, {"cantidad", 3}},
                        {{"Idempotency-Key", "durable-1"}}));
  REQUIRE(r["success"] == true);
  inv->kill9();
  CHECK_FALSE(inv->running());
  inv->start();
  REQUIRE(inv->wait_healthy());
  auto state = body_of(get(inv->url(), "/admin/state"));
  REQUIRE(state["reservas"].size() == 1);
  CHECK(state["reservas"][0]["reserva_id"] == r["reserva_id"]);
  CHECK(state["stock"]["MONITOR"]["stock"] == 5);
  // The idempotency key survived too: the repeat replays, no second effect.
  CHECK(body_of(post(inv->url(), "/transaccion", {{"producto", "MONITOR"}, {"cantidad", 3}},
                     {{"Idempotency-Key", "durable-1"}})) == r);
  CHECK(body_of(get(inv->url(), "/inventario"))["MONITOR"]["stock"] == 5);
}

TEST_CASE("admin routes need the token when one is set", "[services][admin]") {
  TempDir dir;
  Proc p("ms-pagos", {"--quiet", "--admin-token", "s3cret"}, dir.path());
  REQUIRE(p.wait_healthy());
  CHECK(status_of(get(p.url(), "/admin/state")) == 401);
  CHECK(status_of(sagalab::http_call(p.url(), "GET", "/admin/state", nullptr, {{"Authorization", "Bearer wrong"}})) == 401);
  CHECK(status_of(sagalab::http_call(p.url(), "GET", "/admin/state", nullptr, {{"Authorization", "Bearer s3cret"}})) == 200);
  CHECK(status_of(post(p.url(), "/admin/faults", {{"action", "error"}})) == 401);
  // Business routes do not need it.
  CHECK(status_of(get(p.url(), "/pagos")) == 200);
}
