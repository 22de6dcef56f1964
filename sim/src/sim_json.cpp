// A run's result as JSON (sagactl simulate --json; see the README for its shape).
#include "sagalab/checker_json.hpp"
#include "sagalab/sim.hpp"

namespace sagalab {

Json to_json(const SimResult& r, bool with_details) {
  Json j{{"seed", r.seed},
         {"sagas", r.sagas},
         {"mix", to_json(r.mix)},
         {"by_state", r.by_state},
         {"faults", r.faults_by_kind},
         {"virtual_ms", r.virtual_ms},
         {"events", r.events},
         {"takeovers", r.takeovers},
         {"live", r.live},
         {"ok", r.ok()}};
  Json vs = Json::array();
  for (const auto& v : r.violations) vs.push_back(to_json(v));
  j["violations"] = vs;
  if (with_details) {
    Json hs = Json::object();
    for (const auto& [id, log] : r.histories) {
      Json h = Json::array();
      for (const auto& e : log) h.push_back(to_json(e));
      hs[id] = h;
    }
    j["histories"] = hs;
  }
  return j;
}

}  // namespace sagalab
