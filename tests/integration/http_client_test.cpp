// The orchestrator's asynchronous HTTP client (AsyncClientPool) against a
// service written with raw sockets, so that the test controls what a real
// client meets: a service that never answers, one that closes a keep-alive
// connection once it has answered, one that is slow while calls queue.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sagalab/async_client.hpp"
#include "sagalab/http_request.hpp"

using namespace std::chrono_literals;

namespace {

class RawService {
 public:
  enum class Mode { Answer, AnswerThenClose, Hold };
  RawService(Mode mode, int delay_ms = 0) : mode_(mode), delay_ms_(delay_ms) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_, 64) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~RawService() {
    stopping_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    ::close(listen_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  int port = 0;
  std::atomic<int> accepted{0}, requests{0}, open{0}, max_open{0};

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept(listen_, nullptr, nullptr);
      if (fd < 0 || stopping_) {
        if (fd >= 0) ::close(fd);
        return;
      }
      ++accepted;
      int now = ++open;
      for (int seen = max_open.load(); now > seen && !max_open.compare_exchange_weak(seen, now);) {
      }
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  // Reads one request head (the client's calls here carry no body); false at the end of the stream.
  static bool read_request(int fd, std::string& buffer) {
    char chunk[4096];
    while (buffer.find("\r\n\r\n") == std::string::npos) {
      auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    buffer.erase(0, buffer.find("\r\n\r\n") + 4);
    return true;
  }
  void serve(int fd) {
    std::string buffer;
    while (read_request(fd, buffer)) {
      int n = ++requests;
      if (mode_ == Mode::Hold) continue;  // never answers; the client must give up on its own
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      std::string body = "{\"n\":" + std::to_string(n) + "}";
      std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) break;
      if (mode_ == Mode::AnswerThenClose) break;  // said keep-alive, closes anyway (an idle timeout, a restart)
    }
    ::shutdown(fd, SHUT_RDWR);
    {
      std::lock_guard lock(mutex_);
      fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
      ::close(fd);
    }
    --open;  // after the close: a test that waits for it knows the client has been told
  }

  Mode mode_;
  int delay_ms_;
  int listen_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
};

// An event loop on its own thread, for the pool's completions.
struct Loop {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~Loop() {
    guard.reset();
    io.stop();
    thread.join();
  }
};

std::future<sagalab::HttpResult> call(sagalab::AsyncClientPool& pool, std::int64_t timeout_ms) {
  auto p = std::make_shared<std::promise<sagalab::HttpResult>>();
  auto f = p->get_future();
  pool.call("GET", "/health", "", {}, timeout_ms, [p](sagalab::HttpResult r) { p->set_value(std::move(r)); });
  return f;
}

}  // namespace

TEST_CASE("the async client gives up at its deadline on a service that never answers", "[http-client]") {
  RawService service(RawService::Mode::Hold);
  Loop loop;
  sagalab::AsyncClientPool pool(loop.io, service.url(), 4);
  auto t0 = std::chrono::steady_clock::now();
  auto f = call(pool, 300);
  // Ten times the deadline: a client that waits longer has no deadline at all.
  REQUIRE(f.wait_for(3s) == std::future_status::ready);
  auto r = f.get();
  CHECK_FALSE(r.answer);
  CHECK(r.error.find("timeout after 300 ms") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 >= 290ms);
  for (int k = 0; k < 200 && service.requests == 0; ++k) std::this_thread::sleep_for(5ms);
  CHECK(service.requests == 1);  // the request went out; the service kept it
}

TEST_CASE("the async client opens no more connections than its pool holds, and the queued calls all complete",
          "[http-client]") {
  RawService service(RawService::Mode::Answer, 100);
  Loop loop;
  sagalab::AsyncClientPool pool(loop.io, service.url(), 2);
  std::vector<std::future<sagalab::HttpResult>> calls;
  for (int i = 0; i < 6; ++i) calls.push_back(call(pool, 5000));
  std::set<int> seen;
  for (auto& f : calls) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(r.answer);
    CHECK(r.answer->status == 200);
    seen.insert(r.answer->body["n"].get<int>());
  }
  CHECK(seen.size() == 6);  // six answers, each its own
  CHECK(service.max_open == 2);
  CHECK(service.accepted == 2);  // the queued calls went out on the same two connections
}

TEST_CASE("the async client does not reuse a keep-alive connection the service closed while it was idle",
          "[http-client]") {
  RawService service(RawService::Mode::AnswerThenClose);
  Loop loop;
  sagalab::AsyncClientPool pool(loop.io, service.url(), 1);
  for (int i = 1; i <= 3; ++i) {
    INFO("call " << i);
    auto f = call(pool, 2000);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(r.answer);  // a request written on the closed connection would end with no answer
    CHECK(r.answer->body["n"] == i);
    // The service's close has arrived before the next call picks a connection.
    for (int k = 0; k < 200 && service.open > 0; ++k) std::this_thread::sleep_for(5ms);
  }
  CHECK(service.accepted == 3);
}

TEST_CASE("the server's own request type decodes the path and the query as sent", "[http-request]") {
  sagalab::HttpRequest r;
  sagalab::set_target(r, "/productos/Mouse%20Inal%C3%A1mbrico?nombre=Teclado+Mec%C3%A1nico&x=%zz&flag&a=1&a=2");
  CHECK(r.path == "/productos/Mouse Inalámbrico");
  CHECK(r.get_param_value("nombre") == "Teclado Mecánico");
  CHECK(r.get_param_value("x") == "%zz");  // a malformed escape is kept as it is
  CHECK(r.has_param("flag"));
  CHECK(r.get_param_value("a", 1) == "2");
  CHECK(r.get_param_value("missing").empty());
  CHECK(sagalab::url_decode("a+b", false) == "a+b");  // '+' is a space in a query only
  r.headers.emplace("Idempotency-Key", "k1");
  CHECK(r.get_header_value("idempotency-key") == "k1");
  CHECK(r.has_header("IDEMPOTENCY-KEY"));
}
