// sagactl simulate: the real engine and service logic through many seeded
// fault schedules, in one process on a virtual clock. A campaign runs seeds on
// every core (a range, a count or a time budget); a failing seed is reported
// with its violation, history and fault mix, shrunk to the smallest set of
// faults that still fails, and written as a scenario that `sagactl run`
// replays against the real stack.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "commands.hpp"
#include "sagalab/sim.hpp"
#include "sagalab/scenario.hpp"

namespace sagactl {

namespace {

struct SimulateOptions {
  std::uint64_t seed = 1;
  int sagas = 1000;
  int runs = 1;
  std::string seeds;     // "A..B"
  std::string duration;  // "60s", "5m", "90"
  int jobs = 0;          // 0: every core
  std::string mix = "swarm";
  std::string saga_log = "mix";
  int orchestrators = 0;
  double fault_rate = 0.05;
  double crash_rate = 0.002;
  double drop_rate = 0.01;
  double dup_rate = 0.01;
  bool rates_given = false;
  std::string scenario_out;
  bool no_shrink = false;
};


// "A..B" -> [A, B]; throws CLI::ValidationError.
std::pair<std::uint64_t, std::uint64_t> parse_range(const std::string& text) {
  auto dots = text.find("..");
  auto bad = [&] { return CLI::ValidationError("--seeds", "expected a range such as 1..1000, not '" + text + "'"); };
  if (dots == std::string::npos || dots == 0 || dots + 2 >= text.size()) throw bad();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((i < dots || i >= dots + 2) && !std::isdigit(static_cast<unsigned char>(text[i]))) throw bad();
  }
  auto a = std::stoull(text.substr(0, dots)), b = std::stoull(text.substr(dots + 2));
  if (b < a) throw CLI::ValidationError("--seeds", "the range " + text + " is empty (its end is below its start)");
  return {a, b};
}

sagalab::SimConfig config_for(const SimulateOptions& o, std::uint64_t seed) {
  sagalab::SimConfig cfg;
  cfg.seed = seed;
  cfg.sagas = o.sagas;
  cfg.swarm = o.mix == "swarm" && !o.rates_given;
  cfg.fault_rate = o.fault_rate;
  cfg.crash_rate = o.crash_rate;
  cfg.drop_rate = o.drop_rate;
  cfg.dup_rate = o.dup_rate;
  cfg.saga_log = o.saga_log;
  cfg.orchestrators = o.orchestrators;
  return cfg;
}

std::string reproduce_command(const SimulateOptions& o, const sagalab::SimConfig& cfg) {
  std::string cmd = "sagactl simulate --seed " + std::to_string(cfg.seed) + " --sagas " + std::to_string(o.sagas);
  if (!cfg.swarm) {
    char buf[160];
    std::snprintf(buf, sizeof buf, " --fault-rate %g --crash-rate %g --drop-rate %g --dup-rate %g", o.fault_rate,
                  o.crash_rate, o.drop_rate, o.dup_rate);
    cmd += buf;
  }
  if (o.saga_log != "mix") cmd += " --saga-log " + o.saga_log;
  if (o.orchestrators > 0) cmd += " --orchestrators " + std::to_string(o.orchestrators);
  return cmd;
}

// How long a shrunk scenario holds a hung request: past the run's orchestrator's
// 500 ms call timeout, as the simulator's hang outlasts its 80 ms one.
constexpr std::int64_t kReplayHangMs = 1500;

Scenario shrunk_scenario(const SimulateOptions& o, const sagalab::SimConfig& cfg, const sagalab::SimResult& r,
                         const sagalab::ShrinkOutcome& out) {
  const auto& script = *out.script;
  Scenario s;
  s.name = "sim-seed-" + std::to_string(r.seed);
  s.description = "Shrunk by `" + reproduce_command(o, cfg) + "`: " +
                  (script.empty() ? std::string("no fault is needed; the purchase alone still breaks an invariant.")
                                  : "the smallest set of faults (" + std::to_string(script.size()) +
                                        ") that still breaks an invariant, replayed one purchase at a time.");
  s.seed = r.seed;
  if (!r.stock.empty()) s.stock = r.stock;
  for (int idx : out.sagas) {
    std::int64_t held_ms = 0;  // how long a request of this saga may still be held after it settles
    for (const auto& f : script) {
      if (f.saga != idx) continue;
      if (f.rule.action == sagalab::FaultAction::Hang) held_ms = std::max(held_ms, kReplayHangMs);
      if (f.rule.action == sagalab::FaultAction::Latency)
        held_ms = std::max<std::int64_t>(held_ms, f.rule.latency_ms + f.rule.jitter_ms);
      // The fault as it fired, once: what the simulator drew, not the rule's bookkeeping.
      step::Inject inj{f.service, {}};
      inj.rule.action = f.rule.action;
      inj.rule.endpoint = f.rule.endpoint;
      inj.rule.attempts = f.rule.attempts;
      if (f.rule.action == sagalab::FaultAction::Error || f.rule.action == sagalab::FaultAction::CommitThenError)
        inj.rule.status = f.rule.status;
      if (f.rule.action == sagalab::FaultAction::Latency) inj.rule.latency_ms = f.rule.latency_ms;
      inj.rule.duration_ms = f.rule.action == sagalab::FaultAction::Hang ? kReplayHangMs : 0;
      inj.rule.times = 1;
      s.steps.push_back({0, std::move(inj)});
    }
    const auto plan = sagalab::plan_of(cfg, idx);
    step::Buy buy;
    buy.user = plan.user;
    buy.product = plan.product;
    buy.qty = plan.cantidad;
    buy.expect = "any";
    s.steps.push_back({0, std::move(buy)});
    s.steps.push_back({0, step::WaitUntilQuiet{}});
    if (held_ms > 0) {
      // A held copy (the hung first attempt) reaches its service after the saga
      // has settled, as it did in the simulation: the checks must come after it.
      s.steps.push_back({0, step::Sleep{held_ms + 500}});
    }
    s.steps.push_back({0, step::ClearFaults{}});
  }
  return s;
}

// Runs seeds on `jobs` threads. Results come back in seed order whatever the
// threads did, so the output is the same with any --jobs. A failure stops the
// campaign at the lowest failing seed.
class Campaign {
 public:
  Campaign(const SimulateOptions& o, std::uint64_t first, std::uint64_t last, double seconds, int jobs)
      : o_(o), first_(first), next_(first), last_(last), seconds_(seconds), jobs_(jobs) {}

  void run(const std::function<void(const sagalab::SimResult&)>& on_result,
           const std::function<void(std::uint64_t, long long, double, std::size_t)>& progress) {
    t0_ = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < jobs_; ++i) threads.emplace_back([this] { work(); });
    std::unique_lock lock(mutex_);
    std::uint64_t expect = first_seed();
    while (true) {
      cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return done_.count(expect) || finished(); });
      while (done_.count(expect)) {
        auto r = std::move(done_.at(expect));
        done_.erase(expect);
        ++expect;
        lock.unlock();
        ++seeds_done_;
        sagas_done_ += r.sagas;
        if (!r.ok()) ++failures_;
        on_result(r);
        lock.lock();
        if (!r.ok()) stop_after(expect - 1);
      }
      progress(seeds_done_, sagas_done_, elapsed(), failures_);
      if (finished() && !done_.count(expect)) break;
    }
    lock.unlock();
    for (auto& t : threads) t.join();
  }
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  std::uint64_t first_seed() const { return first_; }

 private:
  // exhausted_: the last seed was handed out (next_ cannot step past the type's last value).
  bool finished() const { return running_ == 0 && (stopped_ || exhausted_ || next_ > last_); }
  void stop_after(std::uint64_t seed) {
    stopped_ = true;
    last_ = std::min(last_, seed);
  }

  void work() {
    std::unique_lock lock(mutex_);
    ++running_;
    while (!stopped_ && !exhausted_ && next_ <= last_) {
      if (seconds_ > 0 && elapsed() >= seconds_) {
        exhausted_ = true;
        last_ = next_ > first_ ? next_ - 1 : first_;
        if (next_ == first_) stopped_ = true;  // not one seed ran
        break;
      }
      auto seed = next_;
      if (next_ == last_)
        exhausted_ = true;
      else
        ++next_;
      lock.unlock();
      auto r = sagalab::run_simulation(config_for(o_, seed));
      lock.lock();
      if (seed <= last_) done_.emplace(seed, std::move(r));
      cv_.notify_all();
    }
    --running_;
    cv_.notify_all();
  }

  const SimulateOptions& o_;
  std::uint64_t first_;
  std::uint64_t next_, last_;
  double seconds_;
  int jobs_;
  std::chrono::steady_clock::time_point t0_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::uint64_t, sagalab::SimResult> done_;
  int running_ = 0;
  bool stopped_ = false;
  bool exhausted_ = false;
  std::uint64_t seeds_done_ = 0;
  long long sagas_done_ = 0;
  std::size_t failures_ = 0;
};

int report_failure(const GlobalOptions& g, const SimulateOptions& o, const sagalab::SimResult& r, Json runs_json) {
  auto cfg = config_for(o, r.seed);
  // The violation first, complete, whatever shrinking then does.
  Json failure{{"seed", r.seed}, {"mix", sagalab::to_json(r.mix)}, {"violations", Json::array()},
               {"reproduce", reproduce_command(o, cfg)}};
  for (const auto& v : r.violations) failure["violations"].push_back(sagalab::to_json(v));
  Json hist = sagalab::to_json(r, true)["histories"];
  failure["histories"] = hist;
  if (!g.json) {
    std::cout << paint("✘ seed " + std::to_string(r.seed) + " breaks an invariant", "31;1") << "\n";
    std::cout << "  fault mix: " << r.mix.describe() << "\n";
    for (std::size_t k = 0; k < r.violations.size() && k < 5; ++k) {
      const auto& v = r.violations[k];
      std::cout << "  " << sagalab::describe(v);
    }
    if (r.violations.size() > 5) std::cout << "  ... and " << r.violations.size() - 5 << " more\n";
    for (const auto& [id, h] : hist.items()) {
      std::cout << "  history of " << id << ":\n";
      for (const auto& e : h) std::cout << "    " << e.dump() << "\n";
      break;
    }
    std::cout << "  reproduce: " << reproduce_command(o, cfg) << "\n" << std::flush;
  }
  if (o.no_shrink) {
    failure["minimal_faults"] = nullptr;
    failure["shrink"] = "not tried (--no-shrink)";
  } else {
    auto out = sagalab::shrink(cfg, r);
    failure["shrink_runs"] = out.runs;
    if (out.script) {
      const auto& script = *out.script;
      Json js = Json::array();
      for (const auto& f : script)
        js.push_back({{"saga", f.saga}, {"service", f.service}, {"rule", sagalab::scenario_rule_json(f.rule)}});
      failure["minimal_faults"] = js;
      failure["minimal_sagas"] = out.sagas;
      std::string out_file =
          o.scenario_out.empty() ? "sim-failure-seed-" + std::to_string(r.seed) + ".yaml" : o.scenario_out;
      std::ofstream(out_file) << emit_scenario(shrunk_scenario(o, cfg, r, out));
      failure["scenario"] = out_file;
      if (!g.json) {
        std::cout << "  shrunk in " << out.runs << " simulations to " << script.size() << " fault(s)"
                  << (script.empty() ? ": saga #" + std::to_string(out.sagas.front()) + " alone fails\n" : ":\n");
        for (const auto& f : script)
          std::cout << "    saga #" << f.saga << " " << f.service << " " << sagalab::scenario_rule_json(f.rule).dump()
                    << "\n";
        std::cout << "  replay against the real stack: sagactl run " << out_file << "\n";
      }
    } else {
      failure["minimal_faults"] = nullptr;
      failure["shrink"] = out.why_not;
      if (!g.json)
        std::cout << "  not shrunk: " << out.why_not << " (" << out.runs << " simulations tried)\n";
    }
  }
  if (g.json) print_json({{"ok", false}, {"runs", std::move(runs_json)}, {"failure", failure}});
  return kExitFailed;
}

int run_simulate(const GlobalOptions& g, const SimulateOptions& o) {
  const bool tty = ::isatty(STDERR_FILENO);
  const auto runs = static_cast<std::uint64_t>(o.runs);
  if (o.seeds.empty() && o.seed > std::numeric_limits<std::uint64_t>::max() - (runs - 1))
    throw CliError(kExitUnreachable, "--seed " + std::to_string(o.seed) + " with --runs " + std::to_string(runs) +
                                         " goes past the last seed (18446744073709551615): lower one of them");
  std::uint64_t first = o.seed, last = o.seed + (runs - 1);
  double seconds = o.duration.empty() ? 0 : parse_duration(o.duration, "--duration");
  if (!o.seeds.empty()) std::tie(first, last) = parse_range(o.seeds);
  if (seconds > 0 && o.seeds.empty()) last = UINT64_MAX - 1;
  int jobs = o.jobs > 0 ? o.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (last - first < static_cast<std::uint64_t>(jobs) - 1) jobs = static_cast<int>(last - first + 1);  // no overflow at the edges

  std::map<std::string, int> by_state, by_fault;
  long long total_sagas = 0;
  std::uint64_t seeds_run = 0;
  Json runs_json = Json::array();
  std::optional<sagalab::SimResult> failed;
  Campaign campaign(o, first, last, seconds, jobs);
  campaign.run(
      [&](const sagalab::SimResult& r) {
        ++seeds_run;
        total_sagas += r.sagas;
        for (const auto& [k, v] : r.by_state) by_state[k] += v;
        for (const auto& [k, v] : r.faults_by_kind) by_fault[k] += v;
        if (g.json) runs_json.push_back(sagalab::to_json(r, false));
        if (!r.ok() && !failed) failed = r;
      },
      [&](std::uint64_t seeds, long long sagas, double secs, std::size_t failures) {
        if (!tty) return;
        // Time left: of the --duration, or of the seed range at the pace so far.
        double total = seconds > 0 ? seconds
                                   : secs * static_cast<double>(last - first + 1) / static_cast<double>(std::max<std::uint64_t>(seeds, 1));
        std::cerr << "\r" << seeds << " seed(s)  " << sagas << " sagas  "
                  << static_cast<long long>(static_cast<double>(sagas) / std::max(secs, 1e-9)) << " sagas/s  "
                  << failures << " failing  " << static_cast<long long>(secs) << " s, about "
                  << static_cast<long long>(std::max(0.0, total - secs)) << " s left   " << std::flush;
      });
  double secs = campaign.elapsed();
  if (tty) std::cerr << "\n";
  std::cerr << "simulated " << total_sagas << " sagas (" << seeds_run << " seed(s), " << jobs << " job(s)) in " << secs
            << " s (" << static_cast<long long>(static_cast<double>(total_sagas) / std::max(secs, 1e-9))
            << " sagas/s)\n";
  if (failed) return report_failure(g, o, *failed, std::move(runs_json));
  std::uint64_t last_run = first + seeds_run - (seeds_run > 0 ? 1 : 0);
  if (g.json) {
    print_json({{"ok", true},
                {"seeds", {{"from", first}, {"to", last_run}, {"total", seeds_run}}},
                {"sagas", total_sagas},
                {"by_state", by_state},
                {"faults", by_fault},
                {"runs", runs_json}});
    return kExitOk;
  }
  std::cout << paint("✔ " + std::to_string(seeds_run) + " seed(s) (" + std::to_string(first) + ".." +
                         std::to_string(last_run) + "), " + std::to_string(total_sagas) +
                         " sagas, every invariant holds",
                     "32;1")
            << "\n  sagas:";
  for (const auto& [k, v] : by_state) std::cout << "  " << k << " " << v;
  std::cout << "\n  faults fired:";
  for (const auto& [k, v] : by_fault) std::cout << "  " << k << " " << v;
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

void setup_simulate(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<SimulateOptions>();
  auto* sub = app.add_subcommand("simulate", "Run the real saga logic through seeded fault schedules, in one process");
  sub->footer(
      "Each seed simulates --sagas purchases on a virtual clock with faults, crashes of any node,\n"
      "dropped and duplicated messages; after the faults heal every saga must end, and every\n"
      "invariant must hold. By default each seed draws its own fault mix (swarm testing): which\n"
      "fault kinds are on and how often, the network delay, the crash rate, and how hard the\n"
      "sagas contend for stock. Any --*-rate option pins one fixed mix instead. The same seeds\n"
      "give the same output, with any --jobs. A failure is shrunk to the fewest faults that still\n"
      "fail and written as a scenario file for 'sagactl run'.\n\n"
      "Examples:\n"
      "  sagactl simulate --seed 7 --sagas 100000\n"
      "  sagactl simulate --duration 60s                 # seed after seed, on every core, for a minute\n"
      "  sagactl simulate --seeds 1..500 --jobs 2 --json  # one shard of a campaign\n"
      "  sagactl simulate --runs 100 --fault-rate 0.2 --crash-rate 0.01");
  sub->add_option("--seed", o->seed, "first seed; run k uses seed+k (0 to 18446744073709551615)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--sagas", o->sagas, "sagas per seed")->check(CLI::Range(1, 10000000))->capture_default_str();
  auto* runs = sub->add_option("--runs", o->runs, "number of seeds, from --seed on")
                   ->check(CLI::Range(1, 100000000))
                   ->capture_default_str();
  auto* seeds = sub->add_option("--seeds", o->seeds, "a range of seeds A..B (inclusive), e.g. for one shard of a campaign")
                    ->type_name("A..B");
  auto* duration = sub->add_option("--duration", o->duration, "run seed after seed until this much time has passed (60s, 5m, 1h)")
                       ->type_name("TIME");
  // Each says how many seeds run: one at a time.
  runs->excludes(seeds)->excludes(duration);
  seeds->excludes(duration);
  sub->add_option("--jobs", o->jobs, "seeds run at once (default: one per core)")->check(CLI::Range(1, 1024));
  sub->add_option("--mix", o->mix, "swarm: each seed its own fault mix; fixed: the --*-rate options")
      ->check(CLI::IsMember({"swarm", "fixed"}))
      ->capture_default_str();
  sub->add_option("--saga-log", o->saga_log,
                  "the orchestrator's log: sqlite (the real SagaLog on an in-memory database: its SQL, event "
                  "encoding and recovery query run), memory (faster), or mix (sqlite in every fourth seed)")
      ->check(CLI::IsMember({"mix", "sqlite", "memory"}))
      ->capture_default_str();
  sub->add_option("--orchestrators", o->orchestrators,
                  "orchestrator programs over one shared saga log with leases and fencing (take-overs, frozen "
                  "owners); 0: the mix decides (swarm: two in about a third of the seeds of runs up to 200,000 "
                  "sagas; fixed: one)")
      ->check(CLI::Range(0, 8))
      ->capture_default_str();
  auto rate = [&](const char* name, double& v, const char* what) {
    sub->add_option_function<double>(
           name,
           [o, &v](const double& x) {
             v = x;
             o->rates_given = true;
           },
           what)
        ->check(CLI::Range(0.0, 1.0))
        ->type_name("FLOAT");
  };
  rate("--fault-rate", o->fault_rate, "chance a service request meets a fault (pins a fixed mix; default 0.05)");
  rate("--crash-rate", o->crash_rate, "chance a request or a log write crashes its node (fixed mix; default 0.002)");
  rate("--drop-rate", o->drop_rate, "chance a message is lost (fixed mix; default 0.01)");
  rate("--dup-rate", o->dup_rate, "chance a message is duplicated (fixed mix; default 0.01)");
  sub->add_option("--scenario-out", o->scenario_out, "where to write the shrunk failing scenario");
  sub->add_flag("--no-shrink", o->no_shrink, "report a failure without shrinking it");
  sub->callback([&g, o] {
    throw CliError(run_simulate(g, *o), "");
  });
}

}  // namespace sagactl
