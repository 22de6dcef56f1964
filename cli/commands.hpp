// sagactl's subcommands that talk to a running stack (each in its own file).
#pragma once

#include <yaml-cpp/yaml.h>

#include "common.hpp"
#include "sagalab/recording_check.hpp"

namespace sagactl {

struct BuyOptions {
  std::string user = "user123";
  std::string product;
  int qty = 1;
  double monto = -1;
  std::string idempotency_key;
  bool async = false;
};
void setup_buy(CLI::App& app, GlobalOptions& g);
int run_buy(const GlobalOptions& g, const BuyOptions& o);

struct InjectOptions {
  std::string service;
  Json rule = Json::object();
};
void setup_inject_fault(CLI::App& app, GlobalOptions& g);
int run_inject_fault(const GlobalOptions& g, const InjectOptions& o);

struct FaultsOptions {
  std::string verb = "list";
  std::string service;
};
void setup_faults(CLI::App& app, GlobalOptions& g);
int run_faults(const GlobalOptions& g, const FaultsOptions& o);

void setup_verify(CLI::App& app, GlobalOptions& g);
int run_verify(const GlobalOptions& g);
// The five /admin/state bodies, keyed as check_invariants expects.
Json collect_states(const GlobalOptions& g);

struct SagasOptions {
  std::string state;
  int limit = 20;
};
void setup_sagas(CLI::App& app, GlobalOptions& g);
int run_sagas(const GlobalOptions& g, const SagasOptions& o);

void setup_show(CLI::App& app, GlobalOptions& g);
int run_show(const GlobalOptions& g, const std::string& saga_id);
// Renders a saga's timeline; `fired` is every program's fired-fault log.
std::string render_timeline(const Json& saga, const Json& fired, int width = 40);
// The same timeline as SVG, for the HTML reports of run and explore.
// t0, t1: the time axis (wall ms), shared by the sagas of one scenario; by default the saga's own span.
std::string svg_timeline(const Json& saga, const Json& fired, std::int64_t t0 = -1, std::int64_t t1 = -1);

void setup_reset(CLI::App& app, GlobalOptions& g);

void setup_simulate(CLI::App& app, GlobalOptions& g);
void setup_run(CLI::App& app, GlobalOptions& g);
void setup_bench(CLI::App& app, GlobalOptions& g);
void setup_top(CLI::App& app, GlobalOptions& g);
void setup_proxy(CLI::App& app, GlobalOptions& g);
void setup_check(CLI::App& app, GlobalOptions& g);
void setup_explore(CLI::App& app, GlobalOptions& g);
void setup_rules(CLI::App& app, GlobalOptions& g);
// The rules these inputs judge, one per line, and how many need other inputs.
void print_rules(unsigned inputs);
// `sagactl check` on files: throws CliError(2) on an unreadable recording or description, or a
// recording that matches nothing; with a proxy's admin URL, also reads the effects back (--probe).
struct CheckRun {
  sagalab::check::Description desc;
  sagalab::check::Report report;
  std::string name;
};
CheckRun check_files(const std::string& recording, const std::string& saga, const std::string& probe_admin_url = "");
void probe_effects(const std::string& admin_url, CheckRun& run);
// A proxy's recording, from a byte offset (what was written since), sorted by seq; throws CliError(2).
std::vector<sagalab::check::Recorded> read_recording(const std::string& path, std::uint64_t offset = 0);
// A YAML file; throws CliError(2) naming the file and line.
YAML::Node load_yaml(const std::string& path, const std::string& what);
std::string check_summary(const CheckRun& run);
int run_reset(const GlobalOptions& g);

}  // namespace sagactl
