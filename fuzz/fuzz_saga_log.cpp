// Fuzzes what recovery reads: saga-log records. Any text is either refused as
// malformed or replays into a saga that recovery drives to an end; every
// record read, and the saga's snapshot, is written back by the log's own
// writer exactly as the JSON tree's dump writes it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "sagalab/json_codec.hpp"
#include "sagalab/saga.hpp"

using namespace sagalab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Json j = Json::parse(data, data + size, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return 0;
  std::vector<Event> log;
  try {
    for (const auto& e : j) log.push_back(event_from_json(e));
  } catch (const std::invalid_argument&) {
    return 0;
  }
  for (const auto& e : log) {
    if (event_text(e) != to_json(e).dump()) std::abort();
  }
  static const SagaEngine engine(SagaDefinition::default_purchase());
  SplitMix64 rng(size);
  SagaState s = engine.replay(log, rng);
  if (s.id.empty()) return 0;
  if (s.current < 0 || s.current >= static_cast<int>(s.steps.size())) std::abort();
  Event rec;
  rec.type = Event::Type::Recovered;
  auto cmds = engine.apply(s, rec, rng);
  // Drive it on with every call answered ok: it must end.
  for (int guard = 0; guard < 200 && !cmds.empty(); ++guard) {
    auto c = cmds.front();
    cmds.erase(cmds.begin());
    Event e;
    if (c.type == Command::Type::Finish) break;
    e.type = c.type == Command::Type::Call ? Event::Type::Result : Event::Type::Timer;
    e.step = c.step;
    e.attempt = c.attempt;
    e.compensation = c.compensation;
    e.outcome = Outcome::Ok;
    auto more = engine.apply(s, e, rng);
    cmds.insert(cmds.end(), more.begin(), more.end());
  }
  if (!is_terminal(s.estado) && s.estado != Estado::Atascada && (s.awaiting_call || s.awaiting_timer)) std::abort();
  if (snapshot_text(s, engine.definition()) != to_json(s, engine.definition()).dump()) std::abort();
  return 0;
}
