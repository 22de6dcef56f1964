// Fuzzes fault-rule parsing and matching: any JSON is either refused with a
// 400 or becomes rules that match without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sagalab/errors.hpp"
#include "sagalab/faults.hpp"
#include "sagalab/json_codec.hpp"

using namespace sagalab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Json j = Json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  FaultSet set(size);
  try {
    set.add(parse_fault_rules(j, {"transaccion", "compensacion", "confirmacion"}));
  } catch (const ClientError& e) {
    if (e.status() != 400) std::abort();
    if (!set.empty()) std::abort();  // a refused list adds nothing
    return 0;
  }
  for (int i = 0; i < 16; ++i) {
    auto f = set.match({i % 2 ? "transaccion" : "compensacion", i % 3 ? "s1" : "s2", i % 4, i});
    if (f && f->delay_ms < 0) std::abort();
  }
  rules_json(set).dump();
  fired_json(set).dump();
  return 0;
}
