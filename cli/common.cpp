// sagactl's shared helpers.
#include "common.hpp"

#include <chrono>
#include <thread>

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace sagactl {

int default_port(const std::string& program) {
  const auto& p = programs();
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == program) return 5000 + static_cast<int>(i);
  }
  return 0;
}

std::string url_variable(const std::string& program) {
  std::string s = program;
  for (auto& c : s) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s + "_URL";
}

std::string gateway_prefix(const std::string& program) {
  if (program == "orquestador") return "/orquestador";
  std::string s = program;
  for (auto& c : s) {
    if (c == '-') c = '_';
  }
  return "/" + s;
}

std::string stack_file(const GlobalOptions& g) { return g.stack_dir + "/stack.json"; }

std::optional<Json> read_stack(const GlobalOptions& g) {
  std::ifstream in(stack_file(g));
  if (!in) return std::nullopt;
  Json j = Json::parse(in, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool GlobalOptions::remote() const {
  if (!gateway.empty()) return true;
  for (const auto& [p, u] : urls) {
    if (!u.empty()) return true;
  }
  return false;
}

std::string base_url(const GlobalOptions& g, const std::string& program) {
  if (program == "proxy") {
    if (g.proxy.empty()) throw CliError(kExitUnreachable, "no proxy: give --proxy http://127.0.0.1:7070 or SAGACTL_PROXY");
    auto u = g.proxy;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  if (auto it = g.urls.find(program); it != g.urls.end() && !it->second.empty()) {
    auto u = it->second;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  if (g.remote() && g.gateway.empty())  // by URLs, and this one is missing
    throw CliError(kExitUnreachable, "no URL for " + program + ": with URLs, give all five (--" + program +
                                         "-url or " + url_variable(program) + ")");
  if (g.gateway == "traefik") {
    // The Traefik that `sagactl up --gateway traefik` started for the local stack.
    auto stack = read_stack(g);
    if (!stack || !stack->contains("gateway"))
      throw CliError(kExitUnreachable, "no Traefik gateway recorded in " + stack_file(g) +
                                           "; start one with 'sagactl up --gateway traefik'");
    return (*stack)["gateway"].get<std::string>() + gateway_prefix(program);
  }
  if (!g.gateway.empty()) {
    auto gw = g.gateway;
    while (!gw.empty() && gw.back() == '/') gw.pop_back();
    return gw + gateway_prefix(program);
  }
  int port = default_port(program);
  if (auto stack = read_stack(g)) {
    if (stack->contains("services") && (*stack)["services"].contains(program))
      port = (*stack)["services"][program].value("port", port);
  }
  return "http://127.0.0.1:" + std::to_string(port);
}

sagalab::HttpAnswer call(const GlobalOptions& g, const std::string& program, const std::string& method,
                     const std::string& path, const Json* body, bool admin, const httplib::Headers& extra) {
  httplib::Headers headers = extra;
  if (admin && !g.admin_token.empty()) headers.emplace("Authorization", "Bearer " + g.admin_token);
  auto url = base_url(g, program);
  auto r = sagalab::http_call(url, method, path, body, headers, g.timeout_ms);
  if (!r.answer)
    throw CliError(kExitUnreachable, "cannot reach " + program + " at " + url + " (" + r.error +
                                         "); is the stack up? try 'sagactl up' or --gateway");
  if (r.answer->status == 401)
    throw CliError(kExitUnreachable, program + " refused the admin call (401): pass --admin-token or set SAGA_ADMIN_TOKEN");
  return *r.answer;
}

Json call_ok(const GlobalOptions& g, const std::string& program, const std::string& method,
             const std::string& path, const Json* body, bool admin) {
  auto a = call(g, program, method, path, body, admin);
  if (a.status < 200 || a.status >= 300) {
    std::string err = a.body.is_object() && a.body.contains("error") ? a.body["error"].dump() : a.body.dump();
    throw CliError(kExitFailed, program + " answered " + std::to_string(a.status) + ": " + err);
  }
  return a.body;
}

bool color_enabled() {
  static const bool on = ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
  return on;
}

std::string paint(const std::string& text, const char* ansi) {
  if (!color_enabled()) return text;
  return std::string("\033[") + ansi + "m" + text + "\033[0m";
}

void print_json(const Json& j) { std::cout << j.dump(2) << std::endl; }

std::string estado_colour(const std::string& estado) {
  if (estado == "completada") return paint(estado, "32");
  if (estado == "compensada") return paint(estado, "33");
  if (estado == "atascada") return paint(estado, "31;1");
  return paint(estado, "36");
}

std::vector<std::string> faults_on_attempt(const Json& saga, const Json& attempt, const Json& fired) {
  // The attempt's service: its own field when the caller added one, else its step's.
  std::string service = attempt.value("servicio", "");
  if (service.empty()) {
    for (const auto& p : saga.value("pasos", Json::array())) {
      if (p.value("paso", "") == attempt.value("paso", "")) service = p.value("servicio", "");
    }
  }
  const bool comp = attempt.value("compensacion", false);
  std::vector<std::string> out;
  for (const auto& f : fired) {
    if (f.value("saga_id", "") != saga.value("saga_id", "") || f.value("attempt", 0) != attempt.value("intento", 0))
      continue;
    if ((f.value("endpoint", "") == "compensacion") != comp || f.value("servicio", "") != service) continue;
    out.push_back(f.value("action", ""));
  }
  return out;
}

Json random_fault_rules(double rate) {
  double p = rate / 4.0;
  return Json::array({{{"action", "error"}, {"status", 503}, {"probability", p}},
                      {{"action", "latency"}, {"latency_ms", 5}, {"jitter_ms", 20}, {"probability", p}},
                      {{"action", "commit-then-error"}, {"probability", p}},
                      {{"action", "commit-then-drop"}, {"probability", p}}});
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

double parse_duration(const std::string& text, const std::string& flag) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  double mult = unit.empty() || unit == "s" ? 1 : unit == "ms" ? 0.001 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (used == 0 || mult < 0 || !(v > 0) || v * mult > 1e9)
    throw CliError(kExitUnreachable, flag + ": expected a time such as 90 (seconds), 500ms, 60s, 5m or 1h, not '" + text + "'");
  return v * mult;
}

Json admin_call_waiting(const GlobalOptions& g, const std::string& program, const std::string& method,
                        const std::string& path, const Json* body, std::int64_t wait_ms) {
  auto deadline = sagalab::wall_ms() + wait_ms;
  while (true) {
    try {
      return call_ok(g, program, method, path, body, true);
    } catch (const CliError& e) {
      if (e.exit_code != kExitUnreachable || sagalab::wall_ms() > deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool wait_sagas_settled(const GlobalOptions& g, std::int64_t timeout_ms) {
  auto deadline = sagalab::wall_ms() + timeout_ms;
  while (true) {
    bool quiet = true;
    try {
      auto st = call(g, "orquestador", "GET", "/admin/state", nullptr, true);
      for (const auto& s : st.body.value("sagas", Json::array())) {
        auto e = s.value("estado", "");
        if (e != "completada" && e != "compensada") quiet = false;
      }
    } catch (const CliError&) {
      quiet = false;  // restarting
    }
    if (quiet) return true;
    if (sagalab::wall_ms() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // a continuation byte adds no column
  return n;
}

std::string pad_right(const std::string& s, std::size_t width) {
  auto w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

}  // namespace sagactl
