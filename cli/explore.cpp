// sagactl explore: every fault at every step of any saga behind `sagactl proxy`,
// checked by `sagactl check`, with a coverage map (lineage-driven fault injection:
// learn from a clean run which exchanges the saga makes, then break exactly those,
// one by one and in small combinations).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "explore.hpp"
#include "proxy_child.hpp"
#include "sagalab/rng.hpp"
#include "sagalab/scenario.hpp"

namespace sagactl::explore {

std::string names_of(const std::vector<ActionSpec>& actions) {
  std::string all;
  for (const auto& x : actions) all += (all.empty() ? "" : ", ") + x.name;
  return all;
}

std::string scenario_path(const std::string& dir, std::size_t number) {
  std::filesystem::create_directories(dir);
  return std::filesystem::absolute(std::filesystem::path(dir) / ("explore-" + std::to_string(number) + ".yaml")).string();
}

void begin_scenario(YAML::Emitter& out, const std::string& title, const std::string& description, std::uint64_t seed) {
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << title;
  out << YAML::Key << "description" << YAML::Value << description;
  out << YAML::Key << "seed" << YAML::Value << seed;
}

std::vector<ActionSpec> select_actions(std::vector<ActionSpec> all, const std::vector<std::string>& only) {
  for (const auto& a : only)
    if (std::none_of(all.begin(), all.end(), [&](const ActionSpec& x) { return x.name == a; }))
      throw CliError(kExitUnreachable, "--actions: unknown action '" + a + "' (" + names_of(all) + ")");
  if (only.empty()) return all;
  std::vector<ActionSpec> out;
  for (auto& a : all)
    if (std::count(only.begin(), only.end(), a.name)) out.push_back(std::move(a));
  return out;
}

namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop = true; }

// The client request that starts one saga; {n} in its strings is a value unique to each experiment.
struct Workload {
  std::string upstream, method, path;
  Json body;  // null: none
  std::map<std::string, std::string> headers;
  int settle_ms = 300;
  std::int64_t timeout_ms = 30000;
  std::string reset_command;                  // run before each experiment (sh -c)
  std::string reset_upstream, reset_method, reset_path;  // or a request at an upstream
};

Workload read_workload(const std::string& path) {
  auto j = yaml_to_json(load_yaml(path, "workload"));
  auto fail = [&](const std::string& m) { throw CliError(kExitUnreachable, path + ": " + m); };
  if (!j.is_object()) fail("must be a mapping: upstream, request, body, headers, settle_ms, timeout_ms, reset");
  for (const auto& [k, v] : j.items())
    if (k != "upstream" && k != "request" && k != "body" && k != "headers" && k != "settle_ms" && k != "timeout_ms" &&
        k != "reset")
      fail("unknown key '" + k + "' (expected upstream, request, body, headers, settle_ms, timeout_ms, reset)");
  Workload w;
  if (!j.contains("upstream") || !j["upstream"].is_string()) fail("upstream: the proxy's upstream of the client's request");
  w.upstream = j["upstream"];
  auto route = [&](const Json& r, const std::string& what, std::string& method, std::string& p) {
    if (!r.is_string()) fail(what + " must be a method and a path, e.g. POST /comprar");
    auto s = r.get<std::string>();
    auto sp = s.find(' ');
    if (sp == std::string::npos || sp + 1 >= s.size() || s[sp + 1] != '/') fail(what + ": '" + s + "' must be a method and a path");
    method = s.substr(0, sp);
    p = s.substr(sp + 1);
  };
  if (!j.contains("request")) fail("request: the client's method and path, e.g. POST /comprar");
  route(j["request"], "request", w.method, w.path);
  if (j.contains("body")) w.body = j["body"];
  if (j.contains("headers")) {
    if (!j["headers"].is_object()) fail("headers must be a mapping of names to values");
    for (const auto& [k, v] : j["headers"].items()) {
      if (!v.is_string()) fail("header " + k + " must be a string");
      w.headers[k] = v;
    }
  }
  auto positive = [&](const char* k, std::int64_t max) {
    if (!j[k].is_number_integer() || j[k].get<std::int64_t>() < 0 || j[k].get<std::int64_t>() > max)
      fail(std::string(k) + " must be an integer from 0 to " + std::to_string(max));
    return j[k].get<std::int64_t>();
  };
  if (j.contains("settle_ms")) w.settle_ms = static_cast<int>(positive("settle_ms", 600000));
  if (j.contains("timeout_ms")) w.timeout_ms = positive("timeout_ms", 3600000);
  if (j.contains("reset")) {
    const auto& r = j["reset"];
    if (r.is_object() && r.contains("command") && r["command"].is_string()) {
      w.reset_command = r["command"];
    } else if (r.is_object() && r.contains("upstream") && r.contains("request") && r["upstream"].is_string()) {
      w.reset_upstream = r["upstream"];
      route(r["request"], "reset.request", w.reset_method, w.reset_path);
    } else {
      fail("reset must be {command: '...'} or {upstream: NAME, request: 'POST /reset'}");
    }
  }
  return w;
}

// {n} in every string of a JSON value.
Json substitute(const Json& j, const std::string& value) {
  if (j.is_string()) {
    auto s = j.get<std::string>();
    for (auto at = s.find("{n}"); at != std::string::npos; at = s.find("{n}", at + value.size())) s.replace(at, 3, value);
    return s;
  }
  if (j.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : j.items()) out[k] = substitute(v, value);
    return out;
  }
  if (j.is_array()) {
    Json out = Json::array();
    for (const auto& v : j) out.push_back(substitute(v, value));
    return out;
  }
  return j;
}

std::vector<ActionSpec> all_actions(int latency_ms, int partition_ms) {
  return {
      {"error-5xx", {{"action", "error"}, {"status", 503}}},
      {"error-4xx", {{"action", "error"}, {"status", 409}}},
      {"commit-then-error", {{"action", "commit-then-error"}}},
      {"commit-then-drop", {{"action", "commit-then-drop"}}},
      {"reset", {{"action", "reset"}}},
      {"latency", {{"action", "latency"}, {"latency_ms", latency_ms}}, latency_ms},
      {"partition", {{"action", "partition"}, {"duration_ms", partition_ms}}, partition_ms},
  };
}


struct ExploreOptions {
  std::string config, saga, workload;
  int max_faults = 2;
  std::string budget = "1000";
  std::uint64_t seed = 1;
  int settle_ms = -1;
  int latency_ms = -1, partition_ms = 500;
  int clean_runs = 2;
  int jobs = 1;
  std::vector<std::string> actions;
  std::string scenarios, junit, report;
  bool probe = true;
  OwnStackOptions own;
};

// An SVG of the exchanges a proxy recorded for one experiment, on one time axis.
std::string svg_exchanges(const std::vector<ck::Recorded>& xs) {
  if (xs.empty()) return "<p>(no exchange recorded)</p>";
  std::int64_t t0 = xs.front().t_us, t1 = t0 + 1;
  for (const auto& x : xs) {
    t0 = std::min(t0, x.t_us);
    t1 = std::max({t1, x.done_us, x.t_us});
  }
  const int width = 460, row = 16, label = 300;
  double scale = static_cast<double>(width) / static_cast<double>(t1 - t0);
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 " << label + width + 200 << " "
      << static_cast<int>(xs.size()) * row + 20 << "' width='100%' font-family='monospace' font-size='11'>"
      << "<text x='" << label << "' y='11'>0 ms</text><text x='" << label + width - 60 << "' y='11'>"
      << (t1 - t0) / 1000 << " ms</text>";
  int y = 14;
  for (const auto& x : xs) {
    bool ok = x.status && *x.status < 400;
    const char* colour = ok ? "#27ae60" : x.status && *x.status < 500 ? "#e67e22" : "#c0392b";
    double x0 = label + static_cast<double>(x.t_us - t0) * scale;
    double x1 = label + static_cast<double>(std::max(x.done_us, x.t_us) - t0) * scale;
    svg << "<text x='2' y='" << y + 11 << "'>#" << x.seq << " " << xml_escape(x.upstream + " " + x.method + " " + x.path)
        << "</text><rect x='" << x0 << "' y='" << y + 2 << "' width='" << std::max(2.0, x1 - x0) << "' height='"
        << row - 4 << "' fill='" << colour << "'/><text x='" << label + width + 6 << "' y='" << y + 11 << "' fill='"
        << colour << "'>" << (x.status ? std::to_string(*x.status) : std::string("no answer"))
        << "<tspan fill='#c0392b'>" << (x.fault.empty() ? "" : " ⚡" + xml_escape(x.fault)) << "</tspan></text>";
    y += row;
  }
  svg << "</svg>";
  return svg.str();
}

// Any saga stack behind sagactl proxy (its own, from --config, or a running one), described by a
// saga description and started by a workload; each experiment checked as `sagactl check` does.
class ProxyTarget : public Target {
 public:
  ProxyTarget(const GlobalOptions& g, const ExploreOptions& o);
  std::string saga_name() const override { return desc_.name; }
  const std::vector<StepRow>& steps() const override { return rows_; }
  const std::vector<ActionSpec>& actions() const override { return actions_; }
  void run(Experiment& e) override;
  std::string write_scenario(const Experiment& e, const std::string& dir, std::uint64_t seed,
                             const std::string& title) const override;
  void finish(bool failed) override {
    if (!workdir_.empty() && !failed) {
      child_.reset();
      fs::remove_all(workdir_);
    } else if (!workdir_.empty() && !json_) {
      std::cout << "recording kept in " << record_ << "\n";
    }
  }

 private:
  Json rule_for(const Fault& f, std::size_t experiment, std::size_t i) const {
    const auto& st = desc_.steps[f.point.step];
    const auto& route = f.point.compensation ? *st.compensation : st.forward;
    Json r = actions_[f.action].rule;
    r["upstream"] = route.upstream;
    r["method"] = route.method;
    r["path"] = ck::route_glob(route);
    r["times"] = 1;
    if (f.point.attempt > 1) r["skip"] = f.point.attempt - 1;
    r["name"] = "explore-" + std::to_string(experiment) + "-" + std::to_string(i);
    return r;
  }
  // Where a step's forward call carries a value of the client's request that the workload makes
  // unique ({n}): a rule matching it hits that experiment's saga only. (field, value, in a header)
  struct Match {
    std::string field, value;
    bool header = false;
  };
  std::optional<Match> match_of(std::size_t step, const std::string& value) const {
    for (const auto& c : desc_.steps[step].carries) {
      // (A flow: value is carried only where present: a rule on it may never match.)
      if (c.from_step != -1 || c.flow ||
          (c.here.from != ck::Locator::From::Request && c.here.from != ck::Locator::From::Header))
        continue;
      std::string v;
      if (c.client.from == ck::Locator::From::Request && !w_.body.is_null())
        v = ck::field_text(substitute(w_.body, value), c.client.name);
      if (c.client.from == ck::Locator::From::Header)
        for (const auto& [k, t] : w_.headers)
          if (ck::header_key(k) == ck::header_key(c.client.name)) v = substitute(Json(t), value).get<std::string>();
      if (!v.empty() && v.find(value) != std::string::npos)
        return Match{c.here.name, v, c.here.from == ck::Locator::From::Header};
    }
    return std::nullopt;
  }
  Json rule_in_batch(const Fault& f, const Experiment& e, std::size_t i) const {
    auto r = rule_for(f, e.number, i);
    auto m = match_of(f.point.step, e.value);
    r[m->header ? "header_name" : "body_field"] = m->field;
    r[m->header ? "header_value" : "body_value"] = m->value;
    return r;
  }

 public:
  bool parallel(const Experiment& e) const override {
    return !e.faults.empty() && std::all_of(e.faults.begin(), e.faults.end(), [&](const Fault& f) {
      return !f.point.compensation && actions_[f.action].name != "partition" && match_of(f.point.step, e.value);
    });
  }
  void run_batch(std::vector<Experiment>& batch) override;

 private:
  // Fills e's results from its saga's exchanges.
  void judge(Experiment& e, const std::vector<ck::Recorded>& exchanges);
  void reset_stack();

  ExploreOptions o_;
  bool json_ = false;
  GlobalOptions pg_;  // with the proxy's admin URL
  ck::Description desc_;
  Workload w_;
  std::vector<ActionSpec> actions_;
  std::vector<StepRow> rows_;
  std::string record_, client_url_, reset_url_, workdir_;
  std::unique_ptr<ProxyChild> child_;
};

ProxyTarget::ProxyTarget(const GlobalOptions& g, const ExploreOptions& o) : o_(o), json_(g.json), pg_(g) {
  if (o_.saga.empty() || o_.workload.empty())
    throw CliError(kExitUnreachable, "give the saga description and the workload: sagactl explore --config proxy.yaml "
                                     "--saga saga.yaml --workload workload.yaml (or neither, and no --proxy, to "
                                     "explore sagalab's own stack)");
  try {
    desc_ = ck::parse_description(yaml_to_json(load_yaml(o_.saga, "saga description")));
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUnreachable, o_.saga + ": " + e.what());
  }
  for (const auto& st : desc_.steps) rows_.push_back({st.name, st.compensation.has_value()});
  w_ = read_workload(o_.workload);
  if (o_.settle_ms >= 0) w_.settle_ms = o_.settle_ms;
  actions_ = select_actions(all_actions(o_.latency_ms < 0 ? 2000 : o_.latency_ms, o_.partition_ms), o_.actions);

  // The proxy: our own, from the config (its recording in a directory of ours), or a running one.
  if (!o_.config.empty()) {
    char tmpl[] = "/tmp/sagactl-explore-XXXXXX";
    if (!mkdtemp(tmpl)) throw CliError(kExitFailed, "cannot make a directory in /tmp");
    workdir_ = tmpl;
    record_ = workdir_ + "/exchanges.jsonl";
    child_ = std::make_unique<ProxyChild>(o_.config, record_, workdir_ + "/proxy");
    pg_.proxy = child_->url();
  } else {
    auto rec = sagalab::http_call(g.proxy, "GET", "/admin/record");
    if (!rec.ok())
      throw CliError(kExitUnreachable, "no proxy answers at " + g.proxy + (rec.answer ? "" : ": " + rec.error) +
                                           " (give --config proxy.yaml to start one)");
    if (!rec.answer->body["path"].is_string())
      throw CliError(kExitUnreachable, "the proxy at " + g.proxy + " records nothing: start it with --record FILE");
    record_ = rec.answer->body["path"];
  }
  auto listed = call_ok(pg_, "proxy", "GET", "/admin/upstreams", nullptr, true)["upstreams"];
  std::set<std::string> names;
  for (const auto& u : listed) {
    names.insert(u["name"].get<std::string>());
    if (u["name"] == w_.upstream) client_url_ = "http://127.0.0.1:" + std::to_string(u["port"].get<int>());
    if (u["name"] == w_.reset_upstream) reset_url_ = u["url"];  // around the proxy: no fault, no recording
  }
  auto known = [&](const std::string& n, const std::string& what) {
    if (!names.count(n)) {
      std::string all;
      for (const auto& x : names) all += (all.empty() ? "" : ", ") + x;
      throw CliError(kExitUnreachable, what + ": the proxy has no upstream '" + n + "' (it has " + all + ")");
    }
  };
  known(w_.upstream, o_.workload + ": upstream");
  if (!w_.reset_upstream.empty()) known(w_.reset_upstream, o_.workload + ": reset.upstream");
  for (const auto& st : desc_.steps) known(st.forward.upstream, o_.saga + ": step " + st.name);
  Json seed{{"seed", o_.seed}};
  call_ok(pg_, "proxy", "POST", "/admin/faults/seed", &seed, true);
}

void ProxyTarget::reset_stack() {
  if (!w_.reset_command.empty()) {
    if (std::system(w_.reset_command.c_str()) != 0)
      throw CliError(kExitFailed, "the reset command failed: " + w_.reset_command);
  } else if (!reset_url_.empty()) {
    auto r = sagalab::http_call(reset_url_, w_.reset_method, w_.reset_path, nullptr, {}, w_.timeout_ms);
    if (!r.ok())
      throw CliError(kExitFailed, "the reset request " + w_.reset_method + " " + w_.reset_path + " at " + w_.reset_upstream +
                                      " failed: " + (r.answer ? std::to_string(r.answer->status) : r.error));
  }
}

namespace {

// The rules an experiment added go when it ends, however it ends (an error, an interrupted run).
struct RemoveRules {
  const GlobalOptions& g;
  std::vector<std::int64_t> ids;
  ~RemoveRules() {
    for (auto id : ids) {
      try {
        call(g, "proxy", "DELETE", "/admin/faults/" + std::to_string(id), nullptr, true);
      } catch (const CliError&) {  // the proxy is gone: so are its rules
      }
    }
  }
};

}  // namespace

void ProxyTarget::run(Experiment& e) {
  std::vector<Experiment> one;
  one.push_back(std::move(e));
  run_batch(one);
  e = std::move(one[0]);
}

// One experiment, or several at once (each parallel(): its rules match its own saga only):
// rules in, the client requests, quiet, then each experiment judged on its own saga's exchanges.
void ProxyTarget::run_batch(std::vector<Experiment>& batch) {
  auto t0 = std::chrono::steady_clock::now();
  const bool together = batch.size() > 1;
  reset_stack();
  std::uint64_t offset = fs::exists(record_) ? fs::file_size(record_) : 0;
  std::vector<std::vector<std::int64_t>> ids(batch.size());
  {
    RemoveRules remove{pg_, {}};
    for (std::size_t k = 0; k < batch.size(); ++k) {
      for (std::size_t i = 0; i < batch[k].faults.size(); ++i) {
        auto rule = together ? rule_in_batch(batch[k].faults[i], batch[k], i) : rule_for(batch[k].faults[i], batch[k].number, i);
        auto a = call(pg_, "proxy", "POST", "/admin/faults", &rule, true);
        if (a.status != 201) throw CliError(kExitFailed, "the proxy refused the rule " + rule.dump() + ": " + a.body.dump());
        ids[k].push_back(a.body["ids"][0].get<std::int64_t>());
        remove.ids.push_back(ids[k].back());
      }
    }
    auto send = [&](Experiment& e) {
      httplib::Headers h;
      for (const auto& [k, v] : w_.headers) h.emplace(k, substitute(Json(v), e.value).get<std::string>());
      auto body = w_.body.is_null() ? Json() : substitute(w_.body, e.value);
      auto r = sagalab::http_call(client_url_, w_.method, w_.path, body.is_null() ? nullptr : &body, h, w_.timeout_ms);
      if (r.answer) e.client_status = r.answer->status;
    };
    if (!together) {
      send(batch[0]);
    } else {
      std::vector<std::thread> clients;
      for (auto& e : batch) clients.emplace_back([&send, &e] { send(e); });
      for (auto& c : clients) c.join();
    }
    // Quiet: past what the faults hold (a delayed request, a cut upstream: the next experiment must not
    // meet them), the settle time after the answer, then until the recording stops growing for as long.
    int hold = 0;
    for (const auto& e : batch)
      for (const auto& f : e.faults) hold = std::max(hold, actions_[f.action].hold_ms);
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(hold));
    std::this_thread::sleep_for(std::chrono::milliseconds(w_.settle_ms));
    auto size_now = [&] { return fs::exists(record_) ? fs::file_size(record_) : std::uintmax_t{0}; };
    auto size = size_now();
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max(20, w_.settle_ms / 2)));
      auto now = size_now();
      if (now == size) break;
      size = now;
    }
    auto fired = call_ok(pg_, "proxy", "GET", "/admin/faults/fired", nullptr, true)["fired"];
    for (std::size_t k = 0; k < batch.size(); ++k) {
      batch[k].fired.assign(ids[k].size(), false);
      for (const auto& f : fired)
        for (std::size_t i = 0; i < ids[k].size(); ++i)
          if (f.value("rule_id", std::int64_t{0}) == ids[k][i]) batch[k].fired[i] = true;
      batch[k].reached = std::all_of(batch[k].fired.begin(), batch[k].fired.end(), [](bool b) { return b; });
    }
  }
  if (!fs::exists(record_))
    throw CliError(kExitUnreachable, "the proxy's recording " + record_ + " does not exist here (is the proxy on another "
                                     "machine, or was --record a path relative to its own directory?)");
  auto slice = read_recording(record_, offset);
  double each = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(batch.size());
  if (!together) {
    judge(batch[0], slice);
    batch[0].seconds = each;
    return;
  }
  // Each experiment's saga: the one whose client request carries its value. Anything that cannot be
  // told apart (an exchange of no saga, a saga of no experiment) sends the batch back one at a time.
  auto all = ck::check_recording(desc_, slice);
  std::map<std::int64_t, const ck::Recorded*> by_seq;
  for (const auto& x : slice) by_seq[x.seq] = &x;
  std::vector<std::vector<ck::Recorded>> own(batch.size());
  bool apart = all.uncorrelated.empty() && all.saga_seqs.size() == batch.size();
  for (const auto& seqs : all.saga_seqs) {
    std::size_t owner = batch.size();
    for (auto q : seqs) {
      const auto& x = *by_seq[q];
      if (x.upstream != w_.upstream || x.path != w_.path) continue;
      auto text = x.request.dump() + x.headers.dump();
      for (std::size_t k = 0; k < batch.size(); ++k)
        if (text.find(batch[k].value) != std::string::npos) owner = k;
    }
    if (owner == batch.size() || !own[owner].empty()) {
      apart = false;
      break;
    }
    for (auto q : seqs) own[owner].push_back(*by_seq[q]);
  }
  if (!apart) {
    for (auto& e : batch) {
      Experiment again;
      again.number = e.number;
      again.faults = e.faults;
      again.value = e.value + "s";  // a fresh value: the batch's saga of this value is left behind
      run(again);
      e = std::move(again);
    }
    return;
  }
  for (std::size_t k = 0; k < batch.size(); ++k) {
    judge(batch[k], own[k]);
    batch[k].seconds = each;
  }
}

void ProxyTarget::judge(Experiment& e, const std::vector<ck::Recorded>& exchanges) {
  CheckRun run;
  run.desc = desc_;
  run.report = ck::check_recording(desc_, exchanges);
  if (o_.probe && !run.report.probes.empty()) probe_effects(pg_.proxy, run);
  for (const auto& x : ck::step_exchanges(desc_, exchanges)) e.points.insert({x.step, x.compensation, x.attempt});
  e.violations = run.report.violations;
  e.uncorrelated = run.report.uncorrelated;
  if (run.report.sagas == 0)
    throw CliError(kExitUnreachable, "the workload (" + w_.method + " " + w_.path + " at " + w_.upstream +
                                         ") started no saga the description recognises: " + check_summary(run));
  e.passed = e.violations.empty() && e.uncorrelated.empty();
  e.completed = run.report.completed;
  if (!e.passed) e.timeline = svg_exchanges(exchanges);
}

std::string ProxyTarget::write_scenario(const Experiment& e, const std::string& dir, std::uint64_t seed,
                                        const std::string& title) const {
  auto file = scenario_path(dir, e.number);
  YAML::Emitter out;
  begin_scenario(out, title,
                 "Found by sagactl explore (seed " + std::to_string(seed) + "); no smaller fault set violated. Replay: "
                 "sagactl run " + file + (o_.config.empty() ? " --proxy PROXY.yaml" : ""),
                 seed);
  if (!o_.config.empty()) out << YAML::Key << "proxy" << YAML::Value << fs::absolute(o_.config).string();
  out << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
  auto emit = [&](const Json& j) { emit_json(out, j, true); };
  for (std::size_t i = 0; i < e.faults.size(); ++i) {
    auto r = rule_for(e.faults[i], e.number, i);
    r.erase("name");
    out << YAML::BeginMap << YAML::Key << "inject" << YAML::Value;
    emit(r);
    out << YAML::EndMap;
  }
  // A value of its own, so that a replay on a stack that saw the experiment makes a new saga.
  Json req = {{"upstream", w_.upstream}, {"method", w_.method}, {"path", w_.path}};
  auto value = "replay-" + e.value;
  if (!w_.body.is_null()) req["body"] = substitute(w_.body, value);
  if (!w_.headers.empty()) {
    Json h = Json::object();
    for (const auto& [k, v] : w_.headers) h[k] = substitute(Json(v), value);
    req["headers"] = h;
  }
  out << YAML::BeginMap << YAML::Key << "request" << YAML::Value;
  emit(req);
  out << YAML::EndMap;
  out << YAML::BeginMap << YAML::Key << "sleep" << YAML::Value;
  emit(Json{{"ms", std::max(w_.settle_ms * 2, 200)}});
  out << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::Key << "expect" << YAML::Value << YAML::BeginMap << YAML::Key << "check" << YAML::Value
      << fs::absolute(o_.saga).string();
  bool probes = std::any_of(desc_.steps.begin(), desc_.steps.end(), [](const ck::StepDesc& s) { return s.state.has_value(); });
  if (probes) out << YAML::Key << "probe" << YAML::Value << true;
  out << YAML::EndMap << YAML::EndMap;
  std::ofstream(file) << "# written by sagactl explore\n" << out.c_str() << "\n";
  return file;
}

// The phases, over any target.
class Explorer {
 public:
  Explorer(const GlobalOptions& g, const ExploreOptions& o, Target& t) : g_(g), o_(o), t_(t) {}

  int run();

 private:
  const std::vector<ActionSpec>& actions() const { return t_.actions(); }
  std::string point_text(const Point& p) const {
    return t_.steps()[p.step].name + (p.compensation ? " compensation" : " forward") +
           (p.attempt > 1 ? " #" + std::to_string(p.attempt) : "");
  }
  std::string faults_text(const std::vector<Fault>& fs) const {
    std::string out;
    for (const auto& f : fs) out += (out.empty() ? "" : " + ") + actions()[f.action].name + " at " + point_text(f.point);
    return out.empty() ? "no fault" : out;
  }
  bool applies(const Point& p, std::size_t a) const { return !(p.compensation && actions()[a].forward_only); }
  bool over_budget() const;
  Experiment experiment(std::vector<Fault> faults);
  std::vector<std::size_t> run_sets(const std::vector<std::vector<Fault>>& sets);
  void progress(const Experiment& e);
  void write_junit(const std::string& path) const;
  void write_report(const std::string& path) const;
  Json map_json() const;
  void print_map() const;

  const GlobalOptions& g_;
  ExploreOptions o_;
  Target& t_;
  std::string token_;
  std::vector<Experiment> done_;
  std::set<Point> clean_points_;
  std::size_t max_experiments_ = 0;
  double max_seconds_ = 0;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::size_t planned_ = 0;
};

bool Explorer::over_budget() const {
  if (g_stop) return true;
  if (max_experiments_ && done_.size() >= max_experiments_) return true;
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  return max_seconds_ > 0 && secs >= max_seconds_;
}

Experiment Explorer::experiment(std::vector<Fault> faults) {
  Experiment e;
  e.number = done_.size() + 1;
  e.faults = std::move(faults);
  e.value = token_ + std::to_string(e.number);
  t_.run(e);
  return e;
}

// Runs the fault sets in their order, within the budget: --jobs of them at once where the target
// can tell their sagas apart, one at a time otherwise. Returns their indices into done_.
std::vector<std::size_t> Explorer::run_sets(const std::vector<std::vector<Fault>>& sets) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < sets.size() && !over_budget();) {
    std::vector<Experiment> batch;
    auto make = [&](const std::vector<Fault>& fs) {
      Experiment e;
      e.number = done_.size() + batch.size() + 1;
      e.faults = fs;
      e.value = token_ + std::to_string(e.number);
      return e;
    };
    auto room = [&] { return !max_experiments_ || done_.size() + batch.size() < max_experiments_; };
    batch.push_back(make(sets[i++]));
    if (o_.jobs > 1 && t_.parallel(batch[0])) {
      while (static_cast<int>(batch.size()) < o_.jobs && i < sets.size() && room()) {
        auto e = make(sets[i]);
        if (!t_.parallel(e)) break;
        batch.push_back(std::move(e));
        ++i;
      }
    }
    planned_ = done_.size() + batch.size() + (sets.size() - i);
    if (batch.size() == 1) {
      t_.run(batch[0]);
    } else {
      t_.run_batch(batch);
    }
    // A fault that did not fire may have been timing (a crashed program slow to come back let the
    // saga give up before the faulted step): such an experiment runs once more, alone.
    for (auto& e : batch) {
      if (e.reached || e.faults.empty() || g_stop) continue;
      Experiment again;
      again.number = e.number;
      again.faults = e.faults;
      again.value = e.value + "r";
      again.rerun = true;
      t_.run(again);
      e = std::move(again);
    }
    for (auto& e : batch) {
      done_.push_back(std::move(e));
      out.push_back(done_.size() - 1);
      progress(done_.back());
    }
  }
  return out;
}

void Explorer::progress(const Experiment& e) {
  std::size_t bad = 0;
  for (const auto& x : done_) bad += !x.passed;
  if (!g_.json && isatty(STDERR_FILENO)) {
    std::cerr << "\r\033[K  experiment " << e.number << " (" << (planned_ > done_.size() ? planned_ - done_.size() : 0)
              << " queued), " << bad << " violating, " << static_cast<int>(e.seconds * 1000) << " ms: "
              << faults_text(e.faults) << std::flush;
  }
}

int Explorer::run() {
  if (!o_.budget.empty() && o_.budget.back() == 's') {
    try {
      max_seconds_ = std::stod(o_.budget.substr(0, o_.budget.size() - 1));
    } catch (const std::exception&) {
      throw CliError(kExitUnreachable, "--budget: '" + o_.budget + "' is neither a count nor seconds (120s)");
    }
  } else {
    try {
      max_experiments_ = std::stoul(o_.budget);
    } catch (const std::exception&) {
      throw CliError(kExitUnreachable, "--budget: '" + o_.budget + "' is neither a count nor seconds (120s)");
    }
  }
  {
    std::random_device rd;
    std::ostringstream t;
    t << "x" << std::hex << (rd() & 0xffffff) << "-";
    token_ = t.str();  // values only: the experiments themselves follow --seed
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto name = t_.saga_name().empty() ? std::string("saga") : t_.saga_name();

  // Phase 0: the lineage, from clean runs.
  if (!g_.json) std::cout << "explore " << name << ": phase 0, " << o_.clean_runs << " clean runs\n";
  for (int i = 0; i < o_.clean_runs; ++i) {
    auto e = experiment({});
    done_.push_back(e);
    if (!e.passed) {
      if (!g_.json) {
        std::cout << paint("FAIL", "31;1") << ": a run without faults already violates the protocol\n";
        for (const auto& v : e.violations) std::cout << "  " << sagalab::describe(v);
        for (const auto& u : e.uncorrelated) std::cout << "  UNCORRELATED #" << u.seq << " " << u.what << ": " << u.reason << "\n";
      } else {
        print_json({{"clean_run_failed", true}, {"experiments", done_.size()}});
      }
      t_.finish(true);
      return kExitFailed;
    }
    clean_points_.insert(e.points.begin(), e.points.end());
    if (!e.completed && !g_.json)
      std::cout << paint("WARNING", "33;1") << " clean run " << e.number
                << " did not complete its saga (the client got "
                << (e.client_status ? std::to_string(*e.client_status) : std::string("no answer"))
                << "): the exploration covers only the steps it reached; is the stack up, with stock?\n";
  }
  if (clean_points_.empty()) throw CliError(kExitUnreachable, "the clean runs made no step exchange the description names");

  // Phase 1: every action at every fault point.
  std::vector<Point> queue(clean_points_.begin(), clean_points_.end());
  std::set<std::pair<Point, std::size_t>> violating;  // single faults that violated
  if (!g_.json) std::cout << "phase 1: " << queue.size() << " fault points x " << actions().size() << " actions\n";
  // (An exchange that only a fault makes appear is never reached by a fault alone: phase 2 breaks it.)
  std::vector<std::vector<Fault>> single_sets;
  for (const auto& p : queue)
    for (std::size_t a = 0; a < actions().size(); ++a)
      if (applies(p, a)) single_sets.push_back({{p, a}});
  auto singles = run_sets(single_sets);
  for (auto idx : singles)
    if (done_[idx].reached && !done_[idx].passed) violating.insert({done_[idx].faults[0].point, done_[idx].faults[0].action});

  // Phase 2: combinations, from passing experiments whose faults made new exchanges appear: a fault
  // on each of those (a compensation the first fault caused, a retry of the same step), in an order
  // drawn from --seed. Never a superset of a violating set: what is reported stays minimal.
  std::vector<std::size_t> frontier = singles;
  for (int k = 2; k <= o_.max_faults && !over_budget(); ++k) {
    std::vector<std::vector<Fault>> cands;
    std::set<std::string> seen_sets;
    for (auto idx : frontier) {
      const auto& base = done_[idx];
      if (!base.reached || !base.passed) continue;
      for (const auto& p : base.points) {
        if (clean_points_.count(p)) continue;  // only what the faults made appear
        if (std::any_of(base.faults.begin(), base.faults.end(), [&](const Fault& f) { return f.point == p; })) continue;
        for (std::size_t a = 0; a < actions().size(); ++a) {
          if (violating.count({p, a}) || !applies(p, a)) continue;
          auto fs = base.faults;
          fs.push_back({p, a});
          auto key = faults_text(fs);
          if (seen_sets.insert(key).second) cands.push_back(std::move(fs));
        }
      }
    }
    sagalab::SplitMix64 rng(o_.seed + static_cast<std::uint64_t>(k));
    for (std::size_t i = cands.size(); i > 1; --i) std::swap(cands[i - 1], cands[rng.uniform(0, static_cast<std::int64_t>(i) - 1)]);
    if (!g_.json) std::cout << (isatty(STDERR_FILENO) ? "\n" : "") << "phase 2: " << cands.size() << " sets of " << k << " faults\n";
    frontier = run_sets(cands);
  }
  if (!g_.json && isatty(STDERR_FILENO)) std::cerr << "\r\033[K";

  // Results.
  std::size_t violating_n = 0, reached = 0;
  for (auto& e : done_) {
    if (e.faults.empty()) continue;
    reached += e.reached;
    if (e.reached && !e.passed) {
      ++violating_n;
      if (!o_.scenarios.empty())
        e.scenario = t_.write_scenario(e, o_.scenarios, o_.seed, "explore " + std::to_string(e.number) + ": " + faults_text(e.faults));
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  std::size_t runs = done_.size();
  if (!o_.junit.empty()) write_junit(o_.junit);
  if (!o_.report.empty()) write_report(o_.report);
  if (g_.json) {
    Json ex = Json::array();
    for (const auto& e : done_) {
      Json fs = Json::array();
      for (std::size_t i = 0; i < e.faults.size(); ++i) {
        const auto& f = e.faults[i];
        fs.push_back({{"step", t_.steps()[f.point.step].name},
                      {"kind", f.point.compensation ? "compensation" : "forward"},
                      {"attempt", f.point.attempt},
                      {"action", actions()[f.action].name},
                      {"fired", e.fired[i]}});
      }
      Json vs = Json::array();
      for (const auto& v : e.violations) vs.push_back(sagalab::to_json(v));
      ex.push_back({{"number", e.number}, {"faults", fs}, {"reached", e.reached}, {"rerun", e.rerun}, {"passed", e.passed},
                    {"violations", vs}, {"uncorrelated", e.uncorrelated.size()}, {"seconds", e.seconds},
                    {"scenario", e.scenario.empty() ? Json(nullptr) : Json(e.scenario)}});
    }
    print_json({{"saga", t_.saga_name()}, {"seed", o_.seed}, {"experiments", ex}, {"map", map_json()},
                {"runs", runs}, {"reached", reached}, {"violating", violating_n}, {"seconds", secs},
                {"experiments_per_second", secs > 0 ? static_cast<double>(runs) / secs : 0.0},
                {"budget_reached", over_budget()}, {"passed", violating_n == 0}});
  } else {
    print_map();
    for (const auto& e : done_) {
      if (e.faults.empty() || !e.reached || e.passed) continue;
      std::cout << paint("VIOLATION", "31;1") << " with " << faults_text(e.faults) << " (experiment " << e.number
                << ", minimal: no smaller set violated)\n";
      for (const auto& v : e.violations) std::cout << "  " << sagalab::describe(v);
      for (const auto& u : e.uncorrelated) std::cout << "  UNCORRELATED #" << u.seq << " " << u.what << ": " << u.reason << "\n";
      if (!e.scenario.empty()) std::cout << "  replay: sagactl run " << e.scenario << "\n";
    }
    std::cout << runs << " experiments (" << o_.clean_runs << " clean, " << reached << " with every fault fired) in "
              << static_cast<int>(secs * 10) / 10.0 << " s (" << static_cast<int>(runs / std::max(secs, 1e-9) * 10) / 10.0
              << "/s)" << (g_stop ? ", interrupted" : over_budget() ? ", budget reached" : "") << "\n";
    std::cout << (violating_n ? paint("FAIL", "31;1") + ": " + std::to_string(violating_n) + " violating fault set(s)\n"
                              : paint("PASS", "32;1") + ": no fault set violated the protocol\n");
  }
  t_.finish(violating_n > 0);
  return violating_n ? kExitFailed : kExitOk;
}

// The cells: step x (forward, compensation) x action; an experiment counts for its last fault's cell.
Json Explorer::map_json() const {
  Json out = Json::array();
  for (std::size_t s = 0; s < t_.steps().size(); ++s) {
    for (bool comp : {false, true}) {
      if (comp && !t_.steps()[s].compensable) continue;
      for (std::size_t a = 0; a < actions().size(); ++a) {
        std::string status = "not reached";
        for (const auto& e : done_) {
          // An experiment counts for the cell of its last fault (the one a combination added).
          if (e.faults.empty() || e.faults.back().point.step != s || e.faults.back().point.compensation != comp ||
              e.faults.back().action != a || !e.reached)
            continue;
          if (!e.passed) status = "violated";
          else if (status != "violated") status = "passed";
        }
        if (comp && actions()[a].forward_only) status = "not applicable";
        out.push_back({{"step", t_.steps()[s].name}, {"kind", comp ? "compensation" : "forward"},
                       {"action", actions()[a].name}, {"status", status}});
      }
    }
  }
  return out;
}

void Explorer::print_map() const {
  auto m = map_json();
  std::size_t w = 4;
  for (const auto& st : t_.steps()) w = std::max(w, st.name.size() + 13);
  std::cout << "\ncoverage (each cell: its fault alone, or added last to a combination): ok passed, FAIL violated, "
               "- not reached, blank not applicable;\n"
               "ct- commit-then-, orch- orchestrator-\n"
            << std::string(w, ' ');
  // Short column heads: "ct-" commit-then-, "orch-" orchestrator-, the error's class alone.
  auto head = [](std::string n) {
    for (auto [from, to] : {std::pair{"commit-then-", "ct-"}, {"orchestrator-", "orch-"}, {"error-", ""}})
      if (n.rfind(from, 0) == 0) n = to + n.substr(std::string(from).size());
    return n;
  };
  std::size_t cw = 4;
  for (const auto& a : actions()) cw = std::max(cw, head(a.name).size());
  for (const auto& a : actions()) std::cout << " " << head(a.name) << std::string(cw - head(a.name).size(), ' ');
  std::cout << "\n";
  for (std::size_t i = 0; i < m.size(); i += actions().size()) {
    auto row = m[i]["step"].get<std::string>() + (m[i]["kind"] == "compensation" ? " undo" : " forward");
    std::cout << row << std::string(w - row.size(), ' ');
    for (std::size_t a = 0; a < actions().size(); ++a) {
      auto st = m[i + a]["status"].get<std::string>();
      std::string cell = st == "passed" ? "ok" : st == "violated" ? "FAIL" : st == "not applicable" ? "" : "-";
      std::cout << " " << paint(cell, st == "passed" ? "32" : st == "violated" ? "31;1" : "2")
                << std::string(cw - cell.size(), ' ');
    }
    std::cout << "\n";
  }
  std::cout << "\n";
}

void Explorer::write_junit(const std::string& path) const {
  std::ofstream x(path);
  std::size_t failures = 0;
  for (const auto& e : done_) failures += e.reached && !e.passed;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"explore "
    << xml_escape(t_.saga_name()) << "\" tests=\"" << done_.size() << "\" failures=\"" << failures << "\">\n";
  for (const auto& e : done_) {
    x << "    <testcase classname=\"explore\" name=\"" << xml_escape(std::to_string(e.number) + ": " + faults_text(e.faults))
      << "\" time=\"" << e.seconds << "\">";
    if (!e.reached) x << "<skipped message=\"not every fault fired\"/>";
    if (e.reached && !e.passed) {
      std::string msg;
      for (const auto& v : e.violations) msg += sagalab::describe(v);
      x << "<failure message=\"" << xml_escape(e.violations.empty() ? "uncorrelated exchanges" : e.violations[0].rule)
        << "\">" << xml_escape(msg) << "</failure>";
    }
    x << "</testcase>\n";
  }
  x << "  </testsuite>\n</testsuites>\n";
}

void Explorer::write_report(const std::string& path) const {
  std::ofstream h(path);
  std::size_t bad = 0;
  for (const auto& e : done_) bad += e.reached && !e.passed;
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sagalab explore</title><style>"
       "body{font-family:sans-serif;margin:1em;max-width:980px;color:#222}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}td.passed{background:#c8f0c8}"
       "td.violated{background:#f5b7b1;font-weight:bold}td.unreached{background:#eee;color:#888}"
       "td.na{background:#fff}pre{background:#f7f7f7;padding:6px;white-space:pre-wrap}"
       ".legend span{display:inline-block;padding:2px 8px;margin-right:6px;border:1px solid #ccc;font-size:12px}"
       "</style></head><body>"
    << "<h1>sagactl explore: " << xml_escape(t_.saga_name()) << "</h1><p class='" << (bad ? "fail" : "ok") << "'><b>"
    << (bad ? "FAIL: " + std::to_string(bad) + " violating fault set(s)" : std::string("PASS: no fault set violated"))
    << "</b>, " << done_.size() << " experiments, seed " << o_.seed
    << "</p><h2>Coverage (each cell: its fault alone, or added last to a combination)</h2>"
       "<p class='legend'><span class='passed' style='background:#c8f0c8'>passed</span><span style='background:#f5b7b1'>"
       "violated</span><span style='background:#eee'>not reached</span><span>blank: not applicable</span></p>"
       "<table id='coverage'><tr><th></th>";
  for (const auto& a : actions()) h << "<th>" << xml_escape(a.name) << "</th>";
  h << "</tr>";
  auto m = map_json();
  for (std::size_t i = 0; i < m.size(); i += actions().size()) {
    h << "<tr><th>" << xml_escape(m[i]["step"].get<std::string>() + " " + m[i]["kind"].get<std::string>()) << "</th>";
    for (std::size_t a = 0; a < actions().size(); ++a) {
      auto st = m[i + a]["status"].get<std::string>();
      h << "<td class='" << (st == "not reached" ? "unreached" : st == "not applicable" ? "na" : st) << "'>"
        << (st == "not applicable" ? "" : st) << "</td>";
    }
    h << "</tr>";
  }
  h << "</table><h2>Violations</h2>";
  if (!bad) h << "<p>none</p>";
  for (const auto& e : done_) {
    if (!e.reached || e.passed) continue;
    h << "<div class='violation'><h3>" << xml_escape(std::to_string(e.number) + ": " + faults_text(e.faults))
      << "</h3><div class='timeline'>" << e.timeline << "</div><pre>";
    for (const auto& v : e.violations) h << xml_escape(sagalab::describe(v));
    for (const auto& u : e.uncorrelated) h << xml_escape("UNCORRELATED #" + std::to_string(u.seq) + " " + u.what + ": " + u.reason + "\n");
    h << "</pre>";
    if (!e.scenario.empty()) h << "<p>replay: <code>sagactl run " << xml_escape(e.scenario) << "</code></p>";
    h << "</div>";
  }
  h << "</body></html>\n";
}

}  // namespace
}  // namespace sagactl::explore

namespace sagactl {

void setup_explore(CLI::App& app, GlobalOptions& g) {
  using namespace explore;
  auto o = std::make_shared<ExploreOptions>();
  auto* sub = app.add_subcommand(
      "explore", "Break every step of a saga (behind sagactl proxy, or sagalab's own), one fault and then pairs, and check each run");
  sub->footer(
      "Phase 0 runs the workload without faults and lists the saga's fault points (each exchange a step made);\n"
      "phase 1 puts every action on every point (one rule that hits exactly that exchange); phase 2 adds a\n"
      "fault on each exchange a passing fault made appear (a compensation, a retry), up to --max-faults.\n"
      "Each run is checked as sagactl check --probe does; each violating fault set is minimal and written\n"
      "as a scenario that sagactl run replays (--scenarios DIR).\n"
      "The workload (YAML): upstream, request ('POST /comprar'), body and headers ({n}: a value unique to\n"
      "each experiment), settle_ms, timeout_ms, reset ({command: ...}).\n"
      "With neither --config nor --proxy, explore breaks sagalab's own purchase saga on a local stack of its\n"
      "own (free ports, a 500 ms step timeout): the services' fault rules at each step and compensation, and\n"
      "the orchestrator's crash points (orchestrator-crash-before/-after: around the step's saga-log write);\n"
      "each run is judged by the invariants and rules of sagactl verify, and by what the client was told.\n"
      "Exit: 0 no violation, 1 a violating fault set (or a clean run that violates), 2 bad input.\n"
      "Examples:\n"
      "  sagactl explore --config proxy.yaml --saga shop.saga.yaml --workload buy.yaml --scenarios found/\n"
      "  sagactl --proxy http://127.0.0.1:7070 explore --saga shop.saga.yaml --workload buy.yaml --max-faults 1 --json\n"
      "  sagactl explore --max-faults 2 --report explore.html   (sagalab's own stack)");
  sub->add_option("--config", o->config, "a proxy config (as sagactl proxy --config): explore starts that proxy")
      ->check(CLI::ExistingFile);
  sub->add_option("--saga", o->saga, "the saga description (YAML), as sagactl check reads it")->check(CLI::ExistingFile);
  sub->add_option("--workload", o->workload, "the client request that starts one saga (YAML)")->check(CLI::ExistingFile);
  sub->add_option("--max-faults", o->max_faults, "faults per experiment at most")->check(CLI::Range(1, 3))->capture_default_str();
  sub->add_option("--budget", o->budget, "experiments at most (a count), or a time (120s)")->capture_default_str();
  sub->add_option("--seed", o->seed, "the order of combinations, and the fault RNG")->capture_default_str();
  sub->add_option("--settle-ms", o->settle_ms, "how long the stack may take to go quiet after the answer (default: the workload's, or 300)")
      ->check(CLI::Range(0, 600000));
  sub->add_option("--latency-ms", o->latency_ms,
                  "the latency action's delay: past the caller's timeout, so the answer arrives late (default 2000; "
                  "900 on sagalab's own stack)")
      ->check(CLI::Range(1, 600000));
  sub->add_option("--partition-ms", o->partition_ms, "how long the partition action cuts the step's upstream")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  sub->add_option("--clean-runs", o->clean_runs, "runs without faults first (phase 0)")->check(CLI::Range(1, 100))->capture_default_str();
  sub->add_option("--actions", o->actions,
                  "only these actions (behind a proxy: error-5xx, error-4xx, commit-then-error, commit-then-drop, reset, "
                  "latency, partition; on sagalab's own stack: error-5xx, error-4xx, commit-then-error, commit-then-drop, "
                  "latency, crash-before, crash-after, orchestrator-crash-before, orchestrator-crash-after)")
      ->delimiter(',');
  sub->add_option("--jobs", o->jobs,
                  "experiments at once, behind a proxy, where each one's rules can match its own saga at request time "
                  "(its forward calls carry a value of the client's request that the workload makes unique with {n}); "
                  "the others run one at a time")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_flag("!--no-probe", o->probe, "do not read effects back (the description's state:)");
  sub->add_option("--product", o->own.product, "sagalab's own stack: the product each experiment buys")->capture_default_str();
  sub->add_option("--scenarios", o->scenarios, "write each violating fault set as a scenario file here");
  sub->add_option("--junit", o->junit, "write JUnit XML here (a test case per experiment)");
  sub->add_option("--report", o->report, "write an HTML report here (the coverage map as a grid, each violation's timeline)");
  sub->callback([&g, o] {
    std::unique_ptr<Target> target;
    if (o->config.empty() && g.proxy.empty()) {
      if (!o->saga.empty() || !o->workload.empty())
        throw CliError(kExitUnreachable, "--saga and --workload describe a stack behind sagactl proxy: give its "
                                         "--config (or --proxy ADMIN_URL); with neither, explore breaks sagalab's own stack");
      o->own.actions = o->actions;
      if (o->latency_ms > 0) o->own.latency_ms = o->latency_ms;
      if (o->settle_ms >= 0) o->own.settle_ms = o->settle_ms;
      target = own_stack_target(g, o->own);
    } else {
      target = std::make_unique<ProxyTarget>(g, *o);
    }
    throw CliError(Explorer(g, *o, *target).run(), "");
  });
}

}  // namespace sagactl
