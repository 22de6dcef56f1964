// The ceiling for `sagactl bench`: a minimal cpp-httplib server (TCP_NODELAY,
// the same thread-per-connection pool) that answers GET / with "ok". Prints
// its port; stops on SIGINT/SIGTERM.
#include <httplib.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 64;
  httplib::Server srv;
  srv.set_tcp_nodelay(true);
  srv.set_keep_alive_max_count(100000);
  srv.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  int port = srv.bind_to_any_port("127.0.0.1");
  std::cout << port << std::endl;
  srv.listen_after_bind();
}
