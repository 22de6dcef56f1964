// Fault rules as JSON: the strict parser (unknown keys and bad values are
// refused with the field's name) and the JSON form of rules and fired faults.
#include "sagalab/json_codec.hpp"

#include <algorithm>
#include <cmath>

#include "sagalab/errors.hpp"

namespace sagalab {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::int64_t nonneg(const Json& j, const char* k, std::int64_t max) {
  if (!j.contains(k) || j[k].is_null()) return 0;
  if (!j[k].is_number_integer()) throw bad_field(k, std::string("fault rule field '") + k + "' must be an integer");
  auto v = j[k].get<std::int64_t>();
  if (v < 0 || v > max)
    throw bad_field(k, std::string("fault rule field '") + k + "' must be between 0 and " + std::to_string(max));
  return v;
}

}  // namespace

FaultRule parse_fault_rule(const Json& j, const std::vector<std::string>& endpoints) {
  if (!j.is_object()) throw bad_request("a fault rule must be a JSON object");
  static const std::vector<std::string> known = {"action",     "endpoint",    "status",   "message",
                                                 "latency_ms", "jitter_ms",   "duration_ms", "probability",
                                                 "times",      "saga_id",     "attempts", "name",
                                                 "id",         "fired"};
  for (const auto& [k, v] : j.items()) {
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw bad_field(k, "unknown fault rule field '" + k + "'");
  }
  FaultRule r;
  if (!j.contains("action") || !j["action"].is_string())
    throw bad_field("action", "fault rule field 'action' is required: one of " + join(fault_action_names()));
  auto action = j["action"].get<std::string>();
  if (action == "crash") action = "crash-before";
  auto a = fault_action_from_string(action);
  if (!a) throw bad_field("action", "fault rule field 'action': unknown action '" + action + "'; expected one of " +
                            join(fault_action_names()));
  r.action = *a;
  if (j.contains("endpoint") && !j["endpoint"].is_null()) {
    if (!j["endpoint"].is_string()) throw bad_field("endpoint", "fault rule field 'endpoint' must be a string");
    r.endpoint = j["endpoint"];
    // A saga-log point is a place in the orchestrator, not a request: only a crash can happen there.
    if (r.endpoint.rfind("log:", 0) == 0 && r.action != FaultAction::CrashBefore && r.action != FaultAction::CrashAfter)
      throw bad_field("action", "fault rule field 'action': at a saga-log point (" + r.endpoint +
                        ") only crash-before and crash-after apply, not " + action);
    if (!r.endpoint.empty() && r.endpoint != "*" &&
        std::find(endpoints.begin(), endpoints.end(), r.endpoint) == endpoints.end())
      throw bad_field("endpoint", "fault rule field 'endpoint': unknown endpoint '" + r.endpoint + "'; expected one of " +
                        join(endpoints));
    if (r.endpoint == "*") r.endpoint.clear();
  }
  if (j.contains("status") && !j["status"].is_null()) {
    if (!j["status"].is_number_integer() || j["status"].get<int>() < 400 || j["status"].get<int>() > 599)
      throw bad_field("status", "fault rule field 'status' must be an HTTP error status (400-599)");
    r.status = j["status"];
  }
  if (j.contains("message") && !j["message"].is_null()) {
    if (!j["message"].is_string() || j["message"].get<std::string>().size() > 200)
      throw bad_field("message", "fault rule field 'message' must be a string of at most 200 characters");
    r.message = j["message"];
  }
  r.latency_ms = nonneg(j, "latency_ms", 600000);
  r.jitter_ms = nonneg(j, "jitter_ms", 600000);
  r.duration_ms = nonneg(j, "duration_ms", 600000);
  if (j.contains("probability") && !j["probability"].is_null()) {
    if (!j["probability"].is_number()) throw bad_field("probability", "fault rule field 'probability' must be a number");
    r.probability = j["probability"];
    if (!(r.probability >= 0.0 && r.probability <= 1.0))
      throw bad_field("probability", "fault rule field 'probability' must be between 0 and 1");
  }
  if (j.contains("times") && !j["times"].is_null()) {
    if (!j["times"].is_number_integer() || j["times"].get<std::int64_t>() < 1)
      throw bad_field("times", "fault rule field 'times' must be a positive integer (omit it for no limit)");
    r.times = j["times"];
  }
  if (j.contains("saga_id") && !j["saga_id"].is_null()) {
    if (!j["saga_id"].is_string() || j["saga_id"].get<std::string>().empty())
      throw bad_field("saga_id", "fault rule field 'saga_id' must be a non-empty string or null");
    r.saga_id = j["saga_id"].get<std::string>();
  }
  if (j.contains("attempts") && !j["attempts"].is_null()) {
    if (!j["attempts"].is_array()) throw bad_field("attempts", "fault rule field 'attempts' must be a list of integers");
    for (const auto& a2 : j["attempts"]) {
      if (!a2.is_number_integer() || a2.get<int>() < 1)
        throw bad_field("attempts", "fault rule field 'attempts' must hold positive integers");
      r.attempts.push_back(a2);
    }
  }
  if (j.contains("name") && !j["name"].is_null()) {
    if (!j["name"].is_string() || j["name"].get<std::string>().size() > 100)
      throw bad_field("name", "fault rule field 'name' must be a string of at most 100 characters");
    r.name = j["name"];
  }
  return r;
}

Json to_json(const FaultRule& r) {
  return {{"id", r.id},
          {"name", r.name.empty() ? Json(nullptr) : Json(r.name)},
          {"action", to_string(r.action)},
          {"endpoint", r.endpoint.empty() ? Json(nullptr) : Json(r.endpoint)},
          {"status", r.status},
          {"message", r.message},
          {"latency_ms", r.latency_ms},
          {"jitter_ms", r.jitter_ms},
          {"duration_ms", r.duration_ms},
          {"probability", r.probability},
          {"times", r.times < 0 ? Json(nullptr) : Json(r.times)},
          {"saga_id", r.saga_id ? Json(*r.saga_id) : Json(nullptr)},
          {"attempts", r.attempts},
          {"fired", r.fired}};
}

Json to_json(const FiredFault& f) {
  return {{"rule_id", f.rule_id},   {"name", f.name},       {"action", to_string(f.action)},
          {"endpoint", f.endpoint}, {"saga_id", f.saga_id}, {"attempt", f.attempt},
          {"at_ms", f.at_ms},       {"delay_ms", f.delay_ms}, {"status", f.status}};
}

std::vector<FaultRule> parse_fault_rules(const Json& j, const std::vector<std::string>& endpoints) {
  std::vector<FaultRule> parsed;
  if (j.is_array()) {
    if (j.empty()) throw bad_request("the list of fault rules is empty");
    for (const auto& e : j) parsed.push_back(parse_fault_rule(e, endpoints));
  } else {
    parsed.push_back(parse_fault_rule(j, endpoints));
  }
  return parsed;
}

FiredFault fired_from_json(const Json& j) {
  FiredFault f;
  if (!j.is_object()) return f;
  auto s = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  auto i = [&](const char* k) { return j.contains(k) && j[k].is_number_integer() ? j[k].get<std::int64_t>() : 0; };
  f.rule_id = i("rule_id");
  f.name = s("name");
  if (auto a = fault_action_from_string(s("action"))) f.action = *a;
  f.endpoint = s("endpoint");
  f.saga_id = s("saga_id");
  f.attempt = static_cast<int>(i("attempt"));
  f.at_ms = i("at_ms");
  f.delay_ms = i("delay_ms");
  f.status = static_cast<int>(i("status"));
  return f;
}

Json rules_json(const FaultSet& set) {
  Json arr = Json::array();
  for (const auto& r : set.rules()) arr.push_back(to_json(r));
  return arr;
}

Json fired_json(const FaultSet& set) {
  Json arr = Json::array();
  for (const auto& f : set.fired()) arr.push_back(to_json(f));
  return arr;
}

}  // namespace sagalab
