// Requests and answers of the purchase saga's steps. A 2xx is success, a 4xx a
// definite refusal (no effect), and a 5xx, 408, 429 or no answer an unknown
// outcome that the engine retries with the same idempotency key.
#include "sagalab/purchase.hpp"

#include <cmath>
#include <cstdio>

namespace sagalab {

std::string percent_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

namespace {

Json opt(const Json& ctx, const char* k) { return ctx.contains(k) ? ctx[k] : Json(nullptr); }

std::string step_name(const SagaDefinition& def, int step) {
  return def.steps[static_cast<std::size_t>(step)].name;
}

}  // namespace

StepCall build_step_call(const SagaDefinition& def, const SagaState& s, const Command& c) {
  const auto& ctx = s.ctx;
  const auto name = step_name(def, c.step);
  StepCall call;
  call.service = def.steps[static_cast<std::size_t>(c.step)].service;
  call.method = "POST";
  if (c.compensation) {
    call.path = "/compensacion";
    call.endpoint = "compensacion";
    call.body = {{"forward_key", c.forward_key}, {"saga_id", s.id}};
    const char* id_field = name == "crear_compra"     ? "compra_id"
                           : name == "reservar_stock" ? "reserva_id"
                                                      : "pago_id";
    if (ctx.contains(id_field)) call.body[id_field] = ctx[id_field];
    return call;
  }
  if (name == "buscar_producto") {
    call.method = "GET";
    auto wanted = ctx.value("producto_solicitado", std::string());
    if (wanted.empty()) {
      call.path = "/catalogo_completo";
      call.endpoint = "catalogo_completo";
    } else if (wanted.rfind("prod_", 0) == 0) {
      call.path = "/producto/" + percent_encode(wanted);
      call.endpoint = "producto_id";
    } else {
      call.path = "/buscar/" + percent_encode(wanted);
      call.endpoint = "buscar";
    }
    return call;
  }
  const Json producto = opt(ctx, "producto");
  if (name == "crear_compra") {
    call.path = "/transaccion";
    call.endpoint = "transaccion";
    call.body = {{"usuario_id", ctx["usuario_id"]}, {"producto", producto.value("nombre", "")},
                 {"cantidad", ctx["cantidad"]},     {"monto", ctx["monto"]},
                 {"saga_id", s.id}};
  } else if (name == "reservar_stock") {
    call.path = "/transaccion";
    call.endpoint = "transaccion";
    call.body = {{"producto_id", producto.value("id", "")}, {"producto", producto.value("nombre", "")},
                 {"cantidad", ctx["cantidad"]}, {"saga_id", s.id}};
  } else if (name == "cobrar_pago") {
    call.path = "/transaccion";
    call.endpoint = "transaccion";
    call.body = {{"usuario_id", ctx["usuario_id"]}, {"monto", ctx["monto"]},
                 {"compra_id", opt(ctx, "compra_id")}, {"saga_id", s.id}};
  } else if (name == "confirmar_compra") {
    call.path = "/confirmacion";
    call.endpoint = "confirmacion";
    call.body = {{"compra_id", opt(ctx, "compra_id")}, {"saga_id", s.id}};
  }
  return call;
}

Event interpret_answer(const SagaDefinition& def, const SagaState& s, const Command& c,
                       const std::optional<Answer>& answer, const std::string& transport_error,
                       std::int64_t now_ms) {
  Event e;
  e.type = Event::Type::Result;
  e.now_ms = now_ms;
  e.step = c.step;
  e.attempt = c.attempt;
  e.compensation = c.compensation;
  if (!answer) {
    e.outcome = Outcome::Unknown;
    e.detail = transport_error.empty() ? "sin respuesta" : transport_error;
    return e;
  }
  e.status = answer->status;
  const Json& body = answer->body;
  auto error_text = [&] {
    if (body.is_object() && body.contains("error") && body["error"].is_string())
      return body["error"].get<std::string>();
    return "HTTP " + std::to_string(answer->status);
  };
  if (answer->status >= 500 || answer->status == 408 || answer->status == 429 || answer->status < 200) {
    e.outcome = Outcome::Unknown;
    e.detail = error_text();
    return e;
  }
  if (answer->status >= 300) {
    e.outcome = Outcome::Failed;
    e.detail = error_text();
    return e;
  }
  e.outcome = Outcome::Ok;
  if (c.compensation) return e;
  const auto name = step_name(def, c.step);
  auto need = [&](const char* field) {
    if (body.is_object() && body.contains(field) && body[field].is_string()) {
      e.data = {{field, body[field]}};
    } else {
      e.outcome = Outcome::Unknown;
      e.detail = std::string("la respuesta no trae ") + field;
    }
  };
  if (name == "buscar_producto") {
    Json producto = body;
    if (body.is_object() && body.contains("productos")) {
      const auto& list = body["productos"];
      if (!list.is_array() || list.empty()) {
        e.outcome = Outcome::Failed;
        e.status = 404;
        e.detail = "el catálogo está vacío";
        return e;
      }
      auto pick = s.ctx.value("seleccion", std::uint64_t{0}) % list.size();
      producto = list[pick];
    }
    if (!producto.is_object() || !producto.contains("precio") || !producto["precio"].is_number() ||
        !producto.contains("id") || !producto.contains("nombre")) {
      e.outcome = Outcome::Unknown;
      e.detail = "respuesta del catálogo sin producto";
      return e;
    }
    double monto = std::round(producto["precio"].get<double>() *
                              static_cast<double>(s.ctx.value("cantidad", 1)) * 100.0) / 100.0;
    if (s.ctx.contains("monto_cliente") && s.ctx["monto_cliente"].is_number()) {
      double cliente = s.ctx["monto_cliente"].get<double>();
      if (std::fabs(cliente - monto) > 0.005) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "el monto %.2f no coincide con el del catálogo (%.2f)", cliente, monto);
        e.outcome = Outcome::Failed;
        e.status = 400;
        e.detail = buf;
        return e;
      }
    }
    e.data = {{"producto", producto}, {"monto", monto}};
  } else if (name == "crear_compra") {
    need("compra_id");
  } else if (name == "reservar_stock") {
    need("reserva_id");
  } else if (name == "cobrar_pago") {
    need("pago_id");
  }
  return e;
}

}  // namespace sagalab
