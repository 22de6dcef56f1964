// Child processes (see process.hpp).
#include "sagalab/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sagalab::process {

namespace {
int status_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }
}  // namespace

pid_t spawn(const Spec& spec) {
  if (spec.argv.empty()) throw std::invalid_argument("spawn: no program");
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("cannot start " + spec.argv[0] + ": fork failed");
  if (pid > 0) return pid;
  if (spec.die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (spec.reset_signal_mask) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
  }
  if (!spec.log.empty()) {
    int fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | (spec.truncate_log ? O_TRUNC : O_APPEND), 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
  }
  if (spec.as_user && (setgid(spec.as_user->second) != 0 || setuid(spec.as_user->first) != 0)) _exit(126);
  if (spec.search_path) {
    execvp(argv[0], argv.data());
  } else {
    execv(argv[0], argv.data());
  }
  _exit(127);
}

std::optional<int> exited(pid_t pid) {
  int st = 0;
  if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) return status_of(st);
  return std::nullopt;
}

PortWait wait_port_file(pid_t pid, const std::string& file, int timeout_ms) {
  PortWait w;
  const auto began = std::chrono::steady_clock::now();
  const auto deadline = began + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::ifstream in(file);
    int p = 0;
    if (in >> p && p > 0) {
      w.port = p;
      break;
    }
    if ((w.exit_status = exited(pid))) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  w.waited_ms = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count());
  return w;
}

int stop(pid_t pid, int grace_ms) {
  if (pid <= 0) return 0;
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto st = exited(pid)) return *st;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  return status_of(st);
}

std::string log_tail(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  return s.size() > max_bytes ? "..." + s.substr(s.size() - max_bytes) : s;
}

}  // namespace sagalab::process
