// The HTTP server of every sagalab program, on Boost.Asio and Beast.
//
// Connections are asynchronous: an idle keep-alive connection costs a socket,
// never a thread, so any number of clients can stay connected without one
// waiting on another's idle connection. Handlers come in two kinds:
//  - blocking handlers (the services' domain calls, admin and query routes)
//    run on a pool of `--workers` threads, so that a handler waiting on its
//    SQLite group commit holds a worker, not the connection's event loop;
//  - asynchronous handlers (the orchestrator's POST /compra) run on the
//    event loop and answer later, from any thread, through Exchange::done().
// Requests are our own HttpRequest (http_request.hpp), answers cpp-httplib's
// Response struct; the server adds what every
// program needs: TCP_NODELAY, body and header limits, read timeouts, JSON
// errors for unknown routes and ClientError -> 4xx, the admin token, and one
// JSON log line per request.
#pragma once

#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "sagalab/http_common.hpp"

namespace sagalab {

// One request in flight. An asynchronous handler fills `res` and calls
// done() exactly once, from any thread.
class Exchange {
 public:
  sagalab::HttpRequest req;
  httplib::Response res;
  std::string fault;  // named in the request's log line
  std::string route;  // the matched route's pattern (a metrics label)
  // Named in the log line when the request's own headers do not say them
  // (the orchestrator's POST /compra: the saga it started, its trace).
  std::string saga_id, trace_id;
  std::chrono::steady_clock::time_point started;
  // The handler asked for no answer at all (commit-then-drop): the session
  // closes the connection instead of writing `res`.
  bool drop = false;
  void done();
  // Answers with the exception's status (ClientError) or 500, then done().
  void fail(std::exception_ptr error);

  // Set by the server: sends `res` on the request's connection.
  std::function<void()> send_;
};
using ExchangePtr = std::shared_ptr<Exchange>;

using Handler = std::function<void(const sagalab::HttpRequest&, httplib::Response&)>;
using AsyncHandler = std::function<void(const ExchangePtr&)>;

class HttpServer {
 public:
  explicit HttpServer(const ServerConfig& cfg);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Blocking handlers, run on the worker pool. Patterns are regular
  // expressions matched against the whole path; groups land in req.matches.
  void Get(const std::string& pattern, Handler h);
  void Post(const std::string& pattern, Handler h);
  void Delete(const std::string& pattern, Handler h);
  // Asynchronous handlers, run on the event loop; they must not block.
  void get_async(const std::string& pattern, AsyncHandler h);
  void post_async(const std::string& pattern, AsyncHandler h);

  // Hands an exchange from an asynchronous handler to the worker pool, to be
  // answered there by a blocking handler.
  void run_blocking(const ExchangePtr& ex, Handler h);

  // The event loop the server runs on (its threads start in serve()).
  boost::asio::io_context& io();

  // Binds (port 0 picks a free one), writes the port file, serves until
  // SIGINT or SIGTERM, calls on_stop, stops. Returns the exit code.
  int serve(const std::function<void()>& on_stop = {});

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Writes the answer for an exception thrown by a handler.
void send_exception(httplib::Response& res, std::exception_ptr error);

}  // namespace sagalab
