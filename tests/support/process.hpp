// Test support: start the real binaries on free ports, wait for /health, and
// stop exactly the processes started (by pid).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sagalab/http_client.hpp"

namespace testsupport {

using sagalab::Json;

std::string bin(const std::string& name);

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Proc {
 public:
  // Starts `program` with args; when port is 0 it picks a free one (via --port-file).
  // `subcommand` (sagactl proxy, a fixture's mode) goes before the common flags.
  Proc(std::string program, std::vector<std::string> args, std::string dir, int port = 0,
       std::string subcommand = "");
  ~Proc();
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  void start();
  bool wait_healthy(int timeout_ms = 30000);  // generous: sanitizer builds on a loaded 2-core machine start slowly
  void stop();                 // SIGTERM and wait
  void kill9();                // SIGKILL and wait
  int wait_exit(int timeout_ms);  // exit status, or -1 if still running
  bool running();
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const;       // its last 4,000 characters (for messages)
  std::string full_log() const;

 private:
  std::string program_;
  std::vector<std::string> args_;
  std::string subcommand_;
  std::string dir_;
  int port_;
  std::string log_;
  pid_t pid_ = -1;
};

sagalab::HttpResult get(const std::string& url, const std::string& path);
sagalab::HttpResult post(const std::string& url, const std::string& path, const Json& body,
                         const httplib::Headers& h = {}, std::int64_t timeout_ms = 5000);

// The whole stack: four services then the orchestrator, in one temp dir.
class Stack {
 public:
  // The services run with --quiet unless quiet_services is false (a test that reads their logs).
  explicit Stack(std::vector<std::string> orchestrator_args = {},
                 std::map<std::string, std::vector<std::string>> service_args = {}, bool quiet_services = true);
  std::map<std::string, std::unique_ptr<Proc>> procs;  // by program name
  TempDir dir;
  std::string url(const std::string& program) const { return procs.at(program)->url(); }
  Proc& operator[](const std::string& program) { return *procs.at(program); }
  void restart_orchestrator();
  // The orchestrator reaches these URLs instead of the services' own (a proxy); restarts it.
  void route_services(std::map<std::string, std::string> urls);
  Json states();  // every program's /admin/state, as check_invariants wants them
  // Waits until no saga is en_curso / compensando; returns true when quiet.
  bool wait_quiet(int timeout_ms = 20000);

 private:
  std::vector<std::string> orchestrator_args_;
  std::map<std::string, std::string> service_urls_;
};

// Runs a shell command; its output (stderr too, unless merge_stderr is false) and exit status.
struct CmdResult {
  int code = -1;
  std::string out;
};
CmdResult run_command(const std::string& cmd, bool merge_stderr = true);
std::string shell_quote(const std::string& s);

// `sagactl ARGS...`: its standard output and exit status.
CmdResult run_sagactl(const std::vector<std::string>& args);
// A sagactl proxy's listeners, by upstream name (its /admin/upstreams); throws when it does not answer.
std::map<std::string, std::string> upstream_urls(Proc& proxy);
// A port free now (the kernel's pick), for a program that must be known before it starts.
int free_port();

// A sagactl proxy in front of the stack's five programs, recording to `record`; the
// orchestrator is restarted to reach the services through it. Named by upstream:
// catalogo, compras, pagos, inventario, orquestador.
std::unique_ptr<Proc> put_behind_proxy(Stack& stack, const std::string& record);

// Fast retry settings for tests.
std::vector<std::string> fast_orchestrator();

}  // namespace testsupport
