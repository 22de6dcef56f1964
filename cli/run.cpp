// sagactl run: runs scenario files against a stack (its own local one on free
// ports, or --gateway), prints a line per scenario and a summary, writes
// JUnit XML and an HTML report, exits non-zero if any scenario fails.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "proxy_child.hpp"
#include "sagalab/checker_json.hpp"
#include "sagalab/rng.hpp"
#include "sagalab/scenario.hpp"
#include "stack.hpp"

namespace sagactl {

namespace fs = std::filesystem;

namespace {

struct RunOptions {
  std::vector<std::string> paths;
  std::string proxy;  // a proxy config for every scenario
  std::string junit;
  std::string report;
  std::vector<std::string> orchestrator_args = {"--step-timeout-ms=500", "--backoff-base-ms=10",
                                                "--backoff-max-ms=200"};
  bool keep_stack = false;
  int replicas = 1;   // of every program in the run's own stack
  std::string store;  // the run's own stack's store ("": SQLite files)
};

struct Check {
  std::string name;
  bool ok = true;
  std::string message;
};

struct Outcome {
  const Scenario* scenario = nullptr;
  std::vector<Check> checks;
  double seconds = 0;
  Json sagas = Json::array();
  Json fired = Json::array();
  std::string recording;  // a proxied scenario's exchanges
  std::map<std::string, std::string> labels;  // saga id -> its buy's label
  bool ok() const {
    return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; });
  }
};

std::vector<std::string> expand(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(p)) {
        auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p)) {
      files.push_back(p);
    } else {
      throw CliError(kExitUnreachable, p + ": no such file or directory");
    }
  }
  if (files.empty()) throw CliError(kExitUnreachable, "no scenario files (*.yaml) found");
  return files;
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

class Runner {
 public:
  Runner(const GlobalOptions& g, Outcome& out, std::string workdir, std::size_t index)
      : g_(g), out_(out), workdir_(std::move(workdir)), index_(index) {}

  void run(const Scenario& s) {
    out_.scenario = &s;
    if (!s.proxy.empty()) return run_proxied(s);
    auto t0 = std::chrono::steady_clock::now();
    try {
      prepare(s);
      for (const auto& st : s.steps) step(s, st);
      expectations(s);
    } catch (const CliError& e) {
      fail("run", std::string("line ") + std::to_string(line_) + ": " + e.what());
    }
    try {
      auto orq = admin("orquestador", "GET", "/admin/state", nullptr);
      out_.sagas = orq["sagas"];
      for (const auto& p : programs()) {
        auto f = call(g_, p, "GET", "/admin/faults/fired", nullptr, true);
        if (f.status != 200) continue;
        for (auto x : f.body["fired"]) {
          x["servicio"] = p;
          out_.fired.push_back(x);
        }
      }
    } catch (const CliError&) {
    }
    for (const auto& [label, id] : labels_) out_.labels[id] = label;
    out_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  // A scenario against any saga stack behind its own sagactl proxy: request
  // steps go through the proxy's listeners, faults to its rules, and the
  // expectation is `sagactl check` on what it recorded.
  void run_proxied(const Scenario& s) {
    auto t0 = std::chrono::steady_clock::now();
    auto base = workdir_ + "/scenario-" + std::to_string(index_ + 1);
    out_.recording = base + "-exchanges.jsonl";
    try {
      ProxyChild proxy(s.proxy, out_.recording, base + "-proxy");
      GlobalOptions g = g_;
      g.proxy = proxy.url();
      std::map<std::string, std::string> upstreams;
      const auto listed = call_ok(g, "proxy", "GET", "/admin/upstreams", nullptr, true);
      for (const auto& u : listed["upstreams"]) {
        auto listen = u["listen"].get<std::string>();
        if (listen.rfind("0.0.0.0:", 0) == 0) listen = "127.0.0.1:" + listen.substr(8);
        upstreams[u["name"].get<std::string>()] = "http://" + listen;
      }
      Json seed{{"seed", s.seed}};
      call_ok(g, "proxy", "POST", "/admin/faults/seed", &seed, true);
      for (const auto& st : s.steps) {
        line_ = st.line;
        auto where = "line " + std::to_string(st.line);
        if (const auto* inj = std::get_if<step::InjectProxy>(&st.body)) {
          auto a = call(g, "proxy", "POST", "/admin/faults", &inj->rule, true);
          if (a.status != 201)
            throw CliError(kExitFailed, "the proxy refused the fault rule " + inj->rule.dump() + ": " + a.body.dump());
        } else if (std::holds_alternative<step::ClearFaults>(st.body)) {
          call_ok(g, "proxy", "DELETE", "/admin/faults", nullptr, true);
        } else if (const auto* z = std::get_if<step::Sleep>(&st.body)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(z->ms));
        } else if (const auto* q = std::get_if<step::Request>(&st.body)) {
          auto it = upstreams.find(q->upstream);
          if (it == upstreams.end()) throw CliError(kExitFailed, "the proxy has no upstream '" + q->upstream + "'");
          httplib::Headers h;
          for (const auto& [k, v] : q->headers) h.emplace(k, v);
          for (int i = 0; i < q->repeat; ++i) {
            auto r = sagalab::http_call(it->second, q->method, q->path, q->body.is_null() ? nullptr : &q->body, h, 60000);
            if (q->expect_status && (!r.answer || r.answer->status != q->expect_status))
              fail(where + ": request " + q->method + " " + q->path,
                   "expected " + std::to_string(q->expect_status) + ", got " +
                       (r.answer ? std::to_string(r.answer->status) + " " + r.answer->body.dump() : r.error));
          }
        } else {
          throw CliError(kExitFailed, "this step needs sagalab's own stack");  // refused by the parser
        }
      }
      auto run = check_files(out_.recording, s.expect.check, s.expect.probe ? g.proxy : "");
      const auto& rep = run.report;
      for (const auto& v : rep.violations) fail("expect: check [" + v.rule + "] saga " + v.saga_id, sagalab::describe(v));
      for (const auto& u : rep.uncorrelated)
        fail("expect: check [uncorrelated] #" + std::to_string(u.seq), u.what + ": " + u.reason);
      if (rep.violations.empty() && rep.uncorrelated.empty()) pass("expect: check " + run.name + " (" + check_summary(run) + ")");
      if (rep.sagas == 0) fail("expect: check " + run.name, "the recording holds no saga: did the requests reach the stack?");
      out_.fired = call_ok(g, "proxy", "GET", "/admin/faults/fired", nullptr, true)["fired"];
    } catch (const CliError& e) {
      fail("run", std::string("line ") + std::to_string(line_) + ": " + e.what());
    }
    out_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // Admin calls wait out a program that a fault just crashed: the supervisor
  // (or the user's orchestration) restarts it. Gives up after 30 s.
  Json admin(const std::string& program, const std::string& method, const std::string& path,
             const Json* body = nullptr) {
    return admin_call_waiting(g_, program, method, path, body);
  }

  void fail(const std::string& name, const std::string& msg) { out_.checks.push_back({name, false, msg}); }
  void pass(const std::string& name) { out_.checks.push_back({name, true, ""}); }

  void prepare(const Scenario& s) {
    await_healthy();
    // The previous scenario's faults go first: a saga they keep stuck then heals
    // (compensations retry until they succeed) instead of failing this scenario.
    for (const auto& p : programs()) admin(p, "DELETE", "/admin/faults", nullptr);
    wait_quiet(30000);
    if (s.reset) {
      for (const auto& p : programs()) {
        Json body = Json::object();
        if (p == "ms-inventario" && s.stock) body["stock"] = *s.stock;
        if ((p == "ms-inventario" || p == "ms-catalogo") && s.catalog) {
          body["catalog"] = Json::array();
          for (const auto& prod : *s.catalog) body["catalog"].push_back(sagalab::to_json(prod));
        }
        admin(p, "POST", "/admin/reset", &body);
      }
    }
    for (const auto& p : programs()) {
      Json seed{{"seed", s.seed}};
      admin(p, "POST", "/admin/faults/seed", &seed);
    }
    for (const auto& f : s.faults) inject(f.service, rule_json(f.rule));
  }

  void await_healthy() {
    auto deadline = sagalab::wall_ms() + 30000;
    for (const auto& p : programs()) {
      while (!healthy(p) && sagalab::wall_ms() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void inject(const std::string& svc, const Json& rule) {
    await_healthy();
    auto a = call(g_, svc, "POST", "/admin/faults", &rule, true);
    if (a.status != 201) throw CliError(kExitFailed, svc + " refused the fault rule " + rule.dump() + ": " + a.body.dump());
  }

  // Waits until no saga is running; false on timeout.
  bool wait_quiet(std::int64_t timeout_ms) { return wait_sagas_settled(g_, timeout_ms); }

  bool healthy(const std::string& p) {
    return sagalab::http_call(base_url(g_, p), "GET", "/health", nullptr, {}, 1000).ok();
  }

  int pid_of(const std::string& p) {
    auto stack = read_stack(g_);
    if (!stack || g_.remote())
      throw CliError(kExitFailed, "crash/restart steps need the local stack, not --gateway or URLs");
    return (*stack)["services"][p].value("pid", -1);
  }

  void kill_and_wait(const std::string& p, int sig) {
    int pid = pid_of(p);
    if (pid <= 0) throw CliError(kExitFailed, "no pid for " + p);
    ::kill(pid, sig);
    auto deadline = sagalab::wall_ms() + 20000;
    while (sagalab::wall_ms() < deadline) {
      if (pid_of(p) != pid && healthy(p)) return;  // the supervisor restarted it
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw CliError(kExitFailed, p + " did not come back after " + (sig == SIGKILL ? "a crash" : "a restart"));
  }

  sagalab::HttpAnswer buy(const std::string& user, const std::string& product, int qty, const std::string& key) {
    Json body{{"usuario_id", user}, {"cantidad", qty}};
    if (!product.empty()) body["producto"] = product;
    httplib::Headers h;
    if (!key.empty()) h.emplace("Idempotency-Key", key);
    auto r = sagalab::http_call(base_url(g_, "orquestador"), "POST", "/compra", &body, h, 60000);
    if (!r.answer) return sagalab::HttpAnswer{0, Json::object()};
    return *r.answer;
  }

  void step(const Scenario& s, const ScenarioStep& st) {
    line_ = st.line;
    std::visit(
        Overloaded{
            [&](const step::Buy& b) { buy_step(st, b); },
            [&](const step::Load& l) { load(s, st, l); },
            [&](const step::Inject& i) { inject(i.service, rule_json(i.rule)); },
            [&](const step::ClearFaults& c) {
              for (const auto& p : programs()) {
                if (c.service.empty() || c.service == p) admin(p, "DELETE", "/admin/faults", nullptr);
              }
            },
            [&](const step::Crash& c) { kill_and_wait(c.service, SIGKILL); },
            [&](const step::Restart& r) { kill_and_wait(r.service, SIGTERM); },
            [&](const step::WaitUntilQuiet& w) {
              if (!wait_quiet(w.timeout_ms))
                fail("line " + std::to_string(st.line) + ": wait-until-quiet",
                     "sagas still running after " + std::to_string(w.timeout_ms) + " ms");
            },
            [&](const step::Sleep& z) { std::this_thread::sleep_for(std::chrono::milliseconds(z.ms)); },
            [&](const step::Reset&) {
              wait_quiet(30000);
              for (const auto& p : programs()) admin(p, "POST", "/admin/reset", nullptr);
            },
            // Refused by the parser without a proxy.
            [&](const step::InjectProxy&) { throw CliError(kExitFailed, "a proxy fault rule needs a proxy"); },
            [&](const step::Request&) { throw CliError(kExitFailed, "a request step needs a proxy"); },
        },
        st.body);
  }

  void buy_step(const ScenarioStep& st, const step::Buy& b) {
    // A labelled purchase always has a key: cut off by a crash, it is found again by repeating it.
    auto key = b.idempotency_key;
    if (key.empty() && !b.label.empty())
      key = "scenario-" + std::to_string(index_ + 1) + "-" + b.label + "-" + std::to_string(sagalab::wall_ms());
    auto a = buy(b.user, b.product, b.qty, key);
    if (!b.label.empty() && a.body.contains("saga_id")) labels_[b.label] = a.body["saga_id"].get<std::string>();
    if (!b.label.empty() && !a.body.contains("saga_id")) unanswered_[b.label] = {&b, key};
    auto name = "line " + std::to_string(st.line) + ": buy " + (b.label.empty() ? b.product : b.label);
    if (b.expect.empty() || b.expect == "any") return;
    std::string got = a.status == 200                              ? "completada"
                      : a.body.value("estado", "") == "compensada" ? "compensada"
                      : (a.status >= 400 && a.status < 500)        ? "rechazada"
                                                                   : "HTTP " + std::to_string(a.status);
    if (got == b.expect) {
      pass(name + " -> " + b.expect);
    } else {
      fail(name + " -> " + b.expect, "expected " + b.expect + ", got " + got + " " + a.body.dump());
    }
  }

  void load(const Scenario& s, const ScenarioStep& at, const step::Load& st) {
    std::vector<std::string> products = {"Laptop Gamer", "Mouse Inalámbrico", "Teclado Mecánico", "Monitor 27 pulgadas",
                                         "Auriculares Bluetooth"};
    if (st.fault_rate > 0) {
      Json rules = random_fault_rules(st.fault_rate);
      for (const auto& svc : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
        admin(svc, "POST", "/admin/faults", &rules);
    }
    std::atomic<int> next{0}, answered{0};
    std::mutex mu;
    sagalab::SplitMix64 rng(s.seed ^ 0x5EED);
    std::vector<std::string> picks;
    for (int i = 0; i < st.count; ++i)
      picks.push_back(st.product.empty() ? products[static_cast<std::size_t>(rng.uniform(0, 4))] : st.product);
    std::vector<std::thread> workers;
    for (int w = 0; w < st.concurrency; ++w) {
      workers.emplace_back([&] {
        for (int i = next++; i < st.count; i = next++) {
          auto a = buy("load" + std::to_string(i % 37), picks[static_cast<std::size_t>(i)], 1, "");
          if (a.status != 0) ++answered;
        }
      });
    }
    for (auto& t : workers) t.join();
    if (st.fault_rate > 0) {
      for (const auto& svc : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
        admin(svc, "DELETE", "/admin/faults", nullptr);
    }
    std::lock_guard lock(mu);
    if (answered != st.count)
      fail("line " + std::to_string(at.line) + ": load",
           std::to_string(st.count - answered) + " of " + std::to_string(st.count) + " purchases got no answer");
  }

  void expectations(const Scenario& s) {
    if (!wait_quiet(30000)) fail("sagas settle", "sagas still running 30 s after the last step");
    await_healthy();
    auto states = collect_states(g_);
    if (s.expect.invariants) {
      auto report = sagalab::check_invariants(states);
      if (report.ok()) {
        pass("expect: invariants");
      } else {
        std::string msg;
        for (const auto& v : report.violations) msg += sagalab::describe(v);
        fail("expect: invariants", msg);
      }
    }
    std::map<std::string, int> counts;
    std::map<std::string, std::string> estado_of;
    for (const auto& sg : states["orquestador"]["sagas"]) {
      counts[sg.value("estado", "")]++;
      estado_of[sg.value("saga_id", "")] = sg.value("estado", "");
    }
    for (const auto& [estado, n] : s.expect.outcomes) {
      auto name = "expect: outcomes." + estado + " = " + std::to_string(n);
      if (counts[estado] == n) {
        pass(name);
      } else {
        fail(name, "got " + std::to_string(counts[estado]));
      }
    }
    // A labelled purchase that got no answer (an orchestrator crash cut it off): the same request
    // with its idempotency key returns the saga it started, if it started one.
    for (const auto& [label, pending] : unanswered_) {
      auto a = buy(pending.first->user, pending.first->product, pending.first->qty, pending.second);
      if (a.body.contains("saga_id")) labels_[label] = a.body["saga_id"].get<std::string>();
    }
    if (!unanswered_.empty()) {
      wait_quiet(30000);
      states = collect_states(g_);
      estado_of.clear();
      for (const auto& sg : states["orquestador"]["sagas"]) estado_of[sg.value("saga_id", "")] = sg.value("estado", "");
    }
    for (const auto& [label, estado] : s.expect.sagas) {
      auto name = "expect: saga '" + label + "' " + estado;
      auto it = labels_.find(label);
      if (it == labels_.end()) {
        fail(name, "the purchase labelled '" + label + "' got no saga id (and repeating it with its "
                   "idempotency key found none: it started no saga)");
      } else if (estado_of[it->second] != estado) {
        fail(name, "saga " + it->second + " is " + estado_of[it->second]);
      } else {
        pass(name);
      }
    }
    for (const auto& [product, units] : s.expect.stock) {
      auto name = "expect: stock." + product + " = " + std::to_string(units);
      const auto& st = states["ms-inventario"]["stock"];
      long long got = st.contains(product) ? st[product].value("stock", -1LL) : -1;
      if (got == units) {
        pass(name);
      } else {
        fail(name, got < 0 ? "ms-inventario has no product " + product : "got " + std::to_string(got));
      }
    }
    for (const auto& f : s.expect.fired) {
      auto name = "expect: " + f.service + " fired " + f.action + " >= " + std::to_string(f.min);
      int n = 0;
      for (const auto& x : states["fallos"][f.service]) {
        if (x.value("action", "") == f.action) ++n;
      }
      if (n >= f.min) {
        pass(name);
      } else {
        fail(name, "fired " + std::to_string(n) + " time(s)");
      }
    }
  }

  const GlobalOptions& g_;
  Outcome& out_;
  int line_ = 0;
  std::map<std::string, std::string> labels_;
  std::map<std::string, std::pair<const step::Buy*, std::string>> unanswered_;  // label -> (its buy, its key)
  std::string workdir_;
  std::size_t index_ = 0;
};

// One test case per scenario (so one failure per failed scenario); the message names the
// expectations that failed, the body says each, and the checks that held are its output.
void write_junit(const std::string& path, const std::vector<Outcome>& outs, double total) {
  int failures = 0;
  for (const auto& o : outs) failures += o.ok() ? 0 : 1;
  std::ofstream x(path);
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites name=\"sagalab scenarios\" tests=\"" << outs.size() << "\" failures=\"" << failures
    << "\" time=\"" << total << "\">\n";
  for (const auto& o : outs) {
    const auto& s = *o.scenario;
    x << "  <testsuite name=\"" << xml_escape(s.name) << "\" tests=\"1\" failures=\"" << (o.ok() ? 0 : 1)
      << "\" time=\"" << o.seconds << "\" file=\"" << xml_escape(s.file) << "\">\n";
    x << "    <testcase classname=\"scenario\" name=\"" << xml_escape(s.name) << "\" time=\"" << o.seconds << "\">";
    std::string failed, detail, held;
    for (const auto& c : o.checks) {
      if (c.ok) {
        held += "ok: " + c.name + "\n";
      } else {
        failed += (failed.empty() ? "" : "; ") + c.name + ": " + c.message;
        detail += c.name + ": " + c.message + "\n";
      }
    }
    if (!o.ok())
      x << "<failure message=\"" << xml_escape(failed) << "\">" << xml_escape(detail + "replay: sagactl run " + s.file)
        << "</failure>";
    if (!held.empty()) x << "<system-out>" << xml_escape(held) << "</system-out>";
    x << "</testcase>\n  </testsuite>\n";
  }
  x << "</testsuites>\n";
}

void write_report(const std::string& path, const std::vector<Outcome>& outs) {
  std::ofstream h(path);
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sagalab scenario report</title><style>"
       "body{font-family:sans-serif;margin:1em auto;max-width:960px;padding:0 1em;color:#222}"
       "h2.ok{color:#27ae60}h2.fail{color:#c0392b}li.fail{color:#c0392b}li.ok{color:#27ae60}"
       "details{margin:.4em 0}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}"
       "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;"
       "text-align:left;overflow-wrap:anywhere}td.ok{color:#27ae60;font-weight:bold}td.fail{color:#c0392b;"
       "font-weight:bold}.legend span{display:inline-block;margin-right:1em;font-size:13px}"
       ".sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}"
       "code{overflow-wrap:anywhere}</style></head><body><h1>sagalab scenario report</h1>";
  int failed = 0;
  for (const auto& o : outs) failed += o.ok() ? 0 : 1;
  h << "<p><b class='" << (failed ? "fail" : "ok") << "'>" << outs.size() << " scenario(s), " << failed
    << " failed.</b></p>";
  // The summary: one row a scenario.
  h << "<table id='summary'><tr><th>scenario</th><th>result</th><th>sagas by outcome</th><th>faults fired</th>"
       "<th>duration</th></tr>";
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const auto& o = outs[i];
    std::map<std::string, int> by_state, by_fault;
    for (const auto& sg : o.sagas) by_state[sg.value("estado", "")]++;
    for (const auto& f : o.fired) by_fault[f.value("action", "")]++;
    auto list = [](const std::map<std::string, int>& m) {
      std::string t;
      for (const auto& [k, v] : m) t += (t.empty() ? "" : ", ") + k + " " + std::to_string(v);
      return t.empty() ? std::string("none") : t;
    };
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", o.seconds);
    h << "<tr><td><a href='#s" << i + 1 << "'>" << xml_escape(o.scenario->name) << "</a></td><td class='"
      << (o.ok() ? "ok'>passed" : "fail'>FAILED") << "</td><td>" << xml_escape(list(by_state)) << "</td><td>"
      << xml_escape(list(by_fault)) << "</td><td>" << took << "</td></tr>";
  }
  h << "</table>";
  h << "<p class='legend'><span><i class='sw' style='background:#27ae60'></i>step ok</span>"
       "<span><i class='sw' style='background:#8e44ad'></i>compensation ok</span>"
       "<span><i class='sw' style='background:#c0392b'></i>failed (a refusal)</span>"
       "<span><i class='sw' style='background:#e67e22'></i>unknown (no answer, a 5xx, cut off)</span>"
       "<span>⚡ a fault that hit the attempt</span><span>✖ the orchestrator crashed during it</span>"
       "<span>one time scale per scenario</span></p>";
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const auto& o = outs[i];
    const auto& s = *o.scenario;
    h << "<h2 id='s" << i + 1 << "' class='" << (o.ok() ? "ok" : "fail") << "'>" << (o.ok() ? "✔ " : "✘ ")
      << xml_escape(s.name) << "</h2>";
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", o.seconds);
    h << "<p>" << xml_escape(s.description) << "</p><p><code>" << xml_escape(s.file) << "</code>, seed " << s.seed
      << ", " << took << "</p><ul>";
    for (const auto& c : o.checks)
      h << "<li class='" << (c.ok ? "ok" : "fail") << "'>" << xml_escape(c.name)
        << (c.ok ? "" : "<pre>" + xml_escape(c.message) + "</pre>") << "</li>";
    h << "</ul>";
    // One scale for the scenario's sagas (the first 20 drawn).
    std::int64_t t0 = -1, t1 = -1;
    std::size_t n = 0;
    for (const auto& saga : o.sagas) {
      if (n++ >= 20) break;
      auto b = saga.value("inicio_ms", std::int64_t{0});
      t0 = t0 < 0 ? b : std::min(t0, b);
      for (const auto& a : saga["intentos"]) t1 = std::max({t1, a.value("fin_ms", b), a.value("inicio_ms", b)});
    }
    std::size_t shown = 0;
    for (const auto& saga : o.sagas) {
      if (shown++ >= 20) {
        h << "<p>(" << o.sagas.size() - 20 << " more sagas not drawn)</p>";
        break;
      }
      auto id = saga.value("saga_id", "");
      auto label = o.labels.count(id) ? o.labels.at(id) : std::string();
      h << "<details" << (shown <= 3 ? " open" : "") << "><summary>" << (label.empty() ? "" : "<b>" + xml_escape(label) + "</b> ")
        << xml_escape(id) << " — " << xml_escape(saga.value("estado", ""));
      if (!saga["paso_fallido"].is_null()) h << " (failed step " << xml_escape(saga["paso_fallido"].get<std::string>()) << ")";
      h << "</summary>" << svg_timeline(saga, o.fired, t0, t1) << "</details>";
    }
  }
  h << "</body></html>\n";
}

int run_scenarios(const GlobalOptions& g0, const RunOptions& o) {
  auto files = expand(o.paths);
  std::vector<Scenario> scenarios;
  for (const auto& f : files) scenarios.push_back(load_scenario(f, o.proxy));  // every file checked before anything runs
  bool own_stack = std::any_of(scenarios.begin(), scenarios.end(), [](const Scenario& s) { return s.proxy.empty(); });

  GlobalOptions g = g0;
  std::string tmpl = (fs::temp_directory_path() / "sagactl-run-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw CliError(kExitFailed, "cannot create a temporary directory");
  const std::string workdir = tmpl;
  std::string tmp;
  if (own_stack && !g.remote()) {
    tmp = workdir;
    g.stack_dir = tmp;
    UpOptions up;
    up.base_port = 0;
    up.quiet = true;
    for (const auto& a : o.orchestrator_args) up.orchestrator_args.push_back(a);
    up.replicas = o.replicas;
    up.store = o.store;
    run_up(g, up);
    if (!g.json) std::cout << "started a local stack for the run (" << tmp << ")\n";
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Outcome> outs(scenarios.size());
  int failed = 0;
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    Runner r(g, outs[i], workdir, i);
    r.run(scenarios[i]);
    const auto& out = outs[i];
    if (!out.ok()) ++failed;
    if (!g.json) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1fs", out.seconds);
      std::cout << (out.ok() ? paint("✔", "32") : paint("✘", "31")) << " " << scenarios[i].name << "  (" << secs << ")\n";
      for (const auto& c : out.checks) {
        if (!c.ok) std::cout << "    " << c.name << ": " << c.message << "\n";
      }
      if (!out.ok())
        std::cout << "    seed " << scenarios[i].seed << "; replay: sagactl run " << scenarios[i].file << "\n";
      if (!out.ok() && !out.recording.empty())
        std::cout << "    recording: " << out.recording << " (sagactl check " << out.recording << " --saga "
                  << scenarios[i].expect.check << ")\n";
    }
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!o.junit.empty()) write_junit(o.junit, outs, total);
  if (!o.report.empty()) write_report(o.report, outs);
  if (!tmp.empty() && !o.keep_stack) {
    GlobalOptions quiet = g;
    quiet.json = true;
    std::ostringstream sink;
    auto* old = std::cout.rdbuf(sink.rdbuf());
    run_down(quiet);
    std::cout.rdbuf(old);
  }
  // A failed proxied scenario keeps its recording for `sagactl check`.
  bool keep = o.keep_stack || std::any_of(outs.begin(), outs.end(), [](const Outcome& x) {
                return !x.ok() && !x.recording.empty();
              });
  if (!keep) {
    std::error_code ec;
    fs::remove_all(workdir, ec);
  }
  if (g.json) {
    Json arr = Json::array();
    for (const auto& out : outs) {
      Json checks = Json::array();
      for (const auto& c : out.checks) checks.push_back({{"name", c.name}, {"ok", c.ok}, {"message", c.message}});
      arr.push_back({{"name", out.scenario->name}, {"file", out.scenario->file}, {"ok", out.ok()},
                     {"seconds", out.seconds}, {"checks", checks},
                     {"recording", out.recording.empty() ? Json(nullptr) : Json(out.recording)}});
    }
    print_json({{"ok", failed == 0}, {"scenarios", arr}, {"failed", failed}});
  } else {
    std::cout << (failed == 0 ? paint("all " + std::to_string(outs.size()) + " scenarios passed", "32;1")
                              : paint(std::to_string(failed) + " of " + std::to_string(outs.size()) + " scenarios failed", "31;1"))
              << " in " << static_cast<int>(total) << " s\n";
  }
  return failed == 0 ? kExitOk : kExitFailed;
}

}  // namespace

// One saga's attempts on a time axis from t0 to t1 (wall ms; by default its own span), as a
// scalable SVG: a row per attempt, its fault marks and what happened written on the row.
std::string svg_timeline(const Json& saga, const Json& fired, std::int64_t t0, std::int64_t t1) {
  if (t0 < 0) t0 = saga.value("inicio_ms", std::int64_t{0});
  if (t1 <= t0) {
    t1 = t0 + 1;
    for (const auto& a : saga["intentos"]) t1 = std::max({t1, a.value("fin_ms", t0), a.value("inicio_ms", t0)});
  }
  const int width = 520, row = 16, label = 170, right = 270;
  int rows = static_cast<int>(saga["intentos"].size());
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 " << label + width + right << " " << rows * row + 24
      << "' width='100%' font-family='monospace' font-size='11'>";
  // The scale: its ends and a tick every quarter, so that rows of one scenario compare.
  for (int q = 0; q <= 4; ++q) {
    double x = label + width * q / 4.0;
    svg << "<line x1='" << x << "' y1='13' x2='" << x << "' y2='" << rows * row + 18 << "' stroke='#ddd'/>";
    svg << "<text x='" << x << "' y='10' text-anchor='" << (q == 0 ? "start" : q == 4 ? "end" : "middle") << "'>"
        << (t1 - t0) * q / 4 << " ms</text>";
  }
  int y = 16;
  double scale = static_cast<double>(width) / static_cast<double>(t1 - t0);
  for (const auto& a : saga["intentos"]) {
    bool comp = a.value("compensacion", false);
    auto outcome = a.value("resultado", "");
    double x0 = label + static_cast<double>(a.value("inicio_ms", t0) - t0) * scale;
    auto end = a.value("fin_ms", std::int64_t{-1});
    double x1 = label + static_cast<double>((end < 0 ? t1 : end) - t0) * scale;
    const char* colour = outcome == "ok" ? (comp ? "#8e44ad" : "#27ae60") : outcome == "failed" ? "#c0392b" : "#e67e22";
    svg << "<text x='2' y='" << y + 11 << "'>" << (comp ? "↩ " : "") << xml_escape(a.value("paso", "")) << " #"
        << a.value("intento", 0) << "</text>";
    svg << "<rect x='" << x0 << "' y='" << y + 2 << "' width='" << std::max(2.0, x1 - x0) << "' height='" << row - 4
        << "' fill='" << colour << "'><title>" << xml_escape(outcome + " " + a.value("detalle", "")) << "</title></rect>";
    std::string mark;
    for (const auto& action : faults_on_attempt(saga, a, fired)) mark += " ⚡" + action;
    auto detail = a.value("detalle", "");
    if (detail.find("reinicio del orquestador") != std::string::npos) mark += " ✖ orchestrator crash";
    else if (outcome != "ok" && !detail.empty()) mark += " " + (detail.size() > 34 ? detail.substr(0, 33) + "…" : detail);
    svg << "<text x='" << label + width + 6 << "' y='" << y + 11 << "' fill='" << colour << "'>" << xml_escape(outcome)
        << "<tspan fill='#c0392b'>" << xml_escape(mark) << "</tspan></text>";
    y += row;
  }
  svg << "</svg>";
  return svg.str();
}

void setup_run(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "Run scenario files (YAML) and check what they expect");
  sub->footer(
      "Starts its own local stack on free ports unless --gateway is given. Every file is checked\n"
      "before anything runs. See scenarios/README.md for the format.\n\n"
      "Examples:\n  sagactl run scenarios/\n  sagactl run scenarios/pagos-transaccion-commit-then-error.yaml --junit out.xml --report out.html\n"
      "  sagactl --gateway http://localhost --admin-token T run scenarios/\n"
      "  sagactl run --proxy trips-proxy.yaml trips-scenario.yaml   (any saga stack, checked by sagactl check)");
  sub->add_option("paths", o->paths, "scenario files or directories")->required();
  sub->add_option("--junit", o->junit, "write JUnit XML here");
  sub->add_option("--report", o->report, "write an HTML report here");
  sub->add_option("--orchestrator-arg", o->orchestrator_args, "flags for the run's own orchestrator")
      ->capture_default_str();
  sub->add_flag("--keep-stack", o->keep_stack, "leave the run's own stack up afterwards");
  sub->add_option("--replicas", o->replicas,
                  "processes of every program in the run's own stack (as 'sagactl up --replicas'; needs --store)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  sub->add_option("--store", o->store,
                  "the run's own stack's store: 'postgresql' (a server it starts) or a postgresql:// URL "
                  "(default: SQLite files)");
  sub->add_option("--proxy", o->proxy,
                  "run every scenario against the stack behind this sagactl proxy config (request steps, "
                  "inject with upstream, expect.check)")
      ->check(CLI::ExistingFile);
  sub->callback([&g, o] { throw CliError(run_scenarios(g, *o), ""); });
}

}  // namespace sagactl
