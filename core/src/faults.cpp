// Fault rules: the set a program holds, and the matcher that decides which
// rule fires for a request. Their JSON form is in codec/faults_json.cpp.
#include "sagalab/faults.hpp"

#include <algorithm>
#include <cmath>

#include "sagalab/errors.hpp"

namespace sagalab {

const std::vector<std::string>& fault_action_names() {
  static const std::vector<std::string> names = {"error",          "latency",          "hang",
                                                 "commit-then-error", "commit-then-drop", "crash-before",
                                                 "crash-after"};
  return names;
}

std::string to_string(FaultAction a) { return fault_action_names()[static_cast<std::size_t>(a)]; }

std::optional<FaultAction> fault_action_from_string(const std::string& s) {
  const auto& n = fault_action_names();
  auto it = std::find(n.begin(), n.end(), s);
  if (it == n.end()) return std::nullopt;
  return static_cast<FaultAction>(it - n.begin());
}

std::vector<std::int64_t> FaultSet::add(std::vector<FaultRule> parsed) {
  if (rules_.size() + parsed.size() > kMaxRules)
    throw bad_request("too many fault rules (at most " + std::to_string(kMaxRules) + "); clear some first");
  std::vector<std::int64_t> ids;
  for (auto& r : parsed) {
    r.id = next_id_++;
    ids.push_back(r.id);
    rules_.push_back(std::move(r));
  }
  return ids;
}

bool FaultSet::remove(std::int64_t id) {
  auto it = std::find_if(rules_.begin(), rules_.end(), [&](const FaultRule& r) { return r.id == id; });
  if (it == rules_.end()) return false;
  rules_.erase(it);
  return true;
}

void FaultSet::unfire(std::int64_t rule_id) {
  for (auto& r : rules_)
    if (r.id == rule_id && r.fired > 0) --r.fired;
  for (auto it = fired_.rbegin(); it != fired_.rend(); ++it) {
    if (it->rule_id == rule_id) {
      fired_.erase(std::next(it).base());
      break;
    }
  }
}

std::optional<FiredFault> FaultSet::match(const FaultContext& ctx, const std::function<bool(const FaultRule&)>& also) {
  for (auto& r : rules_) {
    if (!r.endpoint.empty() && r.endpoint != ctx.endpoint) continue;
    if (r.saga_id && *r.saga_id != ctx.saga_id) continue;
    if (!r.attempts.empty() && std::find(r.attempts.begin(), r.attempts.end(), ctx.attempt) == r.attempts.end())
      continue;
    if (r.times >= 0 && r.fired >= r.times) continue;
    if (also && !also(r)) continue;
    if (r.probability < 1.0 && !(rng_.unit() < r.probability)) continue;
    ++r.fired;
    FiredFault f;
    f.rule_id = r.id;
    f.name = r.name;
    f.action = r.action;
    f.endpoint = ctx.endpoint;
    f.saga_id = ctx.saga_id;
    f.attempt = ctx.attempt;
    f.at_ms = ctx.now_ms;
    f.status = r.status;
    f.message = r.message;
    if (r.action == FaultAction::Latency) {
      f.delay_ms = r.latency_ms + (r.jitter_ms > 0 ? rng_.uniform(0, r.jitter_ms) : 0);
    } else if (r.action == FaultAction::Hang) {
      f.delay_ms = r.duration_ms > 0 ? r.duration_ms : 30000;
    }
    fired_.push_back(f);
    if (fired_.size() > kMaxFiredLog) fired_.pop_front();
    return f;
  }
  return std::nullopt;
}

}  // namespace sagalab
