// Services on PostgreSQL (--store postgresql://...): replicas of one service
// share its data. Run by tests/integration/postgres_test.sh, which starts the
// server and names it in SAGALAB_TEST_PG_URL (hidden tag: not in the default run).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "process.hpp"

using namespace testsupport;

TEST_CASE("two replicas of ms-inventario on one PostgreSQL sell the last units once, over HTTP", "[.postgresql]") {
  const char* url = std::getenv("SAGALAB_TEST_PG_URL");
  REQUIRE(url != nullptr);
  TempDir dir;
  // A database of this test's own, so that earlier runs' rows do not count.
  auto db = std::string(url);
  Proc first("ms-inventario", {"--quiet", "--store", db}, dir.path());
  REQUIRE(first.wait_healthy());
  REQUIRE(post(first.url(), "/admin/reset", Json::object()).ok());
  TempDir dir2;
  Proc second("ms-inventario", {"--quiet", "--store", db}, dir2.path());
  REQUIRE(second.wait_healthy());

  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 12; ++i) {
    ts.emplace_back([&, i] {
      auto r = post(i % 2 ? first.url() : second.url(), "/transaccion", {{"producto", "TECLADO"}, {"cantidad", 1}},
                    {{"Idempotency-Key", "r" + std::to_string(i) + ":reservar_stock"}});
      auto s = r.answer ? r.answer->status : 0;
      (s == 200 ? ok : s == 409 ? refused : other)++;
    });
  }
  for (auto& t : ts) t.join();
  CHECK(ok == 3);
  CHECK(refused == 9);
  CHECK(other == 0);
  // Both replicas read the same stock.
  for (auto* p : {&first, &second}) {
    auto inv = get(p->url(), "/inventario");
    REQUIRE(inv.ok());
    CHECK(inv.answer->body["TECLADO"] == Json{{"stock", 0}, {"reservado", 3}});
  }
}

TEST_CASE("the stack with every service on PostgreSQL completes and compensates purchases", "[.postgresql]") {
  const char* url = std::getenv("SAGALAB_TEST_PG_URL");
  REQUIRE(url != nullptr);
  std::map<std::string, std::vector<std::string>> args;
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) args[s] = {"--store", url};
  Stack stack(fast_orchestrator(), args);
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
    REQUIRE(post(stack.url(s), "/admin/reset", Json::object()).ok());
  auto r = post(stack.url("orquestador"), "/compra", {{"usuario_id", "ana"}, {"producto", "mouse"}}, {}, 15000);
  REQUIRE(r.answer);
  CHECK(r.answer->status == 200);
  REQUIRE(post(stack.url("ms-pagos"), "/admin/faults", {{"action", "error"}, {"endpoint", "transaccion"}, {"status", 409}})
              .answer->status == 201);
  auto c = post(stack.url("orquestador"), "/compra", {{"usuario_id", "ana"}, {"producto", "mouse"}}, {}, 15000);
  REQUIRE(c.answer);
  CHECK(c.answer->status == 409);
  CHECK(c.answer->body["estado"] == "compensada");
  REQUIRE(stack.wait_quiet());
  auto states = stack.states();
  CHECK(states["ms-inventario"]["stock"]["MOUSE"]["reservado"] == 1);
  CHECK(states["ms-compras"]["compras"].size() == 2);
}

namespace {

// A database of the caller's own on the test server: earlier tests' sagas stay out of it.
std::string fresh_database(const std::string& name) {
  std::string url = std::getenv("SAGALAB_TEST_PG_URL");
  auto db = name + "_" + std::to_string(::getpid());
  auto r = run_command("psql " + shell_quote(url) + " -q -c " + shell_quote("CREATE DATABASE " + db));
  if (r.code != 0) throw std::runtime_error("cannot create database " + db + ": " + r.out);
  return url.substr(0, url.rfind('/') + 1) + db;
}

}  // namespace

// Every saga ends, once; the invariants and the history checker hold.
TEST_CASE("two orchestrators share a PostgreSQL saga log while one of them is killed -9 in turn", "[.postgresql]") {
  const auto log_url = fresh_database("orchestrators");
  // The lease is short so that take-overs happen within the test; calls are slow
  // (latency on inventario) so that kills find sagas in flight.
  std::vector<std::string> orch = fast_orchestrator();
  for (std::string a : {"--store", log_url.c_str(), "--lease-ms", "1000"}) orch.push_back(a);
  std::vector<std::string> second_args = orch;
  orch.insert(orch.end(), {"--replica-id", "first"});
  Stack stack(orch);
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) {
    std::string flag = std::string("--") + (s + 3) + "-url";
    second_args.push_back(flag);
    second_args.push_back(stack.url(s));
  }
  TempDir dir2;
  auto second_named = [&](int n) {
    auto args = second_args;
    args.insert(args.end(), {"--replica-id", "second-" + std::to_string(n)});
    return std::make_unique<Proc>("orquestador", args, dir2.path());
  };
  auto second = second_named(0);
  REQUIRE(second->wait_healthy());
  REQUIRE(post(stack.url("ms-pagos"), "/admin/faults",
               {{"action", "error"}, {"endpoint", "transaccion"}, {"status", 409}, {"probability", 0.3}})
              .answer->status == 201);
  REQUIRE(post(stack.url("ms-inventario"), "/admin/faults",
               {{"action", "latency"}, {"endpoint", "*"}, {"latency_ms", 150}, {"probability", 0.5}})
              .answer->status == 201);

  std::mutex mutex;
  std::set<std::string> ids;
  std::map<std::string, std::set<std::string>> by_key;  // Idempotency-Key -> saga ids answered
  std::atomic<bool> stop{false};
  std::atomic<int> unanswered{0};
  auto urls = [&] {
    std::lock_guard lock(mutex);
    return std::vector<std::string>{stack.url("orquestador"), second->url()};
  };
  auto client = [&](int c) {
    for (int i = 0; !stop; ++i) {
      auto targets = urls();
      // Every fifth purchase goes to both orchestrators at once with one key: one saga only.
      const bool twice = i % 5 == 0;
      const auto key = "c" + std::to_string(c) + "-" + std::to_string(i);
      std::vector<std::thread> ts;
      for (int t = 0; t < (twice ? 2 : 1); ++t) {
        ts.emplace_back([&, t] {
          auto r = post(targets[(i + t) % 2], "/compra?async=true", {{"usuario_id", "u" + std::to_string(c)}},
                        {{"Idempotency-Key", key}}, 5000);
          if (!r.answer || r.answer->status != 202) {
            ++unanswered;  // a killed orchestrator, or its restart: the client would retry, a little later
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            return;
          }
          std::lock_guard lock(mutex);
          auto id = r.answer->body["saga_id"].get<std::string>();
          ids.insert(id);
          by_key[key].insert(id);
        });
      }
      for (auto& t : ts) t.join();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) clients.emplace_back(client, c);
  // Kill -9 one orchestrator every 2.5 s, in turn: the first restarts on its port (the
  // same replica id: it takes its sagas back at once), the second under a new pid (a new
  // id: the survivor takes its sagas over once their leases expire).
  for (int k = 0; k < 4; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    if (k % 2 == 0) {
      std::lock_guard lock(mutex);
      stack["orquestador"].kill9();
      stack.restart_orchestrator();
    } else {
      second->kill9();
      auto fresh = second_named(k);
      REQUIRE(fresh->wait_healthy());
      std::lock_guard lock(mutex);
      second = std::move(fresh);
    }
  }
  // Then the second is frozen (SIGSTOP), likely inside a transaction of its log that
  // holds rows: the first must still take its sagas over once the leases expire.
  // Every saga now waits 300 ms on the catalog: the second surely has some in flight when frozen.
  REQUIRE(post(stack.url("ms-catalogo"), "/admin/faults",
               {{"action", "latency"}, {"endpoint", "*"}, {"latency_ms", 300}})
              .answer->status == 201);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  {
    std::lock_guard lock(mutex);
    REQUIRE(::kill(second->pid(), SIGSTOP) == 0);
  }
  auto first_log_before = stack["orquestador"].full_log().size();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  stop = true;
  for (auto& t : clients) t.join();

  // Every saga a client was told of ends, on whichever orchestrator drives it.
  std::map<std::string, std::string> estado;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (std::chrono::steady_clock::now() < deadline) {
    estado.clear();
    for (const auto& id : ids) {
      auto r = get(stack.url("orquestador"), "/sagas/" + id);
      estado[id] = r.ok() ? r.answer->body.value("estado", "?") : "unreadable";
    }
    if (std::all_of(estado.begin(), estado.end(),
                    [](const auto& e) { return e.second == "completada" || e.second == "compensada"; }))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  INFO("sagas: " << ids.size() << ", requests unanswered: " << unanswered);
  REQUIRE(ids.size() >= 40);
  for (const auto& [id, e] : estado) {
    INFO(id << " is " << e);
    CHECK((e == "completada" || e == "compensada"));
  }
  for (const auto& [key, sagas] : by_key) {
    INFO(key);
    CHECK(sagas.size() == 1);  // one key, one saga, whichever orchestrator answered
  }
  // The frozen one's sagas were taken over (all ended while it was frozen).
  CHECK(stack["orquestador"].full_log().find("\"event\":\"took-over\"", first_log_before) != std::string::npos);
  // Woken, its stale writes are refused and it drops those sagas.
  const auto second_log_before = second->full_log().size();
  REQUIRE(::kill(second->pid(), SIGCONT) == 0);

  // The services agree with the log: invariants and every saga's history.
  std::string cmd = shell_quote(bin("sagactl"));
  for (std::string p : {"orquestador", "ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
    cmd += " --" + p + "-url " + shell_quote(stack.url(p));
  for (const char* p : {"ms-catalogo", "ms-pagos", "ms-inventario"}) {
    httplib::Client c(stack.url(p));
    auto r = c.Delete("/admin/faults");
    REQUIRE((r && r->status == 200));
  }
  auto v = run_command(cmd + " --timeout-ms 30000 verify --wait-ms 20000");
  INFO(v.out);
  CHECK(v.code == 0);
  for (int i = 0; i < 50 && second->full_log().find("saga-dropped", second_log_before) == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(second->full_log().find("saga-dropped", second_log_before) != std::string::npos);
}

TEST_CASE("sagactl up --replicas 2 --store postgresql: its own PostgreSQL, two of every program, one saga log",
          "[.postgresql]") {
  // A 0700 directory (as mktemp -d makes) above the stack: as root the server runs as the postgres
  // user, which cannot pass through it; `up` must place the server's data where that user can.
  TempDir dir;
  const std::string stack = dir.path() + "/stack";
  auto sagactl = [&](const std::string& args) {
    return run_command(shell_quote(bin("sagactl")) + " --stack-dir " + shell_quote(stack) + " " + args);
  };
  auto down = [&] {
    auto r = sagactl("down");
    // The server's data, where `up` put it for the postgres user (a link from the stack): the test's own.
    std::error_code ec;
    if (std::filesystem::is_symlink(stack + "/postgres"))
      std::filesystem::remove_all(std::filesystem::read_symlink(stack + "/postgres"), ec);
    return r;
  };
  struct Down {
    std::function<CmdResult()> f;
    ~Down() { f(); }
  } always{down};
  auto up = sagactl("up --base-port 0 --replicas 2 --store postgresql");
  INFO(up.out);
  REQUIRE(up.code == 0);
  auto st = sagactl("status --json");
  INFO(st.out);
  REQUIRE(st.code == 0);
  auto status = Json::parse(st.out);
  std::map<std::string, Json> programs;
  for (const auto& p : status["programs"]) programs[p["program"].get<std::string>()] = p;
  CHECK(programs.size() == 11);  // five programs twice, and postgres
  for (const auto& [name, p] : programs) {
    INFO(name);
    CHECK(p["healthy"] == true);
  }
  REQUIRE(programs.count("orquestador-2"));
  REQUIRE(programs.count("postgres"));

  // A saga started on the second orchestrator is in the log the first one reads.
  auto r = post(programs["orquestador-2"]["url"].get<std::string>(), "/compra",
                {{"usuario_id", "ana"}, {"producto", "mouse"}}, {}, 15000);
  REQUIRE(r.answer);
  CHECK(r.answer->status == 200);
  auto id = r.answer->body.value("saga_id", std::string());
  auto seen = get(programs["orquestador"]["url"].get<std::string>(), "/sagas/" + id);
  REQUIRE(seen.ok());
  CHECK(seen.answer->body["estado"] == "completada");
  auto v = sagactl("verify");
  INFO(v.out);
  CHECK(v.code == 0);

  // down stops PostgreSQL too (after the programs that use it).
  const int pg_pid = programs["postgres"]["pid"].get<int>();
  REQUIRE(down().code == 0);
  CHECK(::kill(pg_pid, 0) != 0);
}

TEST_CASE("sagactl run --replicas 2 --store postgresql runs scenarios against the replicated stack", "[.postgresql]") {
  const std::string dir = std::string(SAGALAB_SOURCE_DIR) + "/scenarios/";
  auto r = run_command(shell_quote(bin("sagactl")) + " run --replicas 2 --store postgresql " +
                       shell_quote(dir + "orquestador-crash-durante-compensacion.yaml") + " " +
                       shell_quote(dir + "ultima-unidad-disputada.yaml") + " " +
                       shell_quote(dir + "compra-duplicada-misma-clave.yaml"));
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("all 3 scenarios passed") != std::string::npos);
}
