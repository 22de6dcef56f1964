// Scenario files: an experiment described once in YAML (faults, a workload,
// crashes, and what must hold at the end), run locally or in CI by
// `sagactl run`. Parsing is strict: an unknown key or a wrong type stops
// before anything runs, with the file, line and what was expected.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "names.hpp"
#include "sagalab/json_codec.hpp"

namespace sagactl {

using sagalab::Json;

struct ScenarioStep {
  enum class Kind { Buy, Load, Inject, ClearFaults, Crash, Restart, WaitUntilQuiet, Reset, Sleep, Request } kind = Kind::Buy;
  int line = 0;
  // buy
  std::string user = "user123";
  std::string product;
  int qty = 1;
  std::string idempotency_key;
  std::string expect;  // "", "completada", "compensada", "rechazada" (4xx before a saga), "any"
  std::string label;   // names this purchase for expectations
  // load
  int count = 0;
  int concurrency = 1;
  double fault_rate = 0.0;
  // inject / clear-faults / crash / restart
  std::string service;  // canonical program name; "" = all (clear-faults)
  Json rule = Json::object();
  // wait-until-quiet
  std::int64_t timeout_ms = 30000;
  // sleep
  std::int64_t sleep_ms = 0;
  // request (a proxied scenario: any HTTP request to an upstream, through the proxy)
  std::string upstream, method = "POST", path;
  Json body;                        // null: no body
  Json headers = Json::object();
  int repeat = 1;
  int expect_status = 0;  // 0: any answer
};

struct ScenarioExpect {
  bool invariants = true;
  std::map<std::string, int> outcomes;                // estado -> exact count of sagas
  std::map<std::string, std::string> sagas;           // buy label -> final estado
  std::map<std::string, long long> stock;             // product -> units available at the end
  struct Fired {
    std::string service;
    std::string action;
    int min = 1;
  };
  std::vector<Fired> fired;
  std::string check;  // a saga description: `sagactl check` on the proxy's recording
  bool probe = false;  // and read every settled saga's effects back (check --probe)
};

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  std::uint64_t seed = 0;
  bool reset = true;
  Json stock;    // optional initial stock for ms-inventario
  Json catalog;  // optional catalog for ms-catalogo / ms-inventario
  std::vector<Json> faults;               // rules with a "service" key, installed first
  std::vector<ScenarioStep> steps;
  ScenarioExpect expect;
  // A proxy config (sagactl proxy --config): the scenario runs against the
  // stack behind that proxy, any saga stack, with `check` as its expectation.
  std::string proxy;
};

// YAML -> JSON for free-form data (a quoted scalar stays a string).
Json yaml_to_json(const YAML::Node& n);
// JSON -> YAML flow style; quote_strings: every string double-quoted, so that "1500" reads back as a string.
void emit_json(YAML::Emitter& out, const Json& j, bool quote_strings = false);

// Throws CliError(2) naming file, line and what was expected.
// `proxy`, when given (sagactl run --proxy), is the proxy config of every scenario.
Scenario load_scenario(const std::string& path, const std::string& proxy = "");
// YAML text of a scenario (used by `simulate` to write shrunk failures).
std::string emit_scenario(const Scenario& s);

}  // namespace sagactl
