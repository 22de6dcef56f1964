// sagactl buy: one purchase through the orchestrator, its outcome and steps.
#include <iostream>

#include "commands.hpp"

namespace sagactl {

void setup_buy(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<BuyOptions>();
  auto* sub = app.add_subcommand("buy", "Run one purchase as a saga and show how it ended");
  sub->footer(
      "Examples:\n  sagactl buy --user ana --product laptop\n  sagactl buy --product prod_002 --qty 3 "
      "--idempotency-key order-17\n\nExit status: 0 completed, 1 compensated or refused, 2 stack unreachable.");
  sub->add_option("--user", o->user, "usuario_id")->capture_default_str();
  sub->add_option("--product", o->product, "product name or id (default: one picked at random)");
  sub->add_option("--qty", o->qty, "cantidad")->check(CLI::Range(1, 100))->capture_default_str();
  sub->add_option("--monto", o->monto, "amount the client expects (refused if it disagrees with the catalog)");
  sub->add_option("--idempotency-key", o->idempotency_key, "repeat-safe key: the same key returns the first result");
  sub->add_flag("--async", o->async, "return at once with the saga id");
  sub->callback([&g, o] { throw CliError(run_buy(g, *o), ""); });
}

int run_buy(const GlobalOptions& g, const BuyOptions& o) {
  Json body{{"usuario_id", o.user}, {"cantidad", o.qty}};
  if (!o.product.empty()) body["producto"] = o.product;
  if (o.monto >= 0) body["monto"] = o.monto;
  httplib::Headers h;
  if (!o.idempotency_key.empty()) h.emplace("Idempotency-Key", o.idempotency_key);
  sagalab::HttpAnswer a;
  try {
    a = call(g, "orquestador", "POST", o.async ? "/compra?async=true" : "/compra", &body, false, h);
  } catch (const CliError& e) {
    // A stack that is up but whose orchestrator did not answer: it may have crashed mid-saga (the
    // supervisor restarts it, and recovery finishes the saga). Say how to learn the outcome.
    auto stack = g.remote() ? std::nullopt : read_stack(g);
    if (e.exit_code != kExitUnreachable || !stack) throw;
    throw CliError(kExitUnreachable,
                   std::string("the orchestrator did not answer, although the stack is up (it may have crashed; the "
                               "supervisor restarts it and recovery finishes the saga): ") +
                       (o.idempotency_key.empty()
                            ? "see 'sagactl sagas' (next time give --idempotency-key K: repeating the purchase with "
                              "it returns the first one's outcome)"
                            : "repeat 'sagactl buy ... --idempotency-key " + o.idempotency_key +
                                  "': it returns this purchase's outcome, not a second purchase"));
  }
  const auto& b = a.body;
  bool completed = a.status == 200 && b.value("estado", "") == "completada";
  if (g.json) {
    print_json({{"http_status", a.status}, {"respuesta", b}});
    return completed || (o.async && a.status == 202) ? kExitOk : kExitFailed;
  }
  if (a.status == 400 && !b.contains("saga_id"))
    throw CliError(kExitFailed, "refused: " + b.value("error", std::string("bad request")));
  auto estado = b.value("estado", std::string("?"));
  std::cout << "saga " << b.value("saga_id", std::string("?")) << ": " << estado_colour(estado) << " (HTTP "
            << a.status << ")\n";
  if (completed) {
    const auto& d = b["datos"];
    std::cout << "  " << d["producto"].value("nombre", "") << " x" << d.value("cantidad", 1) << " = " << d["monto"]
              << "  compra " << d["compra_id"].get<std::string>() << ", reserva "
              << d["reserva_id"].get<std::string>() << ", pago " << d["pago_id"].get<std::string>() << "\n";
  } else if (b.contains("error")) {
    std::cout << "  " << b.value("error", std::string()) << "\n";
    if (!b["paso_fallido"].is_null()) std::cout << "  failed step: " << b["paso_fallido"].get<std::string>() << "\n";
    if (b.contains("compensaciones") && !b["compensaciones"].empty())
      std::cout << "  compensated: " << b["compensaciones"].dump() << "\n";
  } else if (b.contains("mensaje")) {
    std::cout << "  " << b["mensaje"].get<std::string>() << "\n";
  }
  if (b.contains("saga_id") && a.status != 202) {
    try {
      auto saga = call_ok(g, "orquestador", "GET", "/sagas/" + b["saga_id"].get<std::string>());
      std::cout << render_timeline(saga, Json::array());
    } catch (const CliError&) {
      // The outcome above is what matters; the timeline is a bonus.
    }
  }
  return completed || (o.async && a.status == 202) ? kExitOk : kExitFailed;
}

}  // namespace sagactl
