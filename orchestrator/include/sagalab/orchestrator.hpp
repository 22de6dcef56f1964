// The HTTP driver of the saga engine. Each saga runs on its own strand of a
// Boost.Asio executor: events are logged durably, applied to the engine, and
// its commands carried out (calls on a pool of blocking HTTP workers, backoff
// as timers). Sagas share nothing but the log and the connection pools.
#pragma once

#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sagalab/http_client.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/saga_log.hpp"

namespace sagalab {

struct OrchestratorOptions {
  std::map<std::string, std::string> service_urls;  // "ms-compras" -> "http://127.0.0.1:5002"
  std::size_t pool_size = 2;                        // keep-alive connections per service
  // Threads that run saga strands; a log append blocks one until its group
  // commit, so more threads mean larger batches per fsync.
  int io_threads = 16;
  int call_threads = 32;
  std::uint64_t seed = 0;
  std::size_t max_in_flight = 10000;  // running sagas; past it POST /compra answers 503
};

class Orchestrator {
 public:
  Orchestrator(SagaDefinition def, SagaLog& log, FaultGate& faults, OrchestratorOptions opts);
  ~Orchestrator();

  // Reloads every unfinished saga from the log and drives it on. Returns how many.
  std::size_t recover();
  // Starts a saga (or finds the one that already has this idempotency key).
  std::string start(SagaContext ctx, const std::string& idem_key, bool& existed);
  // Waits until the saga is terminal or atascada, or the timeout passes; returns its snapshot.
  std::optional<Json> wait(const std::string& id, std::int64_t timeout_ms);
  std::optional<Json> snapshot(const std::string& id);
  std::size_t active() const;
  std::uint64_t random();
  void stop();
  const SagaDefinition& definition() const { return engine_.definition(); }

 private:
  struct Run;
  void deliver(const std::shared_ptr<Run>& run, const Event& e);
  void execute(const std::shared_ptr<Run>& run, const Command& c);
  void crash_point(const Run& run, const Event& e, const char* when);

  SagaEngine engine_;
  SagaLog& log_;
  FaultGate& faults_;
  OrchestratorOptions opts_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::thread_pool calls_;
  std::vector<std::thread> io_threads_;
  std::map<std::string, std::unique_ptr<ClientPool>> pools_;

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Run>> runs_;  // unfinished sagas
  std::map<std::string, std::string> idem_;           // idempotency key -> saga id (unfinished)
  SplitMix64 rng_;
  bool stopped_ = false;
};

// Routes of the orchestrator: /compra, /sagas, /health, /admin/*.
struct OrchestratorRouteOptions {
  std::int64_t response_timeout_ms = 30000;
};
void register_routes(httplib::Server& srv, Orchestrator& orch, SagaLog& log, FaultGate& faults,
                     const OrchestratorRouteOptions& opts);
std::vector<std::string> orchestrator_fault_endpoints(const SagaDefinition& def);

}  // namespace sagalab
