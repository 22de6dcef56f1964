// Fuzzes scenario-file parsing: any text is either a scenario or a clear
// error (exit code 2 with a message), never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#include "sagalab/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/sagalab-fuzz-scenario-" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    auto s = sagactl::load_scenario(path);
    sagactl::emit_scenario(s);
  } catch (const sagactl::CliError& e) {
    if (e.exit_code != sagactl::kExitUnreachable || std::string(e.what()).empty()) std::abort();
  }
  return 0;
}
