// The domain logic of catalogo, compras, pagos and inventario, with the
// idempotency rules of DESIGN.md: a repeated key replays its first answer, a
// compensation leaves a tombstone that refuses a late forward call with 409.
#include "sagalab/domain.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "sagalab/errors.hpp"
#include "sagalab/numbered.hpp"

namespace sagalab {

std::vector<Product> default_catalog() {
  return {{"prod_001", "Laptop Gamer", 1500.00, "Electrónica"},
          {"prod_002", "Mouse Inalámbrico", 25.99, "Accesorios"},
          {"prod_003", "Teclado Mecánico", 89.99, "Accesorios"},
          {"prod_004", "Monitor 27 pulgadas", 350.00, "Electrónica"},
          {"prod_005", "Auriculares Bluetooth", 79.99, "Audio"}};
}

std::map<std::string, std::int64_t> default_stock() {
  return {{"LAPTOP", 5}, {"MOUSE", 10}, {"TECLADO", 3}, {"AURICULARES", 15}, {"MONITOR", 8}};
}

std::string lower_ascii(std::string s) {
  for (auto& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string inventory_key(const std::string& nombre) {
  std::string word = nombre.substr(0, nombre.find(' '));
  // Fold the Latin-1 accented letters (UTF-8, two bytes from 0xC3) to ASCII.
  static const std::map<unsigned char, char> fold = {
      {0xA1, 'A'}, {0xA9, 'E'}, {0xAD, 'I'}, {0xB3, 'O'}, {0xBA, 'U'}, {0xBC, 'U'}, {0xB1, 'N'},
      {0x81, 'A'}, {0x89, 'E'}, {0x8D, 'I'}, {0x93, 'O'}, {0x9A, 'U'}, {0x9C, 'U'}, {0x91, 'N'}};
  std::string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    auto c = static_cast<unsigned char>(word[i]);
    if (c == 0xC3 && i + 1 < word.size()) {
      auto it = fold.find(static_cast<unsigned char>(word[i + 1]));
      if (it != fold.end()) {
        out += it->second;
        ++i;
        continue;
      }
    }
    out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : static_cast<char>(c);
  }
  return out;
}

const Product* find_product(const std::vector<Product>& catalog, const std::string& query) {
  auto q = lower_ascii(query);
  for (const auto& p : catalog) {
    if (p.id == query || lower_ascii(p.nombre) == q) return &p;
  }
  for (const auto& p : catalog) {
    if (lower_ascii(inventory_key(p.nombre)) == q) return &p;
  }
  return nullptr;
}

std::string iso_time(std::int64_t unix_ms) {
  using namespace std::chrono;
  sys_time<milliseconds> tp{milliseconds{unix_ms}};
  auto day = floor<days>(tp);
  year_month_day ymd{day};
  hh_mm_ss hms{tp - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

const char* to_string(CompraEstado e) {
  switch (e) {
    case CompraEstado::Pendiente: return "pendiente";
    case CompraEstado::Confirmada: return "confirmada";
    case CompraEstado::Cancelada: return "cancelada";
  }
  return "?";
}
const char* to_string(PagoEstado e) { return e == PagoEstado::Aprobado ? "aprobado" : "reembolsado"; }
const char* to_string(ReservaEstado e) { return e == ReservaEstado::Reservada ? "reservada" : "liberada"; }

const char* id_field_name(IdField f) {
  switch (f) {
    case IdField::None: return "";
    case IdField::Compra: return "compra_id";
    case IdField::Pago: return "pago_id";
    case IdField::Reserva: return "reserva_id";
  }
  return "";
}

// ---------------------------------------------------------------------------
// ServiceLogic

Reply ServiceLogic::handle(Store& store, const Request& req) const {
  Reply res;
  store.transact([&](Tx& tx) {
    try {
      res = dispatch(tx, req);
      return true;
    } catch (const ClientError& e) {
      res = Reply{};
      res.status = e.status();
      res.error = e.what();
      return false;
    }
  });
  return res;
}

void ServiceLogic::ensure_initialised(Store& store) const {
  store.transact([&](Tx& tx) {
    if (tx.find(Table::Meta, "initialised")) return false;
    init(tx);
    tx.put(Table::Meta, "initialised", std::int64_t{1});
    return true;
  });
}

void ServiceLogic::reset(Store& store) const {
  store.transact([&](Tx& tx) {
    tx.clear_all();
    init(tx);
    tx.put(Table::Meta, "initialised", std::int64_t{1});
    return true;
  });
}

void ServiceLogic::configure(const InitialData& data) {
  if (data.catalog) throw bad_request(name() + " has no initial data 'catalog' to set");
  if (data.stock) throw bad_request(name() + " has no initial data 'stock' to set");
}

void ServiceLogic::reset(Store& store, const InitialData& data) {
  store.transact([&](Tx& tx) {
    configure(data);
    tx.clear_all();
    init(tx);
    tx.put(Table::Meta, "initialised", std::int64_t{1});
    return true;
  });
}

namespace {

std::string padded(const char* prefix, std::int64_t n) { return numbered(prefix, n, 6); }

double round_cents(double v) { return std::round(v * 100.0) / 100.0; }

// The key that makes a forward call idempotent.
std::string forward_key(const Request& r) {
  if (!r.idempotency_key.empty()) return r.idempotency_key;
  if (!r.saga_id.empty()) return r.saga_id + ":" + r.endpoint;
  return "";
}

// The receipt of a call that created a record.
Receipt created(IdField field, std::string id, const char* mensaje, const Request& req) {
  Receipt r;
  r.id_field = field;
  r.id = std::move(id);
  r.mensaje = mensaje;
  r.saga_id = req.saga_id;
  return r;
}

Reply ok(Receipt r) {
  Reply out;
  out.receipt = std::move(r);
  return out;
}

// Runs make() once per key: a repeat replays the stored receipt; a key whose
// compensation already ran is refused, so a late forward call changes nothing.
template <typename F>
Receipt idempotent(Tx& tx, const std::string& key, F make) {
  if (key.empty()) return make();
  if (tx.find(Table::Tombstones, key))
    throw conflict("operation '" + key + "' was already compensated; refusing the late request");
  if (const auto* prev = tx.get<Receipt>(Table::Idempotency, key)) return *prev;
  Receipt result = make();
  tx.put(Table::Idempotency, key, result);
  return result;
}

template <typename State>
struct CompensationSpec {
  Table table;      // e.g. Table::Compras
  IdField id_field; // e.g. IdField::Compra
  State active;     // state that can be undone, e.g. pendiente
  State undone;     // e.g. cancelada
};

// The common shape of every compensation: find the record by its id or by the
// forward call's key, tombstone that key, and move the record to `undone`
// unless it is there already. Compensating what never happened is a no-op.
template <typename Rec, typename State, typename OnUndo>
Receipt compensate(Tx& tx, const Request& req, const CompensationSpec<State>& spec, OnUndo on_undo) {
  const auto& body = std::get<Compensar>(req.body);
  std::string id = body.id;
  std::string fwd = body.forward_key;
  if (fwd.empty() && id.empty()) fwd = req.saga_id + ":transaccion";

  const auto& comp_key = req.idempotency_key;
  if (!comp_key.empty()) {
    if (const auto* prev = tx.get<Receipt>(Table::Idempotency, comp_key)) return *prev;
  }

  std::optional<Rec> record;
  if (!id.empty()) {
    const auto* r = tx.get<Rec>(spec.table, id);
    if (!r) throw not_found(std::string(id_field_name(spec.id_field)) + " '" + id + "' does not exist");
    record = *r;
    if (fwd.empty()) fwd = record->idempotency_key;
  } else if (const auto* first = tx.get<Receipt>(Table::Idempotency, fwd)) {
    if (first->id_field == spec.id_field && !first->id.empty()) {
      id = first->id;
      if (const auto* r = tx.get<Rec>(spec.table, id)) record = *r;
    }
  }
  if (!fwd.empty()) tx.put(Table::Tombstones, fwd, Tombstone{req.now_ms, req.saga_id});

  Receipt result;
  result.kind = ReceiptKind::Compensated;
  result.id_field = spec.id_field;
  result.saga_id = req.saga_id;
  if (!record) {
    result.mensaje = "nada que compensar: la operación no se había realizado";
  } else {
    result.id = id;
    if (record->estado == spec.active) {
      record->estado = spec.undone;
      on_undo(*record);
      tx.put(spec.table, id, std::move(*record));
      result.mensaje = "compensación aplicada";
    } else if (record->estado == spec.undone) {
      result.mensaje = "ya estaba compensada";
    } else {
      throw conflict(std::string(id_field_name(spec.id_field)) + " '" + id + "' is '" + to_string(record->estado) +
                     "' and cannot be compensated");
    }
    result.estado = to_string(spec.undone);
  }
  if (!comp_key.empty()) tx.put(Table::Idempotency, comp_key, result);
  return result;
}

template <typename Rec>
std::vector<Rec> records_of(Tx& tx, Table t) {
  std::vector<Rec> out;
  tx.for_each(t, [&](const std::string&, const Record& r) {
    if (const auto* v = std::get_if<Rec>(&r)) out.push_back(*v);
  });
  return out;
}

void keys_of(Tx& tx, ServiceData& d) {
  tx.for_each(Table::Idempotency, [&](const std::string& k, const Record& r) {
    if (const auto* v = std::get_if<Receipt>(&r)) d.idempotency.emplace_back(k, *v);
  });
  tx.for_each(Table::Tombstones, [&](const std::string& k, const Record&) { d.tombstones.push_back(k); });
}

Reply listing(ServiceData d) {
  Reply out;
  out.data = std::make_shared<const ServiceData>(std::move(d));
  return out;
}

// ---------------------------------------------------------------------------

class Catalogo final : public ServiceLogic {
 public:
  explicit Catalogo(std::vector<Product> c) : base_(c), catalog_(std::move(c)) {}
  std::string name() const override { return "ms-catalogo"; }
  std::vector<Endpoint> endpoints() const override {
    return {{"GET", "/producto", "producto", "", false},
            {"GET", "/catalogo_completo", "catalogo_completo", "", false},
            {"GET", R"(/producto/([^/]+))", "producto_id", "id", false},
            {"GET", R"(/buscar/([^/]+))", "buscar", "nombre", false}};
  }
  void init(Tx&) const override {}
  ServiceData data(Tx&) const override {
    ServiceData d;
    d.catalog = catalog_;
    return d;
  }

 protected:
  Reply dispatch(Tx&, const Request& req) const override {
    const auto* q = std::get_if<ProductQuery>(&req.body);
    if (!q) throw bad_request("a catalog lookup needs a product query");
    Reply out;
    switch (q->kind) {
      case ProductQuery::Kind::First:
        out.products = {catalog_.front()};
        return out;
      case ProductQuery::Kind::All:
        out.products = catalog_;
        out.listing = true;
        return out;
      case ProductQuery::Kind::ById:
        for (const auto& p : catalog_) {
          if (p.id == q->text) {
            out.products = {p};
            return out;
          }
        }
        throw not_found("producto '" + q->text + "' no existe");
      case ProductQuery::Kind::ByName:
        if (const auto* p = find_product(catalog_, q->text)) {
          out.products = {*p};
          return out;
        }
        throw not_found("producto '" + q->text + "' no encontrado");
    }
    throw not_found("unknown lookup");
  }

 private:
  void configure(const InitialData& data) override {
    if (data.stock) throw bad_request("ms-catalogo has no initial data 'stock' to set");
    catalog_ = data.catalog ? *data.catalog : base_;
  }
  std::vector<Product> base_;
  std::vector<Product> catalog_;
};

class Compras final : public ServiceLogic {
 public:
  std::string name() const override { return "ms-compras"; }
  std::vector<Endpoint> endpoints() const override {
    return {{"POST", "/transaccion", "transaccion", "", true},
            {"POST", "/compensacion", "compensacion", "", true},
            {"POST", "/confirmacion", "confirmacion", "", true},
            {"GET", "/compras", "compras", "", false}};
  }
  void init(Tx&) const override {}
  ServiceData data(Tx& tx) const override {
    ServiceData d;
    d.compras = records_of<Compra>(tx, Table::Compras);
    keys_of(tx, d);
    return d;
  }

 protected:
  Reply dispatch(Tx& tx, const Request& req) const override {
    if (req.endpoint == "compras") return listing(data(tx));
    if (const auto* b = std::get_if<CrearCompra>(&req.body)) return ok(crear(tx, req, *b));
    if (std::holds_alternative<Compensar>(req.body))
      return ok(compensate<Compra>(
          tx, req, CompensationSpec<CompraEstado>{Table::Compras, IdField::Compra, CompraEstado::Pendiente,
                                                  CompraEstado::Cancelada},
          [](Compra&) {}));
    if (const auto* b = std::get_if<Confirmar>(&req.body)) return ok(confirmar(tx, req, *b));
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  static Receipt crear(Tx& tx, const Request& req, const CrearCompra& b) {
    auto key = forward_key(req);
    return idempotent(tx, key, [&] {
      auto id = padded("compra_", tx.next_id("compra"));
      tx.put(Table::Compras, id,
             Compra{id, b.usuario_id, b.producto, b.cantidad, round_cents(b.monto), CompraEstado::Pendiente,
                    req.saga_id, key});
      return created(IdField::Compra, id, "Compra registrada", req);
    });
  }

  static Receipt confirmar(Tx& tx, const Request& req, const Confirmar& b) {
    return idempotent(tx, req.idempotency_key, [&] {
      const auto* found = tx.get<Compra>(Table::Compras, b.compra_id);
      if (!found) throw not_found("compra_id '" + b.compra_id + "' does not exist");
      if (found->estado == CompraEstado::Cancelada)
        throw conflict("compra '" + b.compra_id + "' was cancelled; it cannot be confirmed");
      if (found->estado != CompraEstado::Confirmada) {
        Compra rec = *found;
        rec.estado = CompraEstado::Confirmada;
        tx.put(Table::Compras, b.compra_id, std::move(rec));
      }
      Receipt r = created(IdField::Compra, b.compra_id, "Compra confirmada", req);
      r.kind = ReceiptKind::Confirmed;
      r.estado = "confirmada";
      return r;
    });
  }
};

class Pagos final : public ServiceLogic {
 public:
  std::string name() const override { return "ms-pagos"; }
  std::vector<Endpoint> endpoints() const override {
    return {{"POST", "/transaccion", "transaccion", "", true},
            {"POST", "/compensacion", "compensacion", "", true},
            {"GET", "/pagos", "pagos", "", false}};
  }
  void init(Tx&) const override {}
  ServiceData data(Tx& tx) const override {
    ServiceData d;
    d.pagos = records_of<Pago>(tx, Table::Pagos);
    keys_of(tx, d);
    return d;
  }

 protected:
  Reply dispatch(Tx& tx, const Request& req) const override {
    if (req.endpoint == "pagos") return listing(data(tx));
    if (const auto* b = std::get_if<Cobrar>(&req.body)) return ok(cobrar(tx, req, *b));
    if (std::holds_alternative<Compensar>(req.body))
      return ok(compensate<Pago>(
          tx, req,
          CompensationSpec<PagoEstado>{Table::Pagos, IdField::Pago, PagoEstado::Aprobado, PagoEstado::Reembolsado},
          [](Pago&) {}));
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  static Receipt cobrar(Tx& tx, const Request& req, const Cobrar& b) {
    auto key = forward_key(req);
    return idempotent(tx, key, [&] {
      auto id = padded("pago_", tx.next_id("pago"));
      tx.put(Table::Pagos, id,
             Pago{id, b.usuario_id, round_cents(b.monto), b.compra_id, PagoEstado::Aprobado, req.now_ms, req.saga_id,
                  key});
      return created(IdField::Pago, id, "Pago aprobado", req);
    });
  }
};

class Inventario final : public ServiceLogic {
 public:
  Inventario(std::vector<Product> c, std::map<std::string, std::int64_t> s)
      : base_catalog_(c), base_stock_(s), catalog_(std::move(c)), stock_(std::move(s)) {}
  std::string name() const override { return "ms-inventario"; }
  std::vector<Endpoint> endpoints() const override {
    return {{"POST", "/transaccion", "transaccion", "", true},
            {"POST", "/compensacion", "compensacion", "", true},
            {"GET", "/inventario", "inventario", "", false}};
  }
  void init(Tx& tx) const override {
    for (const auto& [k, n] : stock_) tx.put(Table::Stock, k, StockLevel{n, n, 0});
  }
  ServiceData data(Tx& tx) const override {
    ServiceData d;
    tx.for_each(Table::Stock, [&](const std::string& k, const Record& r) {
      if (const auto* v = std::get_if<StockLevel>(&r)) d.stock.emplace_back(k, *v);
    });
    d.reservas = records_of<Reserva>(tx, Table::Reservas);
    keys_of(tx, d);
    return d;
  }

 protected:
  Reply dispatch(Tx& tx, const Request& req) const override {
    if (req.endpoint == "inventario") return listing(data(tx));
    if (const auto* b = std::get_if<Reservar>(&req.body)) return ok(reservar(tx, req, *b));
    if (std::holds_alternative<Compensar>(req.body)) {
      return ok(compensate<Reserva>(
          tx, req,
          CompensationSpec<ReservaEstado>{Table::Reservas, IdField::Reserva, ReservaEstado::Reservada,
                                          ReservaEstado::Liberada},
          [&](Reserva& r) {
            StockLevel s = *tx.get<StockLevel>(Table::Stock, r.producto);
            s.stock += r.cantidad;
            s.reservado -= r.cantidad;
            tx.put(Table::Stock, r.producto, s);
          }));
    }
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  std::string resolve(Tx& tx, const Reservar& b) const {
    const std::string& q = b.producto_id.empty() ? b.producto : b.producto_id;
    if (tx.find(Table::Stock, q)) return q;
    if (const auto* p = find_product(catalog_, q)) {
      auto key = inventory_key(p->nombre);
      if (tx.find(Table::Stock, key)) return key;
    }
    auto upper = inventory_key(q);
    if (tx.find(Table::Stock, upper)) return upper;
    throw not_found("producto '" + q + "' no existe en el inventario");
  }

  Receipt reservar(Tx& tx, const Request& req, const Reservar& b) const {
    auto key = resolve(tx, b);
    auto fkey = forward_key(req);
    return idempotent(tx, fkey, [&] {
      StockLevel s = *tx.get<StockLevel>(Table::Stock, key);
      if (s.stock < b.cantidad)
        throw conflict("stock insuficiente de " + key + ": hay " + std::to_string(s.stock) + ", se piden " +
                       std::to_string(b.cantidad));
      s.stock -= b.cantidad;
      s.reservado += b.cantidad;
      tx.put(Table::Stock, key, s);
      auto id = padded("reserva_", tx.next_id("reserva"));
      tx.put(Table::Reservas, id, Reserva{id, key, b.cantidad, ReservaEstado::Reservada, req.saga_id, fkey});
      Receipt r = created(IdField::Reserva, id, "Stock reservado", req);
      r.producto = key;
      r.cantidad = b.cantidad;
      return r;
    });
  }

  // A stock given with the start's catalog adjusts the products it names (the others keep their
  // start's stock) and must name only those; with another catalog it is the whole stock.
  void configure(const InitialData& data) override {
    auto stock = base_stock_;
    if (data.stock && data.catalog) stock = *data.stock;
    if (data.stock && !data.catalog) {
      for (const auto& [k, n] : *data.stock) {
        if (!base_stock_.count(k)) {
          std::string known;
          for (const auto& [b, m] : base_stock_) known += (known.empty() ? "" : ", ") + b;
          throw bad_request("unknown product '" + k + "' in stock; the products are: " + known);
        }
        stock[k] = n;
      }
    }
    catalog_ = data.catalog ? *data.catalog : base_catalog_;
    stock_ = std::move(stock);
  }

  std::vector<Product> base_catalog_;
  std::map<std::string, std::int64_t> base_stock_;
  std::vector<Product> catalog_;
  std::map<std::string, std::int64_t> stock_;
};

}  // namespace

std::unique_ptr<ServiceLogic> make_catalogo(std::vector<Product> catalog) {
  return std::make_unique<Catalogo>(std::move(catalog));
}
std::unique_ptr<ServiceLogic> make_compras() { return std::make_unique<Compras>(); }
std::unique_ptr<ServiceLogic> make_pagos() { return std::make_unique<Pagos>(); }
std::unique_ptr<ServiceLogic> make_inventario(std::vector<Product> catalog,
                                              std::map<std::string, std::int64_t> stock) {
  return std::make_unique<Inventario>(std::move(catalog), std::move(stock));
}

}  // namespace sagalab
