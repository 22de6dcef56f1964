// sagactl up / down / status / logs: the local stack as supervised processes.
#pragma once

#include "common.hpp"

namespace sagactl {

struct UpOptions {
  int base_port = 5000;  // 0: every program on a free port
  std::string sync = "full";
  bool fresh = false;
  std::int64_t wait_ms = 15000;
  std::vector<std::string> orchestrator_args;  // extra flags for orquestador
  std::string stock_file;
  std::string catalog_file;
  bool quiet = false;        // no report on stdout (when another command starts the stack)
  int service_workers = 0;  // 0: each program's default
  std::string store;  // "": SQLite files; a postgresql:// URL, or "postgresql": one the stack starts itself
  int replicas = 1;   // of every program (more than one needs PostgreSQL)
};
void setup_up(CLI::App& app, GlobalOptions& g);
int run_up(const GlobalOptions& g, const UpOptions& o);

void setup_down(CLI::App& app, GlobalOptions& g);
int run_down(const GlobalOptions& g, std::int64_t grace_ms = 10000);

void setup_status(CLI::App& app, GlobalOptions& g);
int run_status(const GlobalOptions& g);

struct LogsOptions {
  std::string service;
  int lines = 40;
};
void setup_logs(CLI::App& app, GlobalOptions& g);
int run_logs(const GlobalOptions& g, const LogsOptions& o);

}  // namespace sagactl
