// The proxy's fault rules: what they match, and the attempt count.
#include <catch2/catch.hpp>

#include "sagalab/errors.hpp"
#include "sagalab/proxy.hpp"

using namespace sagalab;
using namespace sagalab::proxy;

namespace {

RequestView view(const std::string& upstream, const std::string& method, const std::string& path,
                 std::map<std::string, std::string> headers = {}, const Json* body = nullptr) {
  RequestView v;
  v.upstream = upstream;
  v.method = method;
  v.path = path;
  v.headers = std::move(headers);
  v.body = body;
  v.attempt = 1;
  return v;
}

}  // namespace

TEST_CASE("proxy rules match by upstream, method, path glob, header and body field", "[proxy-rules]") {
  Faults f(1, {"hotels", "flights"});
  f.add(Json::parse(R"({"action":"reset","upstream":"hotels","method":"post","path":"/bookings/*/cancel",
                        "header_name":"X-Trip","header_value":"T-2"})"));
  CHECK_FALSE(f.match(view("hotels", "POST", "/bookings/h-1/cancel", {{"x-trip", "T-1"}})));
  CHECK_FALSE(f.match(view("flights", "POST", "/bookings/h-1/cancel", {{"x-trip", "T-2"}})));
  CHECK_FALSE(f.match(view("hotels", "GET", "/bookings/h-1/cancel", {{"x-trip", "T-2"}})));
  CHECK_FALSE(f.match(view("hotels", "POST", "/bookings", {{"x-trip", "T-2"}})));
  auto hit = f.match(view("hotels", "POST", "/bookings/h-1/cancel", {{"x-trip", "T-2"}}));
  REQUIRE(hit);
  CHECK(hit->action == Action::Reset);

  f.clear();
  f.add(Json::parse(R"({"action":"error","status":503,"body_field":"order.ref","body_value":"42"})"));
  Json other = {{"order", {{"ref", 41}}}}, mine = {{"order", {{"ref", 42}}}};
  CHECK_FALSE(f.match(view("hotels", "POST", "/x", {}, &other)));
  CHECK_FALSE(f.match(view("hotels", "POST", "/x")));
  auto h2 = f.match(view("hotels", "POST", "/x", {}, &mine));
  REQUIRE(h2);
  CHECK(h2->fired.status == 503);
}

TEST_CASE("proxy rules keep the services' saga_id, attempts and times", "[proxy-rules]") {
  Faults f(1, {"pagos"});
  f.add(Json::parse(R"({"action":"commit-then-error","saga_id":"s1","attempts":[2],"times":1})"));
  auto v = view("pagos", "POST", "/transaccion", {{"x-saga-id", "s1"}});
  CHECK_FALSE(f.match(v));  // attempt 1
  v.attempt = 2;
  REQUIRE(f.match(v));
  CHECK_FALSE(f.match(v));  // times: 1
  CHECK(f.attempt_of("k") == 1);
  CHECK(f.attempt_of("k") == 2);
  CHECK(f.attempt_of("other") == 1);
}

TEST_CASE("a rule with skip lets exactly that many matching requests through and counts only those that match",
          "[proxy-rules]") {
  Faults f(1, {"pagos"});
  f.add(Json::parse(R"({"action":"reset","path":"/transaccion","skip":2})"));
  CHECK_FALSE(f.match(view("pagos", "POST", "/other")));  // not matching: not counted
  CHECK_FALSE(f.match(view("pagos", "POST", "/transaccion")));
  CHECK_FALSE(f.match(view("pagos", "POST", "/transaccion")));
  auto third = f.match(view("pagos", "POST", "/transaccion"));
  REQUIRE(third);
  CHECK(third->action == Action::Reset);
}

TEST_CASE("a partition cuts its upstream for its duration, from when it fires", "[proxy-rules]") {
  Faults f(1, {"pagos", "compras"});
  f.add(Json::parse(R"({"action":"partition","upstream":"pagos","duration_ms":100,"times":1})"));
  auto v = view("pagos", "POST", "/transaccion");
  v.now_ms = 1000;
  CHECK_FALSE(f.partitioned("pagos", 1000));
  auto hit = f.match(v);
  REQUIRE(hit);
  CHECK(hit->action == Action::Partition);
  CHECK(f.partitioned("pagos", 1099));
  CHECK_FALSE(f.partitioned("compras", 1050));
  CHECK_FALSE(f.partitioned("pagos", 1100));
}

TEST_CASE("proxy rules refuse what the proxy cannot do, all or none", "[proxy-rules]") {
  Faults f(1, {"pagos"});
  CHECK_THROWS_AS(f.add(Json::parse(R"({"action":"crash-after"})")), ClientError);
  CHECK_THROWS_AS(f.add(Json::parse(R"([{"action":"error"},{"action":"error","upstream":"x"}])")), ClientError);
  CHECK(f.rules_json().empty());
}

TEST_CASE("an upstream spec is name=host:port->http URL", "[proxy-rules]") {
  auto u = parse_upstream("pagos=127.0.0.1:7003->http://10.0.0.2:5003/ms_pagos");
  CHECK(u.name == "pagos");
  CHECK(u.listen_host == "127.0.0.1");
  CHECK(u.listen_port == 7003);
  CHECK(u.url == "http://10.0.0.2:5003/ms_pagos");
  CHECK_THROWS_WITH(parse_upstream("pagos=127.0.0.1:x->http://a"), Catch::Contains("not a port"));
  CHECK_THROWS_WITH(parse_upstream("pagos=127.0.0.1:1->https://a"), Catch::Contains("http://"));
  CHECK_THROWS_WITH(parse_upstream("pagos"), Catch::Contains("name=listen"));
}
