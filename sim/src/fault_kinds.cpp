// The simulator's fault kinds (see fault_kinds.hpp).
#include "fault_kinds.hpp"

namespace sagalab::sim_world {

namespace {

FaultRule rule(FaultAction a, double p) {
  FaultRule r;
  r.action = a;
  r.probability = p;
  return r;
}

std::vector<FaultRule> error(double p, std::int64_t) {
  auto r = rule(FaultAction::Error, p);
  r.status = 503;
  return {r};
}
// A refusal: a 4xx, nothing done (stock another saga holds, say).
std::vector<FaultRule> refusal(double p, std::int64_t) {
  if (p <= 0) return {};
  auto r = rule(FaultAction::Error, p);
  r.status = 409;
  return {r};
}
std::vector<FaultRule> latency(double p, std::int64_t) {
  auto r = rule(FaultAction::Latency, p);
  r.latency_ms = 5;
  r.jitter_ms = 40;
  return {r};
}
std::vector<FaultRule> hang(double p, std::int64_t hang_ms) {
  auto r = rule(FaultAction::Hang, p);
  r.duration_ms = hang_ms;
  return {r};
}
std::vector<FaultRule> commit_then_error(double p, std::int64_t) { return {rule(FaultAction::CommitThenError, p)}; }
std::vector<FaultRule> commit_then_drop(double p, std::int64_t) { return {rule(FaultAction::CommitThenDrop, p)}; }
// Half before the service does its work, half after.
std::vector<FaultRule> crash(double p, std::int64_t) {
  return {rule(FaultAction::CrashBefore, p / 2), rule(FaultAction::CrashAfter, p / 2)};
}
// The network's: no service rule (network.cpp loses or doubles the message).
std::vector<FaultRule> network(double, std::int64_t) { return {}; }

}  // namespace

const std::vector<FaultKind>& fault_kinds() {
  static const std::vector<FaultKind> kinds = {
      {"error", &FaultMix::error, 0.5, 0.005, 0.08, false, 3, error},
      {"refusal", &FaultMix::refusal, 0.4, 0.005, 0.05, true, 3, refusal},
      {"latency", &FaultMix::latency, 0.5, 0.005, 0.08, false, 3, latency},
      {"hang", &FaultMix::hang, 0.5, 0.005, 0.05, false, 3, hang},
      {"commit-then-error", &FaultMix::commit_then_error, 0.5, 0.005, 0.08, false, 3, commit_then_error},
      {"commit-then-drop", &FaultMix::commit_then_drop, 0.5, 0.005, 0.08, false, 3, commit_then_drop},
      {"crash", &FaultMix::crash, 0.5, 0.0005, 0.01, false, 4, crash},
      {"drop", &FaultMix::drop, 0.5, 0.001, 0.05, false, 3, network},
      {"duplicate", &FaultMix::dup, 0.5, 0.001, 0.05, false, 3, network},
  };
  return kinds;
}

}  // namespace sagalab::sim_world
