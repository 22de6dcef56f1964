// The five programs' names (no I/O: the scenario parser links this alone).
#include "sagalab/programs.hpp"

#include <cctype>

namespace sagactl {

const std::vector<std::string>& programs() {
  static const std::vector<std::string> p = {"orquestador", "ms-catalogo", "ms-compras", "ms-pagos",
                                             "ms-inventario"};
  return p;
}

std::string canonical_program(const std::string& name) {
  std::string n = name;
  for (auto& c : n) c = (c == '_') ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "orchestrator" || n == "orquestador" || n == "orq") return "orquestador";
  if (n.rfind("ms-", 0) != 0) n = "ms-" + n;
  for (const auto& p : programs()) {
    if (p == n) return p;
  }
  throw CliError(kExitUnreachable, "unknown service '" + name +
                                       "'; expected one of: orquestador, catalogo, compras, pagos, inventario");
}

}  // namespace sagactl
