// A domain service as an HTTP server: each endpoint of its ServiceLogic is a
// route that parses, checks faults, calls the logic and writes the answer.
#include "sagalab/service_app.hpp"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <fstream>
#include <iostream>

#include "sagalab/errors.hpp"
#include "sagalab/http_server.hpp"
#include "sagalab/metrics.hpp"
#include "sagalab/pg_store.hpp"
#include "sagalab/sqlite_store.hpp"

namespace sagalab {

Json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  Json j = Json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::invalid_argument(path + " is not valid JSON");
  return j;
}

namespace {

std::vector<std::string> endpoint_names(const ServiceLogic& logic) {
  std::vector<std::string> names;
  for (const auto& e : logic.endpoints()) names.push_back(e.name);
  return names;
}

Request to_domain_request(const ServiceLogic& logic, const sagalab::HttpRequest& req, const Endpoint& ep) {
  std::string param;
  if (!ep.param.empty() && req.matches.size() > 1) param = req.matches[1].str();
  Json body = ep.method == "POST" ? parse_body(req) : Json();
  auto r = parse_request(logic.name(), ep, param, body, req.get_header_value("Idempotency-Key"),
                         req.get_header_value("X-Saga-Id"));
  r.now_ms = wall_ms();
  return r;
}

}  // namespace

// The domain requests being handled, so that /admin/reset can wait for them:
// a request held by a hang fault would otherwise write its effect after the
// reset, into the next test's clean state.
class InFlight {
 public:
  struct Guard {
    explicit Guard(InFlight& f) : f_(f) {
      std::lock_guard lock(f_.mutex_);
      ++f_.n_;
    }
    ~Guard() {
      std::lock_guard lock(f_.mutex_);
      if (--f_.n_ == 0) f_.cv_.notify_all();
    }
    InFlight& f_;
  };
  // Returns how many are still running after the timeout (0: none).
  int wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return n_ == 0; });
    return n_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int n_ = 0;
};

void register_routes(HttpServer& srv, ServiceLogic& logic, AsyncStore& store, FaultGate& faults) {
  auto in_flight = std::make_shared<InFlight>();
  for (const auto& ep : logic.endpoints()) {
    // With a fault to carry out (a delay, a crash, a lie about the answer),
    // the request runs on a worker thread, where it may sleep.
    auto with_fault = [&logic, &store, ep](const sagalab::HttpRequest& req, httplib::Response& res,
                                           const FiredFault& fault) {
      if (apply_fault_before(fault, res)) return;
      auto dreq = to_domain_request(logic, req, ep);
      auto out = logic.handle(store, dreq);
      send_json(res, out.status, reply_to_json(logic.name(), ep.name, out));
      if (apply_fault_after(fault, res)) request_connection_drop();
    };
    // Without one (nearly always), the domain call runs inside the store's
    // next group commit and the answer leaves once that is durable.
    auto handler = [&srv, &logic, &store, &faults, ep, in_flight, with_fault](const ExchangePtr& ex) {
      auto guard = std::make_shared<InFlight::Guard>(*in_flight);
      auto fault = faults.match(ep.name, ex->req);
      ex->fault = take_fault_note();
      if (fault) {
        srv.run_blocking(ex, [guard, with_fault, f = *fault](const sagalab::HttpRequest& req, httplib::Response& res) {
          with_fault(req, res, f);
        });
        return;
      }
      auto dreq = std::make_shared<Request>(to_domain_request(logic, ex->req, ep));
      auto out = std::make_shared<Reply>();
      store.post([&logic, &store, dreq, out] { *out = logic.handle(store, *dreq); },
                 [ex, out, guard, &logic, name = ep.name](std::exception_ptr error) {
                   if (error) return ex->fail(error);
                   send_json(ex->res, out->status, reply_to_json(logic.name(), name, *out));
                   ex->done();
                 });
    };
    if (ep.method == "GET") {
      srv.get_async(ep.pattern, handler);
    } else {
      srv.post_async(ep.pattern, handler);
    }
  }
  const auto name = logic.name();
  srv.Get("/health", [name](const sagalab::HttpRequest&, httplib::Response& res) {
    // The pid: whoever started the program can tell it from another that holds its port.
    send_json(res, 200, {{"status", "ok"}, {"service", name}, {"pid", ::getpid()}});
  });
  srv.Get("/admin/state", [&logic, &store, &faults](const sagalab::HttpRequest&, httplib::Response& res) {
    ServiceData data;
    store.transact([&](Tx& tx) {
      data = logic.data(tx);
      return false;
    });
    Json state = state_to_json(logic.name(), data);
    state["service"] = logic.name();
    state["fallos_disparados"] = faults.fired_json();
    send_json(res, 200, state);
  });
  srv.Post("/admin/reset", [&logic, &store, &faults, in_flight](const sagalab::HttpRequest& req, httplib::Response& res) {
    auto initial = parse_initial_data(parse_body(req, true));
    if (int n = in_flight->wait_idle(std::chrono::seconds(30)); n > 0)
      throw conflict(std::to_string(n) + " requests are still being handled after 30 s; retry the reset later");
    logic.reset(store, initial);
    faults.clear_fired();
    send_json(res, 200, {{"success", true}, {"mensaje", "datos iniciales restaurados"}});
  });
  faults.register_routes(srv);
}

int run_service(int argc, char** argv, const ServiceSpec& spec) {
  block_stop_signals();
  CLI::App app{spec.description, spec.program};
  ServerConfig cfg;
  cfg.program = spec.program;
  cfg.port = spec.default_port;
  add_server_options(app, cfg);
  std::string store_url;
  add_store_option(app, store_url,
                   "where the data lives: sqlite (a file in --data-dir) or a postgresql://user@host:port/db URL, "
                   "which replicas of this service can share",
                   store_url_problem);
  if (spec.add_options) spec.add_options(app);
  if (int code = parse_server_command_line(app, argc, argv, cfg); code >= 0) return code;

  std::unique_ptr<ServiceLogic> logic;
  std::unique_ptr<AsyncStore> store;
  try {
    logic = spec.make_logic();
    if (is_postgres_url(store_url)) {
      store = std::make_unique<PgStore>(store_url, spec.program, cfg.workers);
    } else {
      std::filesystem::create_directories(cfg.data_dir);
      store = std::make_unique<SqliteStore>(cfg.data_dir + "/" + spec.program + ".db", sync_mode_from_string(cfg.sync));
    }
    logic->ensure_initialised(*store);
    store->observe_batches([](std::size_t n) { Metrics::get().commit_batch.Observe(static_cast<double>(n)); });
  } catch (const std::exception& e) {
    std::cerr << spec.program << ": " << e.what() << "\n";
    return 2;
  }
  FaultGate faults(endpoint_names(*logic), cfg.fault_seed);
  HttpServer srv(cfg);
  register_routes(srv, *logic, *store, faults);
  return srv.serve();
}

}  // namespace sagalab
