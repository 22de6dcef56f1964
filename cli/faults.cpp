// sagactl inject-fault / faults: add, list and clear fault rules on a program.
#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "sagalab/purchase.hpp"
#include "sagalab/faults.hpp"
#include "sagalab/proxy.hpp"

namespace sagactl {

void setup_inject_fault(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<InjectOptions>();
  auto* sub = app.add_subcommand("inject-fault", "Add a fault rule to a service (or the orchestrator)");
  sub->footer(
      "Actions: error, latency, hang, commit-then-error, commit-then-drop, crash-before, crash-after.\n"
      "Examples:\n  sagactl inject-fault pagos --action commit-then-error --endpoint transaccion --times 1\n"
      "  sagactl inject-fault inventario --action latency --latency-ms 200 --jitter-ms 50 --probability 0.3\n"
      "  sagactl inject-fault orquestador --action crash --endpoint log:cobrar_pago:after\n"
      "Through a sagactl proxy (--proxy URL), the service is an upstream's name and the proxy's actions\n"
      "reset, partition and slow-body are added:\n"
      "  sagactl --proxy http://127.0.0.1:7070 inject-fault hotels --action commit-then-error --method POST "
      "--path '/bookings*'");
  auto opt = std::make_shared<std::map<std::string, std::string>>();
  sub->add_option("service", o->service,
                  "catalogo, compras, pagos, inventario or orquestador; with --proxy an upstream's name or '*'")
      ->required();
  std::vector<std::string> actions = sagalab::fault_action_names();
  actions.push_back("crash");  // the same as crash-before
  for (const auto& a : sagalab::proxy::action_names())
    if (std::find(actions.begin(), actions.end(), a) == actions.end()) actions.push_back(a);
  sub->add_option("--action", (*opt)["action"],
                  "what the fault does: error (answer --status before any effect), latency (delay, then serve), "
                  "hang (hold past the caller's timeout, then serve), commit-then-error (apply, then answer "
                  "--status), commit-then-drop (apply, then close the connection unanswered), crash-before / "
                  "crash-after (the process dies before / after applying; crash is crash-before; at the "
                  "orchestrator's log:<step>:before|after only these apply); through --proxy also reset, "
                  "partition, slow-body")
      ->required()
      ->type_name([&] {
        std::string t;
        for (const auto& a : actions) t += (t.empty() ? "{" : ",") + a;
        return t + "}";
      }());
  struct Field {
    const char* flag;
    const char* type;
    const char* help;
  };
  for (const Field& f : std::initializer_list<Field>{
           {"endpoint", "TEXT",
            "the endpoint it hits: transaccion, compensacion, confirmacion, buscar, ...; for the orchestrator "
            "compra or log:<step>:before|after (default: every endpoint)"},
           {"status", "INT", "HTTP status of error and commit-then-error, 400-599 (default 500)"},
           {"message", "TEXT", "the error text answered (default \"fallo inyectado\")"},
           {"latency-ms", "INT", "latency: added delay in milliseconds (default 0)"},
           {"jitter-ms", "INT", "latency: up to this many random extra milliseconds (default 0)"},
           {"duration-ms", "INT", "hang: how long to hold the request, in milliseconds (default 30000)"},
           {"probability", "FLOAT", "chance that a matching request meets the fault, 0 to 1 (default 1)"},
           {"times", "INT", "fire at most this many times (default: no limit)"},
           {"saga", "TEXT", "only requests of this saga id (default: every saga)"},
           {"attempts", "INT,...", "only these attempt numbers, e.g. 1,2 (default: every attempt)"},
           {"name", "TEXT", "a name for the rule, shown where it fires"},
           {"method", "TEXT", "proxy: only this HTTP method"},
           {"path", "GLOB", "proxy: only paths matching this glob (* matches any characters)"},
           {"header", "NAME=VALUE", "proxy: only requests with this header value"},
           {"body-field", "FIELD=VALUE", "proxy: only JSON bodies whose (dotted) field has this value"}}) {
    sub->add_option(std::string("--") + f.flag, (*opt)[f.flag], f.help)->type_name(f.type);
  }
  sub->callback([&g, o, opt] {
    auto& r = o->rule;
    auto num = [&](const std::string& k, const std::string& field) {
      const auto& v = (*opt)[k];
      if (v.empty()) return;
      try {
        std::size_t pos = 0;
        if (field == "probability") {
          r[field] = std::stod(v, &pos);
        } else {
          r[field] = std::stoll(v, &pos);
        }
        if (pos != v.size()) throw std::invalid_argument(v);
      } catch (const std::exception&) {
        throw CliError(kExitUnreachable, "--" + k + " must be a number, not '" + v + "'");
      }
    };
    r["action"] = (*opt)["action"];
    if (!(*opt)["endpoint"].empty()) r["endpoint"] = (*opt)["endpoint"];
    if (!(*opt)["message"].empty()) r["message"] = (*opt)["message"];
    if (!(*opt)["name"].empty()) r["name"] = (*opt)["name"];
    if (!(*opt)["saga"].empty()) r["saga_id"] = (*opt)["saga"];
    if (!(*opt)["method"].empty()) r["method"] = (*opt)["method"];
    if (!(*opt)["path"].empty()) r["path"] = (*opt)["path"];
    auto pair = [&](const char* flag, const char* name_key, const char* value_key) {
      const auto& v = (*opt)[flag];
      if (v.empty()) return;
      auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0)
        throw CliError(kExitUnreachable, std::string("--") + flag + " takes NAME=VALUE, not '" + v + "'");
      r[name_key] = v.substr(0, eq);
      r[value_key] = v.substr(eq + 1);
    };
    pair("header", "header_name", "header_value");
    pair("body-field", "body_field", "body_value");
    num("status", "status");
    num("latency-ms", "latency_ms");
    num("jitter-ms", "jitter_ms");
    num("duration-ms", "duration_ms");
    num("probability", "probability");
    num("times", "times");
    if (!(*opt)["attempts"].empty()) {
      Json arr = Json::array();
      std::stringstream ss((*opt)["attempts"]);
      std::string item;
      while (std::getline(ss, item, ',')) {
        try {
          arr.push_back(std::stoi(item));
        } catch (const std::exception&) {
          throw CliError(kExitUnreachable, "--attempts takes numbers separated by commas, e.g. 1,2");
        }
      }
      r["attempts"] = arr;
    }
    throw CliError(run_inject_fault(g, *o), "");
  });
}

int run_inject_fault(const GlobalOptions& g, const InjectOptions& o) {
  auto action = o.rule.value("action", std::string());
  Json rule = o.rule;
  std::string program, where;
  if (!g.proxy.empty()) {
    // Through the proxy: the rule names its upstream; the proxy checks the action and the upstream.
    if (o.service != "*") rule["upstream"] = o.service;
    program = "proxy";
    where = "the proxy, upstream " + o.service;
  } else {
    for (const auto& [key, flag] : std::initializer_list<std::pair<const char*, const char*>>{
             {"method", "method"}, {"path", "path"}, {"header_name", "header"}, {"body_field", "body-field"}})
      if (o.rule.contains(key))
        throw CliError(kExitUnreachable, std::string("--") + flag + " matches only through a proxy: give --proxy URL");
    program = where = canonical_program(o.service);
    if (action != "crash" && !sagalab::fault_action_from_string(action)) {
      auto& px = sagalab::proxy::action_names();
      if (std::find(px.begin(), px.end(), action) != px.end())
        throw CliError(kExitUnreachable, "'" + action + "' is a proxy action: put a sagactl proxy in front of " +
                                             program + " and give --proxy URL");
      std::string all;
      for (const auto& n : sagalab::fault_action_names()) all += " " + n;
      throw CliError(kExitUnreachable, "unknown action '" + action + "'; expected one of:" + all);
    }
    // The checks the program makes (values, its endpoints), here: no stack needed to be told.
    try {
      sagalab::parse_fault_rule(rule, sagalab::fault_endpoints(program));
    } catch (const std::exception& e) {
      // "fault rule field 'latency_ms' must ..." -> "--latency-ms must ...": the flag the user typed.
      std::string msg = e.what();
      const std::string lead = "fault rule field '";
      if (auto at = msg.find(lead); at == 0 && msg.find('\'', lead.size()) != std::string::npos) {
        auto end = msg.find('\'', lead.size());
        auto field = msg.substr(lead.size(), end - lead.size());
        std::replace(field.begin(), field.end(), '_', '-');
        msg = "--" + (field == "saga-id" ? std::string("saga") : field) + msg.substr(end + 1);
      }
      throw CliError(kExitUnreachable, msg + " (nothing was sent to " + program + ")");
    }
  }
  auto a = call(g, program, "POST", "/admin/faults", &rule, true);
  if (a.status != 201)
    throw CliError(kExitFailed, (program == "proxy" ? std::string("the proxy") : program) +
                                    " refused the rule: " + a.body.value("error", a.body.dump()));
  if (g.json) {
    Json out = {{"service", program}, {"ids", a.body["ids"]}, {"rule", rule}};
    if (program == "proxy") out["upstream"] = o.service;
    print_json(out);
  } else {
    std::cout << "fault rule " << a.body["ids"][0] << " on " << where << ": " << rule.dump() << "\n";
  }
  return kExitOk;
}

void setup_faults(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<FaultsOptions>();
  auto* sub = app.add_subcommand("faults", "List or clear fault rules (all programs, or one)");
  sub->footer("Examples:\n  sagactl faults\n  sagactl faults list pagos\n  sagactl faults clear\n  sagactl faults fired");
  sub->add_option("verb", o->verb, "list (default), clear or fired")->check(CLI::IsMember({"list", "clear", "fired"}));
  sub->add_option("service", o->service, "one program (default: all five)");
  sub->callback([&g, o] { throw CliError(run_faults(g, *o), ""); });
}

int run_faults(const GlobalOptions& g, const FaultsOptions& o) {
  std::vector<std::string> which;
  if (!g.proxy.empty()) {
    which.push_back("proxy");
  } else if (o.service.empty()) {
    which = programs();
  } else {
    which.push_back(canonical_program(o.service));
  }
  Json out = Json::object();
  for (const auto& p : which) {
    if (o.verb == "clear") {
      call_ok(g, p, "DELETE", "/admin/faults", nullptr, true);
      out[p] = "cleared";
    } else if (o.verb == "fired") {
      out[p] = call_ok(g, p, "GET", "/admin/faults/fired", nullptr, true)["fired"];
    } else {
      out[p] = call_ok(g, p, "GET", "/admin/faults", nullptr, true)["rules"];
    }
  }
  if (g.json) {
    print_json(out);
    return kExitOk;
  }
  for (const auto& [p, v] : out.items()) {
    if (v.is_string()) {
      std::cout << p << ": " << v.get<std::string>() << "\n";
      continue;
    }
    std::cout << paint(p, "1") << ": " << (v.empty() ? "none" : "") << "\n";
    for (const auto& r : v) {
      if (o.verb == "fired" && r.contains("upstream")) {  // a proxy's: where, and what each side really got
        std::cout << "  rule " << r["rule_id"] << " " << r["action"].get<std::string>() << " at "
                  << r["upstream"].get<std::string>() << " " << r["method"].get<std::string>() << " "
                  << r["path"].get<std::string>() << " saga "
                  << (r["saga_id"].is_string() ? r["saga_id"].get<std::string>() : std::string("(none named)"))
                  << " attempt " << r["attempt"] << ": " << r["outcome"].get<std::string>() << "\n";
      } else if (o.verb == "fired") {
        std::cout << "  rule " << r["rule_id"] << " " << r["action"].get<std::string>() << " on "
                  << r["endpoint"].get<std::string>() << " saga " << r["saga_id"].get<std::string>() << " attempt "
                  << r["attempt"] << "\n";
      } else {
        std::cout << "  [" << r["id"] << "] " << r["action"].get<std::string>() << " endpoint="
                  << (r["endpoint"].is_null() ? "*" : r["endpoint"].get<std::string>());
        for (const char* k : {"upstream", "method", "path", "header_name", "body_field"})  // a proxy's rule
          if (r.contains(k) && r[k].is_string()) std::cout << " " << k << "=" << r[k].get<std::string>();
        std::cout << " p=" << r["probability"]
                  << " times=" << (r["times"].is_null() ? "∞" : r["times"].dump()) << " fired=" << r["fired"] << "\n";
      }
    }
  }
  return kExitOk;
}

}  // namespace sagactl
