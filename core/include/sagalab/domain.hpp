// The four microservices as plain logic: (store, request) -> response.
// HTTP servers and the simulator call the same ServiceLogic::handle.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sagalab/store.hpp"

namespace sagalab {

struct Product {
  std::string id;
  std::string nombre;
  double precio = 0;
  std::string categoria;
};

Json to_json(const Product& p);
std::vector<Product> default_catalog();
std::map<std::string, std::int64_t> default_stock();
// Throw std::invalid_argument naming what is wrong.
std::vector<Product> parse_catalog(const Json& j);
std::map<std::string, std::int64_t> parse_stock(const Json& j);
// "Auriculares Bluetooth" -> "AURICULARES"; "Electrónica" -> "ELECTRONICA".
std::string inventory_key(const std::string& nombre);
std::string lower_ascii(std::string s);
// Finds a product by id, by full name (case-insensitive) or by its inventory key.
const Product* find_product(const std::vector<Product>& catalog, const std::string& query);
// ISO-8601 UTC text of a Unix time in milliseconds (pure arithmetic, no clock).
std::string iso_time(std::int64_t unix_ms);

struct Request {
  std::string endpoint;                       // e.g. "transaccion"
  std::map<std::string, std::string> params;  // path parameters, e.g. {"id": "prod_001"}
  Json body;                                  // parsed JSON body (null for GET)
  std::string idempotency_key;                // Idempotency-Key header, may be empty
  std::string saga_id;                        // X-Saga-Id header or body.saga_id
  std::int64_t now_ms = 0;
};

struct Response {
  int status = 200;
  Json body;
};

struct Endpoint {
  std::string method;      // "GET" or "POST"
  std::string pattern;     // path regex, at most one capture group
  std::string name;        // used by fault rules and logs
  std::string param;       // name of the captured path parameter, if any
  bool mutating = false;
};

class ServiceLogic {
 public:
  virtual ~ServiceLogic() = default;
  virtual std::string name() const = 0;  // e.g. "ms-compras"
  virtual std::vector<Endpoint> endpoints() const = 0;
  // Writes the initial data into an empty store.
  virtual void init(Tx& tx) const = 0;
  // Everything `sagactl verify` needs, as one JSON object.
  virtual Json state(Tx& tx) const = 0;

  // Runs one request in one transaction. Bad input answers 4xx and commits nothing.
  Response handle(Store& store, const Request& req) const;
  // Ensures the initial data exists (first start) or resets to it.
  void ensure_initialised(Store& store) const;
  void reset(Store& store) const;
  // Resets to other initial data (a scenario's stock or catalog): `data` holds
  // "stock" and/or "catalog"; an empty object means the data the service
  // started with. Throws ClientError(400) on bad data, changing nothing.
  void reset(Store& store, const Json& data);

 protected:
  // Replaces the initial data; called inside a store transaction so that it
  // is serialised with every request. Default: nothing to configure.
  virtual void configure(const Json& data);

  virtual Json dispatch(Tx& tx, const Request& req) const = 0;
};

std::unique_ptr<ServiceLogic> make_catalogo(std::vector<Product> catalog);
std::unique_ptr<ServiceLogic> make_compras();
std::unique_ptr<ServiceLogic> make_pagos();
// non_idempotent_reservation plants a known bug (a retry reserves again), to
// prove that the simulator and the scenarios catch it.
std::unique_ptr<ServiceLogic> make_inventario(std::vector<Product> catalog,
                                              std::map<std::string, std::int64_t> stock,
                                              bool non_idempotent_reservation = false);

// Shared input checks: each throws a 400 ClientError that names the field.
namespace input {
const Json& object(const Json& body);
std::string string_field(const Json& body, const std::string& field, bool required,
                         std::size_t max_len = 200);
std::int64_t int_field(const Json& body, const std::string& field, std::int64_t dflt,
                       std::int64_t lo, std::int64_t hi);
double number_field(const Json& body, const std::string& field, double dflt, double lo, double hi,
                    bool required);
}  // namespace input

inline constexpr std::int64_t kMaxCantidad = 1000;
inline constexpr double kMaxMonto = 1e9;

}  // namespace sagalab
