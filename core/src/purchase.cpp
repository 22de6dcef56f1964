// Requests and answers of the purchase saga's steps. A 2xx is success, a 4xx a
// definite refusal (no effect), and a 5xx, 408, 429 or no answer an unknown
// outcome that the engine retries with the same idempotency key.
#include "sagalab/purchase.hpp"

#include <cmath>
#include <cstdio>
#include <memory>

#include "sagalab/domain.hpp"

namespace sagalab {

std::vector<std::string> fault_endpoints(const std::string& program, const SagaDefinition& def) {
  std::unique_ptr<ServiceLogic> logic;
  if (program == "orquestador") {
    std::vector<std::string> out = {"compra"};
    for (const auto& s : def.steps) {
      out.push_back("log:" + s.name + ":before");
      out.push_back("log:" + s.name + ":after");
    }
    return out;
  }
  if (program == "ms-catalogo") logic = make_catalogo({});
  if (program == "ms-compras") logic = make_compras();
  if (program == "ms-pagos") logic = make_pagos();
  if (program == "ms-inventario") logic = make_inventario({}, {});
  std::vector<std::string> out;
  if (logic)
    for (const auto& e : logic->endpoints()) out.push_back(e.name);
  return out;
}

std::string percent_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string percent_decode(const std::string& s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {

const std::string& step_name(const SagaDefinition& def, int step) {
  return def.steps[static_cast<std::size_t>(step)].name;
}

}  // namespace

StepCall build_step_call(const SagaDefinition& def, const SagaState& s, const Command& c) {
  const auto& ctx = s.ctx;
  const auto& name = step_name(def, c.step);
  StepCall call;
  call.service = def.steps[static_cast<std::size_t>(c.step)].service;
  call.method = "POST";
  if (c.compensation) {
    call.path = "/compensacion";
    call.endpoint = "compensacion";
    Compensar b;
    b.forward_key = c.forward_key;
    if (name == "crear_compra") {
      b.id_field = IdField::Compra;
      b.id = ctx.compra_id;
    } else if (name == "reservar_stock") {
      b.id_field = IdField::Reserva;
      b.id = ctx.reserva_id;
    } else {
      b.id_field = IdField::Pago;
      b.id = ctx.pago_id;
    }
    call.body = std::move(b);
    return call;
  }
  if (name == "buscar_producto") {
    call.method = "GET";
    const auto& wanted = ctx.producto_solicitado;
    if (wanted.empty()) {
      call.path = "/catalogo_completo";
      call.endpoint = "catalogo_completo";
      call.body = ProductQuery{ProductQuery::Kind::All, ""};
    } else if (wanted.rfind("prod_", 0) == 0) {
      call.path = "/producto/" + percent_encode(wanted);
      call.endpoint = "producto_id";
      call.body = ProductQuery{ProductQuery::Kind::ById, wanted};
    } else {
      call.path = "/buscar/" + percent_encode(wanted);
      call.endpoint = "buscar";
      call.body = ProductQuery{ProductQuery::Kind::ByName, wanted};
    }
    return call;
  }
  static const Product none;
  const Product& producto = ctx.producto ? *ctx.producto : none;
  const double monto = ctx.monto.value_or(0);
  if (name == "crear_compra") {
    call.path = "/transaccion";
    call.endpoint = "transaccion";
    call.body = CrearCompra{ctx.usuario_id, producto.nombre, ctx.cantidad, monto};
  } else if (name == "reservar_stock") {
    call.path = "/transaccion";
    call.endpoint = "transaccion";
    call.body = Reservar{producto.id, producto.nombre, ctx.cantidad};
  } else if (name == "cobrar_pago") {
    call.path = "/transaccion";
    call.endpoint = "transaccion";
    call.body = Cobrar{ctx.usuario_id, monto, ctx.compra_id};
  } else if (name == "confirmar_compra") {
    call.path = "/confirmacion";
    call.endpoint = "confirmacion";
    call.body = Confirmar{ctx.compra_id};
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
  auto error_text = [&] { return answer->error.empty() ? "HTTP " + std::to_string(answer->status) : answer->error; };
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
  const auto& name = step_name(def, c.step);
  auto need = [&](IdField field, std::string& into) {
    if (answer->receipt.id_field == field && !answer->receipt.id.empty()) {
      into = answer->receipt.id;
    } else {
      e.outcome = Outcome::Unknown;
      e.detail = std::string("la respuesta no trae ") + id_field_name(field);
    }
  };
  if (name == "buscar_producto") {
    const auto& list = answer->products;
    if (answer->listing && list.empty()) {
      e.outcome = Outcome::Failed;
      e.status = 404;
      e.detail = "el catálogo está vacío";
      return e;
    }
    if (list.empty()) {
      e.outcome = Outcome::Unknown;
      e.detail = "respuesta del catálogo sin producto";
      return e;
    }
    const Product& producto = answer->listing ? list[s.ctx.seleccion % list.size()] : list.front();
    double monto = std::round(producto.precio * static_cast<double>(s.ctx.cantidad) * 100.0) / 100.0;
    if (s.ctx.monto_cliente) {
      double cliente = *s.ctx.monto_cliente;
      if (std::fabs(cliente - monto) > 0.005) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "el monto %.2f no coincide con el del catálogo (%.2f)", cliente, monto);
        e.outcome = Outcome::Failed;
        e.status = 400;
        e.detail = buf;
        return e;
      }
    }
    e.data.producto = producto;
    e.data.monto = monto;
  } else if (name == "crear_compra") {
    need(IdField::Compra, e.data.compra_id);
  } else if (name == "reservar_stock") {
    need(IdField::Reserva, e.data.reserva_id);
  } else if (name == "cobrar_pago") {
    need(IdField::Pago, e.data.pago_id);
  }
  return e;
}

}  // namespace sagalab
