// What every sagalab server shares: its configuration (flags bound to
// environment variables), JSON answers, request limits, admin authentication,
// a JSON log line per request, the fault routes, and start/stop plumbing.
#pragma once

#include <httplib.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "sagalab/faults.hpp"
#include "sagalab/http_request.hpp"
#include "sagalab/json_codec.hpp"

namespace sagalab {

struct ServerConfig {
  std::string program;
  std::string host = "0.0.0.0";
  int port = 0;
  std::string data_dir;
  int workers = 16;    // threads of blocking handlers (the services' domain calls)
  int io_threads = 0;  // event-loop threads; 0: one per core
  std::string sync = "full";
  std::string admin_token;
  std::string port_file;  // written with the bound port once listening (for --port 0)
  bool health_check = false;
  bool quiet = false;
  std::uint64_t fault_seed = 0;
  std::int64_t read_timeout_ms = 5000;  // a client that trickles its request is cut off after this
};

// Adds the flags every server takes, each with its environment variable.
void add_server_options(CLI::App& app, ServerConfig& cfg);
// Adds --store (SAGA_STORE): "sqlite" (the default: a file in --data-dir) or a
// postgresql:// URL; `what` says what lives there and who can share it, and
// `check` says what is wrong with a value ("" when nothing: the stores'
// store_url_problem). The HTTP layer itself knows no store.
void add_store_option(CLI::App& app, std::string& store_url, const std::string& what,
                      std::function<std::string(const std::string&)> check);
// Resolves defaults (data dir) and checks values; throws CLI::ValidationError.
void finish_config(ServerConfig& cfg);
// Parses a server's command line and resolves its defaults: the exit code when
// the program must stop here (--help, a bad flag, --health-check's answer),
// or -1 to go on.
int parse_server_command_line(CLI::App& app, int argc, char** argv, ServerConfig& cfg);

std::int64_t wall_ms();

// W3C trace context: the trace id of a `traceparent` header
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when the header is absent or malformed.
std::string trace_id_of(const std::string& traceparent);
// A new random trace id (32 hex) or span id (16 hex).
std::string new_trace_id();
std::string new_span_id();

constexpr std::size_t kMaxBodyBytes = 64 * 1024;
constexpr int kMaxJsonDepth = 32;

void send_json(httplib::Response& res, int status, const Json& body);
void send_error(httplib::Response& res, int status, const std::string& message);
// Parses a request body as JSON; throws ClientError(400) naming the problem.
Json parse_body(const sagalab::HttpRequest& req, bool allow_empty = false);

// Asks the server to close the connection of the request this thread is
// handling instead of answering it, so that the caller gets no answer at all
// (commit-then-drop); the server's session, which owns the stream, closes it
// once the handler returns. take_connection_drop() reads and clears the ask.
void request_connection_drop();
bool take_connection_drop();

// Sets the fault that the current request's log line names (per thread), and
// takes it back (clearing it).
void note_fault_for_log(const std::string& what);
std::string take_fault_note();

class HttpServer;

// Fault rules of one program, behind a mutex.
class FaultGate {
 public:
  FaultGate(std::vector<std::string> endpoints, std::uint64_t seed)
      : endpoints_(std::move(endpoints)), set_(seed) {}
  std::optional<FiredFault> match(const std::string& endpoint, const sagalab::HttpRequest& req);
  std::optional<FiredFault> match(const FaultContext& ctx);
  bool empty() const { return empty_.load(); }
  void register_routes(HttpServer& srv);
  Json fired_json();
  void clear_fired();

 private:
  std::vector<std::string> endpoints_;
  std::mutex mutex_;
  FaultSet set_;
  std::atomic<bool> empty_{true};
};

// Whether a bearer token given matches the configured one (constant time).
bool token_matches(const std::string& given, const std::string& expected);

// Carries out a fired fault that acts before the effect. Returns true when the
// request is answered (error) and the handler must stop.
bool apply_fault_before(const FiredFault& f, httplib::Response& res);
// Carries out a fired fault after the effect (commit-then-*, crash-after).
// Returns true when the request must get no answer at all (commit-then-drop):
// a blocking handler then calls request_connection_drop(), an asynchronous
// one sets its Exchange's `drop`.
bool apply_fault_after(const FiredFault& f, httplib::Response& res);
[[noreturn]] void crash_now(const std::string& why);

// Blocks SIGINT/SIGTERM in this thread and those it starts; call first in main.
void block_stop_signals();
// For --health-check: asks 127.0.0.1:port/health; returns 0 or 1.
int health_check(int port);

}  // namespace sagalab
