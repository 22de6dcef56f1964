// The saga's JSON edge: the context and events as the saga log stores them,
// the snapshot that GET /sagas/{id} answers, and retry settings.
#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "sagalab/json_codec.hpp"

namespace sagalab {

namespace {

std::optional<Product> product_from_json(const Json& p) {
  if (!p.is_object()) throw std::invalid_argument("producto must be an object");
  return Product{p.at("id").get<std::string>(), p.at("nombre").get<std::string>(), p.at("precio").get<double>(),
                 p.value("categoria", std::string())};
}

void output_fields(Json& j, const StepOutput& o) {
  if (o.producto) j["producto"] = to_json(*o.producto);
  if (o.monto) j["monto"] = *o.monto;
  if (!o.compra_id.empty()) j["compra_id"] = o.compra_id;
  if (!o.reserva_id.empty()) j["reserva_id"] = o.reserva_id;
  if (!o.pago_id.empty()) j["pago_id"] = o.pago_id;
}

StepOutput output_from_json(const Json& j) {
  StepOutput o;
  if (j.is_null()) return o;
  if (!j.is_object()) throw std::invalid_argument("result data must be an object");
  if (j.contains("producto") && !j["producto"].is_null()) o.producto = product_from_json(j["producto"]);
  if (j.contains("monto") && !j["monto"].is_null()) o.monto = j["monto"].get<double>();
  o.compra_id = j.value("compra_id", std::string());
  o.reserva_id = j.value("reserva_id", std::string());
  o.pago_id = j.value("pago_id", std::string());
  return o;
}

}  // namespace

Json to_json(const SagaContext& c) {
  Json j{{"usuario_id", c.usuario_id},
         {"producto_solicitado", c.producto_solicitado},
         {"cantidad", c.cantidad},
         {"seleccion", c.seleccion}};
  if (c.monto_cliente) j["monto_cliente"] = *c.monto_cliente;
  if (!c.trace_id.empty()) j["trace_id"] = c.trace_id;
  StepOutput o{c.producto, c.monto, c.compra_id, c.reserva_id, c.pago_id};
  output_fields(j, o);
  return j;
}

SagaContext context_from_json(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("start.ctx must be an object");
  try {
    SagaContext c;
    c.usuario_id = j.value("usuario_id", std::string());
    c.producto_solicitado = j.value("producto_solicitado", std::string());
    c.cantidad = j.value("cantidad", std::int64_t{1});
    c.seleccion = j.value("seleccion", std::uint64_t{0});
    if (j.contains("monto_cliente") && !j["monto_cliente"].is_null()) c.monto_cliente = j["monto_cliente"].get<double>();
    c.trace_id = j.value("trace_id", std::string());
    c.merge(output_from_json(j));
    return c;
  } catch (const nlohmann::json::exception& ex) {
    throw std::invalid_argument(std::string("malformed saga context: ") + ex.what());
  }
}

Json to_json(const StepOutput& o) {
  Json j = Json::object();
  output_fields(j, o);
  return j;
}

Json to_json(const Event& e) {
  Json j{{"t", e.now_ms}};
  switch (e.type) {
    case Event::Type::Start:
      j["type"] = "start";
      j["saga_id"] = e.saga_id;
      j["ctx"] = to_json(e.ctx ? *e.ctx : SagaContext{});
      break;
    case Event::Type::Result:
      j["type"] = "result";
      j["step"] = e.step;
      j["attempt"] = e.attempt;
      j["comp"] = e.compensation;
      j["outcome"] = to_string(e.outcome);
      j["status"] = e.status;
      j["data"] = e.data.empty() ? Json(nullptr) : to_json(e.data);
      j["detail"] = e.detail;
      break;
    case Event::Type::Timer:
      j["type"] = "timer";
      j["step"] = e.step;
      j["attempt"] = e.attempt;
      j["comp"] = e.compensation;
      break;
    case Event::Type::Recovered:
      j["type"] = "recovered";
      break;
  }
  return j;
}

Event event_from_json(const Json& j) {
  try {
    Event e;
    e.now_ms = j.at("t").get<std::int64_t>();
    auto type = j.at("type").get<std::string>();
    if (type == "start") {
      e.type = Event::Type::Start;
      e.saga_id = j.at("saga_id").get<std::string>();
      e.ctx = std::make_shared<const SagaContext>(context_from_json(j.at("ctx")));
    } else if (type == "result" || type == "timer") {
      e.type = type == "result" ? Event::Type::Result : Event::Type::Timer;
      e.step = j.at("step").get<int>();
      e.attempt = j.at("attempt").get<int>();
      e.compensation = j.at("comp").get<bool>();
      if (e.type == Event::Type::Result) {
        e.outcome = outcome_from_string(j.at("outcome").get<std::string>());
        e.status = j.at("status").get<int>();
        e.data = output_from_json(j.at("data"));
        e.detail = j.at("detail").get<std::string>();
      }
    } else if (type == "recovered") {
      e.type = Event::Type::Recovered;
    } else {
      throw std::invalid_argument("unknown event type '" + type + "'");
    }
    return e;
  } catch (const nlohmann::json::exception& ex) {
    throw std::invalid_argument(std::string("malformed saga-log event: ") + ex.what());
  }
}

Json to_json(const SagaState& s, const SagaDefinition& def) {
  // Built in place: an initializer list copies every value it holds (and a named array twice).
  Json out = Json::object();
  Json& pasos = out["pasos"] = Json::array();
  for (std::size_t i = 0; i < s.steps.size() && i < def.steps.size(); ++i) {
    Json p = Json::object();
    p["paso"] = def.steps[i].name;
    p["servicio"] = def.steps[i].service;
    p["tipo"] = to_string(def.steps[i].kind);
    p["estado"] = to_string(s.steps[i].status);
    p["intentos"] = s.steps[i].attempts;
    p["intentos_compensacion"] = s.steps[i].comp_attempts;
    pasos.push_back(std::move(p));
  }
  Json& intentos = out["intentos"] = Json::array();
  int total = 0;
  for (const auto& a : s.attempts) {
    if (!a.compensation) ++total;
    Json x = Json::object();
    x["paso"] = def.steps[static_cast<std::size_t>(a.step)].name;
    x["intento"] = a.n;
    x["compensacion"] = a.compensation;
    x["inicio_ms"] = a.started_ms;
    x["fin_ms"] = a.ended_ms;
    x["resultado"] = a.outcome;
    x["status"] = a.status;
    x["detalle"] = a.detail;
    intentos.push_back(std::move(x));
  }
  out["saga_id"] = s.id;
  out["estado"] = to_string(s.estado);
  out["contexto"] = to_json(s.ctx);
  out["intentos_realizados"] = total;
  out["paso_fallido"] = s.paso_fallido.empty() ? Json(nullptr) : Json(s.paso_fallido);
  out["error"] = s.error.empty() ? Json(nullptr) : Json(s.error);
  out["error_status"] = s.error_status;
  out["compensaciones"] = s.compensaciones;
  out["inicio_ms"] = s.started_ms;
  out["fin_ms"] = s.finished_ms;
  return out;
}

// ---- the same texts, written as bytes ------------------------------------
//
// nlohmann's default `json` keeps an object's keys in a std::map: each object
// below writes its keys in that (bytewise) order. A string of printable ASCII
// without a quote or a backslash is written as it is; any other string, and
// every floating-point number, is written by nlohmann itself (its escapes,
// its UTF-8 checks, its shortest round-trip format), so the two texts agree
// wherever they could differ.
namespace {

class Text {
 public:
  explicit Text(std::string& out) : out_(out) {}
  void str(const std::string& s) {
    for (unsigned char c : s) {
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
        out_ += Json(s).dump();
        return;
      }
    }
    out_ += '"';
    out_ += s;
    out_ += '"';
  }
  template <typename I>
  void integer(I v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  void number(double d) { out_ += Json(d).dump(); }
  void boolean(bool b) { out_ += b ? "true" : "false"; }
  void null() { out_ += "null"; }
  void open(char c) {
    out_ += c;
    first_ = true;
  }
  void close(char c) {
    out_ += c;
    first_ = false;
  }
  // The next member's key (and the comma before it, but for the first).
  Text& key(const char* k) {
    element();
    out_ += '"';
    out_ += k;
    out_ += "\":";
    return *this;
  }
  // The next array element's comma, but for the first.
  void element() {
    if (!first_) out_ += ',';
    first_ = false;
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void write(Text& t, const Product& p) {
  t.open('{');
  t.key("categoria").str(p.categoria);
  t.key("id").str(p.id);
  t.key("nombre").str(p.nombre);
  t.key("precio").number(p.precio);
  t.close('}');
}

void write(Text& t, const StepOutput& o) {
  t.open('{');
  if (!o.compra_id.empty()) t.key("compra_id").str(o.compra_id);
  if (o.monto) t.key("monto").number(*o.monto);
  if (!o.pago_id.empty()) t.key("pago_id").str(o.pago_id);
  if (o.producto) write(t.key("producto"), *o.producto);
  if (!o.reserva_id.empty()) t.key("reserva_id").str(o.reserva_id);
  t.close('}');
}

void write(Text& t, const SagaContext& c) {
  t.open('{');
  t.key("cantidad").integer(c.cantidad);
  if (!c.compra_id.empty()) t.key("compra_id").str(c.compra_id);
  if (c.monto) t.key("monto").number(*c.monto);
  if (c.monto_cliente) t.key("monto_cliente").number(*c.monto_cliente);
  if (!c.pago_id.empty()) t.key("pago_id").str(c.pago_id);
  if (c.producto) write(t.key("producto"), *c.producto);
  t.key("producto_solicitado").str(c.producto_solicitado);
  if (!c.reserva_id.empty()) t.key("reserva_id").str(c.reserva_id);
  t.key("seleccion").integer(c.seleccion);
  if (!c.trace_id.empty()) t.key("trace_id").str(c.trace_id);
  t.key("usuario_id").str(c.usuario_id);
  t.close('}');
}

void optional_str(Text& t, const std::string& s) {
  if (s.empty()) return t.null();
  t.str(s);
}

}  // namespace

std::string event_text(const Event& e) {
  std::string out;
  out.reserve(e.type == Event::Type::Start ? 256 : 160);
  Text t(out);
  t.open('{');
  switch (e.type) {
    case Event::Type::Start:
      write(t.key("ctx"), e.ctx ? *e.ctx : SagaContext{});
      t.key("saga_id").str(e.saga_id);
      t.key("t").integer(e.now_ms);
      t.key("type").str("start");
      break;
    case Event::Type::Result:
      t.key("attempt").integer(e.attempt);
      t.key("comp").boolean(e.compensation);
      if (e.data.empty()) {
        t.key("data").null();
      } else {
        write(t.key("data"), e.data);
      }
      t.key("detail").str(e.detail);
      t.key("outcome").str(to_string(e.outcome));
      t.key("status").integer(e.status);
      t.key("step").integer(e.step);
      t.key("t").integer(e.now_ms);
      t.key("type").str("result");
      break;
    case Event::Type::Timer:
      t.key("attempt").integer(e.attempt);
      t.key("comp").boolean(e.compensation);
      t.key("step").integer(e.step);
      t.key("t").integer(e.now_ms);
      t.key("type").str("timer");
      break;
    case Event::Type::Recovered:
      t.key("t").integer(e.now_ms);
      t.key("type").str("recovered");
      break;
  }
  t.close('}');
  return out;
}

std::string snapshot_text(const SagaState& s, const SagaDefinition& def) {
  std::string out;
  out.reserve(1024 + 192 * s.attempts.size());
  Text t(out);
  int total = 0;  // forward attempts, counted as the attempts are written
  t.open('{');
  t.key("compensaciones").open('[');
  for (const auto& c : s.compensaciones) {
    t.element();
    t.str(c);
  }
  t.close(']');
  write(t.key("contexto"), s.ctx);
  optional_str(t.key("error"), s.error);
  t.key("error_status").integer(s.error_status);
  t.key("estado").str(to_string(s.estado));
  t.key("fin_ms").integer(s.finished_ms);
  t.key("inicio_ms").integer(s.started_ms);
  t.key("intentos").open('[');
  for (const auto& a : s.attempts) {
    if (!a.compensation) ++total;
    t.element();
    t.open('{');
    t.key("compensacion").boolean(a.compensation);
    t.key("detalle").str(a.detail);
    t.key("fin_ms").integer(a.ended_ms);
    t.key("inicio_ms").integer(a.started_ms);
    t.key("intento").integer(a.n);
    t.key("paso").str(def.steps[static_cast<std::size_t>(a.step)].name);
    t.key("resultado").str(a.outcome);
    t.key("status").integer(a.status);
    t.close('}');
  }
  t.close(']');
  t.key("intentos_realizados").integer(total);
  optional_str(t.key("paso_fallido"), s.paso_fallido);
  t.key("pasos").open('[');
  for (std::size_t i = 0; i < s.steps.size() && i < def.steps.size(); ++i) {
    t.element();
    t.open('{');
    t.key("estado").str(to_string(s.steps[i].status));
    t.key("intentos").integer(s.steps[i].attempts);
    t.key("intentos_compensacion").integer(s.steps[i].comp_attempts);
    t.key("paso").str(def.steps[i].name);
    t.key("servicio").str(def.steps[i].service);
    t.key("tipo").str(to_string(def.steps[i].kind));
    t.close('}');
  }
  t.close(']');
  t.key("saga_id").str(s.id);
  t.close('}');
  return out;
}

}  // namespace sagalab
