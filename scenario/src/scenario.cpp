// Scenario files: strict YAML parsing (yaml-cpp) and writing.
#include "sagalab/scenario.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "sagalab/domain.hpp"
#include "sagalab/errors.hpp"
#include "sagalab/faults.hpp"
#include "sagalab/proxy.hpp"
#include "sagalab/purchase.hpp"

namespace sagactl {

// YAML -> JSON for free-form data (stock, catalog, fault rule fields).
Json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    Json j = Json::object();
    for (const auto& kv : n) j[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return j;
  }
  if (n.IsSequence()) {
    Json j = Json::array();
    for (const auto& e : n) j.push_back(yaml_to_json(e));
    return j;
  }
  if (n.IsNull()) return nullptr;
  auto s = n.as<std::string>();
  if (n.Tag() == "!") return s;  // quoted: a string
  long long i = 0;
  double d = 0;
  bool b = false;
  if (YAML::convert<long long>::decode(n, i)) return i;
  if (YAML::convert<double>::decode(n, d)) return d;
  if (YAML::convert<bool>::decode(n, b)) return b;
  return s;
}

namespace {

struct Ctx {
  std::string file;
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    int line = n.IsDefined() ? n.Mark().line + 1 : 0;
    throw CliError(kExitUnreachable, file + (line > 0 ? ":" + std::to_string(line) : "") + ": " + msg);
  }
  void keys(const YAML::Node& n, const std::string& where, const std::set<std::string>& allowed) const {
    if (!n.IsMap()) fail(n, where + " must be a mapping");
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) fail(kv.first, "a key in " + where + " must be a plain word");
      auto k = kv.first.as<std::string>();
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(kv.first, "unknown key '" + k + "' in " + where + "; expected one of: " + list);
      }
    }
  }
  std::string str(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, what + " must be a string");
    return n.as<std::string>();
  }
  long long integer(const YAML::Node& n, const std::string& what, long long lo, long long hi) const {
    long long v = 0;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v))
      fail(n, what + " must be an integer");
    if (v < lo || v > hi) fail(n, what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return v;
  }
  double number(const YAML::Node& n, const std::string& what) const {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v)) fail(n, what + " must be a number");
    return v;
  }
  // A stock key of the default catalog (LAPTOP, MOUSE, ...).
  void product(const YAML::Node& key, const std::string& where) const {
    static const auto stock = sagalab::default_stock();
    auto k = key.as<std::string>();
    if (stock.count(k)) return;
    std::string known;
    for (const auto& [p, n] : stock) known += (known.empty() ? "" : ", ") + p;
    fail(key, where + ": unknown product '" + k + "'; the products are: " + known);
  }
  bool boolean(const YAML::Node& n, const std::string& what) const {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) fail(n, what + " must be true or false");
    return v;
  }
};

const std::set<std::string> kRuleKeys = {"action", "endpoint", "status", "message", "latency_ms", "jitter_ms",
                                         "duration_ms", "probability", "times", "attempts", "name"};

step::Inject parse_rule(const Ctx& c, const YAML::Node& n, const std::string& where) {
  auto allowed = kRuleKeys;
  allowed.insert("service");
  c.keys(n, where, allowed);
  if (!n["service"]) c.fail(n, where + " needs 'service'");
  step::Inject inj;
  auto name = c.str(n["service"], where + ".service");
  try {
    inj.service = canonical_program(name);
  } catch (const CliError& e) {
    c.fail(n["service"], e.what());
  }
  if (!n["action"]) c.fail(n, where + " needs 'action'");
  Json rule = Json::object();
  for (const auto& kv : n) {
    auto k = kv.first.as<std::string>();
    if (k != "service") rule[k] = yaml_to_json(kv.second);
  }
  // The programs' own parser, their endpoints included, before anything runs; an error points
  // at the field it names.
  try {
    inj.rule = sagalab::parse_fault_rule(rule, sagalab::fault_endpoints(inj.service));
  } catch (const sagalab::ClientError& e) {
    c.fail(!e.field().empty() && n[e.field()] ? n[e.field()] : n, where + ": " + e.what());
  } catch (const std::exception& e) {
    c.fail(n, where + ": " + e.what());
  }
  return inj;
}

// A rule for the proxy in front of the scenario's stack: named by upstream.
step::InjectProxy parse_proxy_rule(const Ctx& c, const YAML::Node& n, const std::string& where) {
  auto allowed = kRuleKeys;
  for (const char* k : {"upstream", "method", "path", "header_name", "header_value", "body_field", "body_value", "on", "skip"})
    allowed.insert(k);
  c.keys(n, where, allowed);
  if (!n["action"]) c.fail(n, where + " needs 'action'");
  auto action = c.str(n["action"], where + ".action");
  const auto& names = sagalab::proxy::action_names();
  if (std::find(names.begin(), names.end(), action) == names.end()) {
    std::string all;
    for (const auto& a : names) all += (all.empty() ? "" : ", ") + a;
    c.fail(n["action"], where + ".action: '" + action + "' is not a proxy action (" + all + ")");
  }
  step::InjectProxy inj;
  inj.rule = Json::object();
  for (const auto& kv : n) inj.rule[kv.first.as<std::string>()] = yaml_to_json(kv.second);
  return inj;
}

}  // namespace

namespace {
Scenario parse_scenario(const std::string& path, const std::string& proxy);
}  // namespace

Scenario load_scenario(const std::string& path, const std::string& proxy) {
  try {
    return parse_scenario(path, proxy);
  } catch (const YAML::Exception& e) {
    // Any shape the checks above did not foresee (a map where a word belongs, ...).
    throw CliError(kExitUnreachable, path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

namespace {

// A path in a scenario file is relative to the file.
std::string relative_to(const std::string& file, const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  auto dir = std::filesystem::path(file).parent_path();
  return (dir / p).string();
}

Scenario parse_scenario(const std::string& path, const std::string& proxy) {
  Ctx c{path};
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw CliError(kExitUnreachable, path + ": cannot read the file");
  } catch (const YAML::ParserException& e) {
    throw CliError(kExitUnreachable, path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  Scenario s;
  s.file = path;
  c.keys(root, "the scenario", {"name", "description", "seed", "setup", "faults", "steps", "expect", "proxy"});
  s.proxy = proxy;
  if (root["proxy"]) s.proxy = relative_to(path, c.str(root["proxy"], "proxy"));
  const bool proxied = !s.proxy.empty();
  if (proxied) {
    s.expect.invariants = false;  // sagalab's invariants read sagalab's services; a proxied stack has `check`
    if (root["setup"] || root["faults"])
      c.fail(root["setup"] ? root["setup"] : root["faults"],
             "a proxied scenario has no setup or faults: use inject steps with an upstream");
  }
  static const std::set<std::string> own_stack_only = {"buy", "load", "crash", "restart", "wait-until-quiet", "reset"};
  if (!root["name"]) c.fail(root, "the scenario needs a 'name'");
  if (!root["description"]) c.fail(root, "the scenario needs a 'description' saying what saga property it proves");
  s.name = c.str(root["name"], "name");
  s.description = c.str(root["description"], "description");
  if (root["seed"]) s.seed = static_cast<std::uint64_t>(c.integer(root["seed"], "seed", 0, 1LL << 62));
  if (auto setup = root["setup"]) {
    c.keys(setup, "setup", {"reset", "stock", "catalog"});
    if (setup["reset"]) s.reset = c.boolean(setup["reset"], "setup.reset");
    if (setup["stock"]) {
      if (!setup["stock"].IsMap()) c.fail(setup["stock"], "setup.stock must map products to quantities");
      for (const auto& kv : setup["stock"]) {
        c.integer(kv.second, "setup.stock." + kv.first.as<std::string>(), 0, 1000000);
        if (!setup["catalog"]) c.product(kv.first, "setup.stock");  // the others keep their stock
      }
      try {
        s.stock = sagalab::parse_stock(yaml_to_json(setup["stock"]));
      } catch (const std::exception& e) {
        c.fail(setup["stock"], std::string("setup.") + e.what());
      }
    }
    if (setup["catalog"]) {
      if (!setup["catalog"].IsSequence()) c.fail(setup["catalog"], "setup.catalog must be a list of products");
      try {
        s.catalog = sagalab::parse_catalog(yaml_to_json(setup["catalog"]));
      } catch (const std::exception& e) {
        c.fail(setup["catalog"], std::string("setup.") + e.what());
      }
    }
  }
  if (auto faults = root["faults"]) {
    if (!faults.IsSequence()) c.fail(faults, "faults must be a list of fault rules");
    for (std::size_t i = 0; i < faults.size(); ++i) {
      s.faults.push_back(parse_rule(c, faults[i], "faults[" + std::to_string(i) + "]"));
    }
  }
  if (!root["steps"] || !root["steps"].IsSequence() || root["steps"].size() == 0)
    c.fail(root["steps"] ? root["steps"] : root, "the scenario needs 'steps': a non-empty list");
  for (std::size_t i = 0; i < root["steps"].size(); ++i) {
    const auto& n = root["steps"][i];
    auto where = "steps[" + std::to_string(i) + "]";
    if (!n.IsMap() || n.size() != 1)
      c.fail(n, where + " must be one of: buy, load, inject, clear-faults, crash, restart, wait-until-quiet, sleep, reset");
    auto kind = n.begin()->first.as<std::string>();
    // A copy of the node handle: the iterator that n.begin() returns is a temporary.
    const YAML::Node v = n.begin()->second;
    ScenarioStep st;
    st.line = n.Mark().line + 1;
    if (proxied && own_stack_only.count(kind))
      c.fail(n, where + ": '" + kind + "' needs sagalab's own stack; a proxied scenario drives its stack with request steps");
    if (!proxied && kind == "request")
      c.fail(n, where + ": 'request' steps need a proxy (proxy: config.yaml, or sagactl run --proxy)");
    auto program = [&](const YAML::Node& at, const std::string& name) {
      try {
        return canonical_program(name);
      } catch (const CliError& e) {
        c.fail(at, e.what());
      }
    };
    if (proxied && kind == "inject") {
      st.body = parse_proxy_rule(c, v, where + ".inject");
    } else if (kind == "request") {
      step::Request r;
      c.keys(v, where + ".request", {"upstream", "method", "path", "body", "headers", "repeat", "expect_status"});
      if (!v["upstream"] || !v["path"]) c.fail(v, where + ".request needs 'upstream' and 'path'");
      r.upstream = c.str(v["upstream"], where + ".request.upstream");
      r.path = c.str(v["path"], where + ".request.path");
      if (r.path.empty() || r.path.front() != '/') c.fail(v["path"], where + ".request.path must start with /");
      if (v["method"]) r.method = c.str(v["method"], where + ".request.method");
      if (v["body"]) r.body = yaml_to_json(v["body"]);
      if (v["headers"]) {
        if (!v["headers"].IsMap()) c.fail(v["headers"], where + ".request.headers must map names to values");
        for (const auto& kv : v["headers"]) r.headers[kv.first.as<std::string>()] = c.str(kv.second, where + ".request.headers");
      }
      if (v["repeat"]) r.repeat = static_cast<int>(c.integer(v["repeat"], where + ".request.repeat", 1, 100000));
      if (v["expect_status"])
        r.expect_status = static_cast<int>(c.integer(v["expect_status"], where + ".request.expect_status", 100, 599));
      st.body = std::move(r);
    } else if (kind == "buy") {
      step::Buy b;
      c.keys(v, where + ".buy", {"user", "product", "qty", "idempotency_key", "expect", "label"});
      if (v["user"]) b.user = c.str(v["user"], where + ".buy.user");
      if (v["product"]) b.product = c.str(v["product"], where + ".buy.product");
      if (v["qty"]) b.qty = static_cast<int>(c.integer(v["qty"], where + ".buy.qty", 1, 100));
      if (v["idempotency_key"]) b.idempotency_key = c.str(v["idempotency_key"], where + ".buy.idempotency_key");
      if (v["label"]) b.label = c.str(v["label"], where + ".buy.label");
      if (v["expect"]) {
        b.expect = c.str(v["expect"], where + ".buy.expect");
        static const std::set<std::string> ok = {"completada", "compensada", "rechazada", "any"};
        if (!ok.count(b.expect))
          c.fail(v["expect"], where + ".buy.expect must be completada, compensada, rechazada or any");
      }
      st.body = std::move(b);
    } else if (kind == "load") {
      step::Load l;
      c.keys(v, where + ".load", {"count", "concurrency", "product", "fault_rate"});
      if (!v["count"]) c.fail(v, where + ".load needs 'count'");
      l.count = static_cast<int>(c.integer(v["count"], where + ".load.count", 1, 1000000));
      if (v["concurrency"]) l.concurrency = static_cast<int>(c.integer(v["concurrency"], where + ".load.concurrency", 1, 256));
      if (v["product"]) l.product = c.str(v["product"], where + ".load.product");
      if (v["fault_rate"]) {
        l.fault_rate = c.number(v["fault_rate"], where + ".load.fault_rate");
        if (l.fault_rate < 0 || l.fault_rate > 1) c.fail(v["fault_rate"], where + ".load.fault_rate must be in [0, 1]");
      }
      st.body = std::move(l);
    } else if (kind == "inject") {
      st.body = parse_rule(c, v, where + ".inject");
    } else if (kind == "clear-faults") {
      auto which = c.str(v, where + ".clear-faults");
      st.body = step::ClearFaults{which == "all" ? std::string() : program(v, which)};
    } else if (kind == "crash" || kind == "restart") {
      if (!v.IsScalar()) c.fail(v, where + "." + kind + " names one program, e.g. " + kind + ": pagos");
      auto name = program(v, c.str(v, where + "." + kind));
      if (kind == "crash")
        st.body = step::Crash{name};
      else
        st.body = step::Restart{name};
    } else if (kind == "wait-until-quiet") {
      step::WaitUntilQuiet w;
      if (v.IsMap()) {
        c.keys(v, where + ".wait-until-quiet", {"timeout_ms"});
        if (v["timeout_ms"]) w.timeout_ms = c.integer(v["timeout_ms"], where + ".wait-until-quiet.timeout_ms", 1, 3600000);
      } else if (!c.boolean(v, where + ".wait-until-quiet")) {
        c.fail(v, where + ".wait-until-quiet must be true or {timeout_ms: N}");
      }
      st.body = w;
    } else if (kind == "sleep") {
      // Lets a held request (a hang) reach its service before the checks.
      c.keys(v, where + ".sleep", {"ms"});
      if (!v["ms"]) c.fail(v, where + ".sleep needs 'ms', e.g. sleep: {ms: 500}");
      st.body = step::Sleep{c.integer(v["ms"], where + ".sleep.ms", 1, 600000)};
    } else if (kind == "reset") {
      c.boolean(v, where + ".reset");
      st.body = step::Reset{};
    } else {
      c.fail(n, "unknown step '" + kind + "'; expected buy, load, inject, clear-faults, crash, restart, wait-until-quiet, sleep or reset");
    }
    s.steps.push_back(std::move(st));
  }
  if (auto e = root["expect"]) {
    c.keys(e, "expect", proxied ? std::set<std::string>{"check", "probe"} : std::set<std::string>{"invariants", "outcomes", "sagas", "fired", "check", "stock"});
    if (e["check"]) s.expect.check = relative_to(path, c.str(e["check"], "expect.check"));
    if (e["probe"]) s.expect.probe = c.boolean(e["probe"], "expect.probe");
    if (e["invariants"]) s.expect.invariants = c.boolean(e["invariants"], "expect.invariants");
    if (e["stock"]) {
      if (!e["stock"].IsMap()) c.fail(e["stock"], "expect.stock must map products to the units available at the end, e.g. {LAPTOP: 5}");
      for (const auto& kv : e["stock"]) {
        if (!root["setup"] || !root["setup"]["catalog"]) c.product(kv.first, "expect.stock");
        s.expect.stock[kv.first.as<std::string>()] =
            c.integer(kv.second, "expect.stock." + kv.first.as<std::string>(), 0, 1000000000);
      }
    }
    if (e["outcomes"]) {
      c.keys(e["outcomes"], "expect.outcomes", {"completada", "compensada", "atascada", "en_curso", "compensando"});
      for (const auto& kv : e["outcomes"])
        s.expect.outcomes[kv.first.as<std::string>()] =
            static_cast<int>(c.integer(kv.second, "expect.outcomes." + kv.first.as<std::string>(), 0, 10000000));
    }
    if (e["sagas"]) {
      if (!e["sagas"].IsMap()) c.fail(e["sagas"], "expect.sagas must map buy labels to a final state");
      std::set<std::string> labels;
      for (const auto& st : s.steps) {
        if (const auto* b = std::get_if<step::Buy>(&st.body); b && !b->label.empty()) labels.insert(b->label);
      }
      for (const auto& kv : e["sagas"]) {
        auto label = kv.first.as<std::string>();
        if (!labels.count(label)) c.fail(kv.first, "expect.sagas names '" + label + "', which no buy step has as its label");
        auto estado = c.str(kv.second, "expect.sagas." + label);
        if (estado != "completada" && estado != "compensada")
          c.fail(kv.second, "expect.sagas." + label + " must be completada or compensada");
        s.expect.sagas[label] = estado;
      }
    }
    if (e["fired"]) {
      if (!e["fired"].IsSequence()) c.fail(e["fired"], "expect.fired must be a list");
      for (std::size_t i = 0; i < e["fired"].size(); ++i) {
        const auto& f = e["fired"][i];
        auto where = "expect.fired[" + std::to_string(i) + "]";
        c.keys(f, where, {"service", "action", "min"});
        ScenarioExpect::Fired fx;
        if (!f["service"] || !f["action"]) c.fail(f, where + " needs 'service' and 'action'");
        try {
          fx.service = canonical_program(c.str(f["service"], where + ".service"));
        } catch (const CliError& ex) {
          c.fail(f["service"], ex.what());
        }
        fx.action = c.str(f["action"], where + ".action");
        if (!sagalab::fault_action_from_string(fx.action)) c.fail(f["action"], where + ".action: unknown action '" + fx.action + "'");
        if (f["min"]) fx.min = static_cast<int>(c.integer(f["min"], where + ".min", 0, 1000000));
        s.expect.fired.push_back(fx);
      }
    }
  }
  if (proxied && s.expect.check.empty())
    c.fail(root["expect"] ? root["expect"] : root, "a proxied scenario needs expect.check: its saga description (YAML)");
  if (!s.expect.check.empty() && !proxied)
    c.fail(root["expect"], "expect.check reads a proxy's recording: give the scenario a proxy (proxy: config.yaml)");
  return s;
}

}  // namespace

void emit_json(YAML::Emitter& out, const Json& j, bool quote_strings) {
  if (j.is_object()) {
    out << YAML::Flow << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      emit_json(out, v, quote_strings);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& v : j) emit_json(out, v, quote_strings);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    if (quote_strings) out << YAML::DoubleQuoted;
    out << j.get<std::string>();
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<long long>();
  } else if (j.is_number()) {
    out << j.get<double>();
  } else {
    out << YAML::Null;
  }
}

namespace {

std::string short_service(const std::string& program) {
  return program.rfind("ms-", 0) == 0 ? program.substr(3) : program;
}

// One step as the file writes it.
struct Emit {
  YAML::Emitter& out;
  void operator()(const step::Buy& b) const {
    out << YAML::Key << "buy" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "user" << YAML::Value << b.user;
    if (!b.product.empty()) out << YAML::Key << "product" << YAML::Value << b.product;
    out << YAML::Key << "qty" << YAML::Value << b.qty;
    if (!b.idempotency_key.empty()) out << YAML::Key << "idempotency_key" << YAML::Value << b.idempotency_key;
    if (!b.expect.empty()) out << YAML::Key << "expect" << YAML::Value << b.expect;
    if (!b.label.empty()) out << YAML::Key << "label" << YAML::Value << b.label;
    out << YAML::EndMap;
  }
  void operator()(const step::Load& l) const {
    out << YAML::Key << "load" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "count" << YAML::Value
        << l.count << YAML::Key << "concurrency" << YAML::Value << l.concurrency;
    if (!l.product.empty()) out << YAML::Key << "product" << YAML::Value << l.product;
    if (l.fault_rate > 0) out << YAML::Key << "fault_rate" << YAML::Value << l.fault_rate;
    out << YAML::EndMap;
  }
  void operator()(const step::Inject& i) const {
    Json r = rule_json(i.rule);
    r["service"] = short_service(i.service);
    out << YAML::Key << "inject" << YAML::Value;
    emit_json(out, r, false);
  }
  void operator()(const step::InjectProxy& i) const {
    out << YAML::Key << "inject" << YAML::Value;
    emit_json(out, i.rule);
  }
  void operator()(const step::ClearFaults& c) const {
    out << YAML::Key << "clear-faults" << YAML::Value << (c.service.empty() ? "all" : short_service(c.service));
  }
  void operator()(const step::Crash& c) const { out << YAML::Key << "crash" << YAML::Value << short_service(c.service); }
  void operator()(const step::Restart& r) const {
    out << YAML::Key << "restart" << YAML::Value << short_service(r.service);
  }
  void operator()(const step::WaitUntilQuiet& w) const {
    out << YAML::Key << "wait-until-quiet" << YAML::Value;
    if (w.timeout_ms == step::WaitUntilQuiet{}.timeout_ms)
      out << true;
    else
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "timeout_ms" << YAML::Value << w.timeout_ms << YAML::EndMap;
  }
  void operator()(const step::Sleep& z) const {
    out << YAML::Key << "sleep" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "ms" << YAML::Value << z.ms
        << YAML::EndMap;
  }
  void operator()(const step::Reset&) const { out << YAML::Key << "reset" << YAML::Value << true; }
  void operator()(const step::Request& q) const {
    Json r = {{"upstream", q.upstream}, {"method", q.method}, {"path", q.path}, {"repeat", q.repeat}};
    if (!q.body.is_null()) r["body"] = q.body;
    if (!q.headers.empty()) r["headers"] = q.headers;
    if (q.expect_status) r["expect_status"] = q.expect_status;
    out << YAML::Key << "request" << YAML::Value;
    emit_json(out, r);
  }
};

}  // namespace

Json rule_json(const sagalab::FaultRule& r) {
  const sagalab::FaultRule d;
  Json j{{"action", sagalab::to_string(r.action)}};
  if (!r.name.empty()) j["name"] = r.name;
  if (!r.endpoint.empty()) j["endpoint"] = r.endpoint;
  if (r.status != d.status) j["status"] = r.status;
  if (r.message != d.message) j["message"] = r.message;
  if (r.latency_ms != d.latency_ms) j["latency_ms"] = r.latency_ms;
  if (r.jitter_ms != d.jitter_ms) j["jitter_ms"] = r.jitter_ms;
  if (r.duration_ms != d.duration_ms) j["duration_ms"] = r.duration_ms;
  if (r.probability != d.probability) j["probability"] = r.probability;
  if (r.times >= 0) j["times"] = r.times;
  if (!r.attempts.empty()) j["attempts"] = r.attempts;
  return j;
}

std::string emit_scenario(const Scenario& s) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << s.name;
  out << YAML::Key << "description" << YAML::Value << s.description;
  out << YAML::Key << "seed" << YAML::Value << s.seed;
  out << YAML::Key << "setup" << YAML::Value << YAML::BeginMap << YAML::Key << "reset" << YAML::Value << s.reset;
  if (s.stock) {
    out << YAML::Key << "stock" << YAML::Value;
    emit_json(out, Json(*s.stock));
  }
  if (s.catalog) {
    Json cat = Json::array();
    for (const auto& p : *s.catalog) cat.push_back(sagalab::to_json(p));
    out << YAML::Key << "catalog" << YAML::Value;
    emit_json(out, cat, true);
  }
  out << YAML::EndMap;
  if (!s.faults.empty()) {
    out << YAML::Key << "faults" << YAML::Value << YAML::BeginSeq;
    for (const auto& f : s.faults) {
      Json r = rule_json(f.rule);
      r["service"] = short_service(f.service);
      emit_json(out, r);
    }
    out << YAML::EndSeq;
  }
  out << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
  for (const auto& st : s.steps) {
    out << YAML::BeginMap;
    std::visit(Emit{out}, st.body);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "expect" << YAML::Value << YAML::BeginMap << YAML::Key << "invariants" << YAML::Value
      << s.expect.invariants << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace sagactl
