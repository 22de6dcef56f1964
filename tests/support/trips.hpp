// The trip fixture (tests/fixtures/trip_saga.cpp) behind a proxy config: its
// services, its orchestrator pointed at the proxy's listen ports (free now),
// and the config a `sagactl run --proxy` or `sagactl explore --config` starts
// the proxy from.
#pragma once

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace testsupport {

struct TripsBehindConfig {
  TempDir dir;
  std::vector<std::unique_ptr<Proc>> services;
  std::unique_ptr<Proc> trips;
  std::map<std::string, int> listen;
  std::string config;

  explicit TripsBehindConfig(const std::string& variant) : config(dir.path() + "/trips-proxy.yaml") {
    for (const char* n : {"flights", "hotels", "payments", "trips"}) listen[n] = free_port();
    for (const char* n : {"flights", "hotels", "payments"}) {
      services.push_back(std::make_unique<Proc>("trip_saga", std::vector<std::string>{"--name", n}, dir.path(), 0,
                                                "service"));
      services.back()->wait_healthy();
    }
    auto at = [&](const std::string& n) { return "http://127.0.0.1:" + std::to_string(listen[n]); };
    trips = std::make_unique<Proc>(
        "trip_saga",
        std::vector<std::string>{"--flights", at("flights"), "--hotels", at("hotels"), "--payments", at("payments"),
                                 "--variant", variant},
        dir.path(), free_port(), "orchestrator");
    trips->wait_healthy();
    std::ofstream(config) << "admin: 127.0.0.1:0\nupstreams:\n"
                          << "  - {name: flights, listen: '127.0.0.1:" << listen["flights"] << "', url: '"
                          << services[0]->url() << "'}\n"
                          << "  - {name: hotels, listen: '127.0.0.1:" << listen["hotels"] << "', url: '"
                          << services[1]->url() << "'}\n"
                          << "  - {name: payments, listen: '127.0.0.1:" << listen["payments"] << "', url: '"
                          << services[2]->url() << "'}\n"
                          << "  - {name: trips, listen: '127.0.0.1:" << listen["trips"] << "', url: '" << trips->url()
                          << "'}\n";
  }
};

}  // namespace testsupport
