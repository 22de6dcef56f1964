// sagactl explore's parts: what an experiment is, and the target it runs on
// (a stack behind sagactl proxy, described by a saga description; or
// sagalab's own local stack, with its services' fault rules and the
// orchestrator's crash points). explore.cpp drives the phases over a Target.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "commands.hpp"

namespace sagactl::explore {

namespace ck = sagalab::check;

// One fault action as explore applies it.
struct ActionSpec {
  std::string name;
  Json rule;                  // the rule's action fields
  int hold_ms = 0;            // how long its effect lasts once it fires (a held request, a cut upstream)
  bool forward_only = false;  // has no meaning on a compensation (a saga-log point of a forward step)
};

// A row pair of the coverage map: a step, and whether it has a compensation.
struct StepRow {
  std::string name;
  bool compensable = false;
};

// A fault point: the attempt-th exchange of a step's forward call or compensation.
struct Point {
  std::size_t step = 0;
  bool compensation = false;
  int attempt = 1;
  auto key() const { return std::make_tuple(step, compensation, attempt); }
  bool operator<(const Point& o) const { return key() < o.key(); }
  bool operator==(const Point& o) const { return key() == o.key(); }
};

struct Fault {
  Point point;
  std::size_t action = 0;
};

struct Experiment {
  std::size_t number = 0;
  std::vector<Fault> faults;
  std::vector<bool> fired;
  bool reached = false;  // every fault fired
  bool rerun = false;    // run a second time because a fault did not fire the first time
  bool passed = false;
  std::vector<sagalab::Violation> violations;
  std::vector<ck::Uncorrelated> uncorrelated;
  std::set<Point> points;  // the exchanges its saga made
  std::string value;       // its unique value ({n}, the idempotency key)
  std::optional<int> client_status;
  std::size_t completed = 0;  // sagas that completed
  double seconds = 0;
  std::string scenario;  // the replayable file written for a violation
  std::string timeline;  // HTML: what the saga did, for the report of a violation
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string saga_name() const = 0;
  virtual const std::vector<StepRow>& steps() const = 0;
  virtual const std::vector<ActionSpec>& actions() const = 0;
  // Runs one experiment (e.number, e.value and e.faults set): installs its faults, runs the
  // workload, waits until the stack is quiet, checks; fills the rest of e. Throws CliError(2)
  // when the workload started no saga.
  virtual void run(Experiment& e) = 0;
  // Whether this experiment can run beside others (--jobs): its rules can tell its saga's
  // exchanges from the others' at request time.
  virtual bool parallel(const Experiment&) const { return false; }
  // Runs experiments at once (each parallel()); by default one after the other.
  virtual void run_batch(std::vector<Experiment>& batch) {
    for (auto& e : batch) run(e);
  }
  // A scenario file that `sagactl run` replays; returns its absolute path.
  virtual std::string write_scenario(const Experiment& e, const std::string& dir, std::uint64_t seed,
                                     const std::string& title) const = 0;
  // Called once at the end: what to keep (a recording, a stack directory) and where.
  virtual void finish(bool failed) = 0;
};

struct OwnStackOptions {
  std::string product = "Mouse Inalámbrico";
  int qty = 1;
  int latency_ms = 900;  // past the stack's step timeout
  int step_timeout_ms = 500;
  int settle_ms = 0;
  std::vector<std::string> actions;  // empty: all
};
// sagalab's own purchase saga, on a local stack that the target starts on free ports.
std::unique_ptr<Target> own_stack_target(const GlobalOptions& g, const OwnStackOptions& o);

// Experiment `number`'s scenario file in dir (created), absolute; and the file's opening keys.
std::string scenario_path(const std::string& dir, std::size_t number);
void begin_scenario(YAML::Emitter& out, const std::string& title, const std::string& description, std::uint64_t seed);

// The names of an action list, for an error message.
std::string names_of(const std::vector<ActionSpec>& actions);
// Keeps the actions that `only` names (all when empty); throws CliError(2) on an unknown name.
std::vector<ActionSpec> select_actions(std::vector<ActionSpec> all, const std::vector<std::string>& only);

}  // namespace sagactl::explore
