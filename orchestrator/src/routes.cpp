// The orchestrator's HTTP API: POST /compra (compatible with the original
// stack), GET /sagas, GET /sagas/{id}, /health and the admin surface.
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <cmath>

#include "sagalab/domain.hpp"
#include "sagalab/errors.hpp"
#include "sagalab/http_server.hpp"
#include "sagalab/orchestrator_program.hpp"

namespace sagalab {

namespace {

SagaContext compra_context(const Json& body, std::uint64_t seleccion) {
  input::object(body);
  SagaContext ctx;
  ctx.usuario_id = input::string_field(body, "usuario_id", true, 128);
  ctx.producto_solicitado = input::string_field(body, "producto", false, 200);
  ctx.cantidad = input::int_field(body, "cantidad", 1, 1, 100);
  ctx.seleccion = seleccion;
  if (body.contains("monto") && !body["monto"].is_null())
    ctx.monto_cliente = input::number_field(body, "monto", 0, 0, kMaxMonto, true);
  return ctx;
}

// The answer of POST /compra for a saga snapshot, as the original API shaped it.
void answer_compra(httplib::Response& res, const Json& snap) {
  const auto estado = snap.value("estado", std::string());
  const Json& ctx = snap["contexto"];
  Json common{{"saga_id", snap["saga_id"]},
              {"estado", estado},
              {"paso_fallido", snap["paso_fallido"]},
              {"compensaciones", snap["compensaciones"]},
              {"intentos_realizados", snap["intentos_realizados"]}};
  if (estado == "completada") {
    Json out{{"success", true}, {"mensaje", "Compra procesada exitosamente"}};
    out["datos"] = {{"producto", ctx.value("producto", Json(nullptr))},
                    {"compra_id", ctx.value("compra_id", Json(nullptr))},
                    {"pago_id", ctx.value("pago_id", Json(nullptr))},
                    {"reserva_id", ctx.value("reserva_id", Json(nullptr))},
                    {"cantidad", ctx.value("cantidad", Json(1))},
                    {"monto", ctx.value("monto", Json(nullptr))}};
    out.update(common);
    send_json(res, 200, out);
    return;
  }
  if (estado == "compensada") {
    int status = 409;
    int err = snap.value("error_status", 0);
    if (snap["paso_fallido"] == "buscar_producto" && (err == 404 || err == 400)) status = err;
    Json out{{"success", false}, {"error", snap.value("error", Json("la compra falló"))}};
    if (status == 409) out["mensaje"] = "La compra falló y fue compensada";
    out.update(common);
    send_json(res, status, out);
    return;
  }
  Json out{{"success", false},
           {"mensaje", "la saga sigue en curso (" + estado + "); consulte GET /sagas/" +
                           snap["saga_id"].get<std::string>()}};
  out.update(common);
  send_json(res, 202, out);
}


// The saga list from the log, with the running sagas' current snapshots in
// place of the ones written at their latest change of state.
Json saga_list(Orchestrator& orch, SagaLog& log, const std::string& estado, int limit) {
  auto live = orch.live_snapshots();
  Json arr = Json::array();
  for (auto& s : log.list(estado, limit)) {
    auto it = live.find(s.value("saga_id", std::string()));
    if (it != live.end() && (estado.empty() || it->second.value("estado", std::string()) == estado)) {
      arr.push_back(std::move(it->second));
    } else {
      arr.push_back(std::move(s));
    }
  }
  return arr;
}

// POST /compra after its fault (if any) has acted: starts the saga, then
// answers at once (?async=true) or when it settles.
void start_compra(const ExchangePtr& ex, Orchestrator& orch, const std::optional<FiredFault>& fault,
                  const OrchestratorRouteOptions& opts) {
  const auto& req = ex->req;
  auto body = parse_body(req);
  auto ctx = compra_context(body, orch.random());
  // The client's trace continues; without one, the saga starts its own.
  ctx.trace_id = trace_id_of(req.get_header_value("traceparent"));
  if (ctx.trace_id.empty()) ctx.trace_id = new_trace_id();
  ex->trace_id = ctx.trace_id;
  auto key = req.get_header_value("Idempotency-Key");
  if (key.size() > 300) throw bad_request("Idempotency-Key longer than 300 characters");
  auto async = req.get_param_value("async");
  if (!async.empty() && async != "true" && async != "false")
    throw bad_request("query parameter 'async' must be true or false");
  auto finish = [ex, fault] {
    if (fault && apply_fault_after(*fault, ex->res)) ex->drop = true;
    ex->done();
  };
  orch.start(std::move(ctx), key,
             [ex, &orch, async, opts, finish](const std::string& id, bool existed, std::exception_ptr error) {
               if (error) return ex->fail(error);
               ex->saga_id = id;
               if (async == "true") {
                 send_json(ex->res, 202,
                           {{"success", true}, {"saga_id", id}, {"estado", "en_curso"}, {"repetida", existed},
                            {"mensaje", "saga iniciada; consulte GET /sagas/" + id}});
                 return finish();
               }
               orch.wait(id, opts.response_timeout_ms, [ex, id, finish](std::optional<Json> snap) {
                 if (!snap) {
                   send_error(ex->res, 500, "internal error: saga " + id + " vanished");
                 } else {
                   answer_compra(ex->res, *snap);
                 }
                 finish();
               });
             });
}

}  // namespace

void register_routes(HttpServer& srv, Orchestrator& orch, SagaLog& log, FaultGate& faults,
                     const OrchestratorRouteOptions& opts) {
  srv.Get("/health", [](const sagalab::HttpRequest&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}, {"service", "orchestrator"}, {"pid", ::getpid()}});
  });

  srv.post_async("/compra", [&srv, &orch, &faults, opts](const ExchangePtr& ex) {
    auto fault = faults.match("compra", ex->req);
    ex->fault = take_fault_note();
    if (fault && (fault->action == FaultAction::Latency || fault->action == FaultAction::Hang)) {
      // Delayed on a timer, not on a thread.
      auto timer = std::make_shared<boost::asio::steady_timer>(srv.io(), std::chrono::milliseconds(fault->delay_ms));
      timer->async_wait([timer, ex, &orch, fault, opts](const boost::system::error_code&) {
        try {
          start_compra(ex, orch, fault, opts);
        } catch (...) {
          ex->fail(std::current_exception());
        }
      });
      return;
    }
    if (fault && apply_fault_before(*fault, ex->res)) return ex->done();
    start_compra(ex, orch, fault, opts);
  });

  srv.get_async(R"(/sagas/([^/]{1,200}))", [&orch](const ExchangePtr& ex) {
    auto id = ex->req.matches[1].str();
    orch.snapshot(id, [ex, id](std::optional<Json> snap) {
      if (!snap) return ex->fail(std::make_exception_ptr(not_found("saga '" + id + "' does not exist")));
      send_json(ex->res, 200, *snap);
      ex->done();
    });
  });

  srv.Get("/sagas", [&orch, &log](const sagalab::HttpRequest& req, httplib::Response& res) {    auto estado = req.get_param_value("estado");
    if (!estado.empty()) {
      try {
        estado_from_string(estado);
      } catch (const std::invalid_argument& e) {
        throw bad_request(std::string(e.what()) + "; expected en_curso, completada, compensando, compensada or atascada");
      }
    }
    int limit = 100;
    if (req.has_param("limit")) {
      auto l = req.get_param_value("limit");
      char* end = nullptr;
      long v = std::strtol(l.c_str(), &end, 10);
      if (l.empty() || *end != '\0' || v < 1 || v > 10000) throw bad_request("limit must be an integer from 1 to 10000");
      limit = static_cast<int>(v);
    }
    Json arr = saga_list(orch, log, estado, limit);
    send_json(res, 200, {{"sagas", arr}, {"total", arr.size()}});
  });

  srv.Get("/admin/state", [&orch, &log, &faults](const sagalab::HttpRequest&, httplib::Response& res) {
    Json arr = saga_list(orch, log, "", 1000000);
    send_json(res, 200, {{"service", "orchestrator"}, {"sagas", arr}, {"fallos_disparados", faults.fired_json()}});
  });

  srv.Post("/admin/reset", [&orch, &log, &faults](const sagalab::HttpRequest&, httplib::Response& res) {
    if (orch.active() > 0)
      throw conflict(std::to_string(orch.active()) + " sagas are still running; wait for them to finish");
    log.reset();
    faults.clear_fired();
    send_json(res, 200, {{"success", true}, {"mensaje", "registro de sagas vaciado"}});
  });
  faults.register_routes(srv);
}

}  // namespace sagalab
