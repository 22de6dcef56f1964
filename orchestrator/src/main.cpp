// orquestador: runs purchases as sagas over the four services, port 5000.
#include <filesystem>
#include <unistd.h>
#include <iostream>

#include "sagalab/http_server.hpp"
#include "sagalab/metrics.hpp"
#include "sagalab/orchestrator_program.hpp"
#include "sagalab/pg_saga_log.hpp"
#include "sagalab/pg_store.hpp"
#include "sagalab/purchase.hpp"

namespace {
std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "orquestador";
  return buf;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace sagalab;
  block_stop_signals();
  CLI::App app{"sagalab orquestador: runs each purchase as an orchestrated saga", "orquestador"};
  ServerConfig cfg;
  cfg.program = "orquestador";
  cfg.port = 5000;
  cfg.workers = 4;
  add_server_options(app, cfg);
  OrchestratorOptions opts;
  std::string catalogo = "http://127.0.0.1:5001", compras = "http://127.0.0.1:5002",
              pagos = "http://127.0.0.1:5003", inventario = "http://127.0.0.1:5004";
  app.add_option("--catalogo-url", catalogo, "ms-catalogo base URL")->envname("MS_CATALOGO_URL")->capture_default_str();
  app.add_option("--compras-url", compras, "ms-compras base URL")->envname("MS_COMPRAS_URL")->capture_default_str();
  app.add_option("--pagos-url", pagos, "ms-pagos base URL")->envname("MS_PAGOS_URL")->capture_default_str();
  app.add_option("--inventario-url", inventario, "ms-inventario base URL")
      ->envname("MS_INVENTARIO_URL")
      ->capture_default_str();
  std::size_t pool_size = 64;
  app.add_option("--pool-size", pool_size, "keep-alive connections per service")
      ->envname("POOL_SIZE")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--max-in-flight", opts.max_in_flight, "running sagas before POST /compra answers 503")
      ->envname("SAGA_MAX_IN_FLIGHT")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  std::string store_url;
  add_store_option(app, store_url,
                   "where the saga log lives: sqlite (a file in --data-dir, one orchestrator) or a "
                   "postgresql://user@host:port/db URL, which several orchestrators can share",
                   store_url_problem);
  std::string replica_id;
  app.add_option("--replica-id", replica_id,
                 "this orchestrator's name among those sharing a PostgreSQL log (default: host name and port, or pid "
                 "with --port 0); "
                 "unique per replica, and kept across its restarts to take its sagas back at once")
      ->envname("SAGA_REPLICA_ID");
  std::int64_t lease_ms = 5000;
  app.add_option("--lease-ms", lease_ms,
                 "with a shared log: how long a saga stays leased to an orchestrator that stopped renewing; "
                 "another takes it over within 1.25 times this")
      ->envname("SAGA_LEASE_MS")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--seed", opts.seed, "seed of product picks and retry jitter")->envname("SAGA_SEED");
  SagaDefinition def = SagaDefinition::default_purchase();
  RetryPolicy r = def.steps[0].retry;
  int stuck_after = def.stuck_after;
  app.add_option("--max-attempts", r.max_attempts, "attempts of a step before it is abandoned")
      ->envname("SAGA_MAX_ATTEMPTS")->check(CLI::Range(1, 100))->capture_default_str();
  app.add_option("--step-timeout-ms", r.timeout_ms, "timeout of one call to a service")
      ->envname("SAGA_STEP_TIMEOUT_MS")->check(CLI::Range(1, 600000))->capture_default_str();
  app.add_option("--backoff-base-ms", r.backoff_base_ms, "first retry delay (doubles each attempt)")
      ->envname("SAGA_BACKOFF_BASE_MS")->check(CLI::Range(0, 600000))->capture_default_str();
  app.add_option("--backoff-max-ms", r.backoff_max_ms, "largest retry delay")
      ->envname("SAGA_BACKOFF_MAX_MS")->check(CLI::Range(0, 600000))->capture_default_str();
  app.add_option("--stuck-after", stuck_after, "failed compensation attempts before a saga shows as atascada")
      ->envname("SAGA_STUCK_AFTER")->check(CLI::Range(1, 1000))->capture_default_str();
  OrchestratorRouteOptions ropts;
  app.add_option("--response-timeout-ms", ropts.response_timeout_ms,
                 "how long POST /compra waits for the saga before answering 202")
      ->envname("SAGA_RESPONSE_TIMEOUT_MS")->check(CLI::Range(1, 3600000))->capture_default_str();
  if (int code = parse_server_command_line(app, argc, argv, cfg); code >= 0) return code;
  for (auto& s : def.steps) s.retry = r;
  def.compensation.timeout_ms = r.timeout_ms;
  def.compensation.backoff_base_ms = r.backoff_base_ms;
  def.compensation.backoff_max_ms = std::max(r.backoff_max_ms, r.backoff_base_ms);
  def.stuck_after = stuck_after;
  const std::map<std::string, std::string> service_urls{
      {"ms-catalogo", catalogo}, {"ms-compras", compras}, {"ms-pagos", pagos}, {"ms-inventario", inventario}};
  try {
    std::unique_ptr<SagaLog> owned_log;
    if (is_postgres_url(store_url)) {
      if (replica_id.empty())  // a port chosen by the kernel names nothing: the pid then
        replica_id = host_name() + ":" + (cfg.port != 0 ? std::to_string(cfg.port) : "pid" + std::to_string(getpid()));
      owned_log = std::make_unique<PgSagaLog>(store_url, replica_id, lease_ms);
      opts.claim_every_ms = std::max<std::int64_t>(1, lease_ms / 4);
    } else {
      std::filesystem::create_directories(cfg.data_dir);
      owned_log = std::make_unique<SqliteSagaLog>(cfg.data_dir + "/orquestador.db", sync_mode_from_string(cfg.sync));
    }
    auto& log = *owned_log;
    log.observe_batches([](std::size_t n) { Metrics::get().commit_batch.Observe(static_cast<double>(n)); });
    FaultGate faults(fault_endpoints("orquestador", def), cfg.fault_seed);
    HttpServer srv(cfg);
    ProgramEnv env(srv.io(), service_urls, pool_size, faults);
    Orchestrator orch(def, env.env(log), opts);
    auto recovered = orch.recover();
    if (recovered > 0)
      std::cout << Json{{"ts", wall_ms()}, {"program", cfg.program}, {"event", "recovering"}, {"sagas", recovered}}.dump()
                << std::endl;
    if (log.shared())
      std::cout << Json{{"ts", wall_ms()}, {"program", cfg.program}, {"event", "shared-log"}, {"replica_id", replica_id},
                        {"lease_ms", lease_ms}}
                       .dump()
                << std::endl;
    register_routes(srv, orch, log, faults, ropts);
    int rc = srv.serve([&] { orch.stop(); });
    log.close();  // the log's last completions run while the event loop still exists
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "orquestador: " << e.what() << "\n";
    return 2;
  }
}
