// sagactl explore on the trip fixture (tests/fixtures/trip_saga.cpp): with no
// fault written by hand it finds the buggy variant's planted bug (a lost answer
// taken as "nothing happened"), reports it with its minimal fault set, and the
// scenario it writes fails on the buggy variant and passes on the fixed one;
// the fixed variant passes every single fault and the pairs; the same seed
// makes the same experiments.
#include <catch2/catch.hpp>
#include <filesystem>

#include "process.hpp"
#include "trips.hpp"

using namespace testsupport;

namespace {

const std::string kTripSaga = std::string(SAGALAB_SOURCE_DIR) + "/tests/fixtures/trip.saga.yaml";

std::string workload(const TempDir& dir) {
  auto path = dir.path() + "/trip-workload.yaml";
  std::ofstream(path) << "upstream: trips\nrequest: POST /trips\nbody: {traveller: 't{n}'}\nsettle_ms: 50\n";
  return path;
}

// The experiments as (faults) lists, from explore's --json.
std::vector<std::string> experiments_of(const Json& out) {
  std::vector<std::string> v;
  for (const auto& e : out["experiments"]) v.push_back(e["faults"].dump());
  return v;
}

}  // namespace

TEST_CASE("sagactl explore finds the trip fixture's planted bug with no fault written by hand, and its scenario replays it") {
  TripsBehindConfig buggy("buggy");
  auto found = buggy.dir.path() + "/found";
  auto r = run_sagactl({"--json", "explore", "--config", buggy.config, "--saga", kTripSaga, "--workload",
                        workload(buggy.dir), "--max-faults", "1", "--latency-ms", "1200", "--partition-ms", "300",
                        "--scenarios", found});
  INFO(r.out);
  REQUIRE(r.code == 1);
  auto out = Json::parse(r.out);
  // Three steps' forward calls (flight, hotel, charge) times seven actions, after two clean runs.
  CHECK(out["runs"] == 2 + 3 * 7);
  // The planted bug: a 5xx after the upstream committed is taken as "nothing happened", so the step
  // is never compensated. One fault suffices: commit-then-error on each step's forward call.
  std::vector<std::string> minimal;
  std::string scenario;
  for (const auto& e : out["experiments"]) {
    if (e["passed"] || !e["reached"]) continue;
    REQUIRE(e["faults"].size() == 1);
    minimal.push_back(e["faults"][0]["step"].get<std::string>() + " " + e["faults"][0]["action"].get<std::string>());
    CHECK(e["violations"][0]["rule"] == "uncompensated-step");
    if (scenario.empty()) scenario = e["scenario"].get<std::string>();
  }
  std::sort(minimal.begin(), minimal.end());
  CHECK(minimal == std::vector<std::string>{"charge commit-then-error", "flight commit-then-error", "hotel commit-then-error"});
  bool violated_cell = false;
  for (const auto& c : out["map"])
    if (c["step"] == "hotel" && c["kind"] == "forward" && c["action"] == "commit-then-error") violated_cell = c["status"] == "violated";
  CHECK(violated_cell);
  // The scenario it wrote fails on the buggy stack...
  REQUIRE(std::filesystem::exists(scenario));
  auto again = run_sagactl({"run", scenario});
  INFO(again.out);
  CHECK(again.code == 1);
  CHECK(again.out.find("[uncompensated-step]") != std::string::npos);
  // ...and passes on the fixed one (the same proxy config, the fixed orchestrator behind it).
  buggy.trips->stop();
  Proc fixed("trip_saga",
             {"--flights", "http://127.0.0.1:" + std::to_string(buggy.listen["flights"]), "--hotels",
              "http://127.0.0.1:" + std::to_string(buggy.listen["hotels"]), "--payments",
              "http://127.0.0.1:" + std::to_string(buggy.listen["payments"]), "--variant", "fixed"},
             buggy.dir.path(), buggy.trips->port(), "orchestrator");
  REQUIRE(fixed.wait_healthy());
  auto replay = run_sagactl({"run", scenario});
  INFO(replay.out);
  CHECK(replay.code == 0);
}

TEST_CASE("sagactl explore passes the fixed trip fixture under every single fault and the pairs they lead to") {
  TripsBehindConfig fixed("fixed");
  auto r = run_sagactl({"--json", "explore", "--config", fixed.config, "--saga", kTripSaga, "--workload",
                        workload(fixed.dir), "--max-faults", "2", "--actions",
                        "error-5xx,error-4xx,commit-then-error,commit-then-drop,reset"});
  INFO(r.out.substr(0, 20000));
  CHECK(r.code == 0);
  auto out = Json::parse(r.out);
  CHECK(out["violating"] == 0);
  // Pairs ran (a refusal makes compensations appear, and a fault on each of those was tried).
  std::size_t pairs = 0;
  for (const auto& e : out["experiments"]) pairs += e["faults"].size() == 2;
  CHECK(pairs > 20);
  // Every cell of the map the saga can reach was reached: the forward calls and the compensations of
  // flight and hotel (charge, the last step, is never compensated after its own success).
  for (const auto& c : out["map"]) {
    INFO(c.dump());
    if (c["step"] == "charge" && c["kind"] == "compensation") continue;
    CHECK(c["status"] == "passed");
  }
}

TEST_CASE("sagactl explore with the same seed makes the same experiments, and refuses bad input with exit 2") {
  TripsBehindConfig fixed("fixed");
  auto wl = workload(fixed.dir);
  std::vector<std::string> args = {"--json", "explore", "--config", fixed.config, "--saga", kTripSaga, "--workload", wl,
                                   "--max-faults", "2", "--actions", "error-4xx,reset", "--seed", "7"};
  auto a = run_sagactl(args);
  auto b = run_sagactl(args);
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  auto ea = experiments_of(Json::parse(a.out)), eb = experiments_of(Json::parse(b.out));
  CHECK(ea.size() > 10);
  CHECK(ea == eb);
  // An unknown upstream in the workload, an unknown action, a description that does not match.
  auto bad = fixed.dir.path() + "/bad-workload.yaml";
  std::ofstream(bad) << "upstream: nowhere\nrequest: POST /trips\n";
  CHECK(run_sagactl({"explore", "--config", fixed.config, "--saga", kTripSaga, "--workload", bad}).code == 2);
  CHECK(run_sagactl({"explore", "--config", fixed.config, "--saga", kTripSaga, "--workload", wl, "--actions", "melt"}).code == 2);
  auto other = fixed.dir.path() + "/other.saga.yaml";
  std::ofstream(other) << "saga_id: header.X-Trip\nclient: {upstream: trips, request: POST /other, outcome: response.status, "
                          "success: confirmed, failure: cancelled}\nsteps:\n  - {name: x, upstream: hotels, forward: POST "
                          "/elsewhere, compensation: none, pivot: true}\n";
  auto none = run_sagactl({"explore", "--config", fixed.config, "--saga", other, "--workload", wl});
  CHECK(none.code == 2);
}

TEST_CASE("sagactl explore on our own stack through the proxy reaches every step and compensation it can, and passes") {
  TempDir stock_dir;  // enough stock for every experiment: a saga refused for stock would not reach its last steps
  auto stock = stock_dir.path() + "/stock.json";
  std::ofstream(stock) << R"({"LAPTOP":100000,"MOUSE":100000,"TECLADO":100000,"AURICULARES":100000,"MONITOR":100000})";
  Stack stack(fast_orchestrator(), {{"ms-inventario", {"--stock", stock}}});
  auto rec = stack.dir.path() + "/exchanges.jsonl";
  auto proxy_ptr = put_behind_proxy(stack, rec);
  auto& proxy = *proxy_ptr;
  auto wl = stack.dir.path() + "/buy.yaml";
  std::ofstream(wl) << "upstream: orquestador\nrequest: POST /compra\n"
                       "body: {usuario_id: 'u{n}', producto: 'Mouse Inalámbrico', monto: 25.99, cantidad: 1}\n"
                       "settle_ms: 150\n";
  auto r = run_sagactl({"--proxy", proxy.url(), "--json", "explore", "--saga",
                        std::string(SAGALAB_SOURCE_DIR) + "/deploy/saga/sagalab.yaml", "--workload", wl, "--max-faults",
                        "2", "--actions", "error-4xx,commit-then-error,reset"});
  INFO(r.out.substr(0, 20000));
  CHECK(r.code == 0);
  auto out = Json::parse(r.out);
  CHECK(out["violating"] == 0);
  std::map<std::string, std::string> cells;
  for (const auto& c : out["map"])
    cells[c["step"].get<std::string>() + " " + c["kind"].get<std::string>() + " " + c["action"].get<std::string>()] =
        c["status"];
  // Every step's forward call, under each action.
  for (const char* step : {"buscar_producto", "crear_compra", "reservar_stock", "cobrar_pago", "confirmar_compra"})
    for (const char* action : {"error-4xx", "commit-then-error", "reset"}) {
      INFO(step << " " << action);
      CHECK(cells[std::string(step) + " forward " + action] == "passed");
    }
  // The compensations a refusal makes appear (of the steps before the refused one), under each action.
  for (const char* step : {"crear_compra", "reservar_stock"})
    for (const char* action : {"error-4xx", "commit-then-error", "reset"}) {
      INFO(step << " " << action);
      CHECK(cells[std::string(step) + " compensation " + action] == "passed");
    }
}

TEST_CASE("sagactl explore with no proxy breaks our own stack natively: every step and compensation, the services' rules and the orchestrator's crash points") {
  TempDir dir;
  auto report = dir.path() + "/explore.html";
  auto r = run_sagactl({"--json", "explore", "--max-faults", "2", "--actions",
                        "error-4xx,commit-then-error,crash-after,orchestrator-crash-after", "--report", report});
  INFO(r.out.substr(0, 20000));
  REQUIRE(r.code == 0);
  auto out = Json::parse(r.out);
  CHECK(out["violating"] == 0);
  CHECK(out["saga"] == "sagalab purchase");
  std::map<std::string, std::string> cells;
  for (const auto& c : out["map"])
    cells[c["step"].get<std::string>() + " " + c["kind"].get<std::string>() + " " + c["action"].get<std::string>()] =
        c["status"];
  CHECK(cells.size() == 8 * 4);
  for (const char* step : {"buscar_producto", "crear_compra", "reservar_stock", "cobrar_pago", "confirmar_compra"})
    for (const char* action : {"error-4xx", "commit-then-error", "crash-after", "orchestrator-crash-after"}) {
      INFO(step << " " << action);
      CHECK(cells[std::string(step) + " forward " + action] == "passed");
    }
  // Each compensable step's compensation, reached in phase 2 (a fault on a later step makes it appear);
  // a saga-log crash point names a forward step only.
  for (const char* step : {"crear_compra", "reservar_stock", "cobrar_pago"}) {
    for (const char* action : {"error-4xx", "commit-then-error", "crash-after"}) {
      INFO(step << " " << action);
      CHECK(cells[std::string(step) + " compensation " + action] == "passed");
    }
    CHECK(cells[std::string(step) + " compensation orchestrator-crash-after"] == "not applicable");
  }
  // Every fault on a first attempt fired: the rules hit their exchange. (Whether a retry happens
  // again, and how often, can depend on how fast a crashed service came back.)
  std::size_t unreached = 0;
  for (const auto& e : out["experiments"])
    for (const auto& f : e["faults"]) unreached += !f["fired"].get<bool>() && f["attempt"] == 1;
  CHECK(unreached == 0);
  std::ifstream html(report);
  std::string page((std::istreambuf_iterator<char>(html)), {});
  CHECK(page.find("id='coverage'") != std::string::npos);
  CHECK(page.find("PASS") != std::string::npos);
}

TEST_CASE("sagactl explore refuses a description without a proxy, and an unknown action of our own stack, with exit 2") {
  auto a = run_command(shell_quote(bin("sagactl")) + " explore --saga " + SAGALAB_SOURCE_DIR + "/deploy/saga/sagalab.yaml");
  CHECK(a.code == 2);
  CHECK(a.out.find("--config") != std::string::npos);
  auto b = run_command(shell_quote(bin("sagactl")) + " explore --actions partition");  // a proxy's action
  CHECK(b.code == 2);
  CHECK(b.out.find("orchestrator-crash-after") != std::string::npos);
}
