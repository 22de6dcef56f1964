// Fault rules: strict parsing, matching, and seeded determinism.
#include <catch2/catch.hpp>

#include "sagalab/errors.hpp"
#include "sagalab/faults.hpp"
#include "sagalab/json_codec.hpp"

using namespace sagalab;

namespace {
const std::vector<std::string> kEndpoints = {"transaccion", "compensacion", "confirmacion"};

std::string error_of(const Json& j) {
  try {
    parse_fault_rule(j, kEndpoints);
  } catch (const ClientError& e) {
    CHECK(e.status() == 400);
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a fault rule parses from the documented JSON", "[faults]") {
  auto r = parse_fault_rule(Json::parse(R"({"action":"commit-then-error","endpoint":"transaccion","status":500,
      "latency_ms":0,"jitter_ms":0,"duration_ms":0,"probability":1.0,"times":1,"saga_id":null,"attempts":[1,2],
      "name":"pagos-ambiguous"})"),
                            kEndpoints);
  CHECK(r.action == FaultAction::CommitThenError);
  CHECK(r.endpoint == "transaccion");
  CHECK(r.times == 1);
  CHECK(r.attempts == std::vector<int>{1, 2});
  CHECK(r.name == "pagos-ambiguous");
  CHECK(parse_fault_rule(Json{{"action", "hang"}}, kEndpoints).endpoint.empty());
}

TEST_CASE("bad fault rules are refused with the field named", "[faults]") {
  CHECK_THAT(error_of({{"action", "explode"}}), Catch::Contains("'action'"));
  CHECK_THAT(error_of({{"endpoint", "transaccion"}}), Catch::Contains("'action' is required"));
  CHECK_THAT(error_of({{"action", "error"}, {"probability", 1.5}}), Catch::Contains("'probability'"));
  CHECK_THAT(error_of({{"action", "error"}, {"probability", -0.1}}), Catch::Contains("'probability'"));
  CHECK_THAT(error_of({{"action", "latency"}, {"latency_ms", -5}}), Catch::Contains("'latency_ms'"));
  CHECK_THAT(error_of({{"action", "hang"}, {"duration_ms", -1}}), Catch::Contains("'duration_ms'"));
  CHECK_THAT(error_of({{"action", "error"}, {"endpoint", "nope"}}), Catch::Contains("'endpoint'"));
  CHECK_THAT(error_of({{"action", "error"}, {"status", 200}}), Catch::Contains("'status'"));
  CHECK_THAT(error_of({{"action", "error"}, {"times", 0}}), Catch::Contains("'times'"));
  CHECK_THAT(error_of({{"action", "error"}, {"colour", "red"}}), Catch::Contains("'colour'"));
  CHECK_THAT(error_of(Json::array()), Catch::Contains("object"));
  // At a saga-log point only a crash applies (an error there was accepted, shown as fired, and did nothing).
  CHECK_THAT(error_of({{"action", "error"}, {"endpoint", "log:cobrar_pago:after"}}), Catch::Contains("only crash"));
  CHECK_THAT(error_of({{"action", "latency"}, {"endpoint", "log:crear_compra:before"}}), Catch::Contains("'action'"));
}

TEST_CASE("adding a list with one bad rule adds none", "[faults]") {
  FaultSet set(1);
  CHECK_THROWS_AS(set.add(parse_fault_rules(Json::array({{{"action", "error"}}, {{"action", "nope"}}}), kEndpoints)), ClientError);
  CHECK(set.empty());
  auto ids = set.add(parse_fault_rules(Json::array({{{"action", "error"}}, {{"action", "latency"}}}), kEndpoints));
  CHECK(ids == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("rules match by endpoint, saga, attempt and times", "[faults]") {
  FaultSet set(1);
  set.add(parse_fault_rules(Json{{"action", "error"}, {"endpoint", "compensacion"}, {"saga_id", "s1"}, {"attempts", {2}}, {"times", 1}},
                            kEndpoints));
  CHECK_FALSE(set.match({"transaccion", "s1", 2, 0}));
  CHECK_FALSE(set.match({"compensacion", "s2", 2, 0}));
  CHECK_FALSE(set.match({"compensacion", "s1", 1, 0}));
  auto f = set.match({"compensacion", "s1", 2, 0});
  REQUIRE(f);
  CHECK(f->saga_id == "s1");
  CHECK_FALSE(set.match({"compensacion", "s1", 2, 0}));  // times: 1
  CHECK(set.fired().size() == 1);
}

TEST_CASE("the same seed and requests fire the same faults", "[faults]") {
  auto run = [](std::uint64_t seed) {
    FaultSet set(seed);
    set.add(parse_fault_rules(Json{{"action", "latency"}, {"probability", 0.5}, {"latency_ms", 10}, {"jitter_ms", 50}}, kEndpoints));
    for (int i = 0; i < 200; ++i) set.match({"transaccion", "s" + std::to_string(i), 1, i});
    return fired_json(set);
  };
  auto a = run(99), b = run(99), c = run(100);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a.size() > 60);
  CHECK(a.size() < 140);
}
