// The proxy's fault rules, its upstream specs and its recording.
#include <algorithm>
#include <stdexcept>

#include "sagalab/errors.hpp"
#include "sagalab/proxy.hpp"
#include "sagalab/recording_check.hpp"

namespace sagalab::proxy {

namespace {

constexpr std::size_t kMaxAttemptKeys = 100000;

bool glob(const std::string& pat, const std::string& s) {
  // Iterative `*` matching with backtracking to the last star.
  std::size_t p = 0, i = 0, star = std::string::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pat.size() && pat[p] == s[i]) {
      ++p;
      ++i;
    } else if (star != std::string::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::string opt_string(const Json& j, const char* k, std::size_t max) {
  if (!j.contains(k) || j[k].is_null()) return "";
  if (!j[k].is_string() || j[k].get<std::string>().size() > max)
    throw bad_request(std::string("fault rule field '") + k + "' must be a string of at most " + std::to_string(max) +
                      " characters");
  return j[k].get<std::string>();
}

}  // namespace

const std::vector<std::string>& action_names() {
  static const std::vector<std::string> n = {"error",           "latency", "hang",      "commit-then-error",
                                             "commit-then-drop", "reset",   "partition", "slow-body"};
  return n;
}

std::string to_string(Action a) { return action_names()[static_cast<std::size_t>(a)]; }

Faults::Faults(std::uint64_t seed, std::vector<std::string> upstreams)
    : upstreams_(std::move(upstreams)), set_(seed) {}

Rule Faults::parse(const Json& j) {
  if (!j.is_object()) throw bad_request("a fault rule must be a JSON object");
  Rule r;
  auto action = j.contains("action") && j["action"].is_string() ? j["action"].get<std::string>() : "";
  auto& names = action_names();
  auto it = std::find(names.begin(), names.end(), action);
  if (it == names.end()) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    if (action == "crash" || action == "crash-before" || action == "crash-after")
      throw bad_request("fault rule field 'action': the proxy cannot crash the program behind it; use reset, "
                        "partition or commit-then-drop, or crash a sagalab service itself");
    throw bad_request("fault rule field 'action' is required: one of " + all);
  }
  r.action = static_cast<Action>(it - names.begin());
  r.match.upstream = opt_string(j, "upstream", 100);
  if (!r.match.upstream.empty() &&
      std::find(upstreams_.begin(), upstreams_.end(), r.match.upstream) == upstreams_.end()) {
    std::string all;
    for (const auto& n : upstreams_) all += (all.empty() ? "" : ", ") + n;
    throw bad_request("fault rule field 'upstream': unknown upstream '" + r.match.upstream + "'; expected one of " +
                      all);
  }
  r.match.method = opt_string(j, "method", 16);
  for (auto& c : r.match.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  r.match.path = opt_string(j, "path", 300);
  if (!r.match.path.empty() && r.match.path.front() != '/' && r.match.path.front() != '*')
    throw bad_request("fault rule field 'path' must start with / (a glob: * matches any characters)");
  r.match.header_name = check::header_key(opt_string(j, "header_name", 100));
  r.match.header_value = opt_string(j, "header_value", 300);
  r.match.body_field = opt_string(j, "body_field", 100);
  r.match.body_value = opt_string(j, "body_value", 300);
  if (r.match.header_name.empty() != r.match.header_value.empty())
    throw bad_request("fault rule fields 'header_name' and 'header_value' go together");
  if (r.match.body_field.empty() != r.match.body_value.empty())
    throw bad_request("fault rule fields 'body_field' and 'body_value' go together");
  const auto on = opt_string(j, "on", 16);
  if (!on.empty() && on != "success" && on != "any")
    throw bad_request("fault rule field 'on' must be success (fire only on an upstream's 2xx, the default) or any");
  if (!on.empty() && r.action != Action::CommitThenError && r.action != Action::CommitThenDrop)
    throw bad_request("fault rule field 'on' applies to commit-then-error and commit-then-drop only");
  r.on_any = on == "any";
  if (j.contains("skip")) {
    if (!j["skip"].is_number_integer() || j["skip"].get<std::int64_t>() < 0 || j["skip"].get<std::int64_t>() > 1000000)
      throw bad_request("fault rule field 'skip' must be an integer from 0 to 1000000: the matching requests to let through first");
    r.skip = j["skip"].get<std::int64_t>();
  }
  return r;
}

std::vector<std::int64_t> Faults::add(const Json& body) {
  std::vector<Json> items;
  if (body.is_array()) {
    if (body.empty()) throw bad_request("the list of fault rules is empty");
    for (const auto& e : body) items.push_back(e);
  } else {
    items.push_back(body);
  }
  std::vector<FaultRule> base;
  std::vector<Rule> extra;
  static const std::vector<std::string> own = {"upstream",   "method",     "path",       "header_name", "header_value",
                                               "body_field", "body_value", "endpoint", "on", "skip"};
  for (const auto& j : items) {
    extra.push_back(parse(j));
    const auto endpoint = opt_string(j, "endpoint", 100);
    Json rest = j;
    for (const auto& k : own) rest.erase(k);
    // The shared parser knows the services' actions only; the proxy's own ride as "error".
    rest["action"] = "error";
    auto r = parse_fault_rule(rest, {});
    r.endpoint = endpoint == "*" ? "" : endpoint;
    base.push_back(std::move(r));
  }
  std::lock_guard lock(mutex_);
  auto ids = set_.add(std::move(base));
  for (std::size_t i = 0; i < ids.size(); ++i) rules_[ids[i]] = extra[i];
  return ids;
}

void Faults::clear() {
  std::lock_guard lock(mutex_);
  set_.clear();
  rules_.clear();
  cut_until_.clear();
}

bool Faults::remove(std::int64_t id) {
  std::lock_guard lock(mutex_);
  rules_.erase(id);
  return set_.remove(id);
}

void Faults::reseed(std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  set_.reseed(seed);
}

Json Faults::rules_json() {
  std::lock_guard lock(mutex_);
  Json out = Json::array();
  for (const auto& r : set_.rules()) {
    auto j = to_json(r);
    const auto& x = rules_.at(r.id);
    j["action"] = to_string(x.action);
    auto put = [&](const char* k, const std::string& v) { j[k] = v.empty() ? Json(nullptr) : Json(v); };
    put("upstream", x.match.upstream);
    put("method", x.match.method);
    put("path", x.match.path);
    put("header_name", x.match.header_name);
    put("header_value", x.match.header_value);
    put("body_field", x.match.body_field);
    put("body_value", x.match.body_value);
    if (x.action == Action::CommitThenError || x.action == Action::CommitThenDrop) j["on"] = x.on_any ? "any" : "success";
    if (x.skip) j["skip"] = x.skip;
    out.push_back(j);
  }
  return out;
}

Json Faults::fired_json() {
  std::lock_guard lock(mutex_);
  Json out = Json::array();
  for (const auto& f : fired_) {
    auto j = to_json(f.fired);
    j["action"] = to_string(f.action);
    j["upstream"] = f.upstream;
    j["method"] = f.method;
    j["path"] = f.path;
    j["saga_id"] = f.saga.empty() ? Json(nullptr) : Json(f.saga);
    j["forwarded"] = f.forwarded;
    j["upstream_status"] = f.upstream_status ? Json(*f.upstream_status) : Json(nullptr);
    // What the caller got: a status, or none (a drop, a reset, a partition).
    j["status"] = f.caller_status ? Json(*f.caller_status) : Json(nullptr);
    std::string what;
    if (!f.settled) {
      what = "in progress";
    } else {
      what = f.caller_status ? "the caller got " + std::to_string(*f.caller_status) : "the caller got no answer (" +
                                                                                          std::string(f.action == Action::Reset ? "reset" : "dropped") + ")";
      what += f.forwarded ? (f.upstream_status ? "; the upstream answered " + std::to_string(*f.upstream_status)
                                               : "; the upstream did not answer")
                          : "; not forwarded";
    }
    j["outcome"] = what;
    out.push_back(j);
  }
  return out;
}

void Faults::settle(const Hit& hit, bool forwarded, std::optional<int> upstream_status, std::optional<int> caller_status) {
  std::lock_guard lock(mutex_);
  for (auto it = fired_.rbegin(); it != fired_.rend(); ++it) {
    if (it->serial != hit.serial) continue;
    it->settled = true;
    it->forwarded = forwarded;
    it->upstream_status = upstream_status;
    it->caller_status = caller_status;
    return;
  }
}

void Faults::unfire(const Hit& hit) {
  std::lock_guard lock(mutex_);
  set_.unfire(hit.fired.rule_id);
  for (auto it = fired_.begin(); it != fired_.end(); ++it) {
    if (it->serial == hit.serial) {
      fired_.erase(it);
      return;
    }
  }
}

namespace {

bool matches(const Match& m, const RequestView& r) {
  if (!m.upstream.empty() && m.upstream != r.upstream) return false;
  if (!m.method.empty() && m.method != r.method) return false;
  if (!m.path.empty() && !glob(m.path, r.path)) return false;
  if (!m.header_name.empty()) {
    auto it = r.headers.find(m.header_name);
    if (it == r.headers.end() || it->second != m.header_value) return false;
  }
  if (!m.body_field.empty() && (!r.body || check::field_text(*r.body, m.body_field) != m.body_value)) return false;
  return true;
}

}  // namespace

std::optional<Hit> Faults::match(const RequestView& r) {
  std::lock_guard lock(mutex_);
  if (rules_.empty()) return std::nullopt;
  FaultContext ctx;
  auto seg_end = r.path.find('/', 1);
  ctx.endpoint = r.path.size() > 1 ? r.path.substr(1, seg_end == std::string::npos ? std::string::npos : seg_end - 1)
                                   : "";
  auto h = r.headers.find("x-saga-id");
  ctx.saga_id = h != r.headers.end() ? h->second : (r.body ? check::field_text(*r.body, "saga_id") : "");
  ctx.attempt = r.attempt;
  ctx.now_ms = r.now_ms;
  // Every rule counts the requests it matches, whichever rule fires on them (skip lets the first ones through).
  std::vector<std::int64_t> matching;
  for (auto& [id, rule] : rules_)
    if (matches(rule.match, r)) {
      ++rule.seen;
      matching.push_back(id);
    }
  auto fired = set_.match(ctx, [&](const FaultRule& base) {
    const auto& rule = rules_.at(base.id);
    return std::binary_search(matching.begin(), matching.end(), base.id) && rule.seen > rule.skip;
  });
  if (!fired) return std::nullopt;
  const auto& rule = rules_.at(fired->rule_id);
  Hit hit{rule.action, *fired, r.upstream, rule.on_any, next_serial_++};
  const auto& base = *std::find_if(set_.rules().begin(), set_.rules().end(),
                                   [&](const FaultRule& b) { return b.id == fired->rule_id; });
  if (rule.action == Action::Hang || rule.action == Action::Partition) {
    hit.fired.delay_ms = base.duration_ms > 0 ? base.duration_ms : (rule.action == Action::Hang ? 30000 : 5000);
  } else if (rule.action == Action::SlowBody) {
    hit.fired.delay_ms = base.duration_ms > 0 ? base.duration_ms : (base.latency_ms > 0 ? base.latency_ms : 2000);
  }
  if (rule.action == Action::Partition) cut_until_[r.upstream] = r.now_ms + hit.fired.delay_ms;
  ProxyFired pf;
  pf.serial = hit.serial;
  pf.fired = hit.fired;
  pf.action = rule.action;
  pf.upstream = r.upstream;
  pf.method = r.method;
  pf.path = r.path;
  pf.saga = ctx.saga_id;
  fired_.push_back(std::move(pf));
  if (fired_.size() > FaultSet::kMaxFiredLog) fired_.pop_front();
  return hit;
}

bool Faults::partitioned(const std::string& upstream, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = cut_until_.find(upstream);
  return it != cut_until_.end() && now_ms < it->second;
}

int Faults::attempt_of(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (attempts_.size() >= kMaxAttemptKeys && !attempts_.count(key)) attempts_.clear();
  return ++attempts_[key];
}

Upstream parse_upstream(const std::string& spec) {
  auto eq = spec.find('=');
  auto arrow = spec.find("->");
  if (eq == std::string::npos || arrow == std::string::npos || eq == 0 || arrow < eq)
    throw std::invalid_argument("upstream '" + spec + "' must be name=listen_host:port->http://host:port");
  Upstream u;
  u.name = spec.substr(0, eq);
  auto listen = spec.substr(eq + 1, arrow - eq - 1);
  u.url = spec.substr(arrow + 2);
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    u.listen_host = "127.0.0.1";
  } else {
    u.listen_host = listen.substr(0, colon);
    listen = listen.substr(colon + 1);
  }
  try {
    std::size_t pos = 0;
    u.listen_port = std::stoi(listen, &pos);
    if (pos != listen.size() || u.listen_port < 0 || u.listen_port > 65535) throw std::invalid_argument(listen);
  } catch (const std::exception&) {
    throw std::invalid_argument("upstream '" + u.name + "': listen port '" + listen + "' is not a port (0-65535)");
  }
  if (u.listen_host.empty()) u.listen_host = "127.0.0.1";
  if (u.url.rfind("http://", 0) != 0)
    throw std::invalid_argument("upstream '" + u.name + "': '" + u.url + "' must be an http:// URL");
  return u;
}

Recorder::Recorder(const std::string& path) : path_(path) {
  if (path.empty()) return;
  out_.open(path, std::ios::app);
  if (!out_) throw std::runtime_error("cannot open the recording file " + path);
}

void Recorder::write(const Json& line) {
  if (path_.empty()) return;
  auto text = line.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::lock_guard lock(mutex_);
  out_ << text << '\n';
  out_.flush();
  ++written_;
}

}  // namespace sagalab::proxy
