// Shared server plumbing for the four services and the orchestrator.
#include "sagalab/http_common.hpp"


#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>
#include <utility>

#include "sagalab/errors.hpp"
#include "sagalab/http_server.hpp"
#include "sagalab/metrics.hpp"

namespace sagalab {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string trace_id_of(const std::string& tp) {
  // version "00", trace id, parent id, flags; an all-zero id is invalid.
  if (tp.size() < 55 || tp.compare(0, 3, "00-") != 0 || tp[35] != '-' || tp[52] != '-') return "";
  auto id = tp.substr(3, 32);
  bool hex = std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); });
  if (!hex || id == std::string(32, '0')) return "";
  return id;
}

namespace {
std::string random_hex(int digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (static_cast<int>(out.size()) < digits) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    out += buf;
  }
  out.resize(static_cast<std::size_t>(digits));
  return out;
}
}  // namespace

std::string new_trace_id() { return random_hex(32); }
std::string new_span_id() { return random_hex(16); }

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

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"success", false}, {"error", message}});
}

namespace {

// Refuses nesting deeper than kMaxJsonDepth before the parser sees the text.
bool too_deep(const std::string& s) {
  int depth = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == '}' || c == ']') --depth;
  }
  return false;
}

thread_local std::string tl_fault;
thread_local bool tl_drop = false;

}  // namespace

Json parse_body(const httplib::Request& req, bool allow_empty) {
  if (req.body.empty()) {
    if (allow_empty) return Json::object();
    throw bad_request("the request needs a JSON body");
  }
  if (req.body.size() > kMaxBodyBytes) throw ClientError(413, "body larger than 64 KiB");
  if (too_deep(req.body)) throw bad_request("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  Json j = Json::parse(req.body, nullptr, false);
  if (j.is_discarded()) throw bad_request("malformed JSON body");
  return j;
}

void request_connection_drop() { tl_drop = true; }

bool take_connection_drop() { return std::exchange(tl_drop, false); }

void note_fault_for_log(const std::string& what) { tl_fault = what; }

std::string take_fault_note() {
  std::string out;
  out.swap(tl_fault);
  return out;
}

bool token_matches(const std::string& given, const std::string& expected) {
  // Constant time in the length of the expected token.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

// ---------------------------------------------------------------------------

std::optional<FiredFault> FaultGate::match(const std::string& endpoint, const httplib::Request& req) {
  if (empty_.load()) return std::nullopt;
  FaultContext ctx;
  ctx.endpoint = endpoint;
  ctx.saga_id = req.get_header_value("X-Saga-Id");
  auto attempt = req.get_header_value("X-Saga-Attempt");
  ctx.attempt = attempt.empty() ? 0 : std::atoi(attempt.c_str());
  ctx.now_ms = wall_ms();
  return match(ctx);
}

std::optional<FiredFault> FaultGate::match(const FaultContext& ctx) {
  if (empty_.load()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto f = set_.match(ctx);
  if (f) {
    note_fault_for_log(to_string(f->action) + (f->name.empty() ? "" : " (" + f->name + ")"));
    Metrics::get().faults_fired.Add({{"endpoint", ctx.endpoint}, {"action", to_string(f->action)}}).Increment();
  }
  return f;
}

Json FaultGate::fired_json() {
  std::lock_guard lock(mutex_);
  return sagalab::fired_json(set_);
}

void FaultGate::clear_fired() {
  std::lock_guard lock(mutex_);
  set_.clear_fired();
}

void FaultGate::register_routes(HttpServer& srv) {
  srv.Get("/admin/faults", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    send_json(res, 200, {{"rules", rules_json(set_)}, {"endpoints", endpoints_}});
  });
  srv.Post("/admin/faults", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    std::lock_guard lock(mutex_);
    auto ids = set_.add(parse_fault_rules(body, endpoints_));
    empty_ = set_.empty();
    send_json(res, 201, {{"success", true}, {"ids", ids}});
  });
  srv.Delete("/admin/faults", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    set_.clear();
    empty_ = true;
    send_json(res, 200, {{"success", true}});
  });
  srv.Delete(R"(/admin/faults/(\d{1,15}))", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    auto id = std::stoll(req.matches[1].str());
    if (!set_.remove(id)) throw not_found("no fault rule with id " + std::to_string(id));
    empty_ = set_.empty();
    send_json(res, 200, {{"success", true}});
  });
  srv.Get("/admin/faults/fired", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"fired", fired_json()}});
  });
  srv.Post("/admin/faults/seed", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body.is_object() || !body.contains("seed") || !body["seed"].is_number_unsigned())
      throw bad_request("body must be {\"seed\": <non-negative integer>}");
    std::lock_guard lock(mutex_);
    set_.reseed(body["seed"].get<std::uint64_t>());
    send_json(res, 200, {{"success", true}});
  });
}

[[noreturn]] void crash_now(const std::string& why) {
  std::fprintf(stderr, "{\"event\":\"crash\",\"reason\":\"%s\"}\n", why.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  ::_exit(70);
}

bool apply_fault_before(const FiredFault& f, httplib::Response& res) {
  switch (f.action) {
    case FaultAction::Error:
      send_error(res, f.status, f.message);
      return true;
    case FaultAction::Latency:
    case FaultAction::Hang:
      std::this_thread::sleep_for(std::chrono::milliseconds(f.delay_ms));
      return false;
    case FaultAction::CrashBefore:
      crash_now("crash-before fault on " + f.endpoint);
    default:
      return false;
  }
}

bool apply_fault_after(const FiredFault& f, httplib::Response& res) {
  switch (f.action) {
    case FaultAction::CommitThenError:
      send_error(res, f.status, f.message);
      return false;
    case FaultAction::CommitThenDrop:
      return true;
    case FaultAction::CrashAfter:
      crash_now("crash-after fault on " + f.endpoint);
    default:
      return false;
  }
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int health_check(int port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_tcp_nodelay(true);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(2, 0);
  auto res = cli.Get("/health");
  return res && res->status == 200 ? 0 : 1;
}

}  // namespace sagalab
