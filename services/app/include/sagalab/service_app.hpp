// The program around one domain service: flags, store, routes, faults, serve.
#pragma once

#include <functional>
#include <memory>

#include "sagalab/domain.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/sqlite_store.hpp"

namespace sagalab {

struct ServiceSpec {
  std::string program;  // "ms-compras"
  int default_port = 0;
  std::string description;
  // Adds the service's own flags (e.g. --catalog) to the app.
  std::function<void(CLI::App&)> add_options;
  // Builds the logic once flags are parsed; throws std::invalid_argument on bad data files.
  std::function<std::unique_ptr<ServiceLogic>()> make_logic;
};

// Registers the service's endpoints, /health and the admin routes.
void register_routes(HttpServer& srv, ServiceLogic& logic, AsyncStore& store, FaultGate& faults);

int run_service(int argc, char** argv, const ServiceSpec& spec);

// Reads a JSON file; throws std::invalid_argument naming the file.
Json read_json_file(const std::string& path);

}  // namespace sagalab
