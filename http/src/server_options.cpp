// The flags every server takes (each with its environment variable), and --store.
#include <utility>

#include "sagalab/http_common.hpp"

namespace sagalab {

void add_store_option(CLI::App& app, std::string& store_url, const std::string& what,
                      std::function<std::string(const std::string&)> check) {
  store_url = "sqlite";
  app.add_option("--store", store_url, what)->envname("SAGA_STORE")->check(std::move(check))->capture_default_str();
}

void add_server_options(CLI::App& app, ServerConfig& cfg) {
  app.add_option("--port", cfg.port, "TCP port to listen on (0 picks a free one)")
      ->envname("PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--host", cfg.host, "address to bind")->envname("HOST")->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir, "directory of the SQLite data file (default ./data/<program>)")
      ->envname("DATA_DIR");
  app.add_option("--workers", cfg.workers,
                 "threads that run blocking request handlers (idle connections hold none)")
      ->envname("WORKERS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--io-threads", cfg.io_threads, "event-loop threads of the HTTP server (0: one per core)")
      ->envname("IO_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--sync", cfg.sync, "SQLite synchronous level: full (default) or normal")
      ->envname("SYNC")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("--admin-token", cfg.admin_token, "require 'Authorization: Bearer TOKEN' on /admin/*")
      ->envname("SAGA_ADMIN_TOKEN");
  app.add_option("--port-file", cfg.port_file, "write the bound port to this file once listening");
  app.add_option("--fault-seed", cfg.fault_seed, "seed of the fault rules' random draws")
      ->envname("FAULT_SEED")
      ->capture_default_str();
  app.add_flag("--health-check", cfg.health_check, "ask the running program on --port for /health; exit 0 or 1");
  app.add_flag("--quiet", cfg.quiet, "no per-request log lines");
  app.add_option("--read-timeout-ms", cfg.read_timeout_ms,
                 "how long a request may take to arrive before the connection is closed")
      ->envname("READ_TIMEOUT_MS")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
}

void finish_config(ServerConfig& cfg) {
  if (cfg.data_dir.empty()) cfg.data_dir = "./data/" + cfg.program;
}

int parse_server_command_line(CLI::App& app, int argc, char** argv, ServerConfig& cfg) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (cfg.health_check) return health_check(cfg.port);
  finish_config(cfg);
  return -1;
}

}  // namespace sagalab
