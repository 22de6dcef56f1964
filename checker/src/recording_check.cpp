// The saga protocol checked from the outside (see recording_check.hpp).
#include "sagalab/recording_check.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

#include "sagalab/contract.hpp"
#include "sagalab/rules.hpp"

namespace sagalab::check {

namespace {

[[noreturn]] void bad(const std::string& m) { throw std::invalid_argument(m); }

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

void keys(const Json& j, const std::string& where, const std::set<std::string>& allowed) {
  if (!j.is_object()) bad(where + " must be a mapping");
  for (const auto& [k, v] : j.items()) {
    if (!allowed.count(k)) {
      std::string all;
      for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
      bad(where + ": unknown key '" + k + "' (expected one of " + all + ")");
    }
  }
}

std::string str(const Json& j, const std::string& where) {
  if (!j.is_string() || j.get<std::string>().empty()) bad(where + " must be a non-empty string");
  return j.get<std::string>();
}

Locator parse_locator(const Json& j, const std::string& where) {
  auto s = str(j, where);
  Locator l;
  l.text = s;
  if (s == "trace") {
    l.from = Locator::From::Trace;
    l.name = "traceparent";
    return l;
  }
  auto dot = s.find('.');
  if (dot == std::string::npos || dot + 1 == s.size())
    bad(where + ": '" + s + "' must be header.<name>, request.<field>, response.<field>, path.<name> or trace");
  auto from = s.substr(0, dot);
  l.name = s.substr(dot + 1);
  if (from == "header") {
    l.from = Locator::From::Header;
    l.name = header_key(l.name);
  } else if (from == "request") {
    l.from = Locator::From::Request;
  } else if (from == "response") {
    l.from = Locator::From::Response;
  } else if (from == "path") {
    l.from = Locator::From::Path;
  } else {
    bad(where + ": '" + s + "' must start with header., request., response. or path. (or be trace)");
  }
  return l;
}

Route parse_route(const std::string& upstream, const Json& j, const std::string& where) {
  auto s = str(j, where);
  auto sp = s.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s[sp + 1] != '/')
    bad(where + ": '" + s + "' must be a method and a path, e.g. POST /compensacion");
  Route r;
  r.upstream = upstream;
  r.method = s.substr(0, sp);
  for (auto& c : r.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  r.segments = split_path(s.substr(sp + 1));
  r.text = upstream + " " + s;
  return r;
}

// A scalar as the recording's values compare with it: a string as it is, a
// number or a boolean as its JSON text (YAML's `true` is "true").
std::string scalar_text(const Json& j, const std::string& where) {
  if (j.is_string()) {
    if (j.get<std::string>().empty()) bad(where + " must not be empty");
    return j.get<std::string>();
  }
  if (j.is_boolean() || j.is_number()) return j.dump();
  bad(where + " must be a string, a number or a boolean (or a list of them)");
}

std::vector<std::string> scalars(const Json& j, const std::string& where) {
  std::vector<std::string> out;
  if (!j.is_array()) {
    out.push_back(scalar_text(j, where));
    return out;
  }
  if (j.empty()) bad(where + " must be a value or a non-empty list of values");
  for (const auto& e : j) out.push_back(scalar_text(e, where));
  return out;
}

std::vector<std::string> strings(const Json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_string()) {
    out.push_back(str(j, where));
    return out;
  }
  if (!j.is_array() || j.empty()) bad(where + " must be a string or a list of strings");
  for (const auto& e : j) out.push_back(str(e, where));
  return out;
}

// A path.<name> locator needs a {name} segment in its route.
void require_capture(const Route& r, const Locator& l, const std::string& what) {
  if (l.from != Locator::From::Path) return;
  if (std::find(r.segments.begin(), r.segments.end(), "{" + l.name + "}") == r.segments.end())
    bad(what + " has no {" + l.name + "}: path." + l.name + " reads a {" + l.name + "} segment of that route");
}

// A field of the client's request, named as in `carries` and `flow`: "usuario_id" is request.usuario_id.
Locator client_field(const std::string& s, const std::string& where) {
  for (const char* p : {"header.", "request.", "response.", "path.", "trace"}) {
    if (s.rfind(p, 0) == 0) {
      auto l = parse_locator(Json(s), where);
      if (l.from == Locator::From::Path || l.from == Locator::From::Response)
        bad(where + ": '" + s + "' must be a value of the client's request (a body field or header.<name>)");
      return l;
    }
  }
  return parse_locator(Json("request." + s), where);
}

StateProbe parse_state(const std::string& upstream, const Json& j, const std::string& where) {
  keys(j, where, {"read", "field", "done", "undone"});
  for (const char* k : {"read", "field", "done", "undone"})
    if (!j.contains(k)) bad(where + "." + k + " is required (state: {read: GET /things/{id}, field, done, undone})");
  StateProbe p;
  p.read = parse_route(upstream, j["read"], where + ".read");
  if (p.read.method != "GET") bad(where + ".read: a probe only reads: its method must be GET, not " + p.read.method);
  if (std::find(p.read.segments.begin(), p.read.segments.end(), "{id}") == p.read.segments.end())
    bad(where + ".read must have an {id} segment: the effect's id goes there");
  for (const auto& s : p.read.segments)
    if (s == "*" || (s.size() > 2 && s.front() == '{' && s != "{id}"))
      bad(where + ".read: only {id} can vary in a probe's path, not '" + s + "'");
  p.field = str(j["field"], where + ".field");
  p.done = scalars(j["done"], where + ".done");
  p.undone = scalars(j["undone"], where + ".undone");
  return p;
}

// A violation of a rule of the catalogue (rules.hpp), with its invariant.
Violation violation(const std::string& rule, const std::string& saga, std::string msg, std::vector<std::int64_t> exs,
                    const std::vector<ExchangeFault>& faults) {
  Violation v;
  const Rule* r = find_rule(rule);
  SAGALAB_ASSERT(r && r->name == rule, "a recording's violation names a rule of the catalogue");
  v.rule = rule;
  v.invariant = r ? r->invariant : 7;
  v.saga_id = saga;
  v.message = std::move(msg);
  v.exchanges = std::move(exs);
  v.exchange_faults = faults;
  return v;
}

bool is2xx(const std::optional<int>& s) { return s && *s >= 200 && *s < 300; }

// The upstream's own answer when the proxy changed what the caller got.
const Json& true_response(const Recorded& e) { return e.upstream_status ? e.upstream_response : e.response; }

using Captures = std::vector<std::pair<std::string, std::string>>;

bool route_matches(const Route& r, const Recorded& e, const std::vector<std::string>& segs, Captures* caps) {
  if (r.upstream != e.upstream || r.method != e.method || segs.size() != r.segments.size()) return false;
  Captures c;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& p = r.segments[i];
    if (p == "*") continue;
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      c.emplace_back(p.substr(1, p.size() - 2), segs[i]);
      continue;
    }
    if (p != segs[i]) return false;
  }
  if (caps) *caps = std::move(c);
  return true;
}

std::string header_value(const Recorded& e, const std::string& name) {
  auto it = e.headers.find(name);
  return it != e.headers.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string locate(const Locator& l, const Recorded& e, const Captures& caps) {
  switch (l.from) {
    case Locator::From::Header:
      return header_value(e, l.name);
    case Locator::From::Trace:
      return trace_id(header_value(e, "traceparent"));
    case Locator::From::Request:
      return field_text(e.request, l.name);
    case Locator::From::Response:
      return field_text(true_response(e), l.name);
    case Locator::From::Path:
      for (const auto& [k, v] : caps)
        if (k == l.name) return v;
      return "";
  }
  return "";
}

struct UnionFind {
  std::vector<std::size_t> parent;
  explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), std::size_t{0}); }
  std::size_t find(std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the root is the earliest exchange
  }
};

enum class Kind { None, Client, Forward, Compensation };

// Which route of the description an exchange is (the client's, or a step's forward call or
// compensation: the first step whose route matches), with its {name} captures.
Kind route_of(const Description& d, const Recorded& e, std::size_t& step, Captures& caps) {
  auto segs = split_path(e.path);
  if (d.client && route_matches(d.client->route, e, segs, &caps)) return Kind::Client;
  for (std::size_t s = 0; s < d.steps.size(); ++s) {
    step = s;
    if (route_matches(d.steps[s].forward, e, segs, &caps)) return Kind::Forward;
    if (d.steps[s].compensation && route_matches(*d.steps[s].compensation, e, segs, &caps)) return Kind::Compensation;
  }
  return Kind::None;
}

// What the description makes of one exchange.
struct Classified {
  Kind kind = Kind::None;
  std::size_t step = 0;
  std::string id;      // correlates a forward call with its compensation
  std::string effect;  // what a forward call created
  std::string saga_id;
};

struct Call {
  const Recorded* e;
  const Classified* c;
};

struct StepCalls {
  std::vector<Call> forward, compensation;
};

struct SagaCalls {
  std::string name;
  std::vector<const Recorded*> client;
  std::map<std::size_t, StepCalls> steps;  // by step index
  std::vector<ExchangeFault> faults;
};


std::string list_text(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string field_text(const Json& body, const std::string& dotted) {
  const Json* cur = &body;
  std::size_t i = 0;
  while (i <= dotted.size()) {
    auto j = dotted.find('.', i);
    if (j == std::string::npos) j = dotted.size();
    if (!cur->is_object()) return "";
    auto it = cur->find(dotted.substr(i, j - i));
    if (it == cur->end()) return "";
    cur = &*it;
    i = j + 1;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_null() || cur->is_object() || cur->is_array()) return "";
  return cur->dump();
}

std::string trace_id(const std::string& tp) {
  // version "-" trace-id (32 hex) "-" parent-id (16 hex) "-" flags (2 hex)
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return "";
  auto id = tp.substr(3, 32);
  if (id.find_first_not_of("0123456789abcdef") != std::string::npos) return "";
  if (id == std::string(32, '0')) return "";
  return id;
}

Description parse_description(const Json& j) {
  keys(j, "saga description", {"name", "saga_id", "client", "steps", "flow"});
  Description d;
  if (j.contains("name")) d.name = str(j["name"], "name");
  if (j.contains("saga_id")) {
    for (const auto& s : strings(j["saga_id"], "saga_id")) {
      auto l = parse_locator(s, "saga_id");
      if (l.from == Locator::From::Path)
        bad("saga_id: '" + s + "' reads a {" + l.name + "} segment of a route, and saga_id applies to every "
            "exchange: use header.<name>, request.<field>, response.<field> or trace (a path.<name> belongs in a "
            "step's id)");
      d.saga_id.push_back(l);
    }
  }
  if (j.contains("client")) {
    const auto& c = j["client"];
    keys(c, "client", {"upstream", "request", "outcome", "success", "failure", "pending"});
    for (const char* k : {"upstream", "request", "outcome", "success", "failure"})
      if (!c.contains(k)) bad(std::string("client.") + k + " is required");
    ClientDesc cd;
    cd.route = parse_route(str(c["upstream"], "client.upstream"), c["request"], "client.request");
    cd.outcome = parse_locator(c["outcome"], "client.outcome");
    if (cd.outcome.from != Locator::From::Response) bad("client.outcome must be a response.<field>");
    cd.success = scalars(c["success"], "client.success");
    cd.failure = scalars(c["failure"], "client.failure");
    if (c.contains("pending")) cd.pending = scalars(c["pending"], "client.pending");
    d.client = cd;
  }
  std::vector<std::string> flow;
  if (j.contains("flow")) {
    if (!d.client) bad("flow names values of the client's request: describe the client first (client:)");
    flow = strings(j["flow"], "flow");
  }
  if (!j.contains("steps") || !j["steps"].is_array() || j["steps"].empty())
    bad("steps is required: the saga's steps in order");
  std::set<std::string> names;
  for (std::size_t i = 0; i < j["steps"].size(); ++i) {
    const auto& s = j["steps"][i];
    auto where = "steps[" + std::to_string(i) + "]";
    keys(s, where, {"name", "upstream", "forward", "compensation", "id", "effect", "pivot", "carries", "state"});
    StepDesc st;
    if (!s.contains("name")) bad(where + ".name is required");
    st.name = str(s["name"], where + ".name");
    if (!names.insert(st.name).second) bad(where + ": step name '" + st.name + "' appears twice");
    where = "step " + st.name;
    if (!s.contains("upstream") || !s.contains("forward")) bad(where + ": upstream and forward are required");
    auto up = str(s["upstream"], where + ".upstream");
    st.forward = parse_route(up, s["forward"], where + ".forward");
    if (s.contains("compensation")) {
      if (s["compensation"] == "none")
        st.no_compensation = true;
      else
        st.compensation = parse_route(up, s["compensation"], where + ".compensation");
    }
    if (s.contains("id")) {
      keys(s["id"], where + ".id", {"forward", "compensation"});
      if (!st.compensation) bad(where + ".id: a step without a compensation has no id to correlate");
      if (!s["id"].contains("forward") || !s["id"].contains("compensation"))
        bad(where + ".id needs both forward and compensation");
      st.forward_id = parse_locator(s["id"]["forward"], where + ".id.forward");
      st.compensation_id = parse_locator(s["id"]["compensation"], where + ".id.compensation");
      require_capture(st.forward, *st.forward_id, where + ".id.forward: the forward path");
      require_capture(*st.compensation, *st.compensation_id, where + ".id.compensation: the compensation path");
    }
    if (s.contains("effect")) {
      st.effect = parse_locator(s["effect"], where + ".effect");
      if (st.effect->from == Locator::From::Path) require_capture(st.forward, *st.effect, where + ".effect: the forward path");
    }
    if (s.contains("carries")) {
      if (!d.client) bad(where + ".carries names values of the client's request: describe the client first (client:)");
      if (!s["carries"].is_object() || s["carries"].empty())
        bad(where + ".carries must be a mapping: client's field -> where this call carries it, e.g. "
                    "{usuario_id: request.usuario_id}");
      for (const auto& [k, v] : s["carries"].items()) {
        Carry c;
        auto dot = k.find('.');
        auto from = dot == std::string::npos ? std::string() : k.substr(0, dot);
        auto earlier = std::find_if(d.steps.begin(), d.steps.end(), [&](const StepDesc& e) { return e.name == from; });
        if (earlier != d.steps.end()) {
          // <step>.<locator>: a value of an earlier step's forward exchange.
          c.from_step = static_cast<int>(earlier - d.steps.begin());
          c.client = parse_locator(Json(k.substr(dot + 1)), where + ".carries." + k);
          if (c.client.from == Locator::From::Path) require_capture(earlier->forward, c.client, where + ".carries." + k);
        } else {
          c.client = client_field(k, where + ".carries");
        }
        c.here = parse_locator(v, where + ".carries." + k);
        require_capture(st.forward, c.here, where + ".carries." + k + ": the forward path");
        st.carries.push_back(std::move(c));
      }
    }
    for (const auto& f : flow) {
      auto cl = client_field(f, "flow");
      bool have = std::any_of(st.carries.begin(), st.carries.end(), [&](const Carry& c) { return c.client.text == cl.text; });
      if (!have) st.carries.push_back({cl, cl, -1, true});
    }
    if (s.contains("state")) {
      st.state = parse_state(up, s["state"], where + ".state");
      if (!st.effect && !st.forward_id)
        bad(where + ".state reads an effect by its id: give the step effect: (or id:) to say where the forward "
                    "call's answer names it");
    }
    if (s.contains("pivot")) {
      if (!s["pivot"].is_boolean()) bad(where + ".pivot must be true or false");
      if (s["pivot"].get<bool>()) {
        if (d.pivot >= 0) bad(where + ": only one step can be the pivot");
        d.pivot = static_cast<int>(i);
      }
    }
    d.steps.push_back(std::move(st));
  }
  if (d.pivot < 0)
    bad("no step is the pivot: mark with 'pivot: true' the last step that can still be undone (after it, steps "
        "are retried until they succeed; when the last step is the pivot, mark the last step)");
  for (std::size_t i = 0; i <= static_cast<std::size_t>(d.pivot); ++i) {
    const auto& st = d.steps[i];
    if (!st.compensation && !st.no_compensation)
      bad("step " + st.name + " comes before the pivot (or is the pivot) and has no compensation: give its "
          "compensation endpoint, or write 'compensation: none' for a step that changes nothing (a lookup)");
  }
  bool links = !d.saga_id.empty() ||
               std::any_of(d.steps.begin(), d.steps.end(), [](const StepDesc& s) { return !s.carries.empty(); });
  if (d.client && !links)
    bad("nothing joins a step's calls to the client's request: give saga_id (where the stack sends a saga id), "
        "or carries/flow (the values of the client's request that forward calls pass on)");
  return d;
}

Recorded recorded_from_json(const Json& j) {
  if (!j.is_object()) bad("an exchange must be a JSON object");
  Recorded r;
  auto need_str = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_string()) bad(std::string("exchange field '") + k + "' must be a string");
    return j[k].get<std::string>();
  };
  auto need_int = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_number_integer()) bad(std::string("exchange field '") + k + "' must be an integer");
    return j[k].get<std::int64_t>();
  };
  auto opt_status = [&](const char* k) -> std::optional<int> {
    if (!j.contains(k) || j[k].is_null()) return std::nullopt;
    if (!j[k].is_number_integer()) bad(std::string("exchange field '") + k + "' must be an integer or null");
    return j[k].get<int>();
  };
  r.seq = need_int("seq");
  r.t_us = need_int("t_us");
  r.done_us = need_int("done_us");
  r.upstream = need_str("upstream");
  r.method = need_str("method");
  r.path = need_str("path");
  if (j.contains("headers") && j["headers"].is_object())
    for (const auto& [k, v] : j["headers"].items()) r.headers[header_key(k)] = v;
  r.request = j.value("request", Json());
  r.status = opt_status("status");
  r.response = j.value("response", Json());
  r.upstream_status = opt_status("upstream_status");
  r.upstream_response = j.contains("upstream_response") && !j["upstream_response"].is_null()
                            ? j["upstream_response"]
                            : r.response;
  r.forwarded = j.value("forwarded", false);
  if (j.contains("fault") && j["fault"].is_object()) r.fault = j["fault"].value("action", "");
  return r;
}

void keep_rules(Report& rep, const std::set<std::string>& keep) {
  auto& v = rep.violations;
  v.erase(std::remove_if(v.begin(), v.end(), [&](const Violation& x) { return !keep.count(x.rule); }), v.end());
}

Report check_recording(const Description& d, const std::vector<Recorded>& ex) {
  Report rep;
  rep.exchanges = ex.size();
  const std::size_t n = ex.size();
  std::vector<Classified> cls(n);
  std::vector<std::vector<std::string>> carried(n);  // a forward call's carried values, by carry index ("" none)
  // How often each locator was read and yielded a value: a locator that never does is a warning.
  struct Use {
    std::size_t seen = 0, yielded = 0;
  };
  // Each locator's name, made once (not per exchange): per step, its id.forward, effect, id.compensation, carries.
  std::map<std::string, Use> uses;
  struct StepUses {
    Use *forward_id = nullptr, *effect = nullptr, *compensation_id = nullptr;
    std::vector<Use*> carries;
  };
  std::vector<StepUses> step_uses(d.steps.size());
  for (std::size_t s = 0; s < d.steps.size(); ++s) {
    const auto& st = d.steps[s];
    auto& su = step_uses[s];
    if (st.forward_id) su.forward_id = &uses["step " + st.name + " id.forward " + st.forward_id->text];
    if (st.effect) su.effect = &uses["step " + st.name + " effect " + st.effect->text];
    if (st.compensation_id) su.compensation_id = &uses["step " + st.name + " id.compensation " + st.compensation_id->text];
    for (const auto& cr : st.carries)
      su.carries.push_back(&uses[cr.flow ? "flow " + cr.client.text
                                         : "step " + st.name + " carries " + cr.client.text + ": " + cr.here.text]);
  }
  auto note = [](Use* u, const std::string& v) {
    ++u->seen;
    u->yielded += !v.empty();
  };
  std::vector<std::size_t> route_hits(d.steps.size(), 0);

  for (std::size_t i = 0; i < n; ++i) {
    const auto& e = ex[i];
    Captures caps;
    auto& c = cls[i];
    c.kind = route_of(d, e, c.step, caps);
    if (c.kind == Kind::None) continue;
    const auto s = c.step;
    const auto& st = d.steps[s];
    if (c.kind == Kind::Forward) {
      ++route_hits[s];
      if (st.forward_id) note(step_uses[s].forward_id, c.id = locate(*st.forward_id, e, caps));
      c.effect = c.id;
      if (st.effect) note(step_uses[s].effect, c.effect = locate(*st.effect, e, caps));
      for (std::size_t k = 0; k < st.carries.size(); ++k) {
        carried[i].push_back(locate(st.carries[k].here, e, caps));
        note(step_uses[s].carries[k], carried[i].back());
      }
    } else if (c.kind == Kind::Compensation && st.compensation_id) {
      note(step_uses[s].compensation_id, c.id = locate(*st.compensation_id, e, caps));
    }
    ++rep.matched;
    for (const auto& l : d.saga_id) {
      c.saga_id = locate(l, e, {});
      if (!c.saga_id.empty()) break;
    }
  }
  for (const auto& l : d.saga_id) {
    std::size_t yielded = 0;
    for (std::size_t i = 0; i < n && !yielded; ++i)
      if (cls[i].kind != Kind::None && !locate(l, ex[i], {}).empty()) ++yielded;
    if (!yielded && rep.matched)
      rep.warnings.push_back("saga_id " + l.text + " never yielded a value in the " + std::to_string(rep.matched) +
                             " exchanges the description matched: is that where the stack names its saga?");
  }
  for (const auto& [what, u] : uses)
    if (u.seen > 0 && u.yielded == 0)
      rep.warnings.push_back(what + " never yielded a value in the " + std::to_string(u.seen) +
                             " exchanges it was read from");
  if (rep.matched)
    for (std::size_t s = 0; s < d.steps.size(); ++s)
      if (!route_hits[s])
        rep.warnings.push_back("step " + d.steps[s].name + ": no exchange matched its forward route " +
                               d.steps[s].forward.text);

  // Correlation: union-find over the links, the earliest exchange the root.
  UnionFind uf(n);
  std::vector<char> has_client(n, 0);
  for (std::size_t i = 0; i < n; ++i) has_client[i] = cls[i].kind == Kind::Client;
  auto unite = [&](std::size_t a, std::size_t b) {
    bool hc = has_client[uf.find(a)] || has_client[uf.find(b)];
    uf.unite(a, b);
    has_client[uf.find(a)] = hc;
  };
  auto placed = [&](std::size_t i) { return d.client && has_client[uf.find(i)]; };
  std::vector<std::string> why(n);  // why an exchange could not be joined, for the uncorrelated report

  // 1. Saga ids.
  {
    std::unordered_map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < n; ++i) {
      if (cls[i].kind == Kind::None || cls[i].saga_id.empty()) continue;
      auto [it, fresh] = first.emplace(cls[i].saga_id, i);
      if (!fresh) unite(it->second, i);
    }
  }

  // 2. Value flow: a forward call joins the client request whose values it carries (preferring one in flight),
  // or the saga of the earlier step's forward call whose value it carries. Steps in order: an earlier step's
  // calls are placed before a later one reads them.
  if (d.client) {
    std::map<std::string, std::unordered_map<std::string, std::vector<std::size_t>>> by_value;  // client locator -> value -> clients
    std::map<std::string, const Locator*> client_locs;
    for (const auto& st : d.steps)
      for (const auto& cr : st.carries)
        if (cr.from_step < 0) client_locs[cr.client.text] = &cr.client;
    for (std::size_t i = 0; i < n; ++i) {
      if (cls[i].kind != Kind::Client) continue;
      for (const auto& [text, l] : client_locs) {
        auto v = locate(*l, ex[i], {});
        if (!v.empty()) by_value[text][v].push_back(i);
      }
    }
    // An earlier step's values, read on demand: step \x1f locator \x1f value -> its forward calls.
    std::unordered_map<std::string, std::vector<std::size_t>> by_step_value;
    std::set<std::string> indexed;
    auto step_index = [&](int step, const Locator& l) -> const std::string& {
      static const std::string sep(1, '\x1f');
      auto tag = std::to_string(step) + sep + l.text;
      if (indexed.insert(tag).second) {
        for (std::size_t i = 0; i < n; ++i) {
          if (cls[i].kind != Kind::Forward || cls[i].step != static_cast<std::size_t>(step)) continue;
          std::size_t ignored = 0;
          Captures caps;
          route_of(d, ex[i], ignored, caps);
          auto v = locate(l, ex[i], caps);
          if (!v.empty()) by_step_value[tag + sep + v].push_back(i);
        }
      }
      return *indexed.find(tag);
    };
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i)
      if (cls[i].kind == Kind::Forward) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cls[a].step < cls[b].step; });
    for (auto i : order) {
      if (placed(i)) continue;
      const auto& st = d.steps[cls[i].step];
      if (st.carries.empty()) {
        why[i] = "step " + st.name + " carries none of the client's values (describe them with carries: or flow:)";
        continue;
      }
      const auto t = ex[i].t_us;
      std::vector<std::size_t> pool;
      bool any_client = false, any_step = false;
      std::set<std::size_t> step_roots;
      std::string shown;
      for (std::size_t k = 0; k < st.carries.size(); ++k) {
        const auto& cr = st.carries[k];
        const auto& v = carried[i][k];
        if (v.empty()) continue;
        shown += (shown.empty() ? "" : ", ") + (cr.from_step < 0 ? "" : d.steps[static_cast<std::size_t>(cr.from_step)].name + ".") +
                 cr.client.text + "=" + v;
        if (cr.from_step >= 0) {
          auto it = by_step_value.find(step_index(cr.from_step, cr.client) + '\x1f' + v);
          std::set<std::size_t> roots;
          if (it != by_step_value.end())
            for (auto p : it->second)
              if (ex[p].t_us <= t) roots.insert(uf.find(p));
          if (!any_step) {
            step_roots = std::move(roots);
          } else {
            std::set<std::size_t> both;
            std::set_intersection(step_roots.begin(), step_roots.end(), roots.begin(), roots.end(),
                                  std::inserter(both, both.begin()));
            step_roots = std::move(both);
          }
          any_step = true;
          continue;
        }
        auto& m = by_value[cr.client.text];
        auto it = m.find(v);
        std::vector<std::size_t> with = it == m.end() ? std::vector<std::size_t>{} : it->second;
        if (!any_client) {
          pool = std::move(with);
        } else {
          std::vector<std::size_t> both;
          std::set_intersection(pool.begin(), pool.end(), with.begin(), with.end(), std::back_inserter(both));
          pool = std::move(both);
        }
        any_client = true;
      }
      if (!any_client && !any_step) {
        why[i] = "it carries none of the values step " + st.name + "'s carries: name";
        continue;
      }
      std::vector<std::size_t> before, inflight;
      for (auto ci : pool) {
        if (ex[ci].t_us > t) continue;
        before.push_back(ci);
        if (!ex[ci].status || ex[ci].done_us >= t) inflight.push_back(ci);
      }
      const auto& cand = inflight.empty() ? before : inflight;
      std::set<std::size_t> roots;
      for (auto ci : cand) roots.insert(uf.find(ci));
      if (any_step) {
        if (any_client) {
          std::set<std::size_t> both;
          std::set_intersection(roots.begin(), roots.end(), step_roots.begin(), step_roots.end(),
                                std::inserter(both, both.begin()));
          roots = std::move(both);
        } else {
          roots = std::move(step_roots);
        }
        std::set<std::size_t> with_client;
        for (auto r : roots)
          if (has_client[r]) with_client.insert(r);
        if (!with_client.empty()) roots = std::move(with_client);
      }
      if (roots.size() == 1) {
        unite(i, *roots.begin());
      } else if (roots.empty()) {
        why[i] = "no client request or earlier step before it carries " + shown;
      } else {
        std::string seqs;
        for (auto r : roots) seqs += (seqs.empty() ? "#" : ", #") + std::to_string(ex[r].seq);
        why[i] = "ambiguous: " + std::to_string(roots.size()) + " sagas " +
                 (inflight.size() > 1 ? "in flight at once " : "") + "carry " + shown + " (from " + seqs +
                 "); carry a value that tells them apart, or a saga id";
      }
    }
  }

  // 3. Id chains: forward calls that name the same id are one effect; a compensation joins the forward call(s)
  // that created or carried the id it names.
  std::unordered_map<std::string, std::vector<std::size_t>> producers;  // step \x1f id -> forward calls
  for (std::size_t i = 0; i < n; ++i)
    if (cls[i].kind == Kind::Forward && !cls[i].id.empty())
      producers[std::to_string(cls[i].step) + '\x1f' + cls[i].id].push_back(i);
  for (auto& [key, calls] : producers) {
    for (std::size_t k = 1; k < calls.size(); ++k) {
      auto a = uf.find(calls[0]), b = uf.find(calls[k]);
      if (a == b || (has_client[a] && has_client[b])) continue;  // two sagas with one id: not joined
      unite(a, b);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (cls[i].kind != Kind::Compensation || placed(i)) continue;
    const auto& st = d.steps[cls[i].step];
    if (!st.compensation_id) {
      why[i] = "step " + st.name + " has no id: to join its compensation to its forward call (id: {forward, "
                                   "compensation})";
      continue;
    }
    if (cls[i].id.empty()) {
      why[i] = "it names no id (" + st.compensation_id->text + " yields nothing)";
      continue;
    }
    auto it = producers.find(std::to_string(cls[i].step) + '\x1f' + cls[i].id);
    if (it == producers.end()) {
      why[i] = "no forward call of step " + st.name + " has the id '" + cls[i].id + "' it names";
      continue;
    }
    std::set<std::size_t> roots, with_client;
    for (auto p : it->second) {
      roots.insert(uf.find(p));
      if (has_client[uf.find(p)]) with_client.insert(uf.find(p));
    }
    const auto& pick = with_client.empty() ? roots : with_client;
    if (pick.size() == 1) {
      unite(i, *pick.begin());
      if (!placed(i))
        why[i] = "its forward call #" + std::to_string(ex[it->second.front()].seq) + " (id '" + cls[i].id +
                 "') belongs to no saga either";
    } else {
      why[i] = "ambiguous: forward calls of " + std::to_string(pick.size()) + " sagas have the id '" + cls[i].id + "'";
    }
  }

  // The sagas: components with a client request (or, with no client described, every component).
  std::map<std::size_t, std::vector<std::size_t>> groups;  // root -> members, in recording order
  for (std::size_t i = 0; i < n; ++i)
    if (cls[i].kind != Kind::None) groups[uf.find(i)].push_back(i);
  auto kind_text = [&](std::size_t i) {
    const auto& c = cls[i];
    if (c.kind == Kind::Client) return std::string("the client's request");
    return "step " + d.steps[c.step].name + (c.kind == Kind::Forward ? " forward" : " compensation");
  };
  std::vector<SagaCalls> sagas;
  for (const auto& [root, members] : groups) {
    if (d.client && !has_client[root]) {
      for (auto i : members) {
        auto reason = why[i];
        if (reason.empty()) {
          reason = "no link joins it to a client request";
          if (!d.saga_id.empty()) reason += " (it names no saga: saga_id yields nothing)";
        }
        rep.uncorrelated.push_back({ex[i].seq, kind_text(i) + ": " + ex[i].upstream + " " + ex[i].method + " " + ex[i].path,
                                    reason});
      }
      continue;
    }
    SagaCalls sc;
    // The proxy's faults on the saga, one line per fault and exchange kind (a partition cuts many calls).
    std::map<std::pair<std::string, std::string>, std::vector<std::int64_t>> fault_seqs;
    for (auto i : members) {
      const auto& e = ex[i];
      if (sc.name.empty() && !cls[i].saga_id.empty()) sc.name = cls[i].saga_id;
      if (!e.fault.empty()) fault_seqs[{e.fault, e.upstream + " " + e.method + " " + e.path}].push_back(e.seq);
      if (cls[i].kind == Kind::Client)
        sc.client.push_back(&e);
      else if (cls[i].kind == Kind::Compensation)
        sc.steps[cls[i].step].compensation.push_back({&e, &cls[i]});
      else
        sc.steps[cls[i].step].forward.push_back({&e, &cls[i]});
    }
    for (auto& [what, seqs] : fault_seqs) sc.faults.push_back({what.first, what.second, std::move(seqs)});
    if (sc.name.empty()) sc.name = "#" + std::to_string(ex[members.front()].seq);
    // A client request refused before any step (a 4xx without an outcome) is no saga.
    if (sc.steps.empty() && !sc.client.empty() &&
        std::all_of(sc.client.begin(), sc.client.end(), [&](const Recorded* c) {
          auto v = field_text(c->response, d.client->outcome.name);
          auto named = [&](const std::vector<std::string>& l) { return std::count(l.begin(), l.end(), v) > 0; };
          return c->status && *c->status >= 400 && *c->status < 500 && !named(d.client->success) &&
                 !named(d.client->failure) && !named(d.client->pending);
        })) {
      ++rep.refused;
      continue;
    }
    auto& seqs = rep.saga_seqs.emplace_back();
    for (auto i : members) seqs.push_back(ex[i].seq);
    sagas.push_back(std::move(sc));
  }

  const auto pivot = static_cast<std::size_t>(d.pivot);
  for (auto& sc : sagas) {
    const auto& saga = sc.name;
    ++rep.sagas;
    auto add = [&](const std::string& rule, const std::string& msg, std::vector<std::int64_t> exs) {
      rep.violations.push_back(violation(rule, saga, msg, std::move(exs), sc.faults));
    };
    auto seq = [](const Recorded* e) { return std::vector<std::int64_t>{e->seq}; };

    // The outcome, as the client was told it (told), or read from the compensations.
    enum class Outcome { Unknown, Success, Failure } outcome = Outcome::Unknown;
    std::string told_text;
    const Recorded* told_at = nullptr;
    for (const auto* c : sc.client) {
      // What the client saw: its own body, not the upstream's (they differ only under a proxy fault).
      auto v = c->status ? field_text(c->response, d.client->outcome.name) : std::string();
      bool ok = std::count(d.client->success.begin(), d.client->success.end(), v) > 0;
      bool failed = std::count(d.client->failure.begin(), d.client->failure.end(), v) > 0;
      if (ok || (failed && outcome != Outcome::Success)) {
        told_text = v;
        told_at = c;
      }
      if (ok) outcome = Outcome::Success;
      if (failed && outcome != Outcome::Success) outcome = Outcome::Failure;
      bool pending = c->status && std::count(d.client->pending.begin(), d.client->pending.end(), v) > 0;
      if (!ok && !failed && !pending && c->fault.empty()) {
        add("client-answered",
            c->status ? "the client's request got " + std::to_string(*c->status) + " with " +
                            d.client->outcome.text + " '" + v + "', not a final outcome"
                      : "the client's request got no answer",
            seq(c));
      }
    }
    const Outcome told = outcome;
    std::optional<std::int64_t> first_comp_start;
    const Recorded* first_comp = nullptr;
    for (const auto& [i, calls] : sc.steps)
      for (const auto& c : calls.compensation)
        if (!first_comp_start || c.e->t_us < *first_comp_start) {
          first_comp_start = c.e->t_us;
          first_comp = c.e;
        }
    if (outcome == Outcome::Unknown && first_comp) outcome = Outcome::Failure;
    if (outcome == Outcome::Success) ++rep.completed;
    if (outcome == Outcome::Failure) ++rep.failed;
    if (outcome == Outcome::Unknown) ++rep.unknown;

    // When the caller saw the pivot succeed.
    std::optional<std::int64_t> pivot_seen;
    if (sc.steps.count(pivot)) {
      for (const auto& c : sc.steps[pivot].forward)
        if (is2xx(c.e->status) && (!pivot_seen || c.e->done_us < *pivot_seen)) pivot_seen = c.e->done_us;
    }

    // No forward call of any step starts once the saga's first compensation started.
    if (first_comp_start) {
      for (const auto& [i, calls] : sc.steps)
        for (const auto& c : calls.forward)
          if (c.e->t_us > *first_comp_start)
            add("forward-after-compensation",
                "step " + d.steps[i].name + ": a forward call started after the saga began compensating (first "
                    "compensation #" + std::to_string(first_comp->seq) + ")",
                {first_comp->seq, c.e->seq});
    }

    if (told == Outcome::Success && first_comp) {
      std::string which;
      std::vector<std::int64_t> exs{told_at->seq};
      for (const auto& [i, calls] : sc.steps)
        for (const auto& c : calls.compensation) {
          which += (which.empty() ? "" : ", ") + d.steps[i].name + " #" + std::to_string(c.e->seq);
          exs.push_back(c.e->seq);
        }
      add("client-truthful", "the client was told '" + told_text + "' but the saga issued compensations (" + which + ")",
          exs);
    }

    for (const auto& [i, calls] : sc.steps) {
      const auto& st = d.steps[i];
      // Effects: forward calls the upstream answered 2xx (or never answered: maybe an effect).
      std::map<std::string, std::vector<std::int64_t>> effect_ids;
      std::vector<const Call*> effects;
      for (const auto& c : calls.forward) {
        if (is2xx(c.e->upstream_status) || (c.e->forwarded && !c.e->upstream_status)) effects.push_back(&c);
        if (is2xx(c.e->upstream_status) && !c.c->effect.empty()) effect_ids[c.c->effect].push_back(c.e->seq);
      }
      std::vector<const Call*> done_comps;
      for (const auto& c : calls.compensation)
        if (is2xx(c.e->upstream_status)) done_comps.push_back(&c);

      if (effect_ids.size() > 1) {
        std::vector<std::int64_t> exs;
        std::string ids;
        for (const auto& [id, s] : effect_ids) {
          ids += (ids.empty() ? "" : ", ") + id;
          exs.insert(exs.end(), s.begin(), s.end());
        }
        add("one-effect", "step " + st.name + ": retries created " + std::to_string(effect_ids.size()) +
                              " effects (" + ids + ")", exs);
      }

      if (!done_comps.empty()) {
        std::int64_t first_done = done_comps.front()->e->done_us;
        for (const auto* c : done_comps) first_done = std::min(first_done, c->e->done_us);
        for (const auto& c : calls.forward) {
          if (is2xx(c.e->upstream_status) && c.e->done_us > first_done && c.e->t_us <= *first_comp_start)
            add("forward-after-compensation",
                "step " + st.name + ": a forward call succeeded after the step was compensated", {c.e->seq});
        }
      }

      if (i > pivot) {
        for (const auto& c : calls.compensation)
          add("compensation-after-pivot", "step " + st.name + " comes after the pivot but was compensated", seq(c.e));
      } else if (pivot_seen) {
        for (const auto& c : calls.compensation)
          if (c.e->t_us > *pivot_seen)
            add("compensation-after-pivot", "step " + st.name + " was compensated after the caller saw the pivot (" +
                             d.steps[pivot].name + ") succeed", seq(c.e));
      }

      // The client was told the saga was undone while a compensation of this step failed (none of its attempts
      // for that id succeeded).
      if (told == Outcome::Failure && i <= pivot && !calls.compensation.empty()) {
        std::map<std::string, std::vector<const Call*>> by_id;
        for (const auto& c : calls.compensation) by_id[st.compensation_id ? c.c->id : ""].push_back(&c);
        for (const auto& [id, comps] : by_id) {
          if (std::any_of(comps.begin(), comps.end(), [](const Call* c) { return is2xx(c->e->upstream_status); }))
            continue;
          const auto* last = comps.back()->e;
          add("client-truthful",
              "the client was told '" + told_text + "' but the compensation of step " + st.name +
                  (id.empty() ? "" : " (" + id + ")") + " failed: " +
                  (last->upstream_status ? "the upstream answered " + std::to_string(*last->upstream_status)
                                         : std::string("no answer")) +
                  (comps.size() > 1 ? " to each of its " + std::to_string(comps.size()) + " attempts" : ""),
              {told_at->seq, last->seq});
        }
      }

      if (outcome == Outcome::Failure && st.compensation && i <= pivot && !effects.empty()) {
        std::set<std::string> compensated;
        for (const auto* c : done_comps) compensated.insert(c->c->id);
        for (const auto* c : effects) {
          const auto* e = c->e;
          const auto& id = c->c->id;
          bool ok = st.compensation_id && !id.empty() ? compensated.count(id) > 0 : !done_comps.empty();
          if (!ok)
            add("uncompensated-step",
                "step " + st.name + ": the effect" + (c->c->effect.empty() ? "" : " " + c->c->effect) +
                    (e->upstream_status ? " (the upstream answered " + std::to_string(*e->upstream_status) +
                                              (e->status != e->upstream_status
                                                   ? ", the caller got " + (e->status ? std::to_string(*e->status)
                                                                                      : std::string("no answer"))
                                                   : std::string()) +
                                              ")"
                                        : " (the upstream never answered)") +
                    " was never compensated",
                seq(e));
        }
      }

      // State probes: each effect of a settled saga, read back once the stack is quiet.
      if (st.state && outcome != Outcome::Unknown && (outcome == Outcome::Success || i <= pivot)) {
        std::set<std::string> seen;
        for (const auto& c : calls.forward) {
          if (!is2xx(c.e->upstream_status) || c.c->effect.empty() || !seen.insert(c.c->effect).second) continue;
          ProbeRequest p;
          p.saga = saga;
          p.step = i;
          p.effect = c.c->effect;
          p.upstream = st.state->read.upstream;
          for (const auto& s : st.state->read.segments) p.path += "/" + (s == "{id}" ? c.c->effect : s);
          p.expect_undone = outcome == Outcome::Failure;
          p.exchanges = {c.e->seq};
          p.faults = sc.faults;
          rep.probes.push_back(std::move(p));
        }
      }
    }

    // Compensation order: no compensation of a later step starts after an earlier step's began.
    for (const auto& [i, ci] : sc.steps) {
      if (ci.compensation.empty()) continue;
      std::int64_t first_i = ci.compensation.front().e->t_us;
      for (const auto& c : ci.compensation) first_i = std::min(first_i, c.e->t_us);
      for (const auto& [j, cj] : sc.steps) {
        if (j <= i) continue;
        for (const auto& c : cj.compensation) {
          if (c.e->t_us > first_i) {
            add("compensation-order",
                "step " + d.steps[j].name + " was compensated after the compensation of the earlier step " +
                    d.steps[i].name + " began",
                {ci.compensation.front().e->seq, c.e->seq});
            break;
          }
        }
      }
    }
  }
  return rep;
}

std::vector<StepExchange> step_exchanges(const Description& d, const std::vector<Recorded>& ex) {
  std::vector<StepExchange> out;
  std::map<std::pair<std::size_t, bool>, int> seen;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    std::size_t s = 0;
    Captures caps;
    auto kind = route_of(d, ex[i], s, caps);
    if (kind != Kind::Forward && kind != Kind::Compensation) continue;
    const bool comp = kind == Kind::Compensation;
    out.push_back({i, s, comp, ++seen[{s, comp}]});
  }
  return out;
}

std::string route_glob(const Route& r) {
  std::string out;
  for (const auto& s : r.segments) out += "/" + (s == "*" || (s.size() > 2 && s.front() == '{' && s.back() == '}') ? std::string("*") : s);
  return out.empty() ? "/" : out;
}

void judge_probes(const Description& d, Report& rep, const std::vector<ProbeResult>& results) {
  rep.inputs |= kProbes;
  for (std::size_t k = 0; k < rep.probes.size() && k < results.size(); ++k) {
    const auto& p = rep.probes[k];
    const auto& r = results[k];
    const auto& st = d.steps[p.step];
    const auto& sp = *st.state;
    ++rep.probed;
    auto exs = p.exchanges;
    auto add = [&](const std::string& rule, const std::string& msg) {
      rep.violations.push_back(violation(rule, p.saga, msg, exs, p.faults));
    };
    auto where = "step " + st.name + ": GET " + p.path + " at " + p.upstream;
    if (!r.status || *r.status < 200 || *r.status >= 300) {
      add("state-unreadable", where + (r.status ? " answered " + std::to_string(*r.status) : " got no answer: " + r.error));
      continue;
    }
    auto v = field_text(r.body, sp.field);
    bool done = std::count(sp.done.begin(), sp.done.end(), v) > 0;
    bool undone = std::count(sp.undone.begin(), sp.undone.end(), v) > 0;
    if (!done && !undone) {
      add("state-unreadable", where + ": " + sp.field + " is '" + v + "', neither done (" + list_text(sp.done) +
                                  ") nor undone (" + list_text(sp.undone) + ")");
    } else if (p.expect_undone && !undone) {
      add("effects-undone", where + ": the saga failed but its effect " + p.effect + " is still " + sp.field + " '" + v + "'");
    } else if (!p.expect_undone && !done) {
      add("effects-done", where + ": the saga completed but its effect " + p.effect + " is " + sp.field + " '" + v + "'");
    }
  }
}


Json to_json(const Report& r) {
  Json vs = Json::array();
  for (const auto& v : r.violations) vs.push_back(to_json(v));
  Json un = Json::array();
  for (const auto& u : r.uncorrelated) un.push_back({{"seq", u.seq}, {"exchange", u.what}, {"reason", u.reason}});
  return {{"exchanges", r.exchanges},
          {"rules", coverage_json(r.inputs)},
          {"matched", r.matched},
          {"refused", r.refused},
          {"sagas", r.sagas},
          {"completed", r.completed},
          {"failed", r.failed},
          {"unknown", r.unknown},
          {"probes", r.probes.size()},
          {"probed", r.probed},
          {"uncorrelated", un},
          {"warnings", r.warnings},
          {"violations", vs},
          {"passed", r.violations.empty() && r.uncorrelated.empty()}};
}

std::string header_key(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace sagalab::check
