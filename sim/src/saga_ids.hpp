// The simulator's saga ids: "sim-<purchase>-<try>", one per try of a
// client's request (a try the orchestrator never logged gets a new one).
// Internal to sim/src: the world, shrinking and the verdict read them.
#pragma once

#include <string>
#include <utility>

#include "sagalab/numbered.hpp"

namespace sagalab::sim_ids {

inline std::string saga_id(int idx, int attempt) {
  auto id = numbered("sim-", idx, 6);
  id += '-';
  append_number(id, attempt);
  return id;
}

// "sim-000012-1" -> (12, 1); (-1, 0) for another shape.
inline std::pair<int, int> parse_saga_id(const std::string& id) {
  if (id.size() < 7 || id.compare(0, 4, "sim-") != 0) return {-1, 0};
  std::size_t i = 4;
  auto number = [&](int& out) {
    std::size_t start = i;
    long v = 0;
    while (i < id.size() && id[i] >= '0' && id[i] <= '9' && i - start < 9) v = v * 10 + (id[i++] - '0');
    out = static_cast<int>(v);
    return i > start;
  };
  int idx = 0, attempt = 0;
  if (!number(idx) || i >= id.size() || id[i++] != '-' || !number(attempt) || i != id.size()) return {-1, 0};
  return {idx, attempt};
}

}  // namespace sagalab::sim_ids
