// Fault rules as data, and the matcher that decides, per request, which rule
// fires. The HTTP services, the orchestrator and the simulator share it; the
// RNG is seeded, so the same seed and requests fire the same faults.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/rng.hpp"

namespace sagalab {

enum class FaultAction { Error, Latency, Hang, CommitThenError, CommitThenDrop, CrashBefore, CrashAfter };
std::string to_string(FaultAction a);
std::optional<FaultAction> fault_action_from_string(const std::string& s);
const std::vector<std::string>& fault_action_names();

struct FaultRule {
  std::int64_t id = 0;
  std::string name;
  FaultAction action = FaultAction::Error;
  std::string endpoint;  // empty: every endpoint
  int status = 500;
  std::string message = "fallo inyectado";
  std::int64_t latency_ms = 0;
  std::int64_t jitter_ms = 0;
  std::int64_t duration_ms = 0;  // hang: how long to hold (0: 30 s)
  double probability = 1.0;
  std::int64_t times = -1;  // -1: no limit
  std::optional<std::string> saga_id;
  std::vector<int> attempts;  // empty: every attempt
  std::int64_t fired = 0;
};


struct FaultContext {
  std::string endpoint;
  std::string saga_id;
  int attempt = 0;
  std::int64_t now_ms = 0;
};

struct FiredFault {
  std::int64_t rule_id = 0;
  std::string name;
  FaultAction action = FaultAction::Error;
  std::string endpoint;
  std::string saga_id;
  int attempt = 0;
  std::int64_t at_ms = 0;
  std::int64_t delay_ms = 0;  // latency (with jitter) or hang duration
  int status = 500;
  std::string message;
};

class FaultSet {
 public:
  static constexpr std::size_t kMaxRules = 256;
  static constexpr std::size_t kMaxFiredLog = 10000;

  explicit FaultSet(std::uint64_t seed = 0) : rng_(seed) {}
  // Adds rules, all or none; returns the new ids. Throws ClientError(400) past kMaxRules.
  std::vector<std::int64_t> add(std::vector<FaultRule> rules);
  void clear() { rules_.clear(); }
  bool remove(std::int64_t id);
  void reseed(std::uint64_t seed) { rng_ = SplitMix64(seed); }
  void clear_fired() { fired_.clear(); }
  bool empty() const { return rules_.empty(); }

  // The first rule that matches and fires for this request, if any; records it.
  // `also`, when given, is asked last of each rule otherwise matching (the
  // proxy's matches on upstream, method, path, header and body field).
  std::optional<FiredFault> match(const FaultContext& ctx, const std::function<bool(const FaultRule&)>& also = {});

  // Takes back the last firing of a rule (it turned out not to apply: the proxy's
  // commit-then-* on an upstream that refused): its count and its record.
  void unfire(std::int64_t rule_id);

  const std::vector<FaultRule>& rules() const { return rules_; }
  const std::deque<FiredFault>& fired() const { return fired_; }

 private:
  std::vector<FaultRule> rules_;
  std::deque<FiredFault> fired_;
  std::int64_t next_id_ = 1;
  SplitMix64 rng_;
};

}  // namespace sagalab
