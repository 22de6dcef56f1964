// The fault gate: a program's fault rules, their admin routes, and what a
// fired fault does to the request (an error, a delay, a crash, no answer).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "sagalab/errors.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/http_server.hpp"
#include "sagalab/metrics.hpp"

namespace sagalab {

namespace {
thread_local std::string tl_fault;
thread_local bool tl_drop = false;
}  // namespace

void request_connection_drop() { tl_drop = true; }

bool take_connection_drop() { return std::exchange(tl_drop, false); }

void note_fault_for_log(const std::string& what) { tl_fault = what; }

std::string take_fault_note() {
  std::string out;
  out.swap(tl_fault);
  return out;
}

std::optional<FiredFault> FaultGate::match(const std::string& endpoint, const sagalab::HttpRequest& req) {
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
  srv.Get("/admin/faults", [this](const sagalab::HttpRequest&, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    send_json(res, 200, {{"rules", rules_json(set_)}, {"endpoints", endpoints_}});
  });
  srv.Post("/admin/faults", [this](const sagalab::HttpRequest& req, httplib::Response& res) {
    auto body = parse_body(req);
    std::lock_guard lock(mutex_);
    auto ids = set_.add(parse_fault_rules(body, endpoints_));
    empty_ = set_.empty();
    send_json(res, 201, {{"success", true}, {"ids", ids}});
  });
  srv.Delete("/admin/faults", [this](const sagalab::HttpRequest&, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    set_.clear();
    empty_ = true;
    send_json(res, 200, {{"success", true}});
  });
  srv.Delete(R"(/admin/faults/(\d{1,15}))", [this](const sagalab::HttpRequest& req, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    auto id = std::stoll(req.matches[1].str());
    if (!set_.remove(id)) throw not_found("no fault rule with id " + std::to_string(id));
    empty_ = set_.empty();
    send_json(res, 200, {{"success", true}});
  });
  srv.Get("/admin/faults/fired", [this](const sagalab::HttpRequest&, httplib::Response& res) {
    send_json(res, 200, {{"fired", fired_json()}});
  });
  srv.Post("/admin/faults/seed", [this](const sagalab::HttpRequest& req, httplib::Response& res) {
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

}  // namespace sagalab
