// Scenario files: an experiment described once in YAML (faults, a workload,
// crashes, and what must hold at the end), run locally or in CI by
// `sagactl run`. Parsing is strict: an unknown key or a wrong type stops
// before anything runs, with the file, line and what was expected.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "sagalab/faults.hpp"
#include "sagalab/json_codec.hpp"
#include "sagalab/programs.hpp"

namespace sagactl {

using sagalab::Json;

// The steps, one type each (parsed once, checked once: past the parser a step is valid).
namespace step {
struct Buy {
  std::string user = "user123";
  std::string product;  // "" the default product
  int qty = 1;
  std::string idempotency_key;
  std::string expect;  // "", "completada", "compensada", "rechazada" (4xx before a saga), "any"
  std::string label;   // names this purchase for expectations
};
struct Load {
  int count = 0;
  int concurrency = 1;
  std::string product;
  double fault_rate = 0.0;
};
// A fault rule at one of sagalab's programs, parsed by the programs' own parser.
struct Inject {
  std::string service;  // canonical program name
  sagalab::FaultRule rule;
};
// A rule for the proxy in front of a foreign stack. Its action is checked here; its upstream
// and the rest are parsed by the proxy, which knows its upstreams, when the step runs.
struct InjectProxy {
  Json rule;
};
struct ClearFaults {
  std::string service;  // canonical program name; "" every program
};
struct Crash {
  std::string service;
};
struct Restart {
  std::string service;
};
struct WaitUntilQuiet {
  std::int64_t timeout_ms = 30000;
};
struct Sleep {
  std::int64_t ms = 0;
};
struct Reset {};
// Any HTTP request to an upstream of a proxied scenario, through the proxy.
struct Request {
  std::string upstream, method = "POST", path;
  Json body;  // null: no body
  std::map<std::string, std::string> headers;
  int repeat = 1;
  int expect_status = 0;  // 0: any answer
};
}  // namespace step

using StepBody = std::variant<step::Buy, step::Load, step::Inject, step::InjectProxy, step::ClearFaults, step::Crash,
                              step::Restart, step::WaitUntilQuiet, step::Sleep, step::Reset, step::Request>;

struct ScenarioStep {
  int line = 0;  // in the scenario file (0: built, not read)
  StepBody body;
};

// A fault rule as a scenario file and /admin/faults write it: its action and every field that
// differs from a new rule's (the inverse of sagalab::parse_fault_rule).
Json rule_json(const sagalab::FaultRule& r);

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
  std::optional<std::map<std::string, std::int64_t>> stock;  // initial stock for ms-inventario
  std::optional<std::vector<sagalab::Product>> catalog;      // catalog for ms-catalogo / ms-inventario
  std::vector<step::Inject> faults;                          // installed first
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
