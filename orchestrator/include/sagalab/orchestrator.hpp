// The saga runner: drives each saga's engine, one strand per saga. An event
// is applied to the engine, appended to the saga log, and once durable the
// engine's commands are carried out: calls to the services through the
// transport, backoff as timers. A saga waits on a completion or a timer, never
// on a thread. Everything it touches outside its memory comes in through
// OrchestratorEnv, so that the program and the simulator run this very class.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sagalab/orchestrator_env.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/saga_log.hpp"

namespace sagalab {

struct OrchestratorOptions {
  std::uint64_t seed = 0;
  std::size_t max_in_flight = 10000;  // running sagas; past it POST /compra answers 503
  // With a shared log (several orchestrators): how often this one renews its
  // leases and takes over the sagas whose leases expired.
  std::int64_t claim_every_ms = 1000;
};

// What an orchestrator runs on (see orchestrator_env.hpp); each outlives it.
struct OrchestratorEnv {
  Runtime& runtime;
  Transport& transport;
  SagaLog& log;
  CrashPoints* crashes = nullptr;          // none: no crash points
  OrchestratorObserver* observer = nullptr;  // none: nothing reported
};

class Orchestrator {
 public:
  using Snapshot = std::function<void(std::optional<Json>)>;
  using Started = std::function<void(const std::string& id, bool existed, std::exception_ptr error)>;

  Orchestrator(SagaDefinition def, OrchestratorEnv env, OrchestratorOptions opts);
  ~Orchestrator();
  Orchestrator(const Orchestrator&) = delete;
  Orchestrator& operator=(const Orchestrator&) = delete;

  // Reloads the unfinished sagas this orchestrator may drive (with a log of
  // its own: all of them) and drives them on. Returns how many. With a shared
  // log it then renews its leases and takes over expired ones every
  // claim_every_ms, until stop().
  std::size_t recover();
  // Starts a saga (or finds the one that already has this idempotency key);
  // done() runs once the saga's start is durable.
  void start(SagaContext ctx, const std::string& idem_key, Started done);
  // Answers with the saga's snapshot once it is terminal or atascada, or when
  // the timeout passes (its snapshot then); nullopt when it does not exist.
  void wait(const std::string& id, std::int64_t timeout_ms, Snapshot done);
  void snapshot(const std::string& id, Snapshot done);
  // The current snapshots of the running sagas (blocks: never from a strand).
  std::map<std::string, Json> live_snapshots();
  std::size_t active() const;
  std::uint64_t random();
  // Nothing more happens: no event is applied, no call made, no answer given.
  void stop();
  bool stopped() const;
  const SagaDefinition& definition() const { return engine_.definition(); }

 private:
  struct Run;
  // Loads one saga from the log and drives it on; false when it is already running here.
  bool adopt(const std::string& id);
  std::size_t adopt_all(const std::vector<std::string>& ids);
  void keep_leases();
  // Another writer owns the saga now (or its idempotency key): forget it without acting.
  void drop(const std::shared_ptr<Run>& run, SagaLogConflict::Kind kind, const std::string& why);
  // On the run's strand, for a saga dropped with waiters (another orchestrator
  // drives it now): reads its snapshot from the log every claim period, and
  // answers them once it has settled (or their last timeout has passed).
  void follow(const std::shared_ptr<Run>& run);
  void create(SagaContext ctx, const std::string& idem_key, Started done);
  void repeat_of(const std::shared_ptr<Run>& run, Started done);
  void deliver(const std::shared_ptr<Run>& run, Event&& e, std::function<void()> after_log = {});
  void logged(const std::shared_ptr<Run>& run, const CrashSpot& spot, Estado before, bool start, std::int64_t now_ms,
              std::vector<Command> commands);
  void execute(const std::shared_ptr<Run>& run, const Command& c);
  void appended(const std::shared_ptr<Run>& run, std::exception_ptr error);
  void answered(const std::shared_ptr<Run>& run);
  // On the strand: done(snapshot) now, or once the event being written is durable.
  void read(Run& run, Snapshot done);
  // Where the crash points of event e's write are, read from the run's state before e.
  static CrashSpot spot_of(const Run& run, const Event& e);
  // True when the orchestrator went down at this crash point (it has stopped).
  bool crash_point(CrashSpot spot, const char* when);
  std::shared_ptr<Run> find(const std::string& id);
  void log_line(const Json& line, bool error = false);

  SagaEngine engine_;
  OrchestratorEnv env_;
  OrchestratorObserver none_;
  OrchestratorObserver& observer_;
  OrchestratorOptions opts_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Run>> runs_;  // unfinished sagas
  std::unordered_map<std::string, std::shared_ptr<Run>> followed_;  // dropped, with waiters: follow()
  std::unordered_map<std::string, std::string> idem_;           // idempotency key -> saga id (unfinished)
  SplitMix64 rng_;
  bool stopped_ = false;
  std::unique_ptr<Ticker> keeper_;  // keep_leases(), with a shared log
};

}  // namespace sagalab
