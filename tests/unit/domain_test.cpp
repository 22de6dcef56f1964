// The four services' logic, on both stores: API shapes, idempotency,
// tombstones, bad input that changes nothing, durability of SQLite.
#include <catch2/catch.hpp>
#include <filesystem>

#include "sagalab/domain.hpp"
#include "sagalab/sqlite_store.hpp"

using namespace sagalab;

namespace {

struct Fixture {
  std::string kind;
  std::string path;
  std::unique_ptr<Store> store;
  explicit Fixture(const std::string& k) : kind(k) {
    if (k == "memory") {
      store = std::make_unique<MemoryStore>();
    } else {
      path = (std::filesystem::temp_directory_path() / ("sagalab-unit-" + std::to_string(::getpid()) + "-" +
                                                      std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".db"))
                 .string();
      std::filesystem::remove(path);
      store = std::make_unique<SqliteStore>(path, SyncMode::Normal);
    }
  }
  ~Fixture() {
    store.reset();
    if (!path.empty()) {
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    }
  }
};

Request req(const std::string& endpoint, Json body = nullptr, std::string key = "", std::string saga = "") {
  Request r;
  r.endpoint = endpoint;
  r.body = std::move(body);
  r.idempotency_key = std::move(key);
  r.saga_id = std::move(saga);
  r.now_ms = 1700000000000;
  return r;
}

Json state(const ServiceLogic& l, Store& s) {
  Json out;
  s.transact([&](Tx& tx) {
    out = l.state(tx);
    return false;
  });
  return out;
}

}  // namespace

TEST_CASE("inventory keys come from the first word of the name, upper-cased, accents removed", "[domain]") {
  CHECK(inventory_key("Laptop Gamer") == "LAPTOP");
  CHECK(inventory_key("Mouse Inalámbrico") == "MOUSE");
  CHECK(inventory_key("Teclado Mecánico") == "TECLADO");
  CHECK(inventory_key("Electrónica") == "ELECTRONICA");
  CHECK(inventory_key("Auriculares Bluetooth") == "AURICULARES");
}

TEST_CASE("catalogo answers the original five products", "[domain]") {
  for (auto kind : {"memory", "sqlite"}) {
    Fixture f(kind);
    auto logic = make_catalogo(default_catalog());
    logic->ensure_initialised(*f.store);
    auto all = logic->handle(*f.store, req("catalogo_completo"));
    REQUIRE(all.status == 200);
    CHECK(all.body["total"] == 5);
    CHECK(all.body["productos"][0]["nombre"] == "Laptop Gamer");
    CHECK(all.body["productos"][1]["precio"] == 25.99);
    auto r = req("buscar");
    r.params["nombre"] = "laptop gamer";
    CHECK(logic->handle(*f.store, r).body["id"] == "prod_001");
    r.params["nombre"] = "no existe";
    CHECK(logic->handle(*f.store, r).status == 404);
    auto byid = req("producto_id");
    byid.params["id"] = "prod_004";
    CHECK(logic->handle(*f.store, byid).body["nombre"] == "Monitor 27 pulgadas");
  }
}

TEST_CASE("compras: a repeated key has one effect, and a compensation refuses the late forward call", "[domain]") {
  for (auto kind : {"memory", "sqlite"}) {
    INFO(kind);
    Fixture f(kind);
    auto logic = make_compras();
    logic->ensure_initialised(*f.store);
    Json body{{"usuario_id", "u1"}, {"producto", "Laptop Gamer"}, {"monto", 1500.0}};
    auto a = logic->handle(*f.store, req("transaccion", body, "saga1:crear_compra", "saga1"));
    auto b = logic->handle(*f.store, req("transaccion", body, "saga1:crear_compra", "saga1"));
    REQUIRE(a.status == 200);
    CHECK(a.body == b.body);
    auto s = state(*logic, *f.store);
    REQUIRE(s["compras"].size() == 1);
    CHECK(s["compras"][0]["estado"] == "pendiente");
    CHECK(s["compras"][0]["saga_id"] == "saga1");

    auto c = logic->handle(*f.store, req("compensacion", {{"forward_key", "saga1:crear_compra"}}, "saga1:crear_compra:comp"));
    REQUIRE(c.status == 200);
    CHECK(state(*logic, *f.store)["compras"][0]["estado"] == "cancelada");
    // The forward call arriving after its compensation changes nothing.
    auto late = logic->handle(*f.store, req("transaccion", body, "saga1:crear_compra", "saga1"));
    CHECK(late.status == 409);
    CHECK(state(*logic, *f.store)["compras"].size() == 1);
    // A cancelled purchase cannot be confirmed.
    auto conf = logic->handle(*f.store, req("confirmacion", {{"compra_id", a.body["compra_id"]}}));
    CHECK(conf.status == 409);
  }
}

TEST_CASE("compensating what never happened succeeds and blocks the forward call", "[domain]") {
  for (auto kind : {"memory", "sqlite"}) {
    Fixture f(kind);
    auto logic = make_pagos();
    logic->ensure_initialised(*f.store);
    auto c = logic->handle(*f.store, req("compensacion", {{"forward_key", "s9:cobrar_pago"}}, "s9:cobrar_pago:comp"));
    REQUIRE(c.status == 200);
    CHECK(c.body["pago_id"].is_null());
    auto late = logic->handle(*f.store, req("transaccion", {{"usuario_id", "u"}, {"monto", 10.0}}, "s9:cobrar_pago"));
    CHECK(late.status == 409);
    CHECK(state(*logic, *f.store)["pagos"].empty());
  }
}

TEST_CASE("pagos charges, refunds, and refuses bad amounts without a record", "[domain]") {
  for (auto kind : {"memory", "sqlite"}) {
    Fixture f(kind);
    auto logic = make_pagos();
    logic->ensure_initialised(*f.store);
    for (Json bad : {Json{{"usuario_id", "u"}, {"monto", -5}}, Json{{"usuario_id", "u"}, {"monto", 1e12}},
                     Json{{"usuario_id", "u"}, {"monto", "10"}}, Json{{"monto", 10}}, Json::array(),
                     Json{{"usuario_id", 7}, {"monto", 10}}}) {
      INFO(bad.dump());
      CHECK(logic->handle(*f.store, req("transaccion", bad)).status == 400);
    }
    CHECK(state(*logic, *f.store)["pagos"].empty());
    auto ok = logic->handle(*f.store, req("transaccion", {{"usuario_id", "u"}, {"monto", 25.99}, {"compra_id", "c1"}}));
    REQUIRE(ok.status == 200);
    auto id = ok.body["pago_id"];
    auto rec = state(*logic, *f.store)["pagos"][0];
    CHECK(rec["estado"] == "aprobado");
    CHECK(rec["fecha"] == "2023-11-14T22:13:20.000Z");
    CHECK(logic->handle(*f.store, req("compensacion", {{"pago_id", id}})).status == 200);
    CHECK(state(*logic, *f.store)["pagos"][0]["estado"] == "reembolsado");
    // Refunding twice is a no-op, not a second refund.
    CHECK(logic->handle(*f.store, req("compensacion", {{"pago_id", id}})).body["mensaje"] == "ya estaba compensada");
  }
}

TEST_CASE("inventario reserves, releases, and never goes negative", "[domain]") {
  for (auto kind : {"memory", "sqlite"}) {
    INFO(kind);
    Fixture f(kind);
    auto logic = make_inventario(default_catalog(), default_stock());
    logic->ensure_initialised(*f.store);
    auto inv = [&] { return logic->handle(*f.store, req("inventario")).body; };
    CHECK(inv()["TECLADO"] == Json{{"stock", 3}, {"reservado", 0}});
    auto r1 = logic->handle(*f.store, req("transaccion", {{"producto_id", "prod_003"}, {"cantidad", 2}}));
    REQUIRE(r1.status == 200);
    CHECK(inv()["TECLADO"] == Json{{"stock", 1}, {"reservado", 2}});
    auto too_many = logic->handle(*f.store, req("transaccion", {{"producto", "Teclado Mecánico"}, {"cantidad", 2}}));
    CHECK(too_many.status == 409);
    CHECK(inv()["TECLADO"] == Json{{"stock", 1}, {"reservado", 2}});
    for (Json bad : {Json{{"producto", "TECLADO"}, {"cantidad", 0}}, Json{{"producto", "TECLADO"}, {"cantidad", -1}},
                     Json{{"producto", "TECLADO"}, {"cantidad", 1001}}, Json{{"producto", "TECLADO"}, {"cantidad", 1.5}},
                     Json{{"producto", "TECLADO"}, {"cantidad", "1"}}, Json{{"cantidad", 1}}}) {
      INFO(bad.dump());
      CHECK(logic->handle(*f.store, req("transaccion", bad)).status == 400);
    }
    CHECK(logic->handle(*f.store, req("transaccion", {{"producto", "PLUTONIO"}})).status == 404);
    CHECK(inv()["TECLADO"] == Json{{"stock", 1}, {"reservado", 2}});
    CHECK(logic->handle(*f.store, req("compensacion", {{"reserva_id", r1.body["reserva_id"]}})).status == 200);
    CHECK(inv()["TECLADO"] == Json{{"stock", 3}, {"reservado", 0}});
  }
}

TEST_CASE("reset brings a service back to its initial data", "[domain]") {
  Fixture f("sqlite");
  auto logic = make_inventario(default_catalog(), default_stock());
  logic->ensure_initialised(*f.store);
  logic->handle(*f.store, req("transaccion", {{"producto", "LAPTOP"}, {"cantidad", 5}}));
  logic->reset(*f.store);
  auto s = state(*logic, *f.store);
  CHECK(s["stock"]["LAPTOP"]["stock"] == 5);
  CHECK(s["reservas"].empty());
}

TEST_CASE("SqliteStore keeps what was committed across a reopen, and nothing of a rollback", "[store]") {
  auto path = (std::filesystem::temp_directory_path() / ("sagalab-durable-" + std::to_string(::getpid()) + ".db")).string();
  std::filesystem::remove(path);
  {
    SqliteStore s(path, SyncMode::Full);
    s.transact([](Tx& tx) {
      tx.put("c", "a", 1);
      return true;
    });
    s.transact([](Tx& tx) {
      tx.put("c", "b", 2);
      return false;
    });
    CHECK_THROWS(s.transact([](Tx& tx) -> bool {
      tx.put("c", "x", 3);
      throw std::runtime_error("boom");
    }));
  }
  SqliteStore again(path, SyncMode::Full);
  again.transact([](Tx& tx) {
    CHECK(tx.get("c", "a") == Json(1));
    CHECK_FALSE(tx.get("c", "b"));
    CHECK_FALSE(tx.get("c", "x"));
    return false;
  });
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

TEST_CASE("MemoryStore discards an uncommitted transaction", "[store]") {
  MemoryStore s;
  s.transact([](Tx& tx) {
    tx.put("c", "k", 1);
    return true;
  });
  s.transact([](Tx& tx) {
    tx.clear_all();
    tx.put("c", "j", 2);
    return false;
  });
  s.transact([](Tx& tx) {
    CHECK(tx.get("c", "k") == Json(1));
    CHECK_FALSE(tx.get("c", "j"));
    CHECK(tx.list("c").size() == 1);
    return false;
  });
}
