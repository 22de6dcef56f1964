// The simulator's swarm parameters (see sim.hpp): each seed's fault mix, the
// fixed mix, the workload's plan and stock, and the definition the simulated
// saga runs with. Adding a fault kind: its rate here (FaultMix, swarm_mix,
// describe, to_json), its effect in sim.cpp.
#include <algorithm>
#include <cstdio>

#include "sagalab/domain.hpp"
#include "sagalab/sim.hpp"
#include "fault_kinds.hpp"

namespace sagalab {

SagaDefinition simulation_definition() {
  auto def = SagaDefinition::default_purchase();
  for (auto& s : def.steps) s.retry = RetryPolicy{3, 80, 5, 200};
  def.compensation = RetryPolicy{0, 80, 5, 400};
  def.stuck_after = 8;
  return def;
}

Json scenario_rule_json(const FaultRule& r) {
  Json j{{"action", to_string(r.action)}};
  if (!r.endpoint.empty()) j["endpoint"] = r.endpoint;
  if (!r.attempts.empty()) j["attempts"] = r.attempts;
  if (r.action == FaultAction::Error || r.action == FaultAction::CommitThenError) j["status"] = r.status;
  if (r.action == FaultAction::Latency) j["latency_ms"] = r.latency_ms;
  if (r.action == FaultAction::Hang) j["duration_ms"] = r.duration_ms;
  return j;
}

// ---------------------------------------------------------------------------
// Fault mixes

std::string FaultMix::describe() const {
  std::string out;
  char buf[120];
  for (const auto& k : sim_world::fault_kinds()) {
    std::snprintf(buf, sizeof buf, "%s %.*f, ", k.name, k.digits, this->*k.rate);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "delay 1-%lld ms, arrivals every ~%lld ms, %d product(s), stock ",
                static_cast<long long>(net_delay_ms), static_cast<long long>(arrival_gap_ms), products);
  out += buf;
  out += stock > 0 ? std::to_string(stock) : "plenty";
  std::snprintf(buf, sizeof buf, ", orchestrator crashes x%g while compensating, up at least %lld ms, stray %.2f, ",
                crash_compensating, static_cast<long long>(min_uptime_ms), stray);
  out += buf;
  std::snprintf(buf, sizeof buf, "client amounts %.2f, log writes 0-%lld ms, saga log %s", client_amount,
                static_cast<long long>(log_delay_ms), orchestrators > 1 ? "shared" : sqlite_log ? "sqlite" : "memory");
  out += buf;
  if (orchestrators > 1) {
    std::snprintf(buf, sizeof buf, ", %d orchestrators, freeze %.4f", orchestrators, freeze);
    out += buf;
  }
  return out;
}

Json to_json(const FaultMix& m) {
  Json j{{"net_delay_ms", m.net_delay_ms},
         {"arrival_gap_ms", m.arrival_gap_ms},
         {"products", m.products},
         {"stock", m.stock == 0 ? Json("plenty") : Json(m.stock)},
         {"crash_compensating", m.crash_compensating},
         {"min_uptime_ms", m.min_uptime_ms},
         {"stray", m.stray},
         {"client_amount", m.client_amount},
         {"log_delay_ms", m.log_delay_ms},
         {"saga_log", m.orchestrators > 1 ? "shared" : m.sqlite_log ? "sqlite" : "memory"},
         {"orchestrators", m.orchestrators},
         {"freeze", m.freeze}};
  for (const auto& k : sim_world::fault_kinds()) j[k.name] = m.*k.rate;
  return j;
}

FaultMix swarm_mix(std::uint64_t seed) {
  SplitMix64 r(seed * 0xD1B54A32D192ED03ULL + 0x5A5A);
  auto on = [&](double p) { return r.unit() < p; };
  auto rate = [&](double lo, double hi) { return lo + (hi - lo) * r.unit(); };
  FaultMix m;
  auto draw = [&](bool late) {
    for (const auto& k : sim_world::fault_kinds()) {
      if (k.drawn_late == late) m.*k.rate = on(k.swarm_on) ? rate(k.swarm_lo, k.swarm_hi) : 0;
    }
  };
  draw(false);
  m.net_delay_ms = r.uniform(1, 20);
  m.arrival_gap_ms = r.uniform(1, 6);
  m.products = on(0.5) ? 5 : static_cast<int>(r.uniform(1, 4));
  m.stock = on(0.4) ? r.uniform(1, 12) : 0;
  m.crash_compensating = on(0.5) ? static_cast<double>(r.uniform(4, 20)) : 1;
  m.min_uptime_ms = on(0.3) ? r.uniform(20, 100) : 300;
  draw(true);
  m.stray = on(0.4) ? rate(0.2, 1.0) : 0;
  m.client_amount = on(0.4) ? rate(0.1, 0.6) : 0;
  m.log_delay_ms = on(0.5) ? r.uniform(1, 3) : 0;
  m.orchestrators = on(0.3) ? 2 : 1;
  m.freeze = on(0.6) ? rate(0.0005, 0.005) : 0;
  return m;
}

FaultMix SimConfig::mix() const {
  FaultMix m = swarm ? swarm_mix(seed) : fixed_mix();
  if (saga_log != "sqlite" && saga_log != "mix" && saga_log != "memory")
    throw std::invalid_argument("saga log must be 'memory', 'sqlite' or 'mix', not '" + saga_log + "'");
  if (orchestrators < 0 || orchestrators > 8)
    throw std::invalid_argument("orchestrators must be 0 (the mix decides) to 8, not " + std::to_string(orchestrators));
  if (orchestrators > 1 && saga_log == "sqlite")
    throw std::invalid_argument("several orchestrators share the in-memory log with leases, not SQLite's");
  if (orchestrators > 0) {
    m.orchestrators = orchestrators;
  } else if (saga_log == "sqlite" || sagas > 200000) {
    m.orchestrators = 1;  // the shared log keeps every saga: runs of at most 200,000
  }
  if (m.orchestrators > 1) {
    m.sqlite_log = false;
  } else if (saga_log == "sqlite") {
    m.sqlite_log = true;
  } else if (saga_log == "mix") {
    m.sqlite_log = seed % 4 == 0 && sagas <= 200000;
  }
  return m;
}

FaultMix SimConfig::fixed_mix() const {
  FaultMix m;
  m.error = m.latency = m.hang = m.commit_then_error = m.commit_then_drop = fault_rate / 5.0;
  m.crash = crash_rate;
  m.drop = drop_rate;
  m.dup = dup_rate;
  m.net_delay_ms = net_delay_ms;
  m.freeze = crash_rate;  // with several orchestrators
  return m;
}

SagaPlan plan_of(const SimConfig& cfg, int idx) { return plan_of(cfg, cfg.mix(), idx); }

SagaPlan plan_of(const SimConfig& cfg, const FaultMix& mix, int idx) {
  static const auto catalog = default_catalog();
  SplitMix64 r(cfg.seed * 0xC2B2AE3D27D4EB4FULL + static_cast<std::uint64_t>(idx) * 0x165667B19E3779F9ULL + 3);
  SagaPlan p;
  p.user = "user" + std::to_string(r.uniform(1, 50));
  auto n = std::clamp<std::int64_t>(mix.products, 1, static_cast<std::int64_t>(catalog.size()));
  p.product = catalog[static_cast<std::size_t>(r.uniform(0, n - 1))].nombre;
  p.cantidad = static_cast<int>(r.uniform(1, 3));
  return p;
}

std::map<std::string, std::int64_t> stock_of(const SimConfig& cfg) {
  const auto mix = cfg.mix();
  std::map<std::string, std::int64_t> stock;
  for (const auto& [k, v] : default_stock()) {
    // Plenty: enough that most sagas can complete and the last ones compete for it.
    stock[k] = mix.stock > 0 ? mix.stock : std::max<std::int64_t>(v, cfg.sagas / 3);
  }
  return stock;
}

}  // namespace sagalab
