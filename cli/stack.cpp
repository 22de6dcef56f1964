// The local stack: `up` forks a supervisor that starts the five programs
// (binaries next to sagactl), restarts any that dies, records pids and ports
// in <stack-dir>/stack.json, and stops them all on SIGTERM (`down`).
#include "stack.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "sagalab/process.hpp"

namespace sagactl {

namespace fs = std::filesystem;

namespace {

std::int64_t now_ms() { return sagalab::wall_ms(); }

std::string bin_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

struct Child {
  std::string name;     // its key, log and port file: the program, or program-N for replica N > 1
  std::string program;  // the binary
  int replica = 1;
  int port = 0;
  pid_t pid = -1;
  int restarts = 0;
  std::int64_t started_ms = 0;
  std::int64_t last_exit_ms = 0;
  int last_status = 0;
  int quick_failures = 0;  // exits in a row right after starting
};

class Supervisor {
 public:
  Supervisor(const GlobalOptions& g, const UpOptions& o) : g_(g), o_(o), dir_(fs::absolute(g.stack_dir).string()) {}

  int run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    store_url_ = o_.store;
    if (o_.store == "postgresql") {
      // The stack's own PostgreSQL, first: every program keeps its data there.
      if (auto why = start_postgres(); !why.empty()) return fail(why);
    }
    // Services first: the orchestrators need their ports. Replica 1 of each
    // program keeps its usual port and name; the others take free ports.
    for (int r = 1; r <= o_.replicas; ++r) {
      for (const auto& p : programs()) {
        if (p == "orquestador") continue;
        auto& c = child(p, r);
        c.port = r > 1 || o_.base_port == 0 ? 0 : default_port(p) - 5000 + o_.base_port;
        if (!spawn(c)) return fail("cannot start " + c.name);
      }
    }
    for (int r = 1; r <= o_.replicas; ++r) {
      auto& orq = child("orquestador", r);
      orq.port = r > 1 ? 0 : o_.base_port;
      if (!spawn(orq)) return fail("cannot start " + orq.name);
    }
    if (g_.gateway == "traefik") {
      auto& tr = children_["traefik"];
      tr.program = "traefik";
      tr.port = free_port();
      if (tr.port <= 0 || !write_traefik_config() || !spawn(tr)) return fail("cannot start traefik");
    }
    write_stack();

    while (true) {
      timespec ts{0, 100 * 1000 * 1000};
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig == SIGTERM || sig == SIGINT) break;
      if (auto why = reap_and_restart(set); !why.empty()) {
        fail(why);
        fs::remove(dir_ + "/stack.json");
        return 1;
      }
    }
    stop_all();
    fs::remove(dir_ + "/stack.json");
    return 0;
  }

 private:
  int fail(const std::string& why) {
    std::ofstream(dir_ + "/supervisor.err") << why << "\n";
    stop_all();
    return 1;
  }

  Child& child(const std::string& program, int replica) {
    auto name = replica == 1 ? program : program + "-" + std::to_string(replica);
    auto& c = children_[name];
    c.name = name;
    c.program = program;
    c.replica = replica;
    return c;
  }

  // initdb (once) and a postgres server child on a free port, in <stack>/postgres;
  // as the postgres user when the stack runs as root (PostgreSQL refuses root).
  // Returns why it could not, or "".
  std::string start_postgres() {
    std::string bin;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", fs::directory_options::skip_permission_denied))
      if (fs::exists(e.path() / "bin/postgres") && e.path().string() > bin) bin = e.path().string();
    if (bin.empty()) return "--store postgresql needs a PostgreSQL server (apt-get install postgresql)";
    pg_bin_ = bin + "/bin";
    auto data = dir_ + "/postgres";
    if (getuid() == 0) {
      auto* pw = getpwnam("postgres");
      if (!pw) return "running as root, and there is no postgres user to run PostgreSQL as";
      pg_uid_ = pw->pw_uid;
      pg_gid_ = pw->pw_gid;
      // The postgres user must pass through the stack directory (search, not list).
      std::error_code ec;
      fs::permissions(dir_, fs::perms::others_exec, fs::perm_options::add, ec);
      if (!fs::is_symlink(data) && !reachable_by_postgres(dir_)) {
        // A parent it cannot search (a 0700 mktemp directory, /root): the data lives in a directory
        // of its own under /var/tmp, named after the stack directory, linked from <stack>/postgres.
        auto home = fs::path("/var/tmp/sagalab-postgres");
        fs::create_directories(home);
        chmod(home.c_str(), 0711);
        auto real = home / std::to_string(std::hash<std::string>{}(dir_));
        fs::create_directories(real);
        fs::remove_all(data, ec);
        fs::create_directory_symlink(real, data, ec);
        if (ec) return "cannot link " + data + " to " + real.string() + ": " + ec.message();
      }
    }
    pg_data_ = fs::is_symlink(data) ? fs::read_symlink(data).string() : data;
    fs::create_directories(pg_data_);
    if (pg_uid_ != 0 && chown(pg_data_.c_str(), pg_uid_, pg_gid_) != 0)
      return "cannot hand " + pg_data_ + " to the postgres user";
    data = pg_data_;
    chmod(data.c_str(), 0700);
    if (!fs::exists(data + "/PG_VERSION")) {
      Child init;
      init.name = "initdb";
      init.program = "initdb";
      if (!spawn(init)) return "cannot run initdb";
      int st = 0;
      waitpid(init.pid, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return "initdb failed (the postgres user must be able to reach " + data + "); see " + dir_ + "/logs/initdb.log";
    }
    auto& pg = children_["postgres"];
    pg.name = pg.program = "postgres";
    pg.port = free_port();
    if (pg.port <= 0 || !spawn(pg)) return "cannot start postgres";
    store_url_ = "postgresql://sagalab@127.0.0.1:" + std::to_string(pg.port) + "/postgres";
    // Ready when it accepts a session (pg_isready), not merely the socket.
    for (int i = 0; i < 300; ++i) {
      auto cmd = pg_bin_ + "/pg_isready -q -h 127.0.0.1 -p " + std::to_string(pg.port);
      if (std::system(cmd.c_str()) == 0) return "";
      int st = 0;
      if (waitpid(pg.pid, &st, WNOHANG) == pg.pid) return "postgres exited; see " + dir_ + "/logs/postgres.log";
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "postgres did not become ready within 30 s; see " + dir_ + "/logs/postgres.log";
  }

  // Whether the postgres user can search its way to `dir` (checked as that user, in a child).
  bool reachable_by_postgres(const std::string& dir) const {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      if (setgid(pg_gid_) != 0 || setuid(pg_uid_) != 0) _exit(2);
      _exit(access(dir.c_str(), X_OK) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }

  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }

  // The routes of deploy/traefik/dynamic.yml, pointed at this stack's ports.
  // JSON is valid YAML, so Traefik's file provider reads it as is.
  bool write_traefik_config() {
    Json routers = Json::object(), middlewares = Json::object(), services = Json::object();
    for (const auto& p : programs()) {
      auto prefix = gateway_prefix(p);
      auto name = prefix.substr(1);
      routers[name] = {{"rule", "PathPrefix(`" + prefix + "`)"},
                       {"entryPoints", {"web"}},
                       {"middlewares", {name + "-strip"}},
                       {"service", name}};
      middlewares[name + "-strip"] = {{"stripPrefix", {{"prefixes", {prefix}}}}};
      Json servers = Json::array();
      for (const auto& [key, c] : children_)
        if (c.program == p) servers.push_back({{"url", "http://127.0.0.1:" + std::to_string(c.port)}});
      services[name] = {{"loadBalancer",
                         {{"servers", servers},
                          {"healthCheck", {{"path", "/health"}, {"interval", "10s"}}}}}};
    }
    Json cfg{{"http", {{"routers", routers}, {"middlewares", middlewares}, {"services", services}}}};
    std::ofstream out(dir_ + "/traefik-dynamic.yml");
    out << cfg.dump(2) << "\n";
    return static_cast<bool>(out);
  }

  std::vector<std::string> args_for(const Child& c) {
    if (c.program == "traefik") {
      return {"traefik", "--entryPoints.web.address=127.0.0.1:" + std::to_string(c.port),
              "--providers.file.filename=" + dir_ + "/traefik-dynamic.yml", "--ping=true",
              "--ping.entryPoint=web", "--log.level=ERROR"};
    }
    if (c.program == "initdb")
      return {pg_bin_ + "/initdb", "-D", pg_data_, "-U", "sagalab", "--auth=trust", "-E", "UTF8"};
    if (c.program == "postgres")
      return {pg_bin_ + "/postgres", "-D", pg_data_, "-p", std::to_string(c.port), "-k", pg_data_,
              "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"};
    std::vector<std::string> a = {bin_dir() + "/" + c.program, "--host", "127.0.0.1", "--port",
                                  std::to_string(c.port), "--data-dir", dir_ + "/data", "--sync", o_.sync};
    if (c.port == 0) {
      a.push_back("--port-file");
      a.push_back(dir_ + "/run/" + c.name + ".port");
    }
    if (!store_url_.empty()) {  // the services' data and the orchestrators' saga log
      a.push_back("--store");
      a.push_back(store_url_);
    }
    if (c.program == "orquestador" && !store_url_.empty()) {
      a.push_back("--replica-id");
      a.push_back(c.name);
    }
    if (o_.service_workers > 0 && c.program != "orquestador") {
      a.push_back("--workers");
      a.push_back(std::to_string(o_.service_workers));
    }
    if (!g_.admin_token.empty()) {
      a.push_back("--admin-token");
      a.push_back(g_.admin_token);
    }
    if (c.program == "orquestador") {
      for (const auto& p : programs()) {
        if (p == "orquestador") continue;
        // Orchestrator N calls replica N of each service (no balancer without a gateway).
        auto flag = "--" + p.substr(3) + "-url";
        a.push_back(flag);
        a.push_back("http://127.0.0.1:" + std::to_string(child(p, c.replica).port));
      }
      for (const auto& x : o_.orchestrator_args) a.push_back(x);
    }
    if ((c.program == "ms-inventario") && !o_.stock_file.empty()) {
      a.push_back("--stock");
      a.push_back(o_.stock_file);
    }
    if ((c.program == "ms-inventario" || c.program == "ms-catalogo") && !o_.catalog_file.empty()) {
      a.push_back("--catalog");
      a.push_back(o_.catalog_file);
    }
    return a;
  }

  bool spawn(Child& c) {
    fs::create_directories(dir_ + "/logs");
    fs::create_directories(dir_ + "/run");
    auto port_file = dir_ + "/run/" + c.name + ".port";
    fs::remove(port_file);
    sagalab::process::Spec spec;
    spec.argv = args_for(c);
    spec.log = dir_ + "/logs/" + c.name + ".log";
    spec.reset_signal_mask = true;  // the supervisor blocks its stop signals; its programs must not
    spec.search_path = c.program == "traefik";
    if ((c.program == "postgres" || c.program == "initdb") && pg_uid_ != 0) spec.as_user = {pg_uid_, pg_gid_};
    pid_t pid;
    try {
      pid = sagalab::process::spawn(spec);
    } catch (const std::exception&) {
      return false;
    }
    c.pid = pid;
    c.started_ms = now_ms();
    if (c.port == 0 && c.program != "traefik" && c.program != "initdb") {
      // Learn the port it picked; later restarts reuse it, so URLs stay valid.
      auto w = sagalab::process::wait_port_file(pid, port_file);
      if (w.port <= 0) return false;
      c.port = w.port;
    }
    return true;
  }

  // Restarts what died. A program that keeps failing at start (its port taken, a bad flag) is
  // restarted after a growing pause, and given up after kMaxQuickFailures: returns why.
  // (A crash fault, exit 70, is a death the user asked for: it never counts.)
  static constexpr int kMaxQuickFailures = 5;
  std::string reap_and_restart(const sigset_t& stop_signals) {
    bool changed = false;
    while (true) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto& [name, c] : children_) {
        if (c.pid != pid) continue;
        c.pid = -1;
        c.last_exit_ms = now_ms();
        c.last_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ++c.restarts;
        bool quick = now_ms() - c.started_ms < 2000 && c.last_status != 70;
        c.quick_failures = quick ? c.quick_failures + 1 : 0;
        if (c.quick_failures >= kMaxQuickFailures) {
          write_stack();
          return c.name + " exited " + std::to_string(c.quick_failures) + " times right after starting (last status " +
                 std::to_string(c.last_status) + "): " + last_line(dir_ + "/logs/" + c.name + ".log");
        }
        if (c.quick_failures > 0) {  // 200 ms, 400, 800, 1600; a stop request cuts it short
          auto until = now_ms() + (200L << (c.quick_failures - 1));
          for (auto left = until - now_ms(); left > 0; left = until - now_ms()) {
            timespec pause{left / 1000, (left % 1000) * 1000000L};
            int sig = sigtimedwait(&stop_signals, nullptr, &pause);  // SIGCHLD: another child, reaped next
            if (sig == SIGTERM || sig == SIGINT) return "stopped while " + c.name + " kept failing at start";
          }
        }
        spawn(c);
        changed = true;
      }
    }
    if (changed) write_stack();
    return "";
  }

  static std::string last_line(const std::string& path) {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line))
      if (!line.empty()) last = line;
    return last.empty() ? "see " + path : last;
  }

  void stop_all() {
    // PostgreSQL last, once the programs that write to it have stopped.
    for (bool pg : {false, true}) stop_children(pg);
  }

  void stop_children(bool postgres) {
    for (auto& [name, c] : children_) {
      if (c.pid > 0 && (c.program == "postgres") == postgres) kill(c.pid, postgres ? SIGINT : SIGTERM);
    }
    auto deadline = now_ms() + (postgres ? 15000 : 5000);
    for (auto& [name, c] : children_) {
      if ((c.program == "postgres") != postgres) continue;
      while (c.pid > 0) {
        int st = 0;
        pid_t r = waitpid(c.pid, &st, WNOHANG);
        if (r == c.pid || r < 0) {
          c.pid = -1;
          break;
        }
        if (now_ms() > deadline) {
          kill(c.pid, SIGKILL);
          waitpid(c.pid, &st, 0);
          c.pid = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  void write_stack() {
    Json services = Json::object();
    for (const auto& [name, c] : children_) {
      services[name] = {{"pid", c.pid},
                        {"program", c.program},
                        {"replica", c.replica},
                        {"port", c.port},
                        {"restarts", c.restarts},
                        {"started_ms", c.started_ms},
                        {"last_exit_status", c.last_status},
                        {"log", dir_ + "/logs/" + name + ".log"}};
    }
    Json j{{"supervisor_pid", getpid()}, {"started_ms", started_}, {"dir", dir_}, {"services", services},
           {"replicas", o_.replicas}};
    if (!store_url_.empty()) j["store"] = store_url_;
    if (children_.count("traefik")) j["gateway"] = "http://127.0.0.1:" + std::to_string(children_["traefik"].port);
    auto tmp = dir_ + "/stack.json.tmp";
    std::ofstream(tmp) << j.dump(2) << "\n";
    fs::rename(tmp, dir_ + "/stack.json");
  }

  const GlobalOptions& g_;
  const UpOptions& o_;
  std::string dir_;
  std::int64_t started_ = now_ms();
  std::map<std::string, Child> children_;
  std::string store_url_;  // "" (SQLite files) or the PostgreSQL every program uses
  std::string pg_bin_;
  std::string pg_data_;  // <stack>/postgres, or where its link points
  uid_t pg_uid_ = 0;
  gid_t pg_gid_ = 0;
};

bool supervisor_alive(const Json& stack) {
  auto pid = stack.value("supervisor_pid", 0);
  return pid > 0 && kill(pid, 0) == 0;
}

// SIGTERM to the supervisor (it stops its programs); past the grace period, SIGKILL to it and to
// exactly the pids its record names. Returns the pids that needed SIGKILL.
std::vector<int> stop_stack(const Json& stack, std::int64_t grace_ms) {
  pid_t pid = stack.value("supervisor_pid", 0);
  kill(pid, SIGTERM);
  auto deadline = now_ms() + grace_ms;
  while (kill(pid, 0) == 0 && now_ms() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<int> killed;
  if (kill(pid, 0) != 0) return killed;
  kill(pid, SIGKILL);
  killed.push_back(pid);
  for (const auto& [name, s] : stack["services"].items()) {
    int child = s.value("pid", -1);
    if (child > 0 && kill(child, SIGKILL) == 0) killed.push_back(child);
  }
  for (int i = 0; i < 250 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return killed;
}

// What a failed `up` started: stopped, so that nothing is left running.
void stop_started(const GlobalOptions& g) {
  if (auto stack = read_stack(g); stack && supervisor_alive(*stack)) stop_stack(*stack, 10000);
  fs::remove(stack_file(g));
}


}  // namespace

void setup_up(CLI::App& app, GlobalOptions& g) {
  auto opts = std::make_shared<UpOptions>();
  auto* sub = app.add_subcommand("up", "Start the orchestrator and the four services as local processes");
  sub->footer(
      "Examples:\n  sagactl up                      # ports 5000-5004, data in .sagalab/\n"
      "  sagactl up --base-port 0        # free ports (see 'sagactl status')\n"
      "  sagactl up --fresh --orchestrator-arg=--step-timeout-ms=500\n"
      "  sagactl up --replicas 2 --store postgresql   # two of each, sharing a PostgreSQL the stack starts");
  sub->add_option("--base-port", opts->base_port, "port of the orchestrator; services take the next four (0: free ports)")
      ->check(CLI::Range(0, 65530))
      ->capture_default_str();
  sub->add_option("--sync", opts->sync, "SQLite synchronous level")->check(CLI::IsMember({"full", "normal"}))->capture_default_str();
  sub->add_flag("--fresh", opts->fresh, "delete the stack's data before starting");
  sub->add_option("--workers", opts->service_workers, "threads of each service that run requests (default: theirs, 16)")
      ->check(CLI::Range(1, 256));
  sub->add_option("--store", opts->store,
                  "where the programs keep their data and the saga log: 'postgresql' (a server the stack starts "
                  "in its directory, on a free port) or a postgresql://user@host:port/db URL (default: each "
                  "one's SQLite file in the stack directory)")
      ->check([](const std::string& v) {
        return v == "postgresql" || v.rfind("postgresql://", 0) == 0 || v.rfind("postgres://", 0) == 0
                   ? std::string()
                   : "must be 'postgresql' or a postgresql:// URL";
      });
  sub->add_option("--replicas", opts->replicas,
                  "processes of every program (orchestrator and services); more than one share PostgreSQL "
                  "(--store); orchestrator N calls replica N of each service, Traefik balances over all")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  sub->add_option("--wait-ms", opts->wait_ms, "how long to wait for every /health")->capture_default_str();
  sub->add_option("--orchestrator-arg", opts->orchestrator_args, "extra flag for orquestador (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--stock", opts->stock_file, "initial stock JSON file for ms-inventario");
  sub->add_option("--catalog", opts->catalog_file, "catalog JSON file for ms-catalogo and ms-inventario");
  sub->callback([&g, opts] { throw CliError(run_up(g, *opts), ""); });
}

int run_up(const GlobalOptions& g, const UpOptions& o) {
  if (!g.gateway.empty() && g.gateway != "traefik")
    throw CliError(kExitUnreachable, "'up' starts a local stack; its only gateway is '--gateway traefik'");
  for (const auto& [p, u] : g.urls) {
    if (!u.empty())
      throw CliError(kExitUnreachable, "'up' starts a local stack, but " + url_variable(p) + " / --" + p +
                                           "-url points at another (" + u + "); unset it");
  }
  if (o.replicas > 1 && o.store.empty())
    throw CliError(kExitFailed, "--replicas " + std::to_string(o.replicas) +
                                    " needs a store the replicas share: add --store postgresql (or a URL)");
  if (g.gateway == "traefik" && std::system("command -v traefik >/dev/null 2>&1") != 0)
    throw CliError(kExitFailed, "--gateway traefik needs a 'traefik' binary on PATH");
  if (auto stack = read_stack(g); stack && supervisor_alive(*stack))
    throw CliError(kExitFailed, "a stack is already running from " + g.stack_dir + " (supervisor pid " +
                                    std::to_string(stack->value("supervisor_pid", 0)) + "); run 'sagactl down' first");
  fs::create_directories(g.stack_dir);
  if (o.fresh) {
    fs::remove_all(fs::path(g.stack_dir) / "data");
    auto pg = fs::path(g.stack_dir) / "postgres";
    if (fs::is_symlink(pg)) fs::remove_all(fs::read_symlink(pg));  // its data, where the postgres user reaches it
    fs::remove_all(pg);
  }
  fs::remove(stack_file(g));
  fs::remove(fs::path(g.stack_dir) / "supervisor.err");
  auto start = now_ms();
  std::cout.flush();
  pid_t pid = fork();
  if (pid < 0) throw CliError(kExitFailed, "fork failed");
  if (pid == 0) {
    setsid();
    // A daemon: detach from the terminal, keep working files in the stack dir.
    int devnull = ::open("/dev/null", O_RDWR);
    int log = ::open((g.stack_dir + "/supervisor.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(devnull, 0);
    dup2(log >= 0 ? log : devnull, 1);
    dup2(log >= 0 ? log : devnull, 2);
    if (pid_t grandchild = fork(); grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    Supervisor sup(g, o);
    _exit(sup.run());
  }
  int st = 0;
  waitpid(pid, &st, 0);

  // Wait for the record, then for every /health.
  int foreign = 0;
  while (true) {
    auto stack = read_stack(g);
    bool all = stack.has_value();
    if (all && g.gateway == "traefik") {
      auto gw = stack->value("gateway", std::string());
      all = !gw.empty() && sagalab::http_call(gw, "GET", "/orquestador/health", nullptr, {}, 1000).ok();
    }
    if (all) {
      for (const auto& p : programs()) {
        auto h = sagalab::http_call(base_url(g, p), "GET", "/health", nullptr, {}, 1000);
        if (!h.ok()) {
          all = false;
          break;
        }
        // The process answering must be the one this stack started, not another holding its port.
        auto ours = (*stack)["services"][p].value("pid", -1);
        auto theirs = h.answer->body.value("pid", ours);
        if (theirs != ours) {
          if (++foreign < 25) {  // ours may have just been restarted: look again for half a second
            all = false;
            break;
          }
          auto port = (*stack)["services"][p].value("port", 0);
          stop_started(g);
          throw CliError(kExitFailed, "port " + std::to_string(port) + " of " + p + " is held by another process (pid " +
                                          std::to_string(theirs) + " answered its /health; this stack started pid " +
                                          std::to_string(ours) + "): another stack is up there. Stop it ('sagactl "
                                          "down' in its directory), or start this one with --base-port 0 (free "
                                          "ports) or another --base-port. Nothing of this stack is left running.");
        }
      }
    }
    if (all) {  // the other replicas too
      for (const auto& [name, s] : (*stack)["services"].items()) {
        if (s.value("replica", 1) > 1 &&
            !sagalab::http_call("http://127.0.0.1:" + std::to_string(s.value("port", 0)), "GET", "/health", nullptr,
                                {}, 1000)
                 .ok()) {
          all = false;
          break;
        }
      }
    }
    if (all) break;
    std::ifstream err(fs::path(g.stack_dir) / "supervisor.err");
    std::string why;
    if (err && std::getline(err, why)) {
      stop_started(g);
      throw CliError(kExitFailed, "the stack did not start: " + why + " (see " + g.stack_dir + "/logs/)");
    }
    if (now_ms() - start > o.wait_ms) {
      stop_started(g);
      throw CliError(kExitFailed, "the stack did not become healthy within " + std::to_string(o.wait_ms) +
                                      " ms; see " + g.stack_dir + "/logs/. Nothing of it is left running.");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto elapsed = now_ms() - start;
  auto stack = *read_stack(g);
  if (o.quiet) return kExitOk;
  if (g.json) {
    stack["healthy_after_ms"] = elapsed;
    print_json(stack);
  } else {
    std::cout << "stack up in " << elapsed << " ms (data and logs in " << g.stack_dir << "/)\n";
    if (stack.contains("gateway"))
      std::cout << "  traefik gateway: " << stack["gateway"].get<std::string>() << " (use --gateway traefik)\n";
    for (const auto& [p, s] : stack["services"].items()) {
      std::cout << "  " << paint("●", "32") << " " << p << std::string(p.size() < 16 ? 16 - p.size() : 1, ' ')
                << (p == "postgres" ? "postgresql://127.0.0.1:" : "http://127.0.0.1:") << s["port"].get<int>()
                << "  pid " << s["pid"].get<int>() << "\n";
    }
    if (stack.contains("store")) std::cout << "  store: " << stack["store"].get<std::string>() << "\n";
  }
  return kExitOk;
}

void setup_down(CLI::App& app, GlobalOptions& g) {
  auto* sub = app.add_subcommand("down", "Stop exactly the processes 'sagactl up' started");
  auto grace = std::make_shared<std::int64_t>(10000);
  sub->footer("SIGTERM to the stack's supervisor, which stops its programs; if it has not stopped after\n"
              "--grace-ms, SIGKILL to it and to exactly the pids in its record (stack.json).\n"
              "Examples:\n  sagactl down\n  sagactl --stack-dir /tmp/st down --grace-ms 2000");
  sub->add_option("--grace-ms", *grace, "how long the supervisor has to stop before SIGKILL")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  sub->callback([&g, grace] { throw CliError(run_down(g, *grace), ""); });
}

int run_down(const GlobalOptions& g, std::int64_t grace_ms) {
  auto stack = read_stack(g);
  if (!stack || !supervisor_alive(*stack)) {
    fs::remove(stack_file(g));
    if (!g.json) std::cout << "no stack running from " << g.stack_dir << "\n";
    return kExitOk;
  }
  pid_t pid = stack->value("supervisor_pid", 0);
  auto killed = stop_stack(*stack, grace_ms);
  fs::remove(stack_file(g));
  if (g.json) {
    print_json({{"stopped", true}, {"supervisor_pid", pid}, {"killed", killed}});
  } else if (killed.empty()) {
    std::cout << "stack stopped\n";
  } else {
    std::cout << "stack stopped: the supervisor (pid " << pid << ") did not stop within " << grace_ms
              << " ms of SIGTERM, so SIGKILL went to it and to the programs it had started (pids";
    for (const auto& k : killed) std::cout << " " << k;
    std::cout << ")\n";
  }
  return kExitOk;
}

void setup_status(CLI::App& app, GlobalOptions& g) {
  auto* sub = app.add_subcommand("status", "Health, pid, port, uptime and restarts of each program");
  sub->footer("A program is healthy when its /health answers and the pid answering is the one this stack\n"
              "started ('other': another process holds its port). Exit 0 all healthy, 2 otherwise.\n"
              "Examples:\n  sagactl status\n  sagactl --json status\n  sagactl --stack-dir /tmp/st status");
  sub->callback([&g] { throw CliError(run_status(g), ""); });
}

int run_status(const GlobalOptions& g) {
  auto stack = !g.remote() || g.gateway == "traefik" ? read_stack(g) : std::nullopt;
  Json out = Json::array();
  bool all_ok = true;
  for (const auto& p : programs()) {
    auto h = sagalab::http_call(base_url(g, p), "GET", "/health", nullptr, {}, 1000);
    Json row{{"program", p}, {"url", base_url(g, p)}, {"healthy", h.ok()}};
    if (stack && (*stack)["services"].contains(p)) {
      const auto& s = (*stack)["services"][p];
      // Another process answering on its port is not this program being healthy.
      if (h.ok() && h.answer->body.value("pid", s.value("pid", -1)) != s.value("pid", -1)) {
        row["healthy"] = false;
        row["answered_by_pid"] = h.answer->body["pid"];
      }
      row["pid"] = s["pid"];
      row["port"] = s["port"];
      row["restarts"] = s["restarts"];
      row["uptime_s"] = (now_ms() - s.value("started_ms", now_ms())) / 1000;
    }
    all_ok = all_ok && row["healthy"].get<bool>();
    out.push_back(row);
  }
  if (stack) {  // the other replicas, and the stack's own PostgreSQL
    for (const auto& [name, s] : (*stack)["services"].items()) {
      if (s.value("replica", 1) == 1 && s.value("program", "") != "postgres") continue;
      const bool pg = s.value("program", "") == "postgres";
      auto url = (pg ? "postgresql://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(s.value("port", 0));
      bool ok = pg ? kill(s.value("pid", 0), 0) == 0 : sagalab::http_call(url, "GET", "/health", nullptr, {}, 1000).ok();
      Json row{{"program", name}, {"url", url}, {"healthy", ok}, {"pid", s["pid"]}, {"port", s["port"]},
               {"restarts", s["restarts"]}, {"uptime_s", (now_ms() - s.value("started_ms", now_ms())) / 1000}};
      all_ok = all_ok && ok;
      out.push_back(row);
    }
  }
  if (g.json) {
    print_json({{"programs", out}, {"healthy", all_ok}});
  } else {
    std::printf("%-16s %-8s %-7s %-6s %-9s %s\n", "PROGRAM", "HEALTH", "PID", "PORT", "UPTIME", "RESTARTS");
    bool other = false;
    for (const auto& r : out) {
      std::string health = r["healthy"].get<bool>()        ? paint("ok     ", "32")
                           : r.contains("answered_by_pid") ? paint("other  ", "31")
                                                           : paint("down   ", "31");
      std::printf("%-16s %s  %-7s %-6s %-9s %s\n", r["program"].get<std::string>().c_str(), health.c_str(),
                  r.contains("pid") ? std::to_string(r["pid"].get<int>()).c_str() : "-",
                  r.contains("port") ? std::to_string(r["port"].get<int>()).c_str() : "-",
                  r.contains("uptime_s") ? (std::to_string(r["uptime_s"].get<long long>()) + "s").c_str() : "-",
                  r.contains("restarts") ? std::to_string(r["restarts"].get<int>()).c_str() : "-");
      other = other || r.contains("answered_by_pid");
    }
    if (other) std::cout << "other: another process (not the pid above) answers on that port\n";
  }
  return all_ok ? kExitOk : kExitUnreachable;
}

void setup_logs(CLI::App& app, GlobalOptions& g) {
  auto opts = std::make_shared<LogsOptions>();
  auto* sub = app.add_subcommand("logs", "Show the last lines of a program's log (local stack)");
  sub->footer("Examples:\n  sagactl logs\n  sagactl logs pagos -n 100\n  sagactl logs orquestador");
  sub->add_option("service", opts->service, "program (default: all)");
  sub->add_option("-n,--lines", opts->lines, "lines per program")->capture_default_str();
  sub->callback([&g, opts] { throw CliError(run_logs(g, *opts), ""); });
}

int run_logs(const GlobalOptions& g, const LogsOptions& o) {
  std::vector<std::string> which;
  if (o.service.empty()) {
    which = programs();
  } else {
    which.push_back(canonical_program(o.service));
  }
  for (const auto& p : which) {
    auto path = fs::path(g.stack_dir) / "logs" / (p + ".log");
    std::ifstream in(path);
    if (!in) {
      std::cerr << "no log for " << p << " at " << path.string() << "\n";
      continue;
    }
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
      lines.push_back(line);
      if (lines.size() > static_cast<std::size_t>(o.lines)) lines.erase(lines.begin());
    }
    if (which.size() > 1) std::cout << paint("==> " + p + " <==", "1") << "\n";
    for (const auto& l : lines) std::cout << l << "\n";
  }
  return kExitOk;
}

}  // namespace sagactl
