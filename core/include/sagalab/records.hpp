// The typed values of the core: products, the services' records, the requests
// they accept and the answers they give. JSON appears only where these are
// read or written at an edge (json_codec.hpp); the domain logic, the engine
// and the simulator pass these structs around.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sagalab {

struct Product {
  std::string id;
  std::string nombre;
  double precio = 0;
  std::string categoria;
  bool operator==(const Product&) const = default;
};

enum class CompraEstado : std::uint8_t { Pendiente, Confirmada, Cancelada };
enum class PagoEstado : std::uint8_t { Aprobado, Reembolsado };
enum class ReservaEstado : std::uint8_t { Reservada, Liberada };
const char* to_string(CompraEstado e);
const char* to_string(PagoEstado e);
const char* to_string(ReservaEstado e);

struct Compra {
  std::string compra_id;
  std::string usuario_id;
  std::string producto;  // the product's name
  std::int64_t cantidad = 1;
  double monto = 0;
  CompraEstado estado = CompraEstado::Pendiente;
  std::string saga_id;
  std::string idempotency_key;
};

struct Pago {
  std::string pago_id;
  std::string usuario_id;
  double monto = 0;
  std::string compra_id;
  PagoEstado estado = PagoEstado::Aprobado;
  std::int64_t fecha_ms = 0;
  std::string saga_id;
  std::string idempotency_key;
};

struct Reserva {
  std::string reserva_id;
  std::string producto;  // inventory key, e.g. "LAPTOP"
  std::int64_t cantidad = 1;
  ReservaEstado estado = ReservaEstado::Reservada;
  std::string saga_id;
  std::string idempotency_key;
};

// Any one of the three effect records, as a violation names the records behind it.
using EffectRecord = std::variant<Compra, Pago, Reserva>;

// A record as its compensation leaves it: what a compensated saga must leave (invariant 3).
inline bool undone(const Compra& c) { return c.estado == CompraEstado::Cancelada; }
inline bool undone(const Pago& p) { return p.estado == PagoEstado::Reembolsado; }
inline bool undone(const Reserva& r) { return r.estado == ReservaEstado::Liberada; }

struct StockLevel {
  std::int64_t inicial = 0;
  std::int64_t stock = 0;      // available
  std::int64_t reservado = 0;  // held by reservations not released
};

// Which id a receipt carries, and so the name of its JSON field.
enum class IdField : std::uint8_t { None, Compra, Pago, Reserva };
const char* id_field_name(IdField f);

enum class ReceiptKind : std::uint8_t { Created, Confirmed, Compensated };

// The answer of a mutating call: what a repeated idempotency key replays.
struct Receipt {
  ReceiptKind kind = ReceiptKind::Created;
  IdField id_field = IdField::None;
  std::string id;        // empty: a compensation of something that never happened
  std::string producto;  // reservations: inventory key
  std::int64_t cantidad = 0;
  std::string estado;    // confirmations and compensations: the record's state after the call
  std::string mensaje;
  std::string saga_id;
};

// A compensation's mark on the key of the forward call it undid.
struct Tombstone {
  std::int64_t at_ms = 0;
  std::string saga_id;
};

// ---- requests, parsed and checked at the edge ------------------------------

struct ProductQuery {
  enum class Kind : std::uint8_t { First, All, ById, ByName } kind = Kind::First;
  std::string text;
};
struct CrearCompra {
  std::string usuario_id;
  std::string producto;
  std::int64_t cantidad = 1;
  double monto = 0;
};
struct Confirmar {
  std::string compra_id;
};
struct Reservar {
  std::string producto_id;  // tried first
  std::string producto;     // a name or an inventory key
  std::int64_t cantidad = 1;
};
struct Cobrar {
  std::string usuario_id;
  double monto = 0;
  std::string compra_id;
};
// A compensation names the record, or the key of the forward call it undoes
// (or neither: then the saga id and the forward endpoint make that key).
struct Compensar {
  IdField id_field = IdField::None;  // which id `id` is
  std::string id;
  std::string forward_key;
};
using RequestBody = std::variant<std::monostate, ProductQuery, CrearCompra, Confirmar, Reservar, Cobrar, Compensar>;

inline constexpr std::int64_t kMaxCantidad = 1000;
inline constexpr double kMaxMonto = 1e9;

struct Request {
  std::string endpoint;         // e.g. "transaccion"
  RequestBody body;
  std::string idempotency_key;  // Idempotency-Key header, may be empty
  std::string saga_id;          // X-Saga-Id header or body.saga_id
  std::int64_t now_ms = 0;
};

// Everything a service holds, for /admin/state, the list endpoints and the
// invariant checker.
struct ServiceData {
  std::vector<Product> catalog;
  std::vector<Compra> compras;
  std::vector<Pago> pagos;
  std::vector<Reserva> reservas;
  std::vector<std::pair<std::string, StockLevel>> stock;
  std::vector<std::pair<std::string, Receipt>> idempotency;
  std::vector<std::string> tombstones;
};

// A service's answer. Mutating calls carry a receipt, catalog lookups the
// products found, list endpoints the service's data; an error its message.
struct Reply {
  int status = 200;
  std::string error;
  Receipt receipt;
  std::vector<Product> products;
  bool listing = false;  // products is the whole catalog (GET /catalogo_completo)
  std::shared_ptr<const ServiceData> data;
  bool ok() const { return status >= 200 && status < 300; }
};

}  // namespace sagalab
