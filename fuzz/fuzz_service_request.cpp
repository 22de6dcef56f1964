// Fuzzes every service endpoint's request handling: the first byte picks the
// service and endpoint, the rest is the JSON body. Bad input must be refused
// with a 4xx and never crash, and stock must never go negative.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sagalab/domain.hpp"

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
    Request req;
    req.endpoint = ep.name;
    if (!ep.param.empty()) req.params[ep.param] = line;
    req.body = Json::parse(line, nullptr, false);
    if (req.body.is_discarded()) req.body = line;
    if (line.size() % 3 == 0) req.idempotency_key = "k" + std::to_string(line.size() % 5);
    auto res = logic.handle(store, req);
    if (res.status != 200 && (res.status < 400 || res.status > 499)) std::abort();
    if (!res.body.is_object()) std::abort();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  store.transact([&](Tx& tx) {
    for (const auto& [k, v] : tx.list("stock")) {
      if (v["stock"].get<std::int64_t>() < 0 || v["reservado"].get<std::int64_t>() < 0) std::abort();
    }
    return false;
  });
  return 0;
}
