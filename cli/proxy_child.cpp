// A `sagactl proxy` child process (see proxy_child.hpp).
#include "proxy_child.hpp"

#include <chrono>
#include <thread>

#include "common.hpp"
#include "sagalab/http_client.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/process.hpp"

namespace sagactl {

ProxyChild::ProxyChild(const std::string& config, const std::string& record, const std::string& base) {
  namespace proc = sagalab::process;
  auto port_file = base + ".port";
  proc::Spec spec;
  spec.argv = {"/proc/self/exe", "proxy", "--config", config, "--record", record, "--port-file", port_file, "--quiet"};
  spec.log = base + ".log";
  spec.truncate_log = true;
  try {
    pid_ = proc::spawn(spec);
  } catch (const std::exception& e) {
    throw CliError(kExitFailed, std::string("cannot start the proxy: ") + e.what());
  }
  auto w = proc::wait_port_file(pid_, port_file);
  if (w.exit_status) {
    pid_ = -1;
    throw CliError(kExitFailed, "the proxy (" + config + ") exited at start: " + proc::log_tail(spec.log));
  }
  if (w.port > 0) {
    url_ = "http://127.0.0.1:" + std::to_string(w.port);
    for (auto deadline = sagalab::wall_ms() + 5000; sagalab::wall_ms() < deadline;) {
      if (sagalab::http_call(url_, "GET", "/health", nullptr, {}, 1000).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  throw CliError(kExitFailed, "the proxy (" + config + ") did not become healthy in " +
                                  std::to_string(w.waited_ms / 1000) + " s; see " + spec.log);
}

ProxyChild::~ProxyChild() {
  if (pid_ > 0) sagalab::process::stop(pid_, 10000);
}

}  // namespace sagactl
