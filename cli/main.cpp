// sagactl: start the local stack, buy, break services, verify, inspect.
#include <iostream>

#include "commands.hpp"
#include "stack.hpp"

int main(int argc, char** argv) {
  using namespace sagactl;
  CLI::App app{"sagactl: drive a sagalab stack: start it, buy, inject faults, verify the saga invariants",
               "sagactl"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags such as --json may follow the subcommand
  app.footer(
      "Examples:\n  sagactl up\n  sagactl buy --user ana --product laptop\n"
      "  sagactl inject-fault pagos --action commit-then-error --endpoint transaccion --times 1\n"
      "  sagactl verify\n  sagactl down\n"
      "  sagactl proxy --upstream 'pagos=127.0.0.1:7003->http://127.0.0.1:5003' --record x.jsonl\n"
      "  sagactl check x.jsonl --saga deploy/saga/sagalab.yaml\n"
      "  sagactl explore --config proxy.yaml --saga my-saga.yaml --workload buy.yaml\n\nEvery read command takes --json.");
  GlobalOptions g;
  app.add_option("--gateway", g.gateway, "reach a stack behind Traefik, e.g. http://localhost")
      ->envname("SAGACTL_GATEWAY");
  for (const auto& p : programs()) {
    app.add_option("--" + p + "-url", g.urls[p], "reach " + p + " at this base URL (containers, another host)")
        ->envname(url_variable(p))
        ->group("Stack by URLs");
  }
  app.add_option("--proxy", g.proxy, "the admin URL of a sagactl proxy: inject-fault and faults act on its rules")
      ->envname("SAGACTL_PROXY");
  app.add_option("--admin-token", g.admin_token, "bearer token for /admin/*")->envname("SAGA_ADMIN_TOKEN");
  app.add_option("--stack-dir", g.stack_dir, "where the local stack keeps data, logs and its record")
      ->envname("SAGACTL_STACK_DIR")
      ->capture_default_str();
  app.add_option("--timeout-ms", g.timeout_ms, "timeout of each HTTP call")->capture_default_str();
  app.add_flag("--json", g.json, "machine-readable output");
  setup_up(app, g);
  setup_down(app, g);
  setup_status(app, g);
  setup_logs(app, g);
  setup_buy(app, g);
  setup_inject_fault(app, g);
  setup_faults(app, g);
  setup_verify(app, g);
  setup_sagas(app, g);
  setup_show(app, g);
  setup_reset(app, g);
  setup_run(app, g);
  setup_simulate(app, g);
  setup_bench(app, g);
  setup_top(app, g);
  setup_proxy(app, g);
  setup_check(app, g);
  setup_explore(app, g);
  setup_rules(app, g);
  // The first word that is not a global option (or its value) must be a command.
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.rfind("-", 0) == 0) {
      auto* opt = a.find('=') == std::string::npos ? app.get_option_no_throw(a) : nullptr;
      if (opt && opt->get_expected_min() > 0) ++i;  // its value
      continue;
    }
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known = known || sub->check_name(a);
    if (!known) {
      std::string all;
      for (const auto* sub : app.get_subcommands({})) all += (all.empty() ? "" : ", ") + sub->get_name();
      std::cerr << "sagactl: unknown command '" << a << "'; the commands are: " << all << " (sagactl --help)\n";
      return kExitUnreachable;
    }
    break;
  }
  // With --json, an error is also a JSON object on stdout (the exit code is the same).
  auto fail = [&](const std::string& what, int code) {
    if (!what.empty()) std::cerr << "sagactl: " << what << "\n";
    if (g.json && !what.empty()) std::cout << sagalab::Json{{"error", what}, {"exit_code", code}}.dump() << "\n";
    return code;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUnreachable;
  } catch (const CliError& e) {
    return fail(e.what(), e.exit_code);
  } catch (const std::exception& e) {
    return fail(e.what(), kExitFailed);
  }
  return kExitOk;
}
