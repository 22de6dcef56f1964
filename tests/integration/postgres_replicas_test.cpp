// Services on PostgreSQL (--store postgresql://...): replicas of one service
// share its data. Run by tests/integration/postgres_test.sh, which starts the
// server and names it in SAGALAB_TEST_PG_URL (hidden tag: not in the default run).
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "process.hpp"

using namespace testsupport;

TEST_CASE("two replicas of ms-inventario on one PostgreSQL sell the last units once, over HTTP", "[.postgresql]") {
  const char* url = std::getenv("SAGALAB_TEST_PG_URL");
  REQUIRE(url != nullptr);
  TempDir dir;
  // A database of this test's own, so that earlier runs' rows do not count.
  auto db = std::string(url);
  Proc first("ms-inventario", {"--quiet", "--store", db}, dir.path());
  REQUIRE(first.wait_healthy());
  REQUIRE(post(first.url(), "/admin/reset", Json::object()).ok());
  TempDir dir2;
  Proc second("ms-inventario", {"--quiet", "--store", db}, dir2.path());
  REQUIRE(second.wait_healthy());

  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 12; ++i) {
    ts.emplace_back([&, i] {
      auto r = post(i % 2 ? first.url() : second.url(), "/transaccion", {{"producto", "TECLADO"}, {"cantidad", 1}},
                    {{"Idempotency-Key", "r" + std::to_string(i) + ":reservar_stock"}});
      auto s = r.answer ? r.answer->status : 0;
      (s == 200 ? ok : s == 409 ? refused : other)++;
    });
  }
  for (auto& t : ts) t.join();
  CHECK(ok == 3);
  CHECK(refused == 9);
  CHECK(other == 0);
  // Both replicas read the same stock.
  for (auto* p : {&first, &second}) {
    auto inv = get(p->url(), "/inventario");
    REQUIRE(inv.ok());
    CHECK(inv.answer->body["TECLADO"] == Json{{"stock", 0}, {"reservado", 3}});
  }
}

TEST_CASE("the stack with every service on PostgreSQL completes and compensates purchases", "[.postgresql]") {
  const char* url = std::getenv("SAGALAB_TEST_PG_URL");
  REQUIRE(url != nullptr);
  std::map<std::string, std::vector<std::string>> args;
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) args[s] = {"--store", url};
  Stack stack(fast_orchestrator(), args);
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
    REQUIRE(post(stack.url(s), "/admin/reset", Json::object()).ok());
  auto r = post(stack.url("orquestador"), "/compra", {{"usuario_id", "ana"}, {"producto", "mouse"}}, {}, 15000);
  REQUIRE(r.answer);
  CHECK(r.answer->status == 200);
  REQUIRE(post(stack.url("ms-pagos"), "/admin/faults", {{"action", "error"}, {"endpoint", "transaccion"}, {"status", 409}})
              .answer->status == 201);
  auto c = post(stack.url("orquestador"), "/compra", {{"usuario_id", "ana"}, {"producto", "mouse"}}, {}, 15000);
  REQUIRE(c.answer);
  CHECK(c.answer->status == 409);
  CHECK(c.answer->body["estado"] == "compensada");
  REQUIRE(stack.wait_quiet());
  auto states = stack.states();
  CHECK(states["ms-inventario"]["stock"]["MOUSE"]["reservado"] == 1);
  CHECK(states["ms-compras"]["compras"].size() == 2);
}
