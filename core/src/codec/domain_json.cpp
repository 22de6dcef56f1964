// The services' JSON edge: requests parsed and checked once, answers and
// records written in the original API's shapes, the store's documents.
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "sagalab/errors.hpp"
#include "sagalab/json_codec.hpp"

namespace sagalab {

Json to_json(const Product& p) {
  return {{"id", p.id}, {"nombre", p.nombre}, {"precio", p.precio}, {"categoria", p.categoria}};
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
    if (!e.contains("precio") || !e["precio"].is_number() || !(e["precio"].get<double>() > 0) ||
        !std::isfinite(e["precio"].get<double>()))
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
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > (1ULL << 62)) ||
        v.get<std::int64_t>() < 0)
      throw std::invalid_argument("stock." + k + " must be a non-negative integer");
    out[k] = v.get<std::int64_t>();
  }
  return out;
}

InitialData parse_initial_data(const Json& j) {
  if (!j.is_object()) throw bad_request("the reset body must be a JSON object");
  InitialData d;
  for (const auto& [k, v] : j.items()) {
    try {
      if (k == "catalog") {
        d.catalog = parse_catalog(v);
      } else if (k == "stock") {
        d.stock = parse_stock(v);
      } else {
        throw bad_request("unknown initial data '" + k + "'; expected 'catalog' and/or 'stock'");
      }
    } catch (const std::invalid_argument& e) {
      throw bad_request(e.what());
    }
  }
  return d;
}

namespace input {

const Json& object(const Json& body) {
  if (!body.is_object()) throw bad_request("the body must be a JSON object");
  return body;
}

std::string string_field(const Json& body, const std::string& field, bool required, std::size_t max_len) {
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

std::int64_t int_field(const Json& body, const std::string& field, std::int64_t dflt, std::int64_t lo,
                       std::int64_t hi) {
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
    throw bad_request("field '" + field + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return n;
}

double number_field(const Json& body, const std::string& field, double dflt, double lo, double hi, bool required) {
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
// Records

namespace {

Json opt_string(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::string str(const Json& j, const char* k, bool required = true) {
  if (j.contains(k) && j[k].is_string()) return j[k].get<std::string>();
  if (!required && (!j.contains(k) || j[k].is_null())) return "";
  throw std::invalid_argument(std::string("field '") + k + "' must be a string");
}
std::int64_t integer(const Json& j, const char* k) {
  if (j.contains(k) && j[k].is_number_integer()) return j[k].get<std::int64_t>();
  throw std::invalid_argument(std::string("field '") + k + "' must be an integer");
}
double number(const Json& j, const char* k) {
  if (j.contains(k) && j[k].is_number()) return j[k].get<double>();
  throw std::invalid_argument(std::string("field '") + k + "' must be a number");
}

template <typename E>
E estado_of(const Json& j, std::initializer_list<E> values) {
  auto s = str(j, "estado");
  for (E e : values) {
    if (s == to_string(e)) return e;
  }
  throw std::invalid_argument("unknown estado '" + s + "'");
}

Compra compra_from_json(const Json& j) {
  return {str(j, "compra_id"), str(j, "usuario_id"), str(j, "producto"), integer(j, "cantidad"), number(j, "monto"),
          estado_of(j, {CompraEstado::Pendiente, CompraEstado::Confirmada, CompraEstado::Cancelada}),
          str(j, "saga_id", false), str(j, "idempotency_key", false)};
}
Pago pago_from_json(const Json& j) {
  return {str(j, "pago_id"), str(j, "usuario_id"), number(j, "monto"), str(j, "compra_id", false),
          estado_of(j, {PagoEstado::Aprobado, PagoEstado::Reembolsado}),
          j.contains("fecha_ms") ? integer(j, "fecha_ms") : 0, str(j, "saga_id", false),
          str(j, "idempotency_key", false)};
}
Reserva reserva_from_json(const Json& j) {
  return {str(j, "reserva_id"), str(j, "producto"), integer(j, "cantidad"),
          estado_of(j, {ReservaEstado::Reservada, ReservaEstado::Liberada}), str(j, "saga_id", false),
          str(j, "idempotency_key", false)};
}

IdField id_field_of(const Json& j) {
  for (auto f : {IdField::Compra, IdField::Pago, IdField::Reserva}) {
    if (j.contains(id_field_name(f))) return f;
  }
  return IdField::None;
}

Receipt receipt_from_json(const Json& j) {
  Receipt r;
  r.id_field = id_field_of(j);
  if (r.id_field != IdField::None) r.id = str(j, id_field_name(r.id_field), false);
  auto kind = j.value("_kind", std::string("created"));
  r.kind = kind == "confirmed" ? ReceiptKind::Confirmed
           : kind == "compensated" ? ReceiptKind::Compensated
                                   : ReceiptKind::Created;
  r.producto = j.contains("producto") && j["producto"].is_string() ? j["producto"].get<std::string>() : "";
  r.cantidad = j.contains("cantidad") && j["cantidad"].is_number_integer() ? j["cantidad"].get<std::int64_t>() : 0;
  r.estado = j.contains("estado") && j["estado"].is_string() ? j["estado"].get<std::string>() : "";
  r.mensaje = j.contains("mensaje") && j["mensaje"].is_string() ? j["mensaje"].get<std::string>() : "";
  r.saga_id = j.contains("saga_id") && j["saga_id"].is_string() ? j["saga_id"].get<std::string>() : "";
  return r;
}

}  // namespace

Json to_json(const Compra& r) {
  return {{"compra_id", r.compra_id}, {"usuario_id", r.usuario_id}, {"producto", r.producto},
          {"cantidad", r.cantidad},   {"monto", r.monto},           {"estado", to_string(r.estado)},
          {"saga_id", r.saga_id}};
}
Json to_json(const Pago& r) {
  return {{"pago_id", r.pago_id},    {"usuario_id", r.usuario_id},     {"monto", r.monto},
          {"compra_id", r.compra_id}, {"estado", to_string(r.estado)}, {"fecha", iso_time(r.fecha_ms)},
          {"saga_id", r.saga_id}};
}
Json to_json(const Reserva& r) {
  return {{"reserva_id", r.reserva_id}, {"producto", r.producto},  {"cantidad", r.cantidad},
          {"estado", to_string(r.estado)}, {"saga_id", r.saga_id}};
}
Json to_json(const EffectRecord& r) {
  return std::visit([](const auto& v) { return to_json(v); }, r);
}

Json to_json(const Receipt& r) {
  Json j{{"success", true}};
  const char* f = id_field_name(r.id_field);
  switch (r.kind) {
    case ReceiptKind::Created:
      if (*f) j[f] = r.id;
      if (r.id_field == IdField::Reserva) {
        j["producto"] = r.producto;
        j["cantidad"] = r.cantidad;
      }
      break;
    case ReceiptKind::Confirmed:
      if (*f) j[f] = r.id;
      j["estado"] = r.estado;
      break;
    case ReceiptKind::Compensated:
      if (*f) j[f] = opt_string(r.id);
      j["estado"] = opt_string(r.estado);
      break;
  }
  j["mensaje"] = r.mensaje;
  return j;
}

Json record_to_json(Table t, const Record& rec) {
  return std::visit(
      [t](const auto& v) -> Json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Compra> || std::is_same_v<T, Pago> || std::is_same_v<T, Reserva>) {
          Json j = to_json(v);
          j["idempotency_key"] = v.idempotency_key;
          if constexpr (std::is_same_v<T, Pago>) j["fecha_ms"] = v.fecha_ms;
          return j;
        } else if constexpr (std::is_same_v<T, StockLevel>) {
          return {{"inicial", v.inicial}, {"stock", v.stock}, {"reservado", v.reservado}};
        } else if constexpr (std::is_same_v<T, Receipt>) {
          Json j = to_json(v);
          j["saga_id"] = v.saga_id;
          j["_kind"] = v.kind == ReceiptKind::Confirmed     ? "confirmed"
                       : v.kind == ReceiptKind::Compensated ? "compensated"
                                                            : "created";
          return j;
        } else if constexpr (std::is_same_v<T, Tombstone>) {
          return {{"at_ms", v.at_ms}, {"saga_id", v.saga_id}};
        } else {
          (void)t;
          return Json(v);
        }
      },
      rec);
}

Record record_from_json(Table t, const Json& j) {
  try {
    switch (t) {
      case Table::Compras: return compra_from_json(j);
      case Table::Pagos: return pago_from_json(j);
      case Table::Reservas: return reserva_from_json(j);
      case Table::Stock: return StockLevel{integer(j, "inicial"), integer(j, "stock"), integer(j, "reservado")};
      case Table::Idempotency: return receipt_from_json(j);
      case Table::Tombstones: return Tombstone{integer(j, "at_ms"), str(j, "saga_id", false)};
      case Table::Counters:
      case Table::Meta:
        if (j.is_boolean()) return std::int64_t{j.get<bool>() ? 1 : 0};
        if (!j.is_number_integer()) throw std::invalid_argument("a counter must be an integer");
        return j.get<std::int64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed ") + table_name(t) + " record: " + e.what());
  }
  throw std::invalid_argument("unknown table");
}

// ---------------------------------------------------------------------------
// Requests and answers

namespace {

Compensar parse_compensar(const Json& body, IdField field, const std::string& saga) {
  const char* id_field = id_field_name(field);
  Compensar c;
  c.id_field = field;
  c.id = input::string_field(body, id_field, false);
  c.forward_key = input::string_field(body, "forward_key", false, 300);
  if (c.id.empty() && c.forward_key.empty() && saga.empty())
    throw bad_request(std::string("missing field '") + id_field + "' (or 'forward_key' / 'saga_id')");
  return c;
}

RequestBody parse_body_of(const std::string& service, const std::string& endpoint, const std::string& param,
                          const Json& body, const std::string& saga) {
  if (service == "ms-catalogo") {
    if (endpoint == "producto") return ProductQuery{ProductQuery::Kind::First, ""};
    if (endpoint == "catalogo_completo") return ProductQuery{ProductQuery::Kind::All, ""};
    if (endpoint == "producto_id") return ProductQuery{ProductQuery::Kind::ById, param};
    if (endpoint == "buscar") return ProductQuery{ProductQuery::Kind::ByName, param};
    return std::monostate{};
  }
  if (endpoint == "compras" || endpoint == "pagos" || endpoint == "inventario") return std::monostate{};
  const auto& b = input::object(body);
  if (service == "ms-compras") {
    if (endpoint == "transaccion") {
      CrearCompra c;
      c.usuario_id = input::string_field(b, "usuario_id", true, 128);
      if (!b.contains("producto") || !(b["producto"].is_string() || b["producto"].is_object()))
        throw bad_request("field 'producto' must be a product name or a product object");
      const Json& p = b["producto"];
      if (p.is_string()) {
        c.producto = p.get<std::string>();
        if (c.producto.empty() || c.producto.size() > 200) throw bad_request("field 'producto' must be 1 to 200 characters");
      } else {
        if (p.dump().size() > 1000) throw bad_request("field 'producto' is too large");
        c.producto = input::string_field(p, "nombre", false);
        if (c.producto.empty()) c.producto = input::string_field(p, "id", false);
        if (c.producto.empty()) throw bad_request("field 'producto' must carry an 'id' or a 'nombre'");
      }
      c.cantidad = input::int_field(b, "cantidad", 1, 1, kMaxCantidad);
      c.monto = input::number_field(b, "monto", 0, 0, kMaxMonto, false);
      return c;
    }
    if (endpoint == "confirmacion") return Confirmar{input::string_field(b, "compra_id", true)};
    if (endpoint == "compensacion") return parse_compensar(b, IdField::Compra, saga);
  } else if (service == "ms-pagos") {
    if (endpoint == "transaccion") {
      Cobrar c;
      c.usuario_id = input::string_field(b, "usuario_id", true, 128);
      c.monto = input::number_field(b, "monto", 0, 0.01, kMaxMonto, true);
      c.compra_id = input::string_field(b, "compra_id", false);
      return c;
    }
    if (endpoint == "compensacion") return parse_compensar(b, IdField::Pago, saga);
  } else if (service == "ms-inventario") {
    if (endpoint == "transaccion") {
      Reservar r;
      if (b.contains("producto_id") && !b["producto_id"].is_null()) {
        r.producto_id = input::string_field(b, "producto_id", true);
      } else if (b.contains("producto") && b["producto"].is_object()) {
        const auto& p = b["producto"];
        r.producto = p.contains("id") && p["id"].is_string()          ? p["id"].get<std::string>()
                     : p.contains("nombre") && p["nombre"].is_string() ? p["nombre"].get<std::string>()
                                                                       : "";
        if (r.producto.empty() || r.producto.size() > 200)
          throw bad_request("field 'producto' must carry an 'id' or a 'nombre'");
      } else {
        r.producto = input::string_field(b, "producto", false);
        if (r.producto.empty()) throw bad_request("missing field 'producto' (or 'producto_id')");
      }
      r.cantidad = input::int_field(b, "cantidad", 1, 1, kMaxCantidad);
      return r;
    }
    if (endpoint == "compensacion") return parse_compensar(b, IdField::Reserva, saga);
  }
  throw not_found("unknown endpoint " + endpoint);
}

}  // namespace

Request parse_request(const std::string& service, const Endpoint& ep, const std::string& path_param,
                      const Json& body, const std::string& idempotency_key, const std::string& saga_header) {
  Request r;
  r.endpoint = ep.name;
  r.idempotency_key = idempotency_key;
  if (r.idempotency_key.size() > 300) throw bad_request("Idempotency-Key longer than 300 characters");
  r.saga_id = saga_header;
  if (r.saga_id.empty() && body.is_object() && body.contains("saga_id") && body["saga_id"].is_string())
    r.saga_id = body["saga_id"];
  if (r.saga_id.size() > 200) throw bad_request("saga id longer than 200 characters");
  if (path_param.size() > 200) throw bad_request("path parameter longer than 200 characters");
  r.body = parse_body_of(service, ep.name, path_param, body, r.saga_id);
  return r;
}

Json to_json(const RequestBody& body, const std::string& saga_id) {
  return std::visit(
      [&](const auto& b) -> Json {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, std::monostate> || std::is_same_v<T, ProductQuery>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, CrearCompra>) {
          return {{"usuario_id", b.usuario_id}, {"producto", b.producto}, {"cantidad", b.cantidad},
                  {"monto", b.monto},           {"saga_id", saga_id}};
        } else if constexpr (std::is_same_v<T, Confirmar>) {
          return {{"compra_id", b.compra_id}, {"saga_id", saga_id}};
        } else if constexpr (std::is_same_v<T, Reservar>) {
          return {{"producto_id", b.producto_id}, {"producto", b.producto}, {"cantidad", b.cantidad},
                  {"saga_id", saga_id}};
        } else if constexpr (std::is_same_v<T, Cobrar>) {
          return {{"usuario_id", b.usuario_id}, {"monto", b.monto}, {"compra_id", opt_string(b.compra_id)},
                  {"saga_id", saga_id}};
        } else {
          Json j{{"forward_key", b.forward_key}, {"saga_id", saga_id}};
          if (b.id_field != IdField::None && !b.id.empty()) j[id_field_name(b.id_field)] = b.id;
          return j;
        }
      },
      body);
}

namespace {

Json listing_to_json(const std::string& endpoint, const ServiceData& d) {
  if (endpoint == "compras") {
    Json arr = Json::array();
    std::int64_t activas = 0;
    for (const auto& c : d.compras) {
      arr.push_back(to_json(c));
      if (c.estado != CompraEstado::Cancelada) ++activas;
    }
    return {{"compras", arr}, {"total_activas", activas}, {"total_general", arr.size()}};
  }
  if (endpoint == "pagos") {
    Json arr = Json::array();
    for (const auto& p : d.pagos) arr.push_back(to_json(p));
    return {{"pagos", arr}, {"total", arr.size()}};
  }
  Json out = Json::object();
  for (const auto& [k, v] : d.stock) out[k] = {{"stock", v.stock}, {"reservado", v.reservado}};
  return out;
}

Json products_json(const std::vector<Product>& ps) {
  Json arr = Json::array();
  for (const auto& p : ps) arr.push_back(to_json(p));
  return {{"productos", arr}, {"total", ps.size()}};
}

Json keys_json(const ServiceData& d) {
  Json keys = Json::object();
  for (const auto& [k, v] : d.idempotency) keys[k] = to_json(v);
  return {{"idempotency", keys}, {"tombstones", d.tombstones}};
}

}  // namespace

Json reply_to_json(const std::string&, const std::string& endpoint, const Reply& r) {
  if (!r.ok()) return {{"success", false}, {"error", r.error}};
  if (r.data) return listing_to_json(endpoint, *r.data);
  if (r.listing) return products_json(r.products);
  if (!r.products.empty()) return to_json(r.products.front());
  return to_json(r.receipt);
}

Reply reply_from_json(int status, const Json& body) {
  Reply r;
  r.status = status;
  if (!body.is_object()) return r;
  if (body.contains("error") && body["error"].is_string()) r.error = body["error"];
  auto product = [](const Json& p) -> std::optional<Product> {
    if (!p.is_object() || !p.contains("precio") || !p["precio"].is_number() || !p.contains("id") ||
        !p["id"].is_string() || !p.contains("nombre") || !p["nombre"].is_string())
      return std::nullopt;
    return Product{p["id"], p["nombre"], p["precio"],
                   p.contains("categoria") && p["categoria"].is_string() ? p["categoria"].get<std::string>() : ""};
  };
  if (body.contains("productos") && body["productos"].is_array()) {
    r.listing = true;
    for (const auto& p : body["productos"]) {
      if (auto v = product(p)) r.products.push_back(*v);
    }
  } else if (auto p = product(body)) {
    r.products.push_back(*p);
  }
  for (auto f : {IdField::Compra, IdField::Pago, IdField::Reserva}) {
    const char* name = id_field_name(f);
    if (body.contains(name)) {
      r.receipt.id_field = f;
      if (body[name].is_string()) r.receipt.id = body[name];
      break;
    }
  }
  return r;
}

Json state_to_json(const std::string& service, const ServiceData& d) {
  if (service == "ms-catalogo") return products_json(d.catalog);
  if (service == "ms-compras") {
    Json s = listing_to_json("compras", d);
    s["claves"] = keys_json(d);
    return s;
  }
  if (service == "ms-pagos") {
    Json s = listing_to_json("pagos", d);
    s["claves"] = keys_json(d);
    return s;
  }
  Json stock = Json::object();
  for (const auto& [k, v] : d.stock) stock[k] = {{"inicial", v.inicial}, {"stock", v.stock}, {"reservado", v.reservado}};
  Json reservas = Json::array();
  for (const auto& r : d.reservas) reservas.push_back(to_json(r));
  return {{"stock", stock}, {"reservas", reservas}, {"claves", keys_json(d)}};
}

}  // namespace sagalab
