// The saga protocol checked from the outside (see saga_check.hpp).
#include "sagalab/saga_check.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

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
  auto dot = s.find('.');
  if (dot == std::string::npos || dot + 1 == s.size())
    bad(where + ": '" + s + "' must be header.<name>, request.<field>, response.<field> or path.<name>");
  Locator l;
  l.text = s;
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
    bad(where + ": '" + s + "' must start with header., request., response. or path.");
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

std::vector<std::string> strings(const Json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_string()) {
    out.push_back(j.get<std::string>());
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
    bad(what + " has no {" + l.name + "}");
}

bool route_matches(const Route& r, const Recorded& e, std::map<std::string, std::string>* captures) {
  if (r.upstream != e.upstream || r.method != e.method) return false;
  auto segs = split_path(e.path);
  if (segs.size() != r.segments.size()) return false;
  std::map<std::string, std::string> caps;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& p = r.segments[i];
    if (p == "*") continue;
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      caps[p.substr(1, p.size() - 2)] = segs[i];
      continue;
    }
    if (p != segs[i]) return false;
  }
  if (captures) *captures = std::move(caps);
  return true;
}

// The upstream's own answer when the proxy changed what the caller got.
const Json& true_response(const Recorded& e) {
  return e.upstream_status ? e.upstream_response : e.response;
}

std::string locate(const Locator& l, const Recorded& e, const std::map<std::string, std::string>& caps) {
  switch (l.from) {
    case Locator::From::Header:
      return e.headers.contains(l.name) && e.headers[l.name].is_string() ? e.headers[l.name].get<std::string>() : "";
    case Locator::From::Request:
      return field_text(e.request, l.name);
    case Locator::From::Response:
      return field_text(true_response(e), l.name);
    case Locator::From::Path: {
      auto it = caps.find(l.name);
      return it == caps.end() ? "" : it->second;
    }
  }
  return "";
}

bool is2xx(const std::optional<int>& s) { return s && *s >= 200 && *s < 300; }

struct Call {
  const Recorded* e;
  std::string id;      // correlates a forward call with its compensation
  std::string effect;  // what a forward call created
};

struct StepCalls {
  std::vector<Call> forward, compensation;
};

struct SagaCalls {
  std::vector<const Recorded*> client;
  std::map<std::size_t, StepCalls> steps;  // by step index
  std::vector<std::string> faults;
};

}  // namespace

std::string field_text(const Json& body, const std::string& dotted) {
  const Json* cur = &body;
  std::size_t i = 0;
  while (i <= dotted.size()) {
    auto j = dotted.find('.', i);
    if (j == std::string::npos) j = dotted.size();
    auto k = dotted.substr(i, j - i);
    if (!cur->is_object() || !cur->contains(k)) return "";
    cur = &(*cur)[k];
    i = j + 1;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_null() || cur->is_object() || cur->is_array()) return "";
  return cur->dump();
}

Description parse_description(const Json& j) {
  keys(j, "saga description", {"name", "saga_id", "client", "steps"});
  Description d;
  if (j.contains("name")) d.name = str(j["name"], "name");
  if (!j.contains("saga_id")) bad("saga_id is required: where each exchange names its saga, e.g. header.X-Saga-Id");
  for (const auto& s : strings(j["saga_id"], "saga_id")) d.saga_id.push_back(parse_locator(s, "saga_id"));
  if (j.contains("client")) {
    const auto& c = j["client"];
    keys(c, "client", {"upstream", "request", "outcome", "success", "failure", "pending"});
    for (const char* k : {"upstream", "request", "outcome", "success", "failure"})
      if (!c.contains(k)) bad(std::string("client.") + k + " is required");
    ClientDesc cd;
    cd.route = parse_route(str(c["upstream"], "client.upstream"), c["request"], "client.request");
    cd.outcome = parse_locator(c["outcome"], "client.outcome");
    if (cd.outcome.from != Locator::From::Response) bad("client.outcome must be a response.<field>");
    cd.success = strings(c["success"], "client.success");
    cd.failure = strings(c["failure"], "client.failure");
    if (c.contains("pending")) cd.pending = strings(c["pending"], "client.pending");
    d.client = cd;
  }
  if (!j.contains("steps") || !j["steps"].is_array() || j["steps"].empty())
    bad("steps is required: the saga's steps in order");
  std::set<std::string> names;
  for (std::size_t i = 0; i < j["steps"].size(); ++i) {
    const auto& s = j["steps"][i];
    auto where = "steps[" + std::to_string(i) + "]";
    keys(s, where, {"name", "upstream", "forward", "compensation", "id", "effect", "pivot"});
    StepDesc st;
    if (!s.contains("name")) bad(where + ".name is required");
    st.name = str(s["name"], where + ".name");
    if (!names.insert(st.name).second) bad(where + ": step name '" + st.name + "' appears twice");
    where = "step " + st.name;
    if (!s.contains("upstream") || !s.contains("forward")) bad(where + ": upstream and forward are required");
    auto up = str(s["upstream"], where + ".upstream");
    st.forward = parse_route(up, s["forward"], where + ".forward");
    if (s.contains("compensation")) st.compensation = parse_route(up, s["compensation"], where + ".compensation");
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
      if (st.effect->from == Locator::From::Path) bad(where + ".effect must be a header, request or response field");
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
  if (d.pivot < 0) bad("no step is the pivot: mark the point of no return with 'pivot: true'");
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

const std::vector<std::pair<std::string, std::string>>& rules() {
  static const std::vector<std::pair<std::string, std::string>> r = {
      {"client-answered", "every client request that started a saga got an answer with an outcome the description "
                          "names (success, failure or pending), unless the proxy itself cut it"},
      {"compensated", "every forward effect of a failed saga, at or before the pivot, is compensated (an effect "
                      "whose id is unknown needs a compensation of its step)"},
      {"reverse-order", "a failed saga compensates its steps in the reverse order of the forward steps: no "
                        "compensation of a later step after an earlier step's compensation began"},
      {"no-forward-after-compensation", "no forward call of a step succeeds after that step's compensation succeeded"},
      {"one-effect", "retries of a step create one effect: its successful forward calls all name the same effect"},
      {"pivot", "nothing after the pivot is compensated, nothing is compensated once the caller saw the pivot "
                "succeed, and a completed saga has no successful compensation"},
  };
  return r;
}

Report check_recording(const Description& d, const std::vector<Recorded>& exchanges) {
  Report rep;
  rep.exchanges = exchanges.size();
  std::map<std::string, SagaCalls> sagas;
  std::vector<std::string> order;  // sagas in the order first seen
  auto saga_of = [&](const Recorded& e) {
    for (const auto& l : d.saga_id) {
      auto v = locate(l, e, {});
      if (!v.empty()) return v;
    }
    return std::string();
  };
  for (const auto& e : exchanges) {
    std::map<std::string, std::string> caps;
    bool client = d.client && route_matches(d.client->route, e, &caps);
    int step = -1;
    bool comp = false;
    std::string id, effect;
    if (!client) {
      for (std::size_t i = 0; i < d.steps.size() && step < 0; ++i) {
        const auto& s = d.steps[i];
        if (route_matches(s.forward, e, &caps)) {
          step = static_cast<int>(i);
          if (s.forward_id) id = locate(*s.forward_id, e, caps);
          effect = s.effect ? locate(*s.effect, e, caps) : id;
        } else if (s.compensation && route_matches(*s.compensation, e, &caps)) {
          step = static_cast<int>(i);
          comp = true;
          if (s.compensation_id) id = locate(*s.compensation_id, e, caps);
        }
      }
      if (step < 0) continue;
    }
    auto saga = saga_of(e);
    if (saga.empty()) continue;  // not part of a saga (a refused request, an admin call)
    if (!sagas.count(saga)) order.push_back(saga);
    auto& sc = sagas[saga];
    if (!e.fault.empty())
      sc.faults.push_back(e.fault + " at " + e.upstream + " " + e.method + " " + e.path + " (#" +
                          std::to_string(e.seq) + ")");
    if (client) {
      sc.client.push_back(&e);
    } else if (comp) {
      sc.steps[static_cast<std::size_t>(step)].compensation.push_back({&e, id, ""});
    } else {
      sc.steps[static_cast<std::size_t>(step)].forward.push_back({&e, id, effect});
    }
  }

  const auto pivot = static_cast<std::size_t>(d.pivot);
  for (const auto& saga : order) {
    auto& sc = sagas[saga];
    ++rep.sagas;
    auto add = [&](const std::string& rule, const std::string& msg, std::vector<std::int64_t> ex) {
      rep.violations.push_back({rule, saga, msg, std::move(ex), sc.faults});
    };
    auto seq = [](const Recorded* e) { return std::vector<std::int64_t>{e->seq}; };

    // The outcome, as the client saw it.
    enum class Outcome { Unknown, Success, Failure } outcome = Outcome::Unknown;
    for (const auto* c : sc.client) {
      // What the client saw: its own body, not the upstream's (they differ only under a proxy fault).
      auto v = c->status ? field_text(c->response, d.client->outcome.name) : std::string();
      bool ok = std::count(d.client->success.begin(), d.client->success.end(), v) > 0;
      bool failed = std::count(d.client->failure.begin(), d.client->failure.end(), v) > 0;
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
    bool any_comp = false;
    for (const auto& [i, calls] : sc.steps) any_comp |= !calls.compensation.empty();
    if (outcome == Outcome::Unknown && any_comp) outcome = Outcome::Failure;
    if (outcome == Outcome::Success) ++rep.completed;
    if (outcome == Outcome::Failure) ++rep.failed;
    if (outcome == Outcome::Unknown) ++rep.unknown;

    // When the caller saw the pivot succeed.
    std::optional<std::int64_t> pivot_seen;
    if (sc.steps.count(pivot)) {
      for (const auto& c : sc.steps[pivot].forward)
        if (is2xx(c.e->status) && (!pivot_seen || c.e->done_us < *pivot_seen)) pivot_seen = c.e->done_us;
    }

    for (const auto& [i, calls] : sc.steps) {
      const auto& st = d.steps[i];
      // Effects: forward calls the upstream answered 2xx (or never answered: maybe an effect).
      std::map<std::string, std::vector<std::int64_t>> effect_ids;
      std::vector<const Call*> effects;
      for (const auto& c : calls.forward) {
        if (is2xx(c.e->upstream_status) || (c.e->forwarded && !c.e->upstream_status)) effects.push_back(&c);
        if (is2xx(c.e->upstream_status) && !c.effect.empty()) effect_ids[c.effect].push_back(c.e->seq);
      }
      std::vector<const Call*> done_comps;
      for (const auto& c : calls.compensation)
        if (is2xx(c.e->upstream_status)) done_comps.push_back(&c);

      if (effect_ids.size() > 1) {
        std::vector<std::int64_t> ex;
        std::string ids;
        for (const auto& [id, s] : effect_ids) {
          ids += (ids.empty() ? "" : ", ") + id;
          ex.insert(ex.end(), s.begin(), s.end());
        }
        add("one-effect", "step " + st.name + ": retries created " + std::to_string(effect_ids.size()) +
                              " effects (" + ids + ")", ex);
      }

      if (!done_comps.empty()) {
        std::int64_t first_comp = done_comps.front()->e->done_us;
        for (const auto* c : done_comps) first_comp = std::min(first_comp, c->e->done_us);
        for (const auto& c : calls.forward) {
          if (is2xx(c.e->upstream_status) && c.e->done_us > first_comp)
            add("no-forward-after-compensation",
                "step " + st.name + ": a forward call succeeded after the step was compensated", {c.e->seq});
        }
      }

      if (i > pivot) {
        for (const auto& c : calls.compensation)
          add("pivot", "step " + st.name + " comes after the pivot but was compensated", seq(c.e));
      } else if (pivot_seen) {
        for (const auto& c : calls.compensation)
          if (c.e->t_us > *pivot_seen)
            add("pivot", "step " + st.name + " was compensated after the caller saw the pivot (" +
                             d.steps[pivot].name + ") succeed", seq(c.e));
      }
      if (outcome == Outcome::Success && !done_comps.empty() && i <= pivot)
        add("pivot", "the saga completed but step " + st.name + " was compensated", seq(done_comps.front()->e));

      if (outcome == Outcome::Failure && st.compensation && i <= pivot && !effects.empty()) {
        std::set<std::string> compensated;
        for (const auto* c : done_comps) compensated.insert(c->id);
        for (const auto* c : effects) {
          const auto* e = c->e;
          const auto& id = c->id;
          bool ok = st.compensation_id && !id.empty() ? compensated.count(id) > 0 : !done_comps.empty();
          if (!ok)
            add("compensated",
                "step " + st.name + ": the effect" + (id.empty() ? "" : " " + id) +
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
    }

    // Reverse order: no compensation of a later step starts after an earlier step's began.
    for (const auto& [i, ci] : sc.steps) {
      if (ci.compensation.empty()) continue;
      std::int64_t first_i = ci.compensation.front().e->t_us;
      for (const auto& c : ci.compensation) first_i = std::min(first_i, c.e->t_us);
      for (const auto& [j, cj] : sc.steps) {
        if (j <= i) continue;
        for (const auto& c : cj.compensation) {
          if (c.e->t_us > first_i) {
            add("reverse-order",
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

Json to_json(const Violation& v) {
  return {{"rule", v.rule}, {"saga", v.saga}, {"message", v.message}, {"exchanges", v.exchanges}, {"faults", v.faults}};
}

Json to_json(const Report& r) {
  Json vs = Json::array();
  for (const auto& v : r.violations) vs.push_back(to_json(v));
  return {{"exchanges", r.exchanges}, {"sagas", r.sagas},         {"completed", r.completed},
          {"failed", r.failed},       {"unknown", r.unknown},     {"violations", vs},
          {"passed", r.violations.empty()}};
}

std::string header_key(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace sagalab::check
