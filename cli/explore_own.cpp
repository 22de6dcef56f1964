// sagactl explore on sagalab's own purchase saga: a local stack of its own on
// free ports, broken with the services' own fault rules (at each step's
// endpoint and at its compensation, on exactly one attempt) and with the
// orchestrator's crash points around each step's saga-log write; each run is
// judged by the invariants and rules that `sagactl verify` checks, and by
// whether the client was told the truth.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "explore.hpp"
#include "sagalab/invariants.hpp"
#include "sagalab/purchase.hpp"
#include "sagalab/scenario.hpp"
#include "stack.hpp"

namespace sagactl::explore {

namespace {

namespace fs = std::filesystem;

class OwnStackTarget : public Target {
 public:
  OwnStackTarget(const GlobalOptions& g, const OwnStackOptions& o);
  ~OwnStackTarget() override { stop(); }
  std::string saga_name() const override { return "sagalab purchase"; }
  const std::vector<StepRow>& steps() const override { return rows_; }
  const std::vector<ActionSpec>& actions() const override { return actions_; }
  void run(Experiment& e) override;
  std::string write_scenario(const Experiment& e, const std::string& dir, std::uint64_t seed,
                             const std::string& title) const override;
  void finish(bool) override { stop(); }

 private:
  // The program a fault goes to, and its rule (without a name).
  std::pair<std::string, Json> rule_for(const Fault& f) const;
  Json admin(const std::string& program, const std::string& method, const std::string& path, const Json* body = nullptr);
  int pid_of(const std::string& program) const;
  void stop();

  GlobalOptions g_;
  OwnStackOptions o_;
  sagalab::SagaDefinition def_ = sagalab::SagaDefinition::default_purchase();
  std::vector<StepRow> rows_;
  std::vector<ActionSpec> actions_;
  std::vector<std::string> endpoints_;  // each step's forward endpoint at its service
  std::string dir_;
};

OwnStackTarget::OwnStackTarget(const GlobalOptions& g, const OwnStackOptions& o) : g_(g), o_(o) {
  if (g.remote())
    throw CliError(kExitUnreachable, "explore on sagalab's own stack starts a local stack of its own; for a stack "
                                     "behind --gateway or URLs, put it behind sagactl proxy and give --config, "
                                     "--saga and --workload");
  for (std::size_t i = 0; i < def_.steps.size(); ++i) {
    auto k = def_.steps[i].kind;
    rows_.push_back({def_.steps[i].name, k == sagalab::StepKind::Compensatable || k == sagalab::StepKind::Pivot});
    sagalab::SagaState s;
    s.ctx.producto_solicitado = o_.product;
    sagalab::Command c;
    c.step = static_cast<int>(i);
    endpoints_.push_back(sagalab::build_step_call(def_, s, c).endpoint);
  }
  auto crash = [](const char* a) { return Json{{"action", a}}; };
  actions_ = select_actions(
      {
          {"error-5xx", {{"action", "error"}, {"status", 503}}},
          {"error-4xx", {{"action", "error"}, {"status", 409}}},
          {"commit-then-error", {{"action", "commit-then-error"}}},
          {"commit-then-drop", {{"action", "commit-then-drop"}}},
          {"latency", {{"action", "latency"}, {"latency_ms", o_.latency_ms}}, o_.latency_ms},
          {"crash-before", crash("crash-before")},
          {"crash-after", crash("crash-after")},
          {"orchestrator-crash-before", crash("crash-before"), 0, true},
          {"orchestrator-crash-after", crash("crash-after"), 0, true},
      },
      o_.actions);

  auto tmpl = (fs::temp_directory_path() / "sagactl-explore-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw CliError(kExitFailed, "cannot create a temporary directory");
  dir_ = tmpl;
  g_.stack_dir = dir_;
  UpOptions up;
  up.base_port = 0;
  up.quiet = true;
  up.orchestrator_args = {"--step-timeout-ms=" + std::to_string(o_.step_timeout_ms), "--backoff-base-ms=10",
                          "--backoff-max-ms=200"};
  run_up(g_, up);
  if (!g.json) std::cout << "started a local stack for the exploration (" << dir_ << ")\n";
}

void OwnStackTarget::stop() {
  if (dir_.empty()) return;
  GlobalOptions quiet = g_;
  quiet.json = true;
  std::ostringstream sink;
  auto* old = std::cout.rdbuf(sink.rdbuf());
  try {
    run_down(quiet);
  } catch (const CliError&) {
  }
  std::cout.rdbuf(old);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

Json OwnStackTarget::admin(const std::string& program, const std::string& method, const std::string& path,
                           const Json* body) {
  return admin_call_waiting(g_, program, method, path, body);
}

int OwnStackTarget::pid_of(const std::string& program) const {
  auto stack = read_stack(g_);
  return stack ? (*stack)["services"][program].value("pid", -1) : -1;
}

std::pair<std::string, Json> OwnStackTarget::rule_for(const Fault& f) const {
  const auto& a = actions_[f.action];
  Json r = a.rule;
  r["times"] = 1;
  r["attempts"] = Json::array({f.point.attempt});
  const auto& step = def_.steps[f.point.step];
  if (a.forward_only) {  // a saga-log point: the write of the step's attempt (its result)
    r["endpoint"] = "log:" + step.name + (a.name == "orchestrator-crash-before" ? ":before" : ":after");
    return {"orquestador", r};
  }
  r["endpoint"] = f.point.compensation ? "compensacion" : endpoints_[f.point.step];
  return {step.service, r};
}

void OwnStackTarget::run(Experiment& e) {
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& p : programs()) admin(p, "DELETE", "/admin/faults");
  // A reset waits for running sagas (the orchestrator refuses it with a 409 meanwhile).
  for (auto deadline = sagalab::wall_ms() + 30000;;) {
    auto a = call(g_, "orquestador", "POST", "/admin/reset", nullptr, true);
    if (a.status == 200) break;
    if (a.status != 409 || sagalab::wall_ms() > deadline)
      throw CliError(kExitFailed, "the orchestrator refused a reset: " + a.body.dump());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& p : programs())
    if (p != "orquestador") admin(p, "POST", "/admin/reset");
  std::vector<std::pair<std::string, std::int64_t>> ids;  // program, rule id
  std::map<std::string, int> pids;
  for (const auto& f : e.faults) {
    auto [program, rule] = rule_for(f);
    auto a = admin(program, "POST", "/admin/faults", &rule);
    ids.emplace_back(program, a["ids"][0].get<std::int64_t>());
    pids[program] = pid_of(program);
  }
  Json body{{"usuario_id", "explore-" + e.value}, {"producto", o_.product}, {"cantidad", o_.qty}};
  httplib::Headers h{{"Idempotency-Key", "explore-" + e.value}};
  auto r = sagalab::http_call(base_url(g_, "orquestador"), "POST", "/compra", &body, h, 60000);
  if (r.answer) e.client_status = r.answer->status;
  std::string told = !r.answer ? "" : r.answer->status == 200 ? "completada" : r.answer->body.value("estado", "");

  // Quiet: past what the faults hold (a late answer's effect), then until no saga runs (a crashed
  // program comes back and recovery finishes its saga), then the settle time.
  int hold = 0;
  for (const auto& f : e.faults) hold = std::max(hold, actions_[f.action].hold_ms);
  std::this_thread::sleep_until(t0 + std::chrono::milliseconds(hold));
  wait_sagas_settled(g_, 30000);  // a saga still running then is judged as it is (invariant 1)
  if (o_.settle_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o_.settle_ms));
  for (const auto& p : programs()) admin(p, "GET", "/health");

  // Every program's state, its fired-fault log included. A crash rule fired when its program is
  // another process now (the rule died with it).
  auto states = collect_states(g_);
  Json fired = Json::array();
  for (const auto& p : programs()) {
    for (auto x : states["fallos"][p]) {
      x["servicio"] = p;
      fired.push_back(x);
    }
  }
  e.fired.assign(ids.size(), false);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (pid_of(ids[i].first) != pids[ids[i].first]) e.fired[i] = true;
    for (const auto& x : fired)
      if (x["servicio"] == ids[i].first && x.value("rule_id", std::int64_t{0}) == ids[i].second) e.fired[i] = true;
  }
  e.reached = std::all_of(e.fired.begin(), e.fired.end(), [](bool b) { return b; });

  auto report = sagalab::check_invariants(states);
  for (auto& v : report.violations) e.violations.push_back(std::move(v));
  const auto& sagas = states["orquestador"]["sagas"];
  if (sagas.empty() && e.faults.empty())
    throw CliError(kExitUnreachable, "the purchase of '" + o_.product + "' started no saga (the client got " +
                                         (r.answer ? std::to_string(r.answer->status) + " " + r.answer->body.dump()
                                                   : r.error) +
                                         "): is it in the catalogue? (--product)");
  for (const auto& s : sagas) {
    auto estado = s.value("estado", "");
    if (estado == "completada") ++e.completed;
    // What the client was told must be what happened.
    if ((told == "completada" && estado != "completada") || (told == "compensada" && estado == "completada"))
      e.violations.push_back({.rule = "client-truthful",
                              .invariant = 7,
                              .saga_id = s.value("saga_id", ""),
                              .message = "the client was told '" + told + "' but the saga is " + estado});
    for (const auto& a : s["intentos"]) {
      int step = def_.index_of(a.value("paso", ""));
      if (step >= 0)
        e.points.insert({static_cast<std::size_t>(step), a.value("compensacion", false), a.value("intento", 1)});
    }
    if (!e.violations.empty()) e.timeline += svg_timeline(s, fired);
  }
  e.passed = e.violations.empty();
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string OwnStackTarget::write_scenario(const Experiment& e, const std::string& dir, std::uint64_t seed,
                                           const std::string& title) const {
  auto file = scenario_path(dir, e.number);
  YAML::Emitter out;
  begin_scenario(out, title,
                 "Found by sagactl explore on sagalab's own stack (seed " + std::to_string(seed) +
                     "); no smaller fault set violated. Replay: sagactl run " + file,
                 seed);
  out << YAML::Key << "faults" << YAML::Value << YAML::BeginSeq;
  for (const auto& f : e.faults) {
    auto [program, rule] = rule_for(f);
    rule["service"] = program;
    emit_json(out, rule);
  }
  out << YAML::EndSeq;
  out << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
  out << YAML::BeginMap << YAML::Key << "buy" << YAML::Value;
  emit_json(out, Json{{"user", "explore-replay"}, {"product", o_.product}, {"qty", o_.qty},
                      {"idempotency_key", "replay-" + e.value}, {"expect", "any"}, {"label", "explored"}});
  out << YAML::EndMap;
  out << YAML::BeginMap << YAML::Key << "wait-until-quiet" << YAML::Value;
  emit_json(out, Json{{"timeout_ms", 30000}});
  out << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::Key << "expect" << YAML::Value << YAML::BeginMap << YAML::Key << "invariants" << YAML::Value << true
      << YAML::EndMap << YAML::EndMap;
  std::ofstream(file) << "# written by sagactl explore\n" << out.c_str() << "\n";
  return file;
}

}  // namespace

std::unique_ptr<Target> own_stack_target(const GlobalOptions& g, const OwnStackOptions& o) {
  return std::make_unique<OwnStackTarget>(g, o);
}

}  // namespace sagactl::explore
