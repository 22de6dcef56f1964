// sagactl reset: every program back to its initial data, fault rules cleared.
#include <iostream>

#include "commands.hpp"

namespace sagactl {

void setup_reset(CLI::App& app, GlobalOptions& g) {
  auto* sub = app.add_subcommand("reset", "Put every program back to its initial data and clear fault rules");
  sub->footer("Refused (409) while sagas are still running: wait for them ('sagactl verify' waits).\n"
              "Examples:\n  sagactl reset\n  sagactl --gateway http://localhost --admin-token T reset");
  sub->callback([&g] { throw CliError(run_reset(g), ""); });
}

int run_reset(const GlobalOptions& g) {
  for (const auto& p : programs()) {
    call_ok(g, p, "DELETE", "/admin/faults", nullptr, true);
    call_ok(g, p, "POST", "/admin/reset", nullptr, true);
  }
  if (g.json) {
    print_json({{"reset", programs()}});
  } else {
    std::cout << "every program is back to its initial data; fault rules cleared\n";
  }
  return kExitOk;
}

}  // namespace sagactl
