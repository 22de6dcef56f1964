// sagactl sagas / show: list sagas, and draw one saga's timeline: each step
// and attempt on a time axis, faults marked, compensations apart.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.hpp"

namespace sagactl {

void setup_sagas(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<SagasOptions>();
  auto* sub = app.add_subcommand("sagas", "List sagas, optionally by state");
  sub->footer("Examples:\n  sagactl sagas\n  sagactl sagas --state compensada --limit 5 --json");
  sub->add_option("--state", o->state, "en_curso, completada, compensando, compensada or atascada")
      ->check(CLI::IsMember({"en_curso", "completada", "compensando", "compensada", "atascada"}));
  sub->add_option("--limit", o->limit, "at most this many")->check(CLI::Range(1, 10000))->capture_default_str();
  sub->callback([&g, o] { throw CliError(run_sagas(g, *o), ""); });
}

int run_sagas(const GlobalOptions& g, const SagasOptions& o) {
  std::string path = "/sagas?limit=" + std::to_string(o.limit);
  if (!o.state.empty()) path += "&estado=" + o.state;
  auto body = call_ok(g, "orquestador", "GET", path);
  if (g.json) {
    print_json(body);
    return kExitOk;
  }
  std::printf("%-22s %-12s %-18s %-22s %s\n", "SAGA", "STATE", "FAILED STEP", "PRODUCT", "ATTEMPTS");
  for (const auto& s : body["sagas"]) {
    auto estado = s.value("estado", "");
    std::string pad(estado.size() < 12 ? 12 - estado.size() : 0, ' ');
    const auto& ctx = s["contexto"];
    std::string product = ctx.contains("producto") ? ctx["producto"].value("nombre", "") : ctx.value("producto_solicitado", "");
    std::printf("%-22s %s%s %-18s %s %d\n", s.value("saga_id", "").c_str(), estado_colour(estado).c_str(),
                pad.c_str(), s["paso_fallido"].is_null() ? "-" : s["paso_fallido"].get<std::string>().c_str(),
                pad_right(product, 22).c_str(), s.value("intentos_realizados", 0));
  }
  return kExitOk;
}

std::string render_timeline(const Json& saga, const Json& fired, int width) {
  std::ostringstream out;
  auto t0 = saga.value("inicio_ms", std::int64_t{0});
  std::int64_t t1 = t0 + 1;
  for (const auto& a : saga["intentos"]) t1 = std::max({t1, a.value("fin_ms", t0), a.value("inicio_ms", t0)});
  double span = static_cast<double>(t1 - t0);
  out << "  " << std::string(22, ' ') << "0 ms" << std::string(static_cast<std::size_t>(width) - 4, ' ')
      << (t1 - t0) << " ms\n";
  for (const auto& a : saga["intentos"]) {
    bool comp = a.value("compensacion", false);
    auto step = a.value("paso", "");
    auto begin = a.value("inicio_ms", t0) - t0;
    auto end = a.value("fin_ms", std::int64_t{-1});
    end = end < 0 ? t1 - t0 : end - t0;
    auto col = [&](std::int64_t t) {
      return std::clamp(static_cast<int>(static_cast<double>(t) / span * width), 0, width - 1);
    };
    int c0 = col(begin), c1 = std::max(col(end), c0);
    std::string bar(static_cast<std::size_t>(c0), ' ');
    bar += std::string(static_cast<std::size_t>(c1 - c0 + 1), '#');
    bar += std::string(static_cast<std::size_t>(width - c1 - 1), ' ');
    auto outcome = a.value("resultado", "");
    const char* colour = outcome == "ok" ? (comp ? "35" : "32") : outcome == "failed" ? "31" : "33";
    char label[64];
    std::snprintf(label, sizeof label, "%s%-18s #%d", comp ? "↩ " : "  ", step.c_str(), a.value("intento", 0));
    out << "  " << label << " |" << paint(bar, colour) << "| " << paint(outcome, colour);
    if (a.value("status", 0) != 0) out << " " << a["status"];
    out << " " << (end - begin) << "ms";
    if (!a.value("detalle", "").empty()) out << "  " << a["detalle"].get<std::string>();
    for (const auto& action : faults_on_attempt(saga, a, fired)) out << "  " << paint("⚡ " + action, "31;1");
    out << "\n";
  }
  return out.str();
}

void setup_show(CLI::App& app, GlobalOptions& g) {
  auto id = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("show", "Show one saga: state, steps and a timeline of every attempt");
  sub->footer("Example:\n  sagactl show saga_3f2a9c1d0b7e4411");
  sub->add_option("saga-id", *id, "the saga's id")->required();
  sub->callback([&g, id] { throw CliError(run_show(g, *id), ""); });
}

int run_show(const GlobalOptions& g, const std::string& saga_id) {
  auto a = call(g, "orquestador", "GET", "/sagas/" + saga_id);
  if (a.status == 404) throw CliError(kExitFailed, "no saga '" + saga_id + "'; list them with 'sagactl sagas'");
  if (a.status != 200) throw CliError(kExitFailed, "orquestador answered " + std::to_string(a.status));
  Json saga = a.body;
  // Faults fired at the services for this saga, to mark them on the timeline.
  Json fired = Json::array();
  std::map<std::string, std::string> service_of_step;
  for (const auto& p : saga["pasos"]) service_of_step[p.value("paso", "")] = p.value("servicio", "");
  for (const auto& p : programs()) {
    auto r = call(g, p, "GET", "/admin/faults/fired", nullptr, true);
    if (r.status != 200) continue;
    for (auto f : r.body["fired"]) {
      if (f.value("saga_id", "") != saga_id) continue;
      f["servicio"] = p;
      fired.push_back(f);
    }
  }
  for (auto& at : saga["intentos"]) at["servicio"] = service_of_step[at.value("paso", "")];
  if (g.json) {
    saga["fallos"] = fired;
    print_json(saga);
    return kExitOk;
  }
  auto estado = saga.value("estado", "");
  std::cout << "saga " << saga_id << "  " << estado_colour(estado);
  if (!saga["paso_fallido"].is_null()) std::cout << "  failed step: " << saga["paso_fallido"].get<std::string>();
  std::cout << "\n";
  if (!saga["error"].is_null()) std::cout << "  error: " << saga["error"].get<std::string>() << "\n";
  const auto& ctx = saga["contexto"];
  std::cout << "  user " << ctx.value("usuario_id", "") << ", product "
            << (ctx.contains("producto") ? ctx["producto"].value("nombre", "") : ctx.value("producto_solicitado", "?"))
            << " x" << ctx.value("cantidad", 1) << "\n\n";
  std::cout << render_timeline(saga, fired);
  if (!saga["compensaciones"].empty()) std::cout << "\n  compensated, in order: " << saga["compensaciones"].dump() << "\n";
  return kExitOk;
}

}  // namespace sagactl
