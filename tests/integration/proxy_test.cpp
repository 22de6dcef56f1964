// sagactl proxy and sagactl check end to end: our own stack through the proxy
// under every proxy fault (its internal fault gates unused) passes check; a
// second, independent saga (tests/fixtures/trip_saga.cpp) with a known
// compensation bug fails check, and its fixed variant passes.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "process.hpp"
#include "trips.hpp"

using namespace testsupport;

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// ms-compras behind a sagactl proxy of its own, for tests that speak raw HTTP to the proxy.
struct ComprasBehindProxy {
  TempDir dir;
  Proc compras{"ms-compras", {"--quiet"}, dir.path()};
  std::unique_ptr<Proc> proxy;  // started once compras' port is known
  ComprasBehindProxy() {
    REQUIRE(compras.wait_healthy());
    proxy = std::make_unique<Proc>("sagactl", std::vector<std::string>{"--quiet", "--upstream",
                                                                       "compras=127.0.0.1:0->" + compras.url()},
                                   dir.path(), 0, "proxy");
    REQUIRE(proxy->wait_healthy());
  }
  // A socket connected to the proxy's compras listener, reads timing out after 5 s.
  int connect_raw() {
    int port = std::stoi(upstream_urls(*proxy)["compras"].substr(std::string("http://127.0.0.1:").size()));
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a = loopback(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
  }
};

std::size_t fired_for(Proc& proxy, const Json& ids) {
  auto r = get(proxy.url(), "/admin/faults/fired");
  REQUIRE(r.ok());
  std::size_t n = 0;
  for (const auto& f : r.answer->body["fired"])
    for (const auto& id : ids) n += f["rule_id"] == id;
  return n;
}

}  // namespace

TEST_CASE("our stack through sagactl proxy passes sagactl check under every proxy fault action") {
  Stack stack(fast_orchestrator());
  auto rec = stack.dir.path() + "/exchanges.jsonl";
  auto proxy_ptr = put_behind_proxy(stack, rec);
  auto& proxy = *proxy_ptr;
  auto up = upstream_urls(proxy);

  // Each case: rules on the proxy, then two purchases through it. A refusal
  // (error 409) at inventario or pagos makes sagas compensate, so that faults
  // on compensations are exercised too.
  const Json cases = Json::parse(R"([
    [{"action":"error","upstream":"compras","path":"/transaccion","status":503,"times":1}],
    [{"action":"latency","upstream":"pagos","latency_ms":80}],
    [{"action":"hang","upstream":"inventario","path":"/transaccion","duration_ms":900,"times":1}],
    [{"action":"commit-then-error","upstream":"pagos","path":"/transaccion","times":1}],
    [{"action":"commit-then-drop","upstream":"inventario","path":"/transaccion","times":1}],
    [{"action":"reset","upstream":"compras","path":"/transaccion","times":1}],
    [{"action":"partition","upstream":"pagos","duration_ms":250,"times":1}],
    [{"action":"slow-body","upstream":"catalogo","duration_ms":200}],
    [{"action":"error","upstream":"pagos","path":"/transaccion","status":409},
     {"action":"commit-then-error","upstream":"compras","path":"/compensacion","times":1},
     {"action":"commit-then-drop","upstream":"inventario","path":"/compensacion","times":1}],
    [{"action":"error","upstream":"inventario","path":"/transaccion","status":409},
     {"action":"reset","upstream":"compras","path":"/compensacion","times":1}]
  ])");
  const char* products[] = {"mouse", "auriculares"};
  int bought = 0;
  for (const auto& rules : cases) {
    INFO(rules.dump());
    auto added = post(proxy.url(), "/admin/faults", rules);
    REQUIRE(added.answer);
    REQUIRE(added.answer->status == 201);
    for (int i = 0; i < 2; ++i) {
      auto r = post(up["orquestador"], "/compra", {{"usuario_id", "u"}, {"producto", products[bought++ % 2]}}, {},
                    20000);
      REQUIRE(r.answer);
      // 202: the saga goes on past the orchestrator's response timeout (a partition makes it atascada for a while).
      CHECK((r.answer->status == 200 || r.answer->status == 409 || r.answer->status == 202));
    }
    REQUIRE(stack.wait_quiet());
    // Every rule of the case met a request (a rule that never fired tests nothing).
    for (const auto& id : added.answer->body["ids"]) CHECK(fired_for(proxy, Json::array({id})) >= 1);
    REQUIRE(sagalab::http_call(proxy.url(), "DELETE", "/admin/faults", nullptr, {}, 5000).ok());
  }

  auto r = run_sagactl({"check", rec, "--saga", std::string(SAGALAB_SOURCE_DIR) + "/deploy/saga/sagalab.yaml", "--json"});
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto rep = Json::parse(r.out);
  CHECK(rep["passed"] == true);
  CHECK(rep["sagas"] == bought);
  CHECK(rep["completed"].get<int>() >= 1);
  CHECK(rep["failed"].get<int>() >= 4);
  CHECK(rep["unknown"] == 0);

  // The services agree: our own invariants hold too.
  auto v = run_sagactl({"--orquestador-url", stack.url("orquestador"), "--ms-catalogo-url", stack.url("ms-catalogo"),
                    "--ms-compras-url", stack.url("ms-compras"), "--ms-pagos-url", stack.url("ms-pagos"),
                    "--ms-inventario-url", stack.url("ms-inventario"), "verify"});
  INFO(v.out);
  CHECK(v.code == 0);
}

namespace {

struct TripStack {
  TempDir dir;
  std::unique_ptr<Proc> flights, hotels, payments, proxy, trips;
  std::map<std::string, std::string> up;
  std::string rec;

  explicit TripStack(const std::string& variant) : rec(dir.path() + "/trips.jsonl") {
    flights = std::make_unique<Proc>("trip_saga", std::vector<std::string>{"--name", "flights"}, dir.path(), 0, "service");
    hotels = std::make_unique<Proc>("trip_saga", std::vector<std::string>{"--name", "hotels"}, dir.path(), 0, "service");
    payments =
        std::make_unique<Proc>("trip_saga", std::vector<std::string>{"--name", "payments"}, dir.path(), 0, "service");
    for (auto* p : {flights.get(), hotels.get(), payments.get()}) REQUIRE(p->wait_healthy());
    int trips_port = free_port();
    proxy = std::make_unique<Proc>(
        "sagactl",
        std::vector<std::string>{"--record", rec, "--quiet", "--upstream-timeout-ms", "3000", "--upstream",
                                 "flights=127.0.0.1:0->" + flights->url(), "--upstream",
                                 "hotels=127.0.0.1:0->" + hotels->url(), "--upstream",
                                 "payments=127.0.0.1:0->" + payments->url(), "--upstream",
                                 "trips=127.0.0.1:0->http://127.0.0.1:" + std::to_string(trips_port)},
        dir.path(), 0, "proxy");
    REQUIRE(proxy->wait_healthy());
    up = upstream_urls(*proxy);
    trips = std::make_unique<Proc>("trip_saga",
                                   std::vector<std::string>{"--flights", up["flights"], "--hotels", up["hotels"],
                                                            "--payments", up["payments"], "--variant", variant},
                                   dir.path(), trips_port, "orchestrator");
    REQUIRE(trips->wait_healthy());
  }

  // Three trips: T-1 meets commit-then-error at the hotel (the answer lost, the
  // booking made), T-2 is refused at payment (its bookings must be undone), T-3 is clean.
  CmdResult run_and_check() {
    auto added = post(proxy->url(), "/admin/faults",
                      Json::parse(R"([{"action":"commit-then-error","upstream":"hotels","method":"POST",
                                       "path":"/bookings","times":1},
                                      {"action":"error","upstream":"payments","path":"/charges","status":409,
                                       "header_name":"X-Trip","header_value":"T-2"}])"));
    REQUIRE(added.answer);
    REQUIRE(added.answer->status == 201);
    for (int i = 0; i < 3; ++i) {
      auto r = post(up["trips"], "/trips", {{"traveller", "ana"}}, {}, 20000);
      REQUIRE(r.answer);
    }
    CHECK(fired_for(*proxy, added.answer->body["ids"]) == 2);
    return run_sagactl({"check", rec, "--saga", std::string(SAGALAB_SOURCE_DIR) + "/tests/fixtures/trip.saga.yaml",
                    "--json"});
  }
};

}  // namespace

TEST_CASE("sagactl check reports a foreign saga's compensation bug and passes its fixed variant") {
  SECTION("buggy: a 5xx taken as 'nothing happened' leaves the hotel booked") {
    TripStack s("buggy");
    auto r = s.run_and_check();
    INFO(r.out);
    REQUIRE(r.code == 1);
    auto rep = Json::parse(r.out);
    REQUIRE(rep["violations"].size() == 1);
    const auto& v = rep["violations"][0];
    CHECK(v["rule"] == "uncompensated-step");
    CHECK(v["saga"] == "T-1");
    CHECK(v["message"].get<std::string>().find("hotel") != std::string::npos);
    CHECK(v["faults"].dump().find("commit-then-error") != std::string::npos);
  }
  SECTION("fixed: the unknown outcome is retried with the same request id") {
    TripStack s("fixed");
    auto r = s.run_and_check();
    INFO(r.out);
    REQUIRE(r.code == 0);
    auto rep = Json::parse(r.out);
    CHECK(rep["passed"] == true);
    CHECK(rep["sagas"] == 3);
    CHECK(rep["completed"] == 2);
    CHECK(rep["failed"] == 1);
  }
}

TEST_CASE("sagactl proxy refuses bad rules with a 400 that names the field, and changes nothing") {
  TempDir dir;
  Proc echo("ms-catalogo", {"--quiet"}, dir.path());
  REQUIRE(echo.wait_healthy());
  Proc proxy("sagactl", {"--quiet", "--upstream", "catalogo=127.0.0.1:0->" + echo.url()}, dir.path(), 0, "proxy");
  REQUIRE(proxy.wait_healthy());
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"action":"crash-after"})", "action"},
           {R"({"action":"explode"})", "action"},
           {R"({"action":"error","upstream":"nowhere"})", "upstream"},
           {R"({"action":"error","path":"transaccion"})", "path"},
           {R"({"action":"error","header_name":"X-A"})", "header_name"},
           {R"({"action":"error","times":0})", "times"},
           {R"({"action":"error","colour":"red"})", "colour"},
           {R"([{"action":"error"},{"action":"nope"}])", "action"}}) {
    INFO(body);
    auto r = post(proxy.url(), "/admin/faults", Json::parse(body));
    REQUIRE(r.answer);
    CHECK(r.answer->status == 400);
    CHECK(r.answer->body["error"].get<std::string>().find(field) != std::string::npos);
  }
  auto rules = get(proxy.url(), "/admin/faults");
  REQUIRE(rules.ok());
  CHECK(rules.answer->body["rules"].empty());
  // Proxied requests still pass untouched.
  auto up = upstream_urls(proxy);
  auto r = get(up["catalogo"], "/catalogo_completo");
  REQUIRE(r.ok());
  CHECK(r.answer->body["total"] == 5);
}

TEST_CASE("sagactl run drives a scenario against a proxied foreign stack, with check as its expectation") {
  for (std::string variant : {"buggy", "fixed"}) {
    DYNAMIC_SECTION(variant) {
      TripsBehindConfig stack(variant);
      const auto& cfg = stack.config;
      auto r = run_sagactl({"run", "--proxy", cfg, std::string(SAGALAB_SOURCE_DIR) + "/tests/fixtures/trips-scenario.yaml",
                        "--json"});
      INFO(r.out);
      auto out = Json::parse(r.out);
      const auto& checks = out["scenarios"][0]["checks"];
      if (variant == "buggy") {
        CHECK(r.code == 1);
        CHECK(checks.dump().find("expect: check [uncompensated-step] saga T-1") != std::string::npos);
        // The recording is kept for `sagactl check`.
        auto rec = out["scenarios"][0]["recording"].get<std::string>();
        CHECK(std::ifstream(rec).good());
        std::filesystem::remove_all(std::filesystem::path(rec).parent_path());
      } else {
        CHECK(r.code == 0);
        CHECK(checks.dump().find("3 sagas (2 completed, 1 failed, 0 without an outcome), 0 refused requests, 0 uncorrelated") != std::string::npos);
      }
    }
  }
}

TEST_CASE("sagactl proxy answers Expect: 100-continue before the body, and forwards the request whole") {
  ComprasBehindProxy p;
  const int fd = p.connect_raw();
  std::string body = R"({"usuario_id":"u","producto":"LAPTOP"})";
  std::string head = "POST /transaccion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                     "Idempotency-Key: expect-1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  REQUIRE(::send(fd, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()));
  auto read_some = [&] {
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  };
  // The interim answer comes before any body is sent (without it, this read times out empty).
  CHECK(read_some().rfind("HTTP/1.1 100 Continue", 0) == 0);
  REQUIRE(::send(fd, body.data(), body.size(), 0) == static_cast<ssize_t>(body.size()));
  std::string answer;
  for (int i = 0; i < 5 && answer.find("compra_id") == std::string::npos; ++i) answer += read_some();
  ::close(fd);
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(answer.find("compra_id") != std::string::npos);
}

TEST_CASE("sagactl proxy refuses a body past 1 MiB with a 413 that says it closes the connection") {
  ComprasBehindProxy p;
  const int fd = p.connect_raw();
  // A declared 2 MiB body, of which the first 64 KiB are sent: the proxy answers without waiting for the rest.
  std::string head = "POST /transaccion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(2 * 1024 * 1024) + "\r\n\r\n" + std::string(64 * 1024, 'x');
  REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
  // The rest of the body is never read, so the connection cannot be reused: the answer must say so.
  CHECK(answer.find("Connection: close") != std::string::npos);
  auto state = get(p.compras.url(), "/admin/state");
  REQUIRE(state.ok());
  CHECK(state.answer->body["compras"].empty());  // nothing reached the service
}

TEST_CASE("sagactl proxy: commit-then-* fires only on an upstream's 2xx unless on: any, and its fired log says what each side got") {
  ComprasBehindProxy p;
  auto listen = upstream_urls(*p.proxy)["compras"];
  auto rules = [&](const char* json) { return post(p.proxy->url(), "/admin/faults", Json::parse(json)); };
  REQUIRE(rules(R"({"action":"commit-then-error","upstream":"compras","path":"/transaccion","times":1})").ok());
  // Refused by compras (no usuario_id): nothing committed, so the fault does not fire and the caller gets the refusal.
  auto refused = post(listen, "/transaccion", {{"producto", "Laptop Gamer"}});
  REQUIRE(refused.answer);
  CHECK(refused.answer->status == 400);
  auto listed = get(p.proxy->url(), "/admin/faults");
  REQUIRE(listed.ok());
  CHECK(listed.answer->body["rules"][0]["fired"] == 0);
  CHECK(listed.answer->body["rules"][0]["on"] == "success");
  // The next call commits: now it fires, and counts.
  auto lied = post(listen, "/transaccion", {{"usuario_id", "ana"}, {"producto", "Laptop Gamer"}});
  REQUIRE(lied.answer);
  CHECK(lied.answer->status == 500);
  auto fired = get(p.proxy->url(), "/admin/faults/fired");
  REQUIRE(fired.ok());
  REQUIRE(fired.answer->body["fired"].size() == 1);
  auto f = fired.answer->body["fired"][0];
  CHECK(f["upstream"] == "compras");
  CHECK(f["path"] == "/transaccion");
  CHECK(f["upstream_status"] == 200);
  CHECK(f["status"] == 500);
  // on: any fires on a refusal too; a drop is no status at all.
  REQUIRE(sagalab::http_call(p.proxy->url(), "DELETE", "/admin/faults").ok());
  REQUIRE(rules(R"({"action":"commit-then-drop","upstream":"compras","path":"/transaccion","times":1,"on":"any"})").ok());
  auto dropped = post(listen, "/transaccion", {{"producto", "Laptop Gamer"}});
  CHECK_FALSE(dropped.answer);
  fired = get(p.proxy->url(), "/admin/faults/fired");
  REQUIRE(fired.ok());
  f = fired.answer->body["fired"].back();
  CHECK(f["action"] == "commit-then-drop");
  CHECK(f["upstream_status"] == 400);
  CHECK(f["status"].is_null());
  CHECK(f["outcome"].get<std::string>().find("dropped") != std::string::npos);
  // `on` is refused where it means nothing.
  auto bad = rules(R"({"action":"error","upstream":"compras","on":"any"})");
  REQUIRE(bad.answer);
  CHECK(bad.answer->status == 400);
}

TEST_CASE("sagactl proxy --trace gives a client's request a traceparent, and keeps one it already has") {
  TempDir dir;
  Proc compras("ms-compras", {"--quiet"}, dir.path());
  REQUIRE(compras.wait_healthy());
  auto rec = dir.path() + "/r.jsonl";
  Proc proxy("sagactl", {"--quiet", "--record", rec, "--trace", "compras", "--upstream", "compras=127.0.0.1:0->" + compras.url()},
             dir.path(), 0, "proxy");
  REQUIRE(proxy.wait_healthy());
  auto listen = upstream_urls(proxy)["compras"];
  const std::string given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  REQUIRE(get(listen, "/health").ok());
  REQUIRE(sagalab::http_call(listen, "GET", "/health", nullptr, {{"traceparent", given}}).ok());
  std::ifstream in(rec);
  std::string line;
  std::vector<Json> lines;
  while (std::getline(in, line)) lines.push_back(Json::parse(line));
  REQUIRE(lines.size() == 2);
  auto added = lines[0]["headers"]["traceparent"].get<std::string>();
  CHECK(added.size() == 55);
  CHECK(added.rfind("00-", 0) == 0);
  CHECK(added.substr(3, 32).find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(lines[1]["headers"]["traceparent"] == given);
  // An unknown upstream is refused at start.
  auto r = run_sagactl({"proxy", "--trace", "nope", "--upstream", "compras=127.0.0.1:0->" + compras.url()});
  CHECK(r.code == 2);
}
