// An asynchronous HTTP client for one service: a pool of keep-alive
// connections (Boost.Beast over Asio, TCP_NODELAY). A call never blocks a
// thread: its completion runs on the pool's event loop. Calls past the pool's
// size wait in a queue for the next free connection.
#pragma once

#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio/io_context.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sagalab/http_client.hpp"

namespace sagalab {

class AsyncClientPool {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  using Done = std::function<void(HttpResult)>;
  // Throws std::invalid_argument for a URL it cannot use (only http://).
  AsyncClientPool(boost::asio::io_context& io, const std::string& base_url, std::size_t max_connections);
  ~AsyncClientPool();

  // `body` is JSON text (empty: no body). The timeout covers connecting,
  // sending and the whole answer. done() runs exactly once.
  void call(std::string method, std::string path, std::string body, Headers headers, std::int64_t timeout_ms,
            Done done);

  struct Conn;
  struct Call;

 private:
  void start(std::shared_ptr<Call> call, std::shared_ptr<Conn> conn);
  void finished(const std::shared_ptr<Conn>& conn, bool reusable);

  boost::asio::io_context& io_;
  BaseUrl base_;
  std::string host_, port_;
  std::size_t max_;
  std::mutex mutex_;
  std::size_t open_ = 0;
  std::vector<std::shared_ptr<Conn>> idle_;
  std::deque<std::shared_ptr<Call>> waiting_;
};

}  // namespace sagalab
