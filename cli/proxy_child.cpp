// A `sagactl proxy` child process (see proxy_child.hpp).
#include "proxy_child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "common.hpp"
#include "sagalab/http_client.hpp"
#include "sagalab/http_common.hpp"

namespace sagactl {

ProxyChild::ProxyChild(const std::string& config, const std::string& record, const std::string& base) {
  auto port_file = base + ".port";
  std::vector<std::string> args = {"/proc/self/exe", "proxy",       "--config", config,   "--record",
                                   record,           "--port-file", port_file,  "--quiet"};
  pid_ = fork();
  if (pid_ < 0) throw CliError(kExitFailed, "cannot start the proxy: fork failed");
  if (pid_ == 0) {
    int fd = ::open((base + ".log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  auto deadline = sagalab::wall_ms() + 15000;
  while (sagalab::wall_ms() < deadline) {
    int port = 0;
    std::ifstream in(port_file);
    if (in >> port && port > 0) {
      url_ = "http://127.0.0.1:" + std::to_string(port);
      if (sagalab::http_call(url_, "GET", "/health", nullptr, {}, 1000).ok()) return;
    }
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream log(base + ".log");
      std::stringstream ss;
      ss << log.rdbuf();
      throw CliError(kExitFailed, "the proxy (" + config + ") exited at start: " + ss.str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw CliError(kExitFailed, "the proxy (" + config + ") did not become healthy in 15 s; see " + base + ".log");
}

ProxyChild::~ProxyChild() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

}  // namespace sagactl
