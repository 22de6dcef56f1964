// The four microservices as plain logic: (store, request) -> reply, on typed
// values that the edge has already parsed and checked. HTTP servers and the
// simulator call the same ServiceLogic::handle.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/records.hpp"
#include "sagalab/store.hpp"

namespace sagalab {

std::vector<Product> default_catalog();
std::map<std::string, std::int64_t> default_stock();
// "Auriculares Bluetooth" -> "AURICULARES"; "Electrónica" -> "ELECTRONICA".
std::string inventory_key(const std::string& nombre);
std::string lower_ascii(std::string s);
// Finds a product by id, by full name (case-insensitive) or by its inventory key.
const Product* find_product(const std::vector<Product>& catalog, const std::string& query);
// ISO-8601 UTC text of a Unix time in milliseconds (pure arithmetic, no clock).
std::string iso_time(std::int64_t unix_ms);

struct Endpoint {
  std::string method;      // "GET" or "POST"
  std::string pattern;     // path regex, at most one capture group
  std::string name;        // used by fault rules and logs
  std::string param;       // name of the captured path parameter, if any
  bool mutating = false;
};

// Other initial data for a reset (a scenario's stock or catalog); absent
// fields mean the data the service started with.
struct InitialData {
  std::optional<std::vector<Product>> catalog;
  std::optional<std::map<std::string, std::int64_t>> stock;
};

class ServiceLogic {
 public:
  virtual ~ServiceLogic() = default;
  virtual std::string name() const = 0;  // e.g. "ms-compras"
  virtual std::vector<Endpoint> endpoints() const = 0;
  // Writes the initial data into an empty store.
  virtual void init(Tx& tx) const = 0;
  // Everything `sagactl verify` and the list endpoints need.
  virtual ServiceData data(Tx& tx) const = 0;

  // Runs one request in one transaction. A refusal answers 4xx and commits nothing.
  Reply handle(Store& store, const Request& req) const;
  // Ensures the initial data exists (first start) or resets to it.
  void ensure_initialised(Store& store) const;
  void reset(Store& store) const;
  // Resets to other initial data. Throws ClientError(400) when this service
  // has no such data, changing nothing.
  void reset(Store& store, const InitialData& data);

 protected:
  // Replaces the initial data; called inside a store transaction so that it
  // is serialised with every request. Default: nothing to configure.
  virtual void configure(const InitialData& data);

  virtual Reply dispatch(Tx& tx, const Request& req) const = 0;
};

std::unique_ptr<ServiceLogic> make_catalogo(std::vector<Product> catalog);
std::unique_ptr<ServiceLogic> make_compras();
std::unique_ptr<ServiceLogic> make_pagos();
std::unique_ptr<ServiceLogic> make_inventario(std::vector<Product> catalog,
                                              std::map<std::string, std::int64_t> stock);

}  // namespace sagalab
