// sagactl bench: drives purchases against a running stack from an
// asynchronous client (Boost.Asio + Beast, keep-alive connections, one
// thread), and reports throughput, the latency distribution, outcomes, each
// process's peak RSS, and the invariants afterwards.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "commands.hpp"
#include "sagalab/checker_json.hpp"
#include "sagalab/rng.hpp"

namespace sagactl {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  int sagas = 2000;
  int concurrency = 32;
  double faults = 0.0;
  double duration_s = 0.0;
  std::string raw_url;  // measure a plain GET against this URL instead (the ceiling)
  bool no_verify = false;
};

bool timed_run(const BenchOptions& o) { return o.duration_s > 0; }

struct Stats {
  Clock::time_point last_answer = Clock::now();
  std::vector<double> latencies_ms;
  std::map<std::string, int> outcomes;
  int errors = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::io_context& io, tcp::resolver::results_type endpoints, std::string host, std::string target,
          std::string method, std::function<std::string()> next_body, std::function<bool()> take, Stats& stats)
      : stream_(io),
        endpoints_(std::move(endpoints)),
        host_(std::move(host)),
        target_(std::move(target)),
        method_(std::move(method)),
        next_body_(std::move(next_body)),
        take_(std::move(take)),
        stats_(stats) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(30));
    stream_.async_connect(endpoints_, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (ec) {
        ++self->stats_.errors;
        return;
      }
      self->stream_.socket().set_option(tcp::no_delay(true));
      self->next();
    });
  }

 private:
  void next() {
    if (!take_()) return;
    req_ = {};
    req_.version(11);
    req_.method(method_ == "POST" ? http::verb::post : http::verb::get);
    req_.target(target_);
    req_.set(http::field::host, host_);
    req_.keep_alive(true);
    if (method_ == "POST") {
      req_.set(http::field::content_type, "application/json");
      req_.body() = next_body_();
    }
    req_.prepare_payload();
    started_ = Clock::now();
    stream_.expires_after(std::chrono::seconds(60));
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail();
      self->res_ = {};
      http::async_read(self->stream_, self->buffer_, self->res_, [self](beast::error_code ec2, std::size_t) {
        if (ec2) return self->fail();
        self->done();
      });
    });
  }

  void done() {
    stats_.last_answer = Clock::now();
    auto ms = std::chrono::duration<double, std::milli>(stats_.last_answer - started_).count();
    stats_.latencies_ms.push_back(ms);
    std::string outcome = "HTTP " + std::to_string(res_.result_int());
    if (method_ == "POST") {
      auto j = Json::parse(res_.body(), nullptr, false);
      if (j.is_object() && j.contains("estado") && j["estado"].is_string()) outcome = j["estado"].get<std::string>();
    } else if (res_.result_int() == 200) {
      outcome = "ok";
    }
    stats_.outcomes[outcome]++;
    if (!res_.keep_alive()) {
      start();  // the server closed: reconnect
      return;
    }
    next();
  }

  void fail() {
    ++stats_.errors;
    beast::error_code ignored;
    stream_.socket().close(ignored);
    start();
  }

  beast::tcp_stream stream_;
  tcp::resolver::results_type endpoints_;
  std::string host_, target_, method_;
  std::function<std::string()> next_body_;
  std::function<bool()> take_;
  Stats& stats_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Clock::time_point started_;
};

// CPU seconds (user + system) a process has used so far; -1 when unknown.
double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  long utime = 0, stime = 0;
  // Fields 3.. of stat(5); utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long peak_rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(std::min<double>(static_cast<double>(sorted.size() - 1),
                                                     p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[i];
}

int run_bench(const GlobalOptions& g, const BenchOptions& o) {
  auto url = o.raw_url.empty() ? base_url(g, "orquestador") : o.raw_url;
  sagalab::BaseUrl base;
  try {
    base = sagalab::parse_base_url(url);
  } catch (const std::exception& e) {
    throw CliError(kExitUnreachable, e.what());
  }
  auto hostport = base.origin.substr(base.origin.find("://") + 3);
  auto colon = hostport.rfind(':');
  std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  std::string target = o.raw_url.empty() ? base.prefix + "/compra" : (base.prefix.empty() ? "/" : base.prefix);

  if (o.raw_url.empty()) {
    auto a = sagalab::http_call(base_url(g, "orquestador"), "GET", "/health", nullptr, {}, 2000);
    if (!a.ok()) throw CliError(kExitUnreachable, "the orchestrator at " + base_url(g, "orquestador") + " is not healthy; start the stack with 'sagactl up'");
  }
  if (o.faults > 0) {
    Json rules = random_fault_rules(o.faults);
    for (const auto& svc : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
      call_ok(g, svc, "POST", "/admin/faults", &rules, true);
  }

  // Each program's CPU time before and after, for CPU seconds per 1,000 sagas.
  std::map<std::string, int> pids;
  std::map<std::string, double> cpu0;
  if (!g.remote() && o.raw_url.empty()) {
    if (auto stack = read_stack(g)) {
      for (const auto& p : programs()) {
        int pid = (*stack)["services"][p].value("pid", -1);
        if (pid > 0) {
          pids[p] = pid;
          cpu0[p] = cpu_seconds(pid);
        }
      }
    }
  }

  // Stock for fewer purchases than the run makes: past it, purchases are compensated. Say so first
  // (with --json, in the result's warnings).
  std::vector<std::string> warnings;
  if (o.raw_url.empty() && !o.no_verify) {
    try {
      long long units = 0;
      auto state = call_ok(g, "ms-inventario", "GET", "/admin/state", nullptr, true);
      for (const auto& [k, v] : state["stock"].items()) units += v.value("stock", 0LL);
      if (!timed_run(o) && units < o.sagas)
        warnings.push_back("the stock holds " + std::to_string(units) + " units for " + std::to_string(o.sagas) +
                           " purchases: once it runs out, purchases are compensated (a real outcome, but not the "
                           "happy path). For a throughput run start the stack with more: sagactl up --stock FILE");
    } catch (const CliError&) {  // no admin access (a gateway without the token): no warning
    }
  }
  if (!g.json)
    for (const auto& w : warnings) std::cerr << paint("warning", "33;1") << ": " << w << "\n";

  asio::io_context io;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, port);
  Stats stats;
  stats.latencies_ms.reserve(static_cast<std::size_t>(o.sagas));
  const std::vector<std::string> products = {"Laptop Gamer", "Mouse Inalámbrico", "Teclado Mecánico",
                                             "Monitor 27 pulgadas", "Auriculares Bluetooth"};
  sagalab::SplitMix64 rng(1);
  int issued = 0;
  auto t0 = Clock::now();
  const bool timed = o.duration_s > 0;
  auto take = [&] {
    if (timed ? std::chrono::duration<double>(Clock::now() - t0).count() >= o.duration_s : issued >= o.sagas) return false;
    ++issued;
    return true;
  };
  auto body = [&] {
    Json b{{"usuario_id", "bench" + std::to_string(rng.uniform(1, 1000))},
           {"producto", products[static_cast<std::size_t>(rng.uniform(0, 4))]}};
    return b.dump();
  };
  const std::string method = o.raw_url.empty() ? "POST" : "GET";
  for (int i = 0; i < o.concurrency; ++i)
    std::make_shared<Session>(io, endpoints, host, target, method, body, take, stats)->start();

  const bool tty = ::isatty(STDERR_FILENO);
  asio::steady_timer ticker(io);
  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::milliseconds(500));
    ticker.async_wait([&](beast::error_code ec) {
      if (ec) return;
      auto secs = std::chrono::duration<double>(Clock::now() - t0).count();
      if (tty)
        std::cerr << "\r" << stats.latencies_ms.size() << (timed ? "" : "/" + std::to_string(o.sagas)) << " done  "
                  << static_cast<long>(static_cast<double>(stats.latencies_ms.size()) / secs) << "/s   " << std::flush;
      bool more = timed ? std::chrono::duration<double>(Clock::now() - t0).count() < o.duration_s : issued < o.sagas;
      bool outstanding = static_cast<int>(stats.latencies_ms.size()) + stats.errors < issued;
      if (more || outstanding) tick();
    });
  };
  tick();
  // The ticker re-arms only while requests are outstanding, so run() returns when all are done.
  io.run();
  auto secs = std::chrono::duration<double>(stats.last_answer - t0).count();
  if (tty) std::cerr << "\r" << std::string(50, ' ') << "\r";

  if (o.faults > 0) {
    for (const auto& svc : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"})
      call_ok(g, svc, "DELETE", "/admin/faults", nullptr, true);
  }
  auto lat = stats.latencies_ms;
  std::sort(lat.begin(), lat.end());
  double rate = static_cast<double>(lat.size()) / secs;
  Json hist = Json::object();
  for (double edge : {1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 1e12}) {
    auto n = std::upper_bound(lat.begin(), lat.end(), edge) - lat.begin();
    hist[edge >= 1e12 ? "inf" : "<=" + std::to_string(static_cast<int>(edge)) + "ms"] = n;
  }
  Json rss = Json::object();
  Json cpu = Json::object();
  for (const auto& [p, pid] : pids) {
    rss[p] = peak_rss_kb(pid);
    double used = cpu_seconds(pid) - cpu0[p];
    if (cpu0[p] >= 0 && !lat.empty()) cpu[p] = used * 1000.0 / static_cast<double>(lat.size());
  }
  Json result{{"requests", lat.size()},
              {"errors", stats.errors},
              {"seconds", secs},
              {"per_second", rate},
              {"concurrency", o.concurrency},
              {"latency_ms",
               {{"p50", percentile(lat, 50)},
                {"p95", percentile(lat, 95)},
                {"p99", percentile(lat, 99)},
                {"max", lat.empty() ? 0 : lat.back()}}},
              {"histogram", hist},
              {"outcomes", stats.outcomes},
              {"peak_rss_kb", rss},
              {"cpu_s_per_1000", cpu},
              {"warnings", warnings}};
  bool ok = stats.errors == 0;
  if (o.raw_url.empty() && !o.no_verify) {
    auto report = sagalab::check_invariants(collect_states(g));
    result["verify"] = sagalab::to_json(report)["ok"];
    result["violations"] = report.violations.size();
    ok = ok && report.ok();
  }
  if (g.json) {
    print_json(result);
  } else {
    std::printf("%zu %s in %.1f s: %.0f/s at concurrency %d (%d errors)\n", lat.size(),
                o.raw_url.empty() ? "sagas" : "requests", secs, rate, o.concurrency, stats.errors);
    std::printf("latency ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", percentile(lat, 50), percentile(lat, 95),
                percentile(lat, 99), lat.empty() ? 0.0 : lat.back());
    // The histogram as a table, its buckets in order, each with its share.
    std::printf("latency histogram (answered within):\n");
    long long below = 0;
    for (double edge : {1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 1e12}) {
      auto key = edge >= 1e12 ? std::string("inf") : "<=" + std::to_string(static_cast<int>(edge)) + "ms";
      long long n = hist[key].get<long long>();
      std::printf("  %-9s %8lld  %5.1f%%  (+%lld)\n", edge >= 1e12 ? "any" : key.c_str(), n,
                  lat.empty() ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(lat.size()), n - below);
      below = n;
    }
    std::cout << "outcomes:";
    for (const auto& [k, v] : stats.outcomes) std::cout << "  " << k << " " << v;
    std::cout << "\n";
    if (!rss.empty()) {
      std::cout << "peak RSS:";
      for (const auto& [p, kb] : rss.items()) std::printf("  %s %.1f MB", p.c_str(), static_cast<double>(kb.get<long>()) / 1024.0);
      std::cout << "\n";
    }
    if (!cpu.empty()) {
      std::cout << "CPU s per 1000 sagas:";
      double total = 0;
      for (const auto& [p, v] : cpu.items()) {
        std::printf("  %s %.3f", p.c_str(), v.get<double>());
        total += v.get<double>();
      }
      std::printf("  (all %.3f)\n", total);
    }
    if (result.contains("verify"))
      std::cout << (result["verify"].get<bool>() ? paint("✔ verify: all invariants hold", "32")
                                                 : paint("✘ verify: invariants violated (run sagactl verify)", "31"))
                << "\n";
  }
  return ok ? kExitOk : kExitFailed;
}

}  // namespace

void setup_bench(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench", "Drive purchases at a running stack and measure it");
  sub->footer(
      "Closed loop: --concurrency keep-alive connections, each sending its next purchase when the\n"
      "last one is answered. Reports sagas/s, latency percentiles and histogram, outcomes, each\n"
      "program's peak RSS and CPU seconds per 1,000 sagas (local stack), then checks every invariant.\n\n"
      "Examples:\n  sagactl bench --sagas 20000 --concurrency 32\n  sagactl bench --duration 30 --faults 0.05 --json");
  sub->add_option("--sagas", o->sagas, "purchases to run")->check(CLI::Range(1, 100000000))->capture_default_str();
  sub->add_option("--concurrency", o->concurrency, "connections")->check(CLI::Range(1, 4096))->capture_default_str();
  sub->add_option("--faults", o->faults, "fault rate on every service during the run")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option_function<std::string>(
         "--duration", [o](const std::string& t) { o->duration_s = parse_duration(t, "--duration"); },
         "run for this long instead of --sagas (30, 30s, 5m)")
      ->type_name("TIME");
  sub->add_option("--raw-url", o->raw_url, "GET this URL instead of buying (measures the HTTP ceiling)");
  sub->add_flag("--no-verify", o->no_verify, "skip the invariant check at the end");
  sub->callback([&g, o] { throw CliError(run_bench(g, *o), ""); });
}

}  // namespace sagactl
