// Test support implementation: the programs under test (started through
// sagalab/process.hpp, the CLI's helper), free ports, health polling.
#include "process.hpp"

#include "sagalab/process.hpp"

#include <ctime>
#include <random>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace testsupport {

namespace fs = std::filesystem;

std::string bin(const std::string& name) {
  return name.front() == '/' ? name : std::string(SAGALAB_BIN_DIR) + "/" + name;  // a fixture's own path
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "sagalab-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Proc::Proc(std::string program, std::vector<std::string> args, std::string dir, int port, std::string subcommand)
    : program_(std::move(program)),
      args_(std::move(args)),
      subcommand_(std::move(subcommand)),
      dir_(std::move(dir)),
      port_(port) {
  start();
}

Proc::~Proc() {
  if (pid_ > 0) kill9();
}

void Proc::start() {
  auto tag = fs::path(program_).filename().string() + (subcommand_.empty() ? "" : "-" + subcommand_);
  for (std::size_t i = 0; i < args_.size(); ++i)
    if (args_[i] == "--name" && i + 1 < args_.size()) tag += "-" + args_[i + 1];
  auto port_file = dir_ + "/" + tag + ".port";
  log_ = dir_ + "/" + tag + ".log";
  fs::remove(port_file);
  std::vector<std::string> argv = {bin(program_)};
  if (!subcommand_.empty()) argv.push_back(subcommand_);
  std::vector<std::string> common = {"--host",     "127.0.0.1",          "--port",      std::to_string(port_),
                                     "--data-dir", dir_ + "/data-" + tag, "--port-file", port_file};
  argv.insert(argv.end(), common.begin(), common.end());
  for (const auto& a : args_) argv.push_back(a);
  sagalab::process::Spec spec;
  spec.argv = argv;
  spec.log = log_;
  spec.die_with_parent = true;  // if the test process dies (a crash, a failed REQUIRE in a thread), its servers die with it
  pid_ = sagalab::process::spawn(spec);
  auto w = sagalab::process::wait_port_file(pid_, port_file);
  if (w.port > 0) {
    port_ = w.port;
    return;
  }
  if (w.exit_status) {
    pid_ = -1;
    throw std::runtime_error(program_ + " exited at start: " + log());
  }
  throw std::runtime_error(program_ + " did not write its port file in " + std::to_string(w.waited_ms) +
                           " ms; its log: " + log());
}

bool Proc::running() {
  if (pid_ <= 0) return false;
  if (sagalab::process::exited(pid_)) {
    pid_ = -1;
    return false;
  }
  return true;
}

bool Proc::wait_healthy(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (get(url(), "/health").ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int Proc::wait_exit(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pid_ > 0) {
    if (auto st = sagalab::process::exited(pid_)) {
      pid_ = -1;
      return *st;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

void Proc::stop() {
  if (pid_ <= 0) return;
  sagalab::process::stop(pid_, 10000);
  pid_ = -1;
}

void Proc::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

std::string Proc::full_log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Proc::log() const { return sagalab::process::log_tail(log_, 4000); }

sagalab::HttpResult get(const std::string& url, const std::string& path) {
  return sagalab::http_call(url, "GET", path, nullptr, {}, 5000);
}

sagalab::HttpResult post(const std::string& url, const std::string& path, const Json& body,
                         const httplib::Headers& h, std::int64_t timeout_ms) {
  return sagalab::http_call(url, "POST", path, &body, h, timeout_ms);
}

CmdResult run_command(const std::string& cmd, bool merge_stderr) {
  CmdResult r;
  FILE* p = popen((merge_stderr ? cmd + " 2>&1" : cmd).c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> fast_orchestrator() {
  return {"--step-timeout-ms", "400", "--backoff-base-ms", "5", "--backoff-max-ms", "50", "--quiet"};
}

Stack::Stack(std::vector<std::string> orchestrator_args, std::map<std::string, std::vector<std::string>> service_args,
             bool quiet_services)
    : orchestrator_args_(std::move(orchestrator_args)) {
  for (const char* s : {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"}) {
    auto args = service_args[s];
    if (quiet_services) args.push_back("--quiet");
    procs[s] = std::make_unique<Proc>(s, args, dir.path());
  }
  for (auto& [name, p] : procs) {
    if (!p->wait_healthy()) throw std::runtime_error(name + " not healthy: " + p->log());
  }
  restart_orchestrator();
}

void Stack::restart_orchestrator() {
  auto service = [&](const std::string& p) { return service_urls_.count(p) ? service_urls_[p] : url(p); };
  std::vector<std::string> args = {"--catalogo-url", service("ms-catalogo"), "--compras-url", service("ms-compras"),
                                   "--pagos-url", service("ms-pagos"), "--inventario-url", service("ms-inventario")};
  for (const auto& a : orchestrator_args_) args.push_back(a);
  int port = procs.count("orquestador") ? procs["orquestador"]->port() : 0;
  procs["orquestador"].reset();
  procs["orquestador"] = std::make_unique<Proc>("orquestador", args, dir.path(), port);
  if (!procs["orquestador"]->wait_healthy())
    throw std::runtime_error("orquestador not healthy: " + procs["orquestador"]->log());
}

void Stack::route_services(std::map<std::string, std::string> urls) {
  service_urls_ = std::move(urls);
  restart_orchestrator();
}

Json Stack::states() {
  Json states = Json::object();
  Json fired = Json::object();
  for (auto& [name, p] : procs) {
    auto r = get(p->url(), "/admin/state");
    if (!r.ok()) throw std::runtime_error("cannot read state of " + name);
    fired[name] = r.answer->body.value("fallos_disparados", Json::array());
    states[name] = r.answer->body;
  }
  states["fallos"] = fired;
  return states;
}

bool Stack::wait_quiet(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = get(url("orquestador"), "/admin/state");
    if (r.ok()) {
      bool quiet = true;
      for (const auto& s : r.answer->body["sagas"]) {
        auto e = s.value("estado", "");
        if (e != "completada" && e != "compensada") quiet = false;
      }
      if (quiet) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

CmdResult run_sagactl(const std::vector<std::string>& args) {
  std::string cmd = shell_quote(bin("sagactl"));
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd, false);
}

std::map<std::string, std::string> upstream_urls(Proc& proxy) {
  auto r = get(proxy.url(), "/admin/upstreams");
  if (!r.ok()) throw std::runtime_error("the proxy did not list its upstreams: " + r.error);
  std::map<std::string, std::string> out;
  for (const auto& u : r.answer->body["upstreams"])
    out[u["name"].get<std::string>()] = "http://127.0.0.1:" + std::to_string(u["port"].get<int>());
  return out;
}

// A port for a test to bind later. Drawn below the kernel's ephemeral range (32768 and up here),
// which every port-0 bind of the other tests running beside it draws from: a port picked from
// there could be taken by one of them before this test's process binds it.
int free_port() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) * 2654435761u ^ static_cast<unsigned>(::time(nullptr)));
  for (int tries = 0; tries < 500; ++tries) {
    int port = 20000 + static_cast<int>(rng() % 12000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return port;
  }
  return -1;
}

std::unique_ptr<Proc> put_behind_proxy(Stack& stack, const std::string& record) {
  std::vector<std::string> args = {"--record", record, "--quiet", "--upstream-timeout-ms", "5000"};
  for (const auto& [name, prog] : std::vector<std::pair<std::string, std::string>>{{"catalogo", "ms-catalogo"},
                                                                                  {"compras", "ms-compras"},
                                                                                  {"pagos", "ms-pagos"},
                                                                                  {"inventario", "ms-inventario"},
                                                                                  {"orquestador", "orquestador"}}) {
    args.push_back("--upstream");
    args.push_back(name + "=127.0.0.1:0->" + stack.url(prog));
  }
  auto proxy = std::make_unique<Proc>("sagactl", args, stack.dir.path(), 0, "proxy");
  if (!proxy->wait_healthy()) throw std::runtime_error("the proxy did not become healthy: " + proxy->log());
  auto up = upstream_urls(*proxy);
  stack.route_services({{"ms-catalogo", up["catalogo"]},
                        {"ms-compras", up["compras"]},
                        {"ms-pagos", up["pagos"]},
                        {"ms-inventario", up["inventario"]}});
  return proxy;
}

}  // namespace testsupport
