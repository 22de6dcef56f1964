// The HTTP driver of the saga engine, asynchronous end to end. Each saga runs
// on its own strand of the server's io_context: an event is applied to the
// engine, appended to the saga log (a group commit completes a handler, it
// wakes no thread), and once durable the engine's commands are carried out:
// calls on keep-alive connection pools to the services, backoff as timers.
// A saga waits on a completion handler or a timer, never on a thread.
#pragma once

#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio.hpp>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sagalab/async_client.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/saga_log.hpp"

namespace sagalab {

class HttpServer;

struct OrchestratorOptions {
  std::map<std::string, std::string> service_urls;  // "ms-compras" -> "http://127.0.0.1:5002"
  std::size_t pool_size = 64;                       // keep-alive connections per service, at most
  std::uint64_t seed = 0;
  std::size_t max_in_flight = 10000;  // running sagas; past it POST /compra answers 503
  // With a shared log (several orchestrators): how often this one renews its
  // leases and takes over the sagas whose leases expired.
  std::int64_t claim_every_ms = 1000;
};

class Orchestrator {
 public:
  using Snapshot = std::function<void(std::optional<Json>)>;
  using Started = std::function<void(const std::string& id, bool existed, std::exception_ptr error)>;

  Orchestrator(SagaDefinition def, SagaLog& log, FaultGate& faults, OrchestratorOptions opts,
               boost::asio::io_context& io);
  ~Orchestrator();

  // Reloads the unfinished sagas this orchestrator may drive (with a log of
  // its own: all of them) and drives them on. Returns how many. With a shared
  // log it then renews its leases and takes over expired ones every
  // claim_every_ms, on a thread of its own, until stop().
  std::size_t recover();
  // Starts a saga (or finds the one that already has this idempotency key);
  // done() runs once the saga's start is durable.
  void start(SagaContext ctx, const std::string& idem_key, Started done);
  // Answers with the saga's snapshot once it is terminal or atascada, or when
  // the timeout passes (its snapshot then); nullopt when it does not exist.
  void wait(const std::string& id, std::int64_t timeout_ms, Snapshot done);
  void snapshot(const std::string& id, Snapshot done);
  // The current snapshots of the running sagas (blocks: not on the event loop).
  std::map<std::string, Json> live_snapshots();
  std::size_t active() const;
  std::uint64_t random();
  void stop();
  const SagaDefinition& definition() const { return engine_.definition(); }

 private:
  struct Run;
  // Loads one saga from the log and drives it on; false when it is already running here.
  bool adopt(const std::string& id);
  std::size_t adopt_all(const std::vector<std::string>& ids);
  void keep_leases();
  // Another writer owns the saga now (or its idempotency key): forget it without acting.
  void drop(const std::shared_ptr<Run>& run, SagaLogConflict::Kind kind, const std::string& why);
  // On the run's strand: calls every waiter of POST /compra with the saga's snapshot, once.
  void answer_waiters(Run& run);
  void create(SagaContext ctx, const std::string& idem_key, Started done);
  void deliver(const std::shared_ptr<Run>& run, const Event& e, std::function<void()> after_log = {});
  void logged(const std::shared_ptr<Run>& run, const Event& e, SagaState next, std::vector<Command> commands);
  void execute(const std::shared_ptr<Run>& run, const Command& c);
  void crash_point(const Run& run, const Event& e, const char* when);
  std::shared_ptr<Run> find(const std::string& id);

  SagaEngine engine_;
  SagaLog& log_;
  FaultGate& faults_;
  OrchestratorOptions opts_;
  boost::asio::io_context& io_;
  std::map<std::string, std::unique_ptr<AsyncClientPool>> pools_;

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Run>> runs_;  // unfinished sagas
  std::map<std::string, std::string> idem_;           // idempotency key -> saga id (unfinished)
  SplitMix64 rng_;
  bool stopped_ = false;
  std::condition_variable stop_cv_;
  std::thread keeper_;  // keep_leases(), with a shared log
};

// Routes of the orchestrator: /compra, /sagas, /health, /admin/*.
struct OrchestratorRouteOptions {
  std::int64_t response_timeout_ms = 30000;
};
void register_routes(HttpServer& srv, Orchestrator& orch, SagaLog& log, FaultGate& faults,
                     const OrchestratorRouteOptions& opts);

}  // namespace sagalab
