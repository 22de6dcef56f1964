// Fuzzes every service endpoint's request handling, from the edge parser that
// turns a JSON body into a typed request to the logic and the answer: the
// first byte picks the service and endpoint, the rest is the JSON body. Bad
// input must be refused with a 4xx and never crash, and stock must never go
// negative.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sagalab/domain.hpp"
#include "sagalab/errors.hpp"
#include "sagalab/json_codec.hpp"

using namespace sagalab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static auto catalogo = make_catalogo(default_catalog());
  static auto compras = make_compras();
  static auto pagos = make_pagos();
  static auto inventario = make_inventario(default_catalog(), default_stock());
  ServiceLogic* services[] = {catalogo.get(), compras.get(), pagos.get(), inventario.get()};
  ServiceLogic& logic = *services[data[0] % 4];
  auto endpoints = logic.endpoints();
  const auto& ep = endpoints[(data[0] / 4) % endpoints.size()];

  MemoryStore store;
  logic.ensure_initialised(store);
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Each line is one request, so sequences (forward, compensation, repeat) are explored.
  std::size_t start = 0;
  int n = 0;
  while (start <= text.size() && n++ < 8) {
    auto end = text.find('\n', start);
    auto line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    Json body = Json::parse(line, nullptr, false);
    if (body.is_discarded()) body = line;
    std::string key = line.size() % 3 == 0 ? "k" + std::to_string(line.size() % 5) : "";
    Request req;
    try {
      req = parse_request(logic.name(), ep, ep.param.empty() ? "" : line, body, key, line.size() % 2 ? "s1" : "");
    } catch (const ClientError& e) {
      if (e.status() < 400 || e.status() > 499) std::abort();
      if (end == std::string::npos) break;
      start = end + 1;
      continue;
    }
    auto res = logic.handle(store, req);
    if (res.status != 200 && (res.status < 400 || res.status > 499)) std::abort();
    if (!reply_to_json(logic.name(), ep.name, res).is_object()) std::abort();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  store.transact([&](Tx& tx) {
    tx.for_each(Table::Stock, [](const std::string&, const Record& r) {
      const auto& v = std::get<StockLevel>(r);
      if (v.stock < 0 || v.reservado < 0) std::abort();
    });
    return false;
  });
  return 0;
}
