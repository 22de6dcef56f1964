// sagactl proxy: the fault-injecting, recording HTTP proxy; sagactl check:
// the saga protocol checked on its recording.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "commands.hpp"
#include "sagalab/scenario.hpp"
#include "sagalab/http_client.hpp"
#include "sagalab/http_server.hpp"
#include "sagalab/proxy.hpp"
#include "sagalab/recording_check.hpp"

namespace sagactl {

namespace {

namespace px = sagalab::proxy;
namespace ck = sagalab::check;


// The YAML config: admin, record, upstream_timeout_ms, seed, upstreams: [{name, listen, url}].
void read_proxy_config(const std::string& path, px::Config& cfg, sagalab::ServerConfig& server) {
  auto j = yaml_to_json(load_yaml(path, "proxy config"));
  auto fail = [&](const std::string& m) { throw CliError(kExitUnreachable, path + ": " + m); };
  if (!j.is_object()) fail("must be a mapping with upstreams:");
  for (const auto& [k, v] : j.items()) {
    if (k != "admin" && k != "record" && k != "upstream_timeout_ms" && k != "seed" && k != "upstreams")
      fail("unknown key '" + k + "' (expected admin, record, upstream_timeout_ms, seed, upstreams)");
  }
  if (j.contains("admin")) {
    if (!j["admin"].is_string()) fail("admin must be host:port");
    auto a = j["admin"].get<std::string>();
    auto colon = a.rfind(':');
    if (colon == std::string::npos) fail("admin must be host:port, not '" + a + "'");
    server.host = a.substr(0, colon);
    try {
      server.port = std::stoi(a.substr(colon + 1));
    } catch (const std::exception&) {
      fail("admin must be host:port, not '" + a + "'");
    }
  }
  if (j.contains("record")) {
    if (!j["record"].is_string()) fail("record must be a file path");
    cfg.record_path = j["record"];
  }
  if (j.contains("upstream_timeout_ms")) {
    if (!j["upstream_timeout_ms"].is_number_integer() || j["upstream_timeout_ms"].get<long long>() < 1)
      fail("upstream_timeout_ms must be a positive integer");
    cfg.upstream_timeout_ms = j["upstream_timeout_ms"];
  }
  if (j.contains("seed")) {
    if (!j["seed"].is_number_unsigned()) fail("seed must be a non-negative integer");
    server.fault_seed = j["seed"];
  }
  if (!j.contains("upstreams") || !j["upstreams"].is_array()) fail("upstreams: must be a list of {name, listen, url}");
  for (const auto& u : j["upstreams"]) {
    if (!u.is_object() || !u.contains("name") || !u.contains("listen") || !u.contains("url"))
      fail("each upstream needs name, listen (host:port) and url");
    for (const auto& [k, v] : u.items())
      if (k != "name" && k != "listen" && k != "url" && k != "trace")
        fail("upstream: unknown key '" + k + "' (expected name, listen, url, trace)");
    if (u.contains("trace") && !u["trace"].is_boolean()) fail("upstream trace must be true or false");
    auto str = [&](const char* k) {
      if (!u[k].is_string()) fail(std::string("upstream ") + k + " must be a string");
      return u[k].get<std::string>();
    };
    try {
      cfg.upstreams.push_back(px::parse_upstream(str("name") + "=" + str("listen") + "->" + str("url")));
      cfg.upstreams.back().trace = u.value("trace", false);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
}

struct ProxyOptions {
  CLI::App* sub = nullptr;
  std::vector<std::string> upstreams;
  std::vector<std::string> trace;
  std::string config;
  px::Config cfg;
  sagalab::ServerConfig server;
};

int run_proxy(ProxyOptions& o) {
  // As every sagalab server: SIGINT/SIGTERM wait for serve()'s sigwait, in every thread started after this.
  sagalab::block_stop_signals();
  if (!o.config.empty()) {
    // The config file, then whatever the command line says explicitly.
    auto cli_cfg = o.cfg;
    auto cli_server = o.server;
    read_proxy_config(o.config, o.cfg, o.server);
    if (o.sub->count("--record")) o.cfg.record_path = cli_cfg.record_path;
    if (o.sub->count("--upstream-timeout-ms")) o.cfg.upstream_timeout_ms = cli_cfg.upstream_timeout_ms;
    if (o.sub->count("--port")) o.server.port = cli_server.port;
    if (o.sub->count("--host")) o.server.host = cli_server.host;
    if (o.sub->count("--fault-seed")) o.server.fault_seed = cli_server.fault_seed;
  }
  for (const auto& s : o.upstreams) {
    try {
      o.cfg.upstreams.push_back(px::parse_upstream(s));
    } catch (const std::invalid_argument& e) {
      throw CliError(kExitUnreachable, std::string("--upstream: ") + e.what());
    }
  }
  if (o.cfg.upstreams.empty())
    throw CliError(kExitUnreachable,
                   "no upstream: give --upstream name=127.0.0.1:7001->http://127.0.0.1:5001 (one per service) or "
                   "--config proxy.yaml");
  for (const auto& t : o.trace) {
    auto it = std::find_if(o.cfg.upstreams.begin(), o.cfg.upstreams.end(), [&](const px::Upstream& u) { return u.name == t; });
    if (it == o.cfg.upstreams.end()) throw CliError(kExitUnreachable, "--trace: no upstream '" + t + "'");
    it->trace = true;
  }
  std::vector<std::string> names;
  for (const auto& u : o.cfg.upstreams) {
    if (std::find(names.begin(), names.end(), u.name) != names.end())
      throw CliError(kExitUnreachable, "upstream '" + u.name + "' is given twice");
    names.push_back(u.name);
  }
  sagalab::finish_config(o.server);
  px::Faults faults(o.server.fault_seed, names);
  sagalab::HttpServer srv(o.server);
  px::Server proxy(srv.io(), o.cfg, faults);
  try {
    proxy.start();
  } catch (const std::exception& e) {
    throw CliError(kExitUnreachable, e.what());
  }
  px::register_admin_routes(srv, faults, proxy);
  for (const auto& u : proxy.upstreams_json())
    std::cout << sagalab::Json{{"event", "proxying"}, {"upstream", u["name"]}, {"listen", u["listen"]},
                               {"url", u["url"]}}
                     .dump()
              << std::endl;
  return srv.serve();
}


}  // namespace

YAML::Node load_yaml(const std::string& path, const std::string& what) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw CliError(kExitUnreachable, "cannot read the " + what + " " + path);
  } catch (const YAML::Exception& e) {
    throw CliError(kExitUnreachable, path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

std::vector<ck::Recorded> read_recording(const std::string& path, std::uint64_t offset) {
  std::ifstream in(path);
  if (!in) throw CliError(kExitUnreachable, "cannot read the recording " + path);
  if (offset) in.seekg(static_cast<std::streamoff>(offset));
  std::vector<ck::Recorded> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    auto j = sagalab::Json::parse(line, nullptr, false);
    // A last line cut short by a killed proxy is not an exchange; anything else is an error.
    if (j.is_discarded()) {
      if (in.peek() == EOF) break;
      throw CliError(kExitUnreachable, path + ": line " + std::to_string(n) + " is not JSON");
    }
    try {
      out.push_back(ck::recorded_from_json(j));
    } catch (const std::invalid_argument& e) {
      throw CliError(kExitUnreachable, path + ": line " + std::to_string(n) + ": " + e.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const ck::Recorded& a, const ck::Recorded& b) { return a.seq < b.seq; });
  return out;
}

CheckRun check_files(const std::string& recording, const std::string& saga, const std::string& probe_admin_url) {
  CheckRun run;
  try {
    run.desc = ck::parse_description(yaml_to_json(load_yaml(saga, "saga description")));
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUnreachable, saga + ": " + e.what());
  }
  run.name = run.desc.name.empty() ? "saga" : run.desc.name;
  auto exchanges = read_recording(recording);
  run.report = ck::check_recording(run.desc, exchanges);
  if (run.report.matched == 0)
    throw CliError(kExitUnreachable,
                   recording + ": none of its " + std::to_string(exchanges.size()) +
                       " exchanges matches the description " + saga +
                       " (its upstream names, methods and paths): nothing to check");
  if (!probe_admin_url.empty()) probe_effects(probe_admin_url, run);
  return run;
}

void probe_effects(const std::string& admin_url, CheckRun& run) {
  // The upstreams' own URLs, from the proxy: a probe goes around the proxy's faults and recording.
  auto up = sagalab::http_call(admin_url, "GET", "/admin/upstreams");
  if (!up.ok() || !up.answer->body.contains("upstreams"))
    throw CliError(kExitUnreachable, "--probe: cannot list the proxy's upstreams at " + admin_url + "/admin/upstreams" +
                                         (up.answer ? " (" + std::to_string(up.answer->status) + ")" : ": " + up.error));
  std::map<std::string, std::string> urls;
  for (const auto& u : up.answer->body["upstreams"]) urls[u.value("name", "")] = u.value("url", "");
  std::vector<ck::ProbeResult> results;
  for (const auto& p : run.report.probes) {
    ck::ProbeResult r;
    auto it = urls.find(p.upstream);
    if (it == urls.end()) {
      r.error = "the proxy has no upstream '" + p.upstream + "'";
    } else {
      auto a = sagalab::http_call(it->second, "GET", p.path, nullptr, {}, 5000);
      if (a.answer) {
        r.status = a.answer->status;
        r.body = a.answer->body;
      } else {
        r.error = a.error;
      }
    }
    results.push_back(std::move(r));
  }
  ck::judge_probes(run.desc, run.report, results);
}

std::string check_summary(const CheckRun& run) {
  const auto& r = run.report;
  std::string s = std::to_string(r.exchanges) + " exchanges (" + std::to_string(r.matched) + " matched), " +
                  std::to_string(r.sagas) + " sagas (" + std::to_string(r.completed) + " completed, " +
                  std::to_string(r.failed) + " failed, " + std::to_string(r.unknown) + " without an outcome), " +
                  std::to_string(r.refused) + " refused requests, " + std::to_string(r.uncorrelated.size()) +
                  " uncorrelated";
  if (r.probed) s += ", " + std::to_string(r.probed) + " effects probed";
  return s;
}

namespace {

struct CheckOptions {
  std::string recording, saga;
  bool list_rules = false;
  std::vector<std::string> rules;
  bool rules_given = false;
  bool probe = false;
  bool allow_uncorrelated = false;
};

int run_check(const GlobalOptions& g, const CheckOptions& o) {
  const bool no_value = std::all_of(o.rules.begin(), o.rules.end(), [](const std::string& r) { return r.empty(); });
  if (o.list_rules || (o.rules_given && no_value)) {
    print_rules(sagalab::kRecordingInputs | sagalab::kProbes);
    return kExitOk;
  }
  std::set<std::string> keep;
  for (const auto& list : o.rules) {
    std::size_t i = 0;
    while (i <= list.size()) {
      auto j = list.find(',', i);
      if (j == std::string::npos) j = list.size();
      auto name = list.substr(i, j - i);
      i = j + 1;
      if (name.empty()) continue;
      auto c = sagalab::canonical_rule(name);
      if (c.empty()) throw CliError(kExitUnreachable, "--rules: unknown rule '" + name + "' (sagactl check --list-rules lists them)");
      keep.insert(c);
    }
  }
  if (o.recording.empty() || o.saga.empty())
    throw CliError(kExitUnreachable, "give the recording and the saga description: sagactl check RECORDING --saga saga.yaml");
  if (o.probe && g.proxy.empty())
    throw CliError(kExitUnreachable, "--probe reads effects through the proxy's upstreams: give the proxy's admin URL "
                                     "(sagactl --proxy http://127.0.0.1:7070 check ... --probe)");
  auto run = check_files(o.recording, o.saga, o.probe ? g.proxy : "");
  auto& rep = run.report;
  if (!keep.empty()) ck::keep_rules(rep, keep);
  bool uncorrelated_fail = !rep.uncorrelated.empty() && !o.allow_uncorrelated;
  bool passed = rep.violations.empty() && !uncorrelated_fail;
  if (g.json) {
    auto j = ck::to_json(rep);
    j["passed"] = passed;
    j["allow_uncorrelated"] = o.allow_uncorrelated;
    print_json(j);
  } else {
    std::cout << run.name << ": " << check_summary(run) << "\n";
    for (const auto& w : rep.warnings) std::cout << paint("WARNING", "33;1") << " " << w << "\n";
    const std::size_t shown = 20;
    for (std::size_t i = 0; i < rep.uncorrelated.size() && i < shown; ++i) {
      const auto& u = rep.uncorrelated[i];
      std::cout << paint("UNCORRELATED", o.allow_uncorrelated ? "33;1" : "31;1") << " #" << u.seq << " " << u.what
                << ": " << u.reason << "\n";
    }
    if (rep.uncorrelated.size() > shown)
      std::cout << "  ... and " << rep.uncorrelated.size() - shown << " more uncorrelated (--json lists all)\n";
    for (const auto& v : rep.violations) std::cout << paint("VIOLATION", "31;1") << " " << sagalab::describe(v);
    if (passed)
      std::cout << paint("PASS", "32;1") << ": every rule holds on " << rep.sagas << " sagas"
                << (rep.probed ? " and " + std::to_string(rep.probed) + " probed effects" : "") << "\n";
    else
      std::cout << paint("FAIL", "31;1") << ": " << rep.violations.size() << " violation(s)"
                << (uncorrelated_fail ? ", " + std::to_string(rep.uncorrelated.size()) +
                                            " uncorrelated exchange(s) (--allow-uncorrelated to accept them)"
                                      : "")
                << "\n";
  }
  return passed ? kExitOk : kExitFailed;
}

}  // namespace

void setup_proxy(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<ProxyOptions>();
  o->server.program = "proxy";
  o->server.host = "127.0.0.1";
  o->server.port = 7070;
  o->server.workers = 2;
  auto* sub = app.add_subcommand(
      "proxy", "An HTTP proxy in front of any saga's services: inject faults, record every exchange");
  sub->footer(
      "One listener per upstream; faults through the admin listener's /admin/faults (sagactl --proxy URL "
      "inject-fault ...).\nActions: error, latency, hang, commit-then-error, commit-then-drop, reset, partition, "
      "slow-body.\nExamples:\n"
      "  sagactl proxy --upstream 'compras=127.0.0.1:7002->http://127.0.0.1:5002' --record exchanges.jsonl\n"
      "  sagactl proxy --config proxy.yaml\n"
      "  sagactl --proxy http://127.0.0.1:7070 inject-fault compras --action commit-then-error --path /transaccion\n"
      "  sagactl check exchanges.jsonl --saga deploy/saga/sagalab.yaml");
  o->sub = sub;
  sub->add_option("--upstream", o->upstreams, "name=listen_host:port->http://upstream:port (repeat per service)")
      ->type_name("SPEC");
  sub->add_option("--config", o->config, "YAML: admin, record, upstream_timeout_ms, seed, upstreams [{name, listen, url, trace}]")
      ->check(CLI::ExistingFile);
  sub->add_option("--record", o->cfg.record_path, "append every exchange to this JSON Lines file");
  sub->add_option("--trace", o->trace,
                  "add a W3C traceparent to this upstream's requests that have none (the client's upstream): where "
                  "the orchestrator propagates trace context, saga_id: [trace] correlates for free")
      ->type_name("UPSTREAM");
  sub->add_option("--upstream-timeout-ms", o->cfg.upstream_timeout_ms,
                  "how long to wait for an upstream before answering 504")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  sagalab::add_server_options(*sub, o->server);
  // The flags every sagalab server takes: here they are the admin listener's; the storage ones do not apply.
  sub->get_option("--port")->description("the admin listener's port (/admin/faults, /admin/upstreams; 0 picks a free one)");
  sub->get_option("--host")->description("the admin listener's address");
  sub->get_option("--workers")->description("threads of the admin listener's handlers");
  for (const char* unused : {"--data-dir", "--sync"}) sub->get_option(unused)->group("");
  sub->callback([o] { throw CliError(run_proxy(*o), ""); });
}

void setup_check(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<CheckOptions>();
  auto* sub = app.add_subcommand("check", "Check the saga protocol on a proxy's recording; exit 1 on a violation");
  sub->footer(
      "The saga description (YAML) names the steps in order, each one's forward and compensation endpoints,\n"
      "the pivot, and the links that join exchanges into sagas: saga_id (where the stack sends one), id\n"
      "(a compensation names the id its forward call returned) and carries/flow (a forward call passes on\n"
      "values of the client's request). Every exchange the description matches but no link places in one\n"
      "saga is reported as uncorrelated. See the README's 'A saga you did not write'.\n"
      "Exit: 0 pass, 1 a violation or an uncorrelated exchange, 2 a bad file or a recording that matches nothing.\n"
      "Examples:\n  sagactl check exchanges.jsonl --saga deploy/saga/sagalab.yaml --json\n"
      "  sagactl --proxy http://127.0.0.1:7070 check exchanges.jsonl --saga shop.saga.yaml --probe\n"
      "  sagactl check exchanges.jsonl --saga shop.saga.yaml --rules compensated,client-truthful");
  sub->add_option("recording", o->recording, "the JSON Lines file written by sagactl proxy --record");
  sub->add_option("--saga", o->saga, "the saga description (YAML)")->check(CLI::ExistingFile);
  sub->add_flag("--list-rules", o->list_rules, "print the rules checked, one per line");
  sub->add_option("--rules", o->rules, "check only these rules (comma-separated; older names accepted); "
                                       "without a value: print them")
      ->expected(0, 1)
      ->type_name("LIST");
  sub->add_flag("--probe", o->probe,
                "read back every effect of every settled saga (the steps' state:) through the proxy's upstreams "
                "(give --proxy ADMIN_URL); run it once the stack is quiet");
  sub->add_flag("--allow-uncorrelated", o->allow_uncorrelated,
                "report exchanges no link places in a saga, but do not fail on them");
  sub->callback([&g, o, sub] {
    o->rules_given = sub->count("--rules") > 0;
    throw CliError(run_check(g, *o), "");
  });
}

}  // namespace sagactl
