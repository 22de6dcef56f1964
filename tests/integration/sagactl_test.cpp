// sagactl end to end: a stack it starts with `up` on free ports, buy, inject
// every action, verify, show, a corrupted state that verify must catch, down.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <chrono>
#include <thread>

#include "process.hpp"

using namespace testsupport;

namespace {

CmdResult sagactl(const std::string& stack_dir, const std::vector<std::string>& args) {
  std::string cmd = shell_quote(bin("sagactl")) + " --stack-dir " + shell_quote(stack_dir);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd);
}

// Starts a stack with `sagactl up` and always brings it down.
struct UpStack {
  TempDir dir;
  std::string stack;
  Json record;
  UpStack() : stack(dir.path() + "/stack") {
    auto r = sagactl(stack, {"up", "--base-port", "0", "--orchestrator-arg=--step-timeout-ms=400",
                             "--orchestrator-arg=--backoff-base-ms=5", "--orchestrator-arg=--backoff-max-ms=50"});
    INFO(r.out);
    REQUIRE(r.code == 0);
    auto st = sagactl(stack, {"status", "--json"});
    REQUIRE(st.code == 0);
    record = Json::parse(st.out);
  }
  ~UpStack() { sagactl(stack, {"down"}); }
  std::vector<int> pids() const {
    std::vector<int> out;
    for (const auto& p : record["programs"]) out.push_back(p["pid"].get<int>());
    return out;
  }
  std::string url(const std::string& program) const {
    for (const auto& p : record["programs"]) {
      if (p["program"] == program) return p["url"].get<std::string>();
    }
    return "";
  }
};

}  // namespace

TEST_CASE("sagactl up, buy, inject every action, verify, show, down", "[sagactl]") {
  UpStack s;
  CHECK(s.record["healthy"] == true);
  REQUIRE(s.pids().size() == 5);

  auto buy = sagactl(s.stack, {"buy", "--user", "ana", "--product", "laptop"});
  INFO(buy.out);
  CHECK(buy.code == 0);
  CHECK_THAT(buy.out, Catch::Contains("completada"));

  for (const auto& action : std::vector<std::vector<std::string>>{
           {"--action", "error", "--status", "503"},
           {"--action", "latency", "--latency-ms", "30"},
           {"--action", "hang", "--duration-ms", "500", "--times", "1"},
           {"--action", "commit-then-error", "--times", "2"},
           {"--action", "commit-then-drop", "--times", "1"},
           {"--action", "crash-after", "--times", "1"},
           {"--action", "crash-before", "--times", "1"}}) {
    std::vector<std::string> args = {"inject-fault", "pagos", "--endpoint", "transaccion"};
    args.insert(args.end(), action.begin(), action.end());
    auto inj = sagactl(s.stack, args);
    INFO(inj.out);
    REQUIRE(inj.code == 0);
    auto b = sagactl(s.stack, {"--json", "buy", "--product", "auriculares"});
    INFO(b.out);
    CHECK((b.code == 0 || b.code == 1));
    auto resp = Json::parse(b.out.substr(b.out.find('{')), nullptr, false);
    REQUIRE_FALSE(resp.is_discarded());
    auto id = resp["respuesta"]["saga_id"].get<std::string>();
    // The supervisor restarts a crashed ms-pagos; wait for it before clearing.
    for (int i = 0; i < 100 && sagactl(s.stack, {"status"}).code != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(sagactl(s.stack, {"faults", "clear"}).code == 0);
    auto v = sagactl(s.stack, {"verify"});
    INFO(v.out);
    CHECK(v.code == 0);
    CHECK_THAT(v.out, Catch::Contains("all invariants hold"));
    CHECK_THAT(v.out, Catch::Contains("stock (available+reserved/initial):"));  // the legend of LAPTOP 4+1/5
    auto show = sagactl(s.stack, {"show", id});
    INFO(show.out);
    CHECK(show.code == 0);
    CHECK_THAT(show.out, Catch::Contains("cobrar_pago"));
  }
  auto status = Json::parse(sagactl(s.stack, {"--json", "status"}).out);
  int restarts = 0;
  for (const auto& p : status["programs"]) restarts += p.value("restarts", 0);
  CHECK(restarts >= 2);  // the two crash actions killed ms-pagos; the supervisor restarted it

  auto sagas = Json::parse(sagactl(s.stack, {"sagas", "--json", "--limit", "100"}).out);
  CHECK(sagas["sagas"].size() == 8);
  // The table's columns line up by what the terminal shows, accents and all.
  REQUIRE(sagactl(s.stack, {"buy", "--product", "Mouse Inalámbrico"}).code == 0);
  auto table = sagactl(s.stack, {"sagas", "--limit", "100"});
  INFO(table.out);
  std::istringstream lines(table.out);
  std::set<std::size_t> ends;  // the display column where each line's last field (ATTEMPTS) starts
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("saga_", 0) != 0) continue;
    std::size_t cols = 0;
    for (unsigned char c : line.substr(0, line.rfind(' '))) cols += (c & 0xC0) != 0x80;
    ends.insert(cols);
  }
  CHECK(ends.size() == 1);
  CHECK_THAT(table.out, Catch::Contains("Mouse Inalámbrico"));
  auto reset = sagactl(s.stack, {"reset"});
  CHECK(reset.code == 0);
  CHECK(Json::parse(sagactl(s.stack, {"sagas", "--json"}).out)["sagas"].empty());

  auto pids = Json::parse(sagactl(s.stack, {"--json", "status"}).out)["programs"];
  auto down = sagactl(s.stack, {"down"});
  CHECK(down.code == 0);
  for (const auto& p : pids) {
    auto pid = p["pid"].get<int>();
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = ::kill(pid, 0) != 0;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(gone);
  }
}

TEST_CASE("sagactl verify exits 1 and names the saga when state is corrupted behind the orchestrator", "[sagactl]") {
  UpStack s;
  auto b = sagactl(s.stack, {"--json", "buy", "--product", "teclado"});
  REQUIRE(b.code == 0);
  auto resp = Json::parse(b.out);
  auto id = resp["respuesta"]["saga_id"].get<std::string>();
  auto reserva = resp["respuesta"]["datos"]["reserva_id"].get<std::string>();
  CHECK(sagactl(s.stack, {"verify"}).code == 0);
  // Release the completed saga's reservation directly at ms-inventario.
  REQUIRE(post(s.url("ms-inventario"), "/compensacion", {{"reserva_id", reserva}}).ok());
  auto v = sagactl(s.stack, {"verify"});
  INFO(v.out);
  CHECK(v.code == 1);
  CHECK_THAT(v.out, Catch::Contains(id));
  CHECK_THAT(v.out, Catch::Contains("reservation"));
  auto j = sagactl(s.stack, {"verify", "--json"});
  CHECK(j.code == 1);
  CHECK(Json::parse(j.out)["ok"] == false);
}

TEST_CASE("sagactl bad input: one clear line and a non-zero exit", "[sagactl]") {
  TempDir dir;
  auto unreachable = sagactl(dir.path(), {"--gateway", "http://127.0.0.1:1", "verify", "--wait-ms", "0"});
  CHECK(unreachable.code == 2);
  CHECK_THAT(unreachable.out, Catch::Contains("cannot reach"));
  auto svc = sagactl(dir.path(), {"--gateway", "http://127.0.0.1:1", "inject-fault", "billing", "--action", "error"});
  CHECK(svc.code == 2);
  CHECK_THAT(svc.out, Catch::Contains("unknown service 'billing'"));
  auto act = sagactl(dir.path(), {"--gateway", "http://127.0.0.1:1", "inject-fault", "pagos", "--action", "explode"});
  CHECK(act.code == 2);
  CHECK_THAT(act.out, Catch::Contains("unknown action 'explode'"));
  auto unknown = sagactl(dir.path(), {"frobnicate"});
  CHECK(unknown.code == 2);
  CHECK_THAT(unknown.out, Catch::Contains("unknown command 'frobnicate'; the commands are: up, down"));
  // With --json an error is JSON on stdout too, with the same exit code.
  auto quiet = run_command(shell_quote(bin("sagactl")) + " --stack-dir " + shell_quote(dir.path()) +
                               " --gateway http://127.0.0.1:1 --json verify --wait-ms 0",
                           false);
  CHECK(quiet.code == 2);
  auto err = Json::parse(quiet.out, nullptr, false);
  REQUIRE_FALSE(err.is_discarded());
  CHECK_THAT(err["error"].get<std::string>(), Catch::Contains("cannot reach"));
  CHECK(err["exit_code"] == 2);
  // One duration parser for every flag that takes a time; flags that each set the seeds exclude each other.
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"bench", "--duration", "5x"}, {"simulate", "--duration", "5x"}}) {
    auto r = sagactl(dir.path(), cmd);
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains("--duration: expected a time such as 90 (seconds), 500ms, 60s, 5m or 1h"));
  }
  auto both = sagactl(dir.path(), {"simulate", "--runs", "3", "--seeds", "1..4"});
  CHECK(both.code == 2);
  CHECK_THAT(both.out, Catch::Contains("--runs excludes --seeds"));
  CHECK(sagactl(dir.path(), {"simulate", "--runs", "3", "--duration", "1s"}).code == 2);
  // Each command's help has its own examples, not the general ones.
  for (const char* cmd : {"down", "status", "reset", "logs"}) {
    auto help = sagactl(dir.path(), {cmd, "--help"});
    INFO(cmd << ": " << help.out);
    CHECK_THAT(help.out, Catch::Contains(std::string("sagactl ") + cmd));
    CHECK_THAT(help.out, !Catch::Contains("sagactl proxy --upstream"));
  }
  // Values the service would refuse are refused by sagactl itself, with no stack up (exit 2).
  for (const auto& [flags, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--times", "-1"}, "--times must be a positive integer"},
           {{"--probability", "2"}, "--probability must be between 0 and 1"},
           {{"--status", "200"}, "--status must be an HTTP error status"},
           {{"--latency-ms", "-5"}, "--latency-ms must be between 0 and"},
           {{"--endpoint", "reserva"}, "unknown endpoint 'reserva'; expected one of transaccion, compensacion"}}) {
    std::vector<std::string> args = {"inject-fault", "pagos", "--action", "error"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = sagactl(dir.path(), args);  // no stack in dir: the check comes first
    INFO(r.out);
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains(says));
    CHECK_THAT(r.out, Catch::Contains("nothing was sent"));
  }
  auto missing = sagactl(dir.path(), {"show"});
  CHECK(missing.code == 2);
  CHECK(sagactl(dir.path(), {}).code == 2);
  auto help = sagactl(dir.path(), {"--help"});
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("inject-fault"));
}

TEST_CASE("sagactl bench runs its purchases, counts every outcome and verifies", "[sagactl][bench]") {
  UpStack s;
  auto r = sagactl(s.stack, {"--json", "bench", "--sagas", "150", "--concurrency", "8"});
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto j = Json::parse(r.out);
  CHECK(j["requests"] == 150);
  CHECK(j["errors"] == 0);
  int total = 0;
  for (const auto& [k, v] : j["outcomes"].items()) total += v.get<int>();
  CHECK(total == 150);
  CHECK(j["outcomes"]["completada"].get<int>() > 0);  // stock runs out, so some are compensated too
  REQUIRE(j["warnings"].size() == 1);                  // and bench said it would
  CHECK_THAT(j["warnings"][0].get<std::string>(), Catch::Contains("units for 150 purchases"));
  CHECK(j["verify"] == true);
  CHECK(j["latency_ms"]["p50"].get<double>() <= j["latency_ms"]["p99"].get<double>());
  CHECK(j["peak_rss_kb"]["orquestador"].get<long>() > 0);
  auto sagas = Json::parse(sagactl(s.stack, {"sagas", "--json", "--limit", "1000"}).out);
  CHECK(sagas["sagas"].size() == 150);
}

TEST_CASE("sagactl reaches a stack by URLs: no local record, no gateway", "[sagactl]") {
  UpStack s;
  TempDir elsewhere;  // no stack.json here: every address comes from the URLs
  std::vector<std::string> urls;
  for (const auto& p : {"orquestador", "ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
    urls.push_back(std::string("--") + p + "-url=" + s.url(p));
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), urls.begin(), urls.end());
    return sagactl(elsewhere.path(), args);
  };
  auto st = with({"--json", "status"});
  INFO(st.out);
  REQUIRE(st.code == 0);
  CHECK(Json::parse(st.out)["programs"][2]["url"] == s.url("ms-compras"));
  CHECK(with({"inject-fault", "ms-inventario", "--action", "error", "--status", "409", "--times", "1"}).code == 0);
  auto b = with({"--json", "buy", "--product", "mouse"});
  INFO(b.out);
  REQUIRE(b.code == 1);  // the purchase did not complete
  CHECK(Json::parse(b.out)["respuesta"]["estado"] == "compensada");
  CHECK(with({"verify"}).code == 0);
  // The purchase went to the stack the URLs name.
  auto local = sagactl(s.stack, {"--json", "sagas"});
  CHECK_THAT(local.out, Catch::Contains(Json::parse(b.out)["respuesta"]["saga_id"].get<std::string>()));
  // One URL missing: a clear error naming what to set; and `up` refuses to start beside URLs.
  urls.pop_back();
  auto partial = with({"status"});
  CHECK(partial.code == 2);
  CHECK_THAT(partial.out, Catch::Contains("MS_INVENTARIO_URL"));
  auto up = with({"up", "--base-port", "0"});
  CHECK(up.code == 2);
  CHECK_THAT(up.out, Catch::Contains("unset it"));
}

TEST_CASE("sagactl simulate at the edges of the seed type: the last seeds run, what would pass them is refused") {
  // `timeout`: before the fix, the last seed made the campaign spin forever.
  auto sim = [](const std::string& args) {
    return run_command("timeout 60 " + shell_quote(bin("sagactl")) + " simulate --sagas 10 " + args + " 2>&1");
  };
  auto last = sim("--seed 18446744073709551615");
  INFO(last.out);
  CHECK(last.code == 0);
  CHECK(last.out.find("1 seed(s)") != std::string::npos);
  auto range = sim("--seeds 18446744073709551614..18446744073709551615 --jobs 2");
  INFO(range.out);
  CHECK(range.code == 0);
  CHECK(range.out.find("2 seed(s)") != std::string::npos);
  auto zero = sim("--seeds 0..1");
  CHECK(zero.code == 0);
  // Past the last seed, or below the first: refused, at once.
  auto past = sim("--seed 18446744073709551615 --runs 2");
  INFO(past.out);
  CHECK(past.code == 2);
  CHECK(past.out.find("past the last seed") != std::string::npos);
  CHECK(sim("--seed -1").code == 2);
}

namespace {

// A base port whose five ports (base .. base+4) can all be bound now.
int five_free_ports() {
  for (int tries = 0; tries < 200; ++tries) {
    int base = free_port();
    if (base <= 0 || base > 65000) continue;
    bool all = true;
    for (int i = 1; i < 5 && all; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(base + i));
      all = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
    }
    if (all) return base;
  }
  return -1;
}

// Running: it exists and is not a zombie waiting for a parent to reap it.
bool alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() || text[close + 2] != 'Z';
}

}  // namespace

TEST_CASE("sagactl up on ports another stack holds fails, says so, and leaves nothing running", "[sagactl]") {
  TempDir a, b;
  int base = five_free_ports();
  REQUIRE(base > 0);
  auto first = sagactl(a.path(), {"up", "--base-port", std::to_string(base)});
  INFO(first.out);
  REQUIRE(first.code == 0);
  auto second = sagactl(b.path(), {"up", "--base-port", std::to_string(base), "--wait-ms", "20000"});
  INFO(second.out);
  CHECK(second.code == 1);
  CHECK_THAT(second.out, Catch::Contains("held by another process"));
  CHECK_THAT(second.out, !Catch::Contains("stack up"));
  // Nothing of the second stack runs: no record, and its supervisor is gone.
  CHECK_FALSE(std::filesystem::exists(b.path() + "/stack.json"));
  auto status_b = sagactl(b.path(), {"down"});
  CHECK_THAT(status_b.out, Catch::Contains("no stack running"));
  // The first stack is untouched: its own pids answer.
  auto st = Json::parse(sagactl(a.path(), {"--json", "status"}).out);
  CHECK(st["healthy"] == true);
  CHECK(sagactl(a.path(), {"down"}).code == 0);
}

TEST_CASE("sagactl down stops a supervisor that does not answer SIGTERM: SIGKILL for exactly its pids", "[sagactl]") {
  UpStack s;
  auto stack = Json::parse(std::ifstream(s.stack + "/stack.json"));
  int supervisor = stack["supervisor_pid"];
  std::vector<int> pids;
  for (const auto& [name, p] : stack["services"].items()) pids.push_back(p["pid"]);
  REQUIRE(pids.size() == 5);
  REQUIRE(::kill(supervisor, SIGSTOP) == 0);  // a stopped supervisor handles no SIGTERM
  auto down = sagactl(s.stack, {"down", "--grace-ms", "500"});
  INFO(down.out);
  CHECK(down.code == 0);
  CHECK_THAT(down.out, Catch::Contains("SIGKILL"));
  CHECK_THAT(down.out, Catch::Contains(std::to_string(supervisor)));
  for (int i = 0; i < 100 && alive(pids[0]); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int pid : pids) CHECK_FALSE(alive(pid));
  CHECK_FALSE(std::filesystem::exists(s.stack + "/stack.json"));
}

// The README's walkthrough (the first block of its "sagactl" section), run as written on a
// stack of its own, each comment's claim checked: what it says completes completes, what it
// says is compensated is compensated, verify holds.
TEST_CASE("the README's sagactl walkthrough does what its comments say", "[sagactl]") {
  std::ifstream readme(std::string(SAGALAB_SOURCE_DIR) + "/README.md");
  std::string text((std::istreambuf_iterator<char>(readme)), {});
  auto section = text.find("\n## sagactl\n");
  REQUIRE(section != std::string::npos);
  auto begin = text.find("```bash\n", section);
  auto end = text.find("```", begin + 8);
  REQUIRE(end != std::string::npos);
  std::istringstream block(text.substr(begin + 8, end - begin - 8));
  TempDir dir;
  auto stack = dir.path() + "/stack";
  std::size_t claims = 0, ran = 0;
  std::string last_saga;
  for (std::string line; std::getline(block, line);) {
    if (line.rfind("sagactl ", 0) != 0) continue;
    auto hash = line.find("  #");
    auto comment = hash == std::string::npos ? std::string() : line.substr(hash);
    auto command = line.substr(8, hash == std::string::npos ? std::string::npos : hash - 8);
    if (auto at = command.find("<saga-id>"); at != std::string::npos && !last_saga.empty())
      command.replace(at, 9, last_saga);
    // Placeholders, long runs and commands with their own tests.
    if (command.find('<') != std::string::npos || command.find('[') != std::string::npos) continue;
    for (const char* skip : {"run ", "simulate ", "bench ", "logs", "top", "proxy ", "check ", "explore ", "down"})
      if (command.rfind(skip, 0) == 0) command.clear();
    if (command.empty() || command.rfind("--", 0) == 0) continue;  // another stack (--proxy, --gateway)
    std::vector<std::string> args;
    std::istringstream words(command);
    for (std::string w; words >> w;) args.push_back(w);
    if (args[0] == "up") args.insert(args.end(), {"--base-port", "0"});
    bool buy = args[0] == "buy";
    if (buy) args.insert(args.begin(), "--json");
    auto r = sagactl(stack, args);
    ++ran;
    INFO(line << "\n" << r.out);
    if (buy) {
      auto j = Json::parse(r.out.substr(r.out.find('{')), nullptr, false);
      REQUIRE_FALSE(j.is_discarded());
      auto estado = j["respuesta"].value("estado", std::string(j["respuesta"].contains("saga_id") ? "completada" : ""));
      if (comment.find("compensated") != std::string::npos) {
        ++claims;
        CHECK(estado == "compensada");
      } else if (comment.find("complet") != std::string::npos || comment.find("one purchase") != std::string::npos) {
        ++claims;
        CHECK(r.code == 0);
        CHECK(estado == "completada");
      }
      last_saga = j["respuesta"].value("saga_id", last_saga);
    } else if (args[0] == "verify") {
      ++claims;
      CHECK(r.code == 0);
      CHECK_THAT(r.out, Catch::Contains("all invariants hold"));
    } else if (args[0] == "sagas" && command.find("compensada") != std::string::npos) {
      ++claims;
      CHECK_THAT(r.out, Catch::Contains("compensada"));
    } else {
      CHECK(r.code == 0);
    }
  }
  sagactl(stack, {"down"});
  CHECK(ran >= 8);
  CHECK(claims >= 5);  // three purchases, verify, the list of compensated sagas
}
