// The domain logic of catalogo, compras, pagos and inventario, with the
// idempotency rules of DESIGN.md: a repeated key replays its first answer, a
// compensation leaves a tombstone that refuses a late forward call with 409.
#include "sagalab/domain.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "sagalab/errors.hpp"

namespace sagalab {

Json to_json(const Product& p) {
  return {{"id", p.id}, {"nombre", p.nombre}, {"precio", p.precio}, {"categoria", p.categoria}};
}

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

std::vector<Product> parse_catalog(const Json& j) {
  if (!j.is_array() || j.empty()) throw std::invalid_argument("catalog must be a non-empty JSON list");
  std::vector<Product> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    auto where = "catalog[" + std::to_string(i) + "]";
    if (!e.is_object()) throw std::invalid_argument(where + " must be an object");
    for (const char* f : {"id", "nombre", "categoria"}) {
      if (!e.contains(f) || !e[f].is_string() || e[f].get<std::string>().empty())
        throw std::invalid_argument(where + "." + f + " must be a non-empty string");
    }
    if (!e.contains("precio") || !e["precio"].is_number() || e["precio"].get<double>() <= 0)
      throw std::invalid_argument(where + ".precio must be a positive number");
    out.push_back({e["id"], e["nombre"], e["precio"], e["categoria"]});
  }
  return out;
}

std::map<std::string, std::int64_t> parse_stock(const Json& j) {
  if (!j.is_object() || j.empty())
    throw std::invalid_argument("stock must be a JSON object such as {\"LAPTOP\": 5}");
  std::map<std::string, std::int64_t> out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      throw std::invalid_argument("stock." + k + " must be a non-negative integer");
    out[k] = v.get<std::int64_t>();
  }
  return out;
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

namespace input {

const Json& object(const Json& body) {
  if (!body.is_object()) throw bad_request("the body must be a JSON object");
  return body;
}

std::string string_field(const Json& body, const std::string& field, bool required,
                         std::size_t max_len) {
  if (!body.contains(field) || body[field].is_null()) {
    if (required) throw bad_request("missing field '" + field + "'");
    return "";
  }
  if (!body[field].is_string()) throw bad_request("field '" + field + "' must be a string");
  auto s = body[field].get<std::string>();
  if (required && s.empty()) throw bad_request("field '" + field + "' must not be empty");
  if (s.size() > max_len)
    throw bad_request("field '" + field + "' is longer than " + std::to_string(max_len) + " characters");
  return s;
}

std::int64_t int_field(const Json& body, const std::string& field, std::int64_t dflt,
                       std::int64_t lo, std::int64_t hi) {
  if (!body.contains(field) || body[field].is_null()) return dflt;
  const auto& v = body[field];
  bool integral = v.is_number_integer() ||
                  (v.is_number_float() && std::isfinite(v.get<double>()) &&
                   std::floor(v.get<double>()) == v.get<double>() && std::fabs(v.get<double>()) < 1e15);
  if (!integral) throw bad_request("field '" + field + "' must be an integer");
  auto n = v.is_number_float() ? static_cast<std::int64_t>(v.get<double>())
                               : (v.is_number_unsigned() && v.get<std::uint64_t>() > 1ULL << 62
                                      ? hi + 1
                                      : v.get<std::int64_t>());
  if (n < lo || n > hi)
    throw bad_request("field '" + field + "' must be between " + std::to_string(lo) + " and " +
                      std::to_string(hi));
  return n;
}

double number_field(const Json& body, const std::string& field, double dflt, double lo, double hi,
                    bool required) {
  if (!body.contains(field) || body[field].is_null()) {
    if (required) throw bad_request("missing field '" + field + "'");
    return dflt;
  }
  if (!body[field].is_number()) throw bad_request("field '" + field + "' must be a number");
  double d = body[field].get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    char buf[120];
    std::snprintf(buf, sizeof buf, "field '%s' must be between %g and %g", field.c_str(), lo, hi);
    throw bad_request(buf);
  }
  return d;
}

}  // namespace input

// ---------------------------------------------------------------------------
// ServiceLogic

Response ServiceLogic::handle(Store& store, const Request& req) const {
  Response res;
  store.transact([&](Tx& tx) {
    try {
      res.body = dispatch(tx, req);
      res.status = 200;
      return true;
    } catch (const ClientError& e) {
      res.status = e.status();
      res.body = {{"success", false}, {"error", e.what()}};
      return false;
    }
  });
  return res;
}

void ServiceLogic::ensure_initialised(Store& store) const {
  store.transact([&](Tx& tx) {
    if (tx.get("_meta", "initialised")) return false;
    init(tx);
    tx.put("_meta", "initialised", true);
    return true;
  });
}

void ServiceLogic::reset(Store& store) const {
  store.transact([&](Tx& tx) {
    tx.clear_all();
    init(tx);
    tx.put("_meta", "initialised", true);
    return true;
  });
}

void ServiceLogic::configure(const Json& data) {
  for (const auto& [k, v] : data.items()) {
    (void)v;
    throw bad_request(name() + " has no initial data '" + k + "' to set");
  }
}

void ServiceLogic::reset(Store& store, const Json& data) {
  if (!data.is_object()) throw bad_request("the reset body must be a JSON object");
  store.transact([&](Tx& tx) {
    configure(data);
    tx.clear_all();
    init(tx);
    tx.put("_meta", "initialised", true);
    return true;
  });
}

namespace {

Json checked(const Json& data, const char* key) { return data.contains(key) ? data[key] : Json(nullptr); }

std::string padded(const std::string& prefix, std::int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(n));
  return prefix + buf;
}

double round_cents(double v) { return std::round(v * 100.0) / 100.0; }

// The key that makes a forward call idempotent.
std::string forward_key(const Request& r) {
  if (!r.idempotency_key.empty()) return r.idempotency_key;
  if (!r.saga_id.empty()) return r.saga_id + ":" + r.endpoint;
  return "";
}

std::string saga_of(const Request& r) {
  if (!r.saga_id.empty()) return r.saga_id;
  if (r.body.is_object() && r.body.contains("saga_id") && r.body["saga_id"].is_string())
    return r.body["saga_id"];
  return "";
}

// Runs make() once per key: a repeat replays the stored answer; a key whose
// compensation already ran is refused, so a late forward call changes nothing.
template <typename F>
Json idempotent(Tx& tx, const std::string& key, F make) {
  if (key.empty()) return make();
  if (tx.get("tombstones", key))
    throw conflict("operation '" + key + "' was already compensated; refusing the late request");
  if (auto prev = tx.get("idempotency", key)) return *prev;
  Json result = make();
  tx.put("idempotency", key, result);
  return result;
}

// The common shape of every compensation: find the record by its id or by the
// forward call's key, tombstone that key, and move the record to `undone`
// unless it is there already. Compensating what never happened is a no-op.
struct CompensationSpec {
  std::string coll;       // e.g. "compras"
  std::string id_field;   // e.g. "compra_id"
  std::string active;     // state that can be undone, e.g. "pendiente"
  std::string undone;     // e.g. "cancelada"
  std::string forward_endpoint = "transaccion";
};

template <typename OnUndo>
Json compensate(Tx& tx, const Request& req, const CompensationSpec& spec, OnUndo on_undo) {
  const auto& body = input::object(req.body);
  auto id = input::string_field(body, spec.id_field, false);
  auto fwd = input::string_field(body, "forward_key", false, 300);
  auto saga = saga_of(req);
  if (id.empty() && fwd.empty() && saga.empty())
    throw bad_request("missing field '" + spec.id_field + "' (or 'forward_key' / 'saga_id')");
  if (fwd.empty() && id.empty()) fwd = saga + ":" + spec.forward_endpoint;

  auto comp_key = req.idempotency_key;
  if (!comp_key.empty()) {
    if (auto prev = tx.get("idempotency", comp_key)) return *prev;
  }

  std::optional<Json> record;
  if (!id.empty()) {
    record = tx.get(spec.coll, id);
    if (!record) throw not_found(spec.id_field + " '" + id + "' does not exist");
    if (fwd.empty() && record->contains("idempotency_key"))
      fwd = (*record)["idempotency_key"].get<std::string>();
  } else if (auto first = tx.get("idempotency", fwd)) {
    if (first->contains(spec.id_field)) {
      id = (*first)[spec.id_field].get<std::string>();
      record = tx.get(spec.coll, id);
    }
  }
  if (!fwd.empty()) tx.put("tombstones", fwd, Json{{"at_ms", req.now_ms}, {"saga_id", saga}});

  Json result{{"success", true}, {spec.id_field, record ? Json(id) : Json(nullptr)}};
  if (!record) {
    result["estado"] = nullptr;
    result["mensaje"] = "nada que compensar: la operación no se había realizado";
  } else {
    auto estado = (*record)["estado"].get<std::string>();
    if (estado == spec.active) {
      (*record)["estado"] = spec.undone;
      on_undo(*record);
      tx.put(spec.coll, id, *record);
      result["mensaje"] = "compensación aplicada";
    } else if (estado == spec.undone) {
      result["mensaje"] = "ya estaba compensada";
    } else {
      throw conflict(spec.id_field + " '" + id + "' is '" + estado + "' and cannot be compensated");
    }
    result["estado"] = spec.undone;
  }
  if (!comp_key.empty()) tx.put("idempotency", comp_key, result);
  return result;
}

Json records_of(Tx& tx, const std::string& coll) {
  Json arr = Json::array();
  for (auto& [k, v] : tx.list(coll)) {
    Json r = v;
    r.erase("idempotency_key");
    arr.push_back(std::move(r));
  }
  return arr;
}

Json keys_state(Tx& tx) {
  Json keys = Json::object();
  for (auto& [k, v] : tx.list("idempotency")) keys[k] = v;
  Json tombs = Json::array();
  for (auto& [k, v] : tx.list("tombstones")) tombs.push_back(k);
  return {{"idempotency", keys}, {"tombstones", tombs}};
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
  Json state(Tx&) const override { return {{"productos", all()}, {"total", catalog_.size()}}; }

 protected:
  Json dispatch(Tx&, const Request& req) const override {
    if (req.endpoint == "producto") return to_json(catalog_.front());
    if (req.endpoint == "catalogo_completo") return {{"productos", all()}, {"total", catalog_.size()}};
    if (req.endpoint == "producto_id") {
      const auto& id = req.params.at("id");
      for (const auto& p : catalog_) {
        if (p.id == id) return to_json(p);
      }
      throw not_found("producto '" + id + "' no existe");
    }
    if (req.endpoint == "buscar") {
      const auto& q = req.params.at("nombre");
      if (const auto* p = find_product(catalog_, q)) return to_json(*p);
      throw not_found("producto '" + q + "' no encontrado");
    }
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  void configure(const Json& data) override {
    for (const auto& [k, v] : data.items()) {
      (void)v;
      if (k != "catalog") throw bad_request("ms-catalogo has no initial data '" + k + "' to set");
    }
    catalog_ = parse_or_400(checked(data, "catalog"), base_);
  }
  static std::vector<Product> parse_or_400(const Json& j, const std::vector<Product>& dflt) {
    if (j.is_null()) return dflt;
    try {
      return parse_catalog(j);
    } catch (const std::invalid_argument& e) {
      throw bad_request(e.what());
    }
  }
  Json all() const {
    Json arr = Json::array();
    for (const auto& p : catalog_) arr.push_back(to_json(p));
    return arr;
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
  Json state(Tx& tx) const override {
    auto s = list(tx);
    s["claves"] = keys_state(tx);
    return s;
  }

 protected:
  Json dispatch(Tx& tx, const Request& req) const override {
    if (req.endpoint == "compras") return list(tx);
    if (req.endpoint == "transaccion") return crear(tx, req);
    if (req.endpoint == "compensacion")
      return compensate(tx, req, {"compras", "compra_id", "pendiente", "cancelada"}, [](Json&) {});
    if (req.endpoint == "confirmacion") return confirmar(tx, req);
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  static Json list(Tx& tx) {
    auto arr = records_of(tx, "compras");
    std::int64_t activas = 0;
    for (const auto& c : arr) {
      if (c["estado"] != "cancelada") ++activas;
    }
    return {{"compras", arr}, {"total_activas", activas}, {"total_general", arr.size()}};
  }

  static Json crear(Tx& tx, const Request& req) {
    const auto& body = input::object(req.body);
    auto usuario = input::string_field(body, "usuario_id", true, 128);
    if (!body.contains("producto") || !(body["producto"].is_string() || body["producto"].is_object()))
      throw bad_request("field 'producto' must be a product name or a product object");
    Json producto = body["producto"];
    if (producto.is_string() && (producto.get<std::string>().empty() || producto.get<std::string>().size() > 200))
      throw bad_request("field 'producto' must be 1 to 200 characters");
    if (producto.is_object() && producto.dump().size() > 1000)
      throw bad_request("field 'producto' is too large");
    auto cantidad = input::int_field(body, "cantidad", 1, 1, kMaxCantidad);
    auto monto = input::number_field(body, "monto", 0, 0, kMaxMonto, false);
    auto key = forward_key(req);
    return idempotent(tx, key, [&] {
      auto id = padded("compra_", tx.next_id("compra"));
      Json rec{{"compra_id", id},   {"usuario_id", usuario}, {"producto", producto},
               {"cantidad", cantidad}, {"monto", round_cents(monto)}, {"estado", "pendiente"},
               {"saga_id", saga_of(req)}, {"idempotency_key", key}};
      tx.put("compras", id, rec);
      return Json{{"success", true}, {"compra_id", id}, {"mensaje", "Compra registrada"}};
    });
  }

  static Json confirmar(Tx& tx, const Request& req) {
    const auto& body = input::object(req.body);
    auto id = input::string_field(body, "compra_id", true);
    return idempotent(tx, req.idempotency_key, [&] {
      auto rec = tx.get("compras", id);
      if (!rec) throw not_found("compra_id '" + id + "' does not exist");
      auto estado = (*rec)["estado"].get<std::string>();
      if (estado == "cancelada") throw conflict("compra '" + id + "' was cancelled; it cannot be confirmed");
      if (estado != "confirmada") {
        (*rec)["estado"] = "confirmada";
        tx.put("compras", id, *rec);
      }
      return Json{{"success", true}, {"compra_id", id}, {"estado", "confirmada"},
                  {"mensaje", "Compra confirmada"}};
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
  Json state(Tx& tx) const override {
    auto s = list(tx);
    s["claves"] = keys_state(tx);
    return s;
  }

 protected:
  Json dispatch(Tx& tx, const Request& req) const override {
    if (req.endpoint == "pagos") return list(tx);
    if (req.endpoint == "transaccion") return cobrar(tx, req);
    if (req.endpoint == "compensacion")
      return compensate(tx, req, {"pagos", "pago_id", "aprobado", "reembolsado"}, [](Json&) {});
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  static Json list(Tx& tx) {
    auto arr = records_of(tx, "pagos");
    return {{"pagos", arr}, {"total", arr.size()}};
  }

  static Json cobrar(Tx& tx, const Request& req) {
    const auto& body = input::object(req.body);
    auto usuario = input::string_field(body, "usuario_id", true, 128);
    auto monto = input::number_field(body, "monto", 0, 0.01, kMaxMonto, true);
    auto compra = input::string_field(body, "compra_id", false);
    auto key = forward_key(req);
    return idempotent(tx, key, [&] {
      auto id = padded("pago_", tx.next_id("pago"));
      Json rec{{"pago_id", id},          {"usuario_id", usuario},
               {"monto", round_cents(monto)}, {"compra_id", compra},
               {"estado", "aprobado"},     {"fecha", iso_time(req.now_ms)},
               {"saga_id", saga_of(req)},  {"idempotency_key", key}};
      tx.put("pagos", id, rec);
      return Json{{"success", true}, {"pago_id", id}, {"mensaje", "Pago aprobado"}};
    });
  }
};

class Inventario final : public ServiceLogic {
 public:
  Inventario(std::vector<Product> c, std::map<std::string, std::int64_t> s, bool defect)
      : base_catalog_(c), base_stock_(s), catalog_(std::move(c)), stock_(std::move(s)), non_idempotent_(defect) {}
  std::string name() const override { return "ms-inventario"; }
  std::vector<Endpoint> endpoints() const override {
    return {{"POST", "/transaccion", "transaccion", "", true},
            {"POST", "/compensacion", "compensacion", "", true},
            {"GET", "/inventario", "inventario", "", false}};
  }
  void init(Tx& tx) const override {
    for (const auto& [k, n] : stock_) tx.put("stock", k, {{"inicial", n}, {"stock", n}, {"reservado", 0}});
  }
  Json state(Tx& tx) const override {
    Json stock = Json::object();
    for (auto& [k, v] : tx.list("stock")) stock[k] = v;
    return {{"stock", stock}, {"reservas", records_of(tx, "reservas")}, {"claves", keys_state(tx)}};
  }

 protected:
  Json dispatch(Tx& tx, const Request& req) const override {
    if (req.endpoint == "inventario") {
      Json out = Json::object();
      for (auto& [k, v] : tx.list("stock")) out[k] = {{"stock", v["stock"]}, {"reservado", v["reservado"]}};
      return out;
    }
    if (req.endpoint == "transaccion") return reservar(tx, req);
    if (req.endpoint == "compensacion") {
      return compensate(tx, req, {"reservas", "reserva_id", "reservada", "liberada"}, [&](Json& r) {
        auto key = r["producto"].get<std::string>();
        auto s = *tx.get("stock", key);
        auto n = r["cantidad"].get<std::int64_t>();
        s["stock"] = s["stock"].get<std::int64_t>() + n;
        s["reservado"] = s["reservado"].get<std::int64_t>() - n;
        tx.put("stock", key, s);
      });
    }
    throw not_found("unknown endpoint " + req.endpoint);
  }

 private:
  std::string resolve(Tx& tx, const Json& body) const {
    std::string q;
    if (body.contains("producto_id") && !body["producto_id"].is_null()) {
      q = input::string_field(body, "producto_id", true);
    } else if (body.contains("producto") && body["producto"].is_object()) {
      const auto& p = body["producto"];
      q = p.contains("id") && p["id"].is_string() ? p["id"].get<std::string>()
          : p.contains("nombre") && p["nombre"].is_string() ? p["nombre"].get<std::string>()
                                                            : "";
      if (q.empty()) throw bad_request("field 'producto' must carry an 'id' or a 'nombre'");
    } else {
      q = input::string_field(body, "producto", false);
      if (q.empty()) throw bad_request("missing field 'producto' (or 'producto_id')");
    }
    if (tx.get("stock", q)) return q;
    if (const auto* p = find_product(catalog_, q)) {
      auto key = inventory_key(p->nombre);
      if (tx.get("stock", key)) return key;
    }
    auto upper = inventory_key(q);
    if (tx.get("stock", upper)) return upper;
    throw not_found("producto '" + q + "' no existe en el inventario");
  }

  Json reservar(Tx& tx, const Request& req) const {
    const auto& body = input::object(req.body);
    auto key = resolve(tx, body);
    auto cantidad = input::int_field(body, "cantidad", 1, 1, kMaxCantidad);
    auto fkey = forward_key(req);
    return idempotent(tx, non_idempotent_ ? std::string() : fkey, [&] {
      auto s = *tx.get("stock", key);
      auto disponible = s["stock"].get<std::int64_t>();
      if (disponible < cantidad)
        throw conflict("stock insuficiente de " + key + ": hay " + std::to_string(disponible) +
                       ", se piden " + std::to_string(cantidad));
      s["stock"] = disponible - cantidad;
      s["reservado"] = s["reservado"].get<std::int64_t>() + cantidad;
      tx.put("stock", key, s);
      auto id = padded("reserva_", tx.next_id("reserva"));
      tx.put("reservas", id,
             {{"reserva_id", id}, {"producto", key}, {"cantidad", cantidad}, {"estado", "reservada"},
              {"saga_id", saga_of(req)}, {"idempotency_key", fkey}});
      return Json{{"success", true}, {"reserva_id", id}, {"producto", key}, {"cantidad", cantidad},
                  {"mensaje", "Stock reservado"}};
    });
  }

  void configure(const Json& data) override {
    for (const auto& [k, v] : data.items()) {
      (void)v;
      if (k != "catalog" && k != "stock") throw bad_request("ms-inventario has no initial data '" + k + "' to set");
    }
    try {
      auto catalog = data.contains("catalog") ? parse_catalog(data["catalog"]) : base_catalog_;
      auto stock = data.contains("stock") ? parse_stock(data["stock"]) : base_stock_;
      catalog_ = std::move(catalog);
      stock_ = std::move(stock);
    } catch (const std::invalid_argument& e) {
      throw bad_request(e.what());
    }
  }

  std::vector<Product> base_catalog_;
  std::map<std::string, std::int64_t> base_stock_;
  std::vector<Product> catalog_;
  std::map<std::string, std::int64_t> stock_;
  bool non_idempotent_ = false;
};

}  // namespace

std::unique_ptr<ServiceLogic> make_catalogo(std::vector<Product> catalog) {
  return std::make_unique<Catalogo>(std::move(catalog));
}
std::unique_ptr<ServiceLogic> make_compras() { return std::make_unique<Compras>(); }
std::unique_ptr<ServiceLogic> make_pagos() { return std::make_unique<Pagos>(); }
std::unique_ptr<ServiceLogic> make_inventario(std::vector<Product> catalog,
                                              std::map<std::string, std::int64_t> stock,
                                              bool non_idempotent_reservation) {
  return std::make_unique<Inventario>(std::move(catalog), std::move(stock), non_idempotent_reservation);
}

}  // namespace sagalab
