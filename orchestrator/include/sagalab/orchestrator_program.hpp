// The orchestrator program's parts around the Orchestrator class: its
// environment over Asio and HTTP, and its routes.
#pragma once

#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>

#include "sagalab/orchestrator.hpp"

namespace sagalab {

class HttpServer;
class FaultGate;

// The orchestrator program's environment: Asio strands and timers on the
// server's event loop, the wall clock, the services over HTTP (keep-alive
// pools), crash points from the program's fault rules, Prometheus metrics.
class ProgramEnv {
 public:
  ProgramEnv(boost::asio::io_context& io, const std::map<std::string, std::string>& service_urls,
             std::size_t pool_size, FaultGate& faults);
  ~ProgramEnv();
  OrchestratorEnv env(SagaLog& log);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Routes of the orchestrator: /compra, /sagas, /health, /admin/*.
struct OrchestratorRouteOptions {
  std::int64_t response_timeout_ms = 30000;
};
void register_routes(HttpServer& srv, Orchestrator& orch, SagaLog& log, FaultGate& faults,
                     const OrchestratorRouteOptions& opts);

}  // namespace sagalab
