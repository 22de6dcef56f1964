// Hostile clients and a crash soak: slow requests are cut off, oversized
// headers refused, too many sagas in flight refused, admin routes of every
// program closed without the token, and a load that survives random kill -9s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "process.hpp"
#include "sagalab/checker_json.hpp"

using namespace testsupport;

namespace {

int connect_raw(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

}  // namespace

TEST_CASE("a client that trickles its request is cut off and does not hold the only worker", "[hardening]") {
  TempDir dir;
  Proc p("ms-pagos", {"--quiet", "--workers", "1", "--read-timeout-ms", "300"}, dir.path());
  REQUIRE(p.wait_healthy());
  int fd = connect_raw(p.port());
  const std::string partial = "POST /transaccion HTTP/1.1\r\nHost: x\r\n";
  REQUIRE(::send(fd, partial.data(), partial.size(), 0) == static_cast<ssize_t>(partial.size()));
  // The slow client holds the single worker until the read timeout cuts it off;
  // a normal request then gets through.
  auto r = get(p.url(), "/health");
  CHECK(r.ok());
  // The server gave up on the slow connection: at most an error answer, then the close.
  std::string got;
  char buf[512];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  INFO(got);
  CHECK((got.empty() || got.rfind("HTTP/1.1 4", 0) == 0));
  ::close(fd);
}

TEST_CASE("oversized headers are refused and change nothing", "[hardening]") {
  TempDir dir;
  Proc p("ms-compras", {"--quiet"}, dir.path());
  REQUIRE(p.wait_healthy());
  auto r = sagalab::http_call(p.url(), "POST", "/transaccion", nullptr, {{"X-Huge", std::string(20000, 'a')}});
  if (r.answer) CHECK(r.answer->status >= 400);
  auto state = get(p.url(), "/admin/state");
  REQUIRE(state.ok());
  CHECK(state.answer->body["compras"].empty());
  CHECK(get(p.url(), "/health").ok());
}

TEST_CASE("past its limit of sagas in flight the orchestrator answers 503", "[hardening]") {
  Stack st({"--quiet", "--max-in-flight", "2", "--step-timeout-ms", "2000"});
  REQUIRE(post(st.url("ms-pagos"), "/admin/faults", {{"action", "latency"}, {"latency_ms", 800}}).ok());
  for (int i = 0; i < 2; ++i) {
    auto a = post(st.url("orquestador"), "/compra?async=true", {{"usuario_id", "u"}, {"producto", "MOUSE"}});
    REQUIRE(a.answer);
    CHECK(a.answer->status == 202);
  }
  auto third = post(st.url("orquestador"), "/compra", {{"usuario_id", "u"}, {"producto", "MOUSE"}});
  REQUIRE(third.answer);
  CHECK(third.answer->status == 503);
  CHECK_THAT(third.answer->body["error"].get<std::string>(), Catch::Contains("too many sagas in flight"));
  REQUIRE(st.wait_quiet());
  CHECK(get(st.url("orquestador"), "/admin/state").answer->body["sagas"].size() == 2);
}

TEST_CASE("every program's admin routes refuse a missing or wrong token", "[hardening][admin]") {
  const std::string token = "t0k3n-for-tests";
  Stack st({"--quiet", "--admin-token", token},
           {{"ms-catalogo", {"--admin-token", token}},
            {"ms-compras", {"--admin-token", token}},
            {"ms-pagos", {"--admin-token", token}},
            {"ms-inventario", {"--admin-token", token}}});
  for (const char* prog : {"orquestador", "ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) {
    INFO(prog);
    auto url = st.url(prog);
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/admin/state"}, {"POST", "/admin/reset"}, {"GET", "/admin/faults"},
             {"POST", "/admin/faults"}, {"DELETE", "/admin/faults"}, {"GET", "/admin/faults/fired"},
             {"GET", "/metrics"}}) {
      Json body{{"action", "error"}};
      CHECK(sagalab::http_call(url, method, path, &body).answer->status == 401);
      CHECK(sagalab::http_call(url, method, path, &body, {{"Authorization", "Bearer " + token + "x"}}).answer->status == 401);
      CHECK(sagalab::http_call(url, method, path, &body, {{"Authorization", token}}).answer->status == 401);
    }
    auto ok = sagalab::http_call(url, "GET", "/admin/state", nullptr, {{"Authorization", "Bearer " + token}});
    CHECK(ok.answer->status == 200);
    auto metrics = sagalab::http_call(url, "GET", "/metrics", nullptr, {{"Authorization", "Bearer " + token}});
    CHECK(metrics.answer->status == 200);
    CHECK(get(url, "/health").ok());
  }
  // Business routes work without it, and never act as admin routes.
  CHECK(post(st.url("orquestador"), "/compra", {{"usuario_id", "u"}}).answer->status == 200);
  CHECK(post(st.url("ms-pagos"), "/reset", Json::object()).answer->status == 404);
}

// Run with SAGALAB_SOAK_SECONDS to soak longer (`make soak`).
TEST_CASE("crash soak: a load survives random kill -9s with nothing lost or doubled", "[hardening][soak]") {
  int seconds = 25;
  if (const char* env = std::getenv("SAGALAB_SOAK_SECONDS")) seconds = std::max(5, std::atoi(env));
  TempDir files;
  Stack st({"--quiet", "--step-timeout-ms", "300", "--backoff-base-ms", "10", "--backoff-max-ms", "100"},
           {{"ms-inventario", {"--stock", [&] {
               auto path = files.path() + "/stock.json";
               std::ofstream(path) << R"({"LAPTOP": 100000, "MOUSE": 100000, "TECLADO": 100000, "AURICULARES": 100000, "MONITOR": 100000})";
               return path;
             }()}}});
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<int> answered{0}, unanswered{0};
  std::vector<std::thread> clients;
  struct Joiner {  // stops and joins the clients however the test ends
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{stop, clients};
  const std::string url = st.url("orquestador");  // restarts keep the port
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      int i = 0;
      while (!stop) {
        Json body{{"usuario_id", "soak" + std::to_string(c)}, {"producto", i++ % 2 ? "MOUSE" : "LAPTOP"}};
        auto a = post(url, "/compra", body, {}, 10000);
        if (a.answer && a.answer->body.contains("saga_id")) {
          ++answered;
          std::lock_guard lock(mu);
          acknowledged.insert(a.answer->body["saga_id"].get<std::string>());
        } else {
          // Refused while a kill restarts the orchestrator: a client waits a little before trying
          // again (spinning on refused connects starved the restart on a busy machine under ASan).
          ++unanswered;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }
  std::mt19937 rng(12345);
  const std::vector<std::string> names = {"orquestador", "ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"};
  int kills = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 300));
    const auto& victim = names[rng() % names.size()];
    if (victim == "orquestador") {
      st["orquestador"].kill9();
      st.restart_orchestrator();
    } else {
      st[victim].kill9();
      st[victim].start();
      REQUIRE(st[victim].wait_healthy());
    }
    ++kills;
  }
  stop = true;
  for (auto& t : clients) t.join();
  REQUIRE(st.wait_quiet(60000));
  auto states = st.states();
  std::map<std::string, std::string> estado;
  for (const auto& s : states["orquestador"]["sagas"]) estado[s["saga_id"]] = s["estado"];
  for (const auto& id : acknowledged) {
    INFO(id);
    REQUIRE(estado.count(id));  // nothing acknowledged is lost
    CHECK((estado[id] == "completada" || estado[id] == "compensada"));
  }
  auto report = sagalab::check_invariants(states);
  INFO(sagalab::to_json(report).dump(2));
  CHECK(report.ok());  // nothing doubled, nothing held for a compensated saga, stock and money balance
  WARN("soak: " << kills << " kills survived, " << answered << " purchases answered, " << unanswered
                << " cut off by a kill, " << estado.size() << " sagas in the log");
  CHECK(kills >= 10);
  CHECK(answered > 0);
}
