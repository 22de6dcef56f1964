// The asynchronous HTTP server (see http_server.hpp).
#include "sagalab/http_server.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>
#include <vector>

#include "sagalab/errors.hpp"
#include "sagalab/metrics.hpp"

namespace sagalab {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

void send_exception(httplib::Response& res, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ClientError& e) {
    send_error(res, e.status(), e.what());
  } catch (const std::exception& e) {
    send_error(res, 500, std::string("internal error: ") + e.what());
  } catch (...) {
    send_error(res, 500, "internal error");
  }
}

void Exchange::done() {
  auto send = std::move(send_);
  send_ = nullptr;
  if (send) send();
}

void Exchange::fail(std::exception_ptr error) {
  send_exception(res, error);
  done();
}

namespace {

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

struct Route {
  std::string method;
  std::string source;
  std::regex pattern;
  Handler blocking;
  AsyncHandler async;
};

}  // namespace

struct HttpServer::Impl {
  ServerConfig cfg;
  int io_threads;
  asio::io_context io;
  asio::thread_pool workers;
  std::vector<Route> routes;
  tcp::acceptor acceptor{io};

  explicit Impl(const ServerConfig& c)
      : cfg(c),
        io_threads(c.io_threads > 0 ? c.io_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))),
        io(io_threads),
        workers(static_cast<std::size_t>(c.workers)) {}

  void accept();
  void dispatch(const ExchangePtr& ex);
  void run_blocking(const ExchangePtr& ex, Handler h);
  bool admin_refused(httplib::Response& res, const sagalab::HttpRequest& req) const;
  void log(const Exchange& ex) const;
};

namespace {

// One connection: reads a request, hands it to its handler, writes the
// answer, and reads the next while the client keeps the connection alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& srv) : stream_(std::move(socket)), srv_(srv) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    parser_->header_limit(kMaxHeaderBytes);
    // Both the wait for the next request on an idle connection and a request
    // that trickles in are cut off after the read timeout.
    stream_.expires_after(std::chrono::milliseconds(srv_.cfg.read_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::eof) {
      close();
      return;
    }
    if (ec) {
      // Too large, or not HTTP: answer once and close.
      auto ex = std::make_shared<Exchange>();
      ex->started = std::chrono::steady_clock::now();
      if (ec == http::error::body_limit) {
        send_error(ex->res, 413, "body larger than 64 KiB");
      } else if (ec == http::error::header_limit) {
        send_error(ex->res, 431, "request headers larger than 16 KiB");
      } else {
        send_error(ex->res, 400, "malformed HTTP request (" + ec.message() + ")");
      }
      keep_alive_ = false;
      write(ex);
      return;
    }
    stream_.expires_never();
    auto req = parser_->release();
    auto ex = std::make_shared<Exchange>();
    ex->started = std::chrono::steady_clock::now();
    auto& r = ex->req;
    r.method = std::string(req.method_string());
    set_target(r, std::string(req.target()));
    r.version = req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
    for (const auto& field : req) r.headers.emplace(std::string(field.name_string()), std::string(field.value()));
    r.body = std::move(req.body());
    if (peer_port_ < 0) {  // asked once per connection (a getpeername call), not per request
      beast::error_code ignored;
      auto peer = stream_.socket().remote_endpoint(ignored);
      peer_addr_ = peer.address().to_string();
      peer_port_ = peer.port();
    }
    r.remote_addr = peer_addr_;
    r.remote_port = peer_port_;
    keep_alive_ = req.keep_alive();
    ex->send_ = [self = shared_from_this(), weak = std::weak_ptr<Exchange>(ex)] {
      auto sent = weak.lock();
      if (!sent) return;
      asio::post(self->stream_.get_executor(), [self, sent] { self->write(sent); });
    };
    srv_.dispatch(ex);
  }

  void write(const ExchangePtr& ex) {
    auto& res = ex->res;
    if (ex->drop) {
      // No answer: the caller sees the connection reset after its request was done.
      srv_.log(*ex);
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.socket().close(ignored);
      return;
    }
    if (res.status == -1) res.status = 200;
    if (res.status >= 400 && res.body.empty())
      send_error(res, res.status, "request refused (HTTP " + std::to_string(res.status) + ")");
    out_ = {};
    out_.result(static_cast<unsigned>(res.status));
    out_.version(ex->req.version == "HTTP/1.0" ? 10 : 11);
    for (const auto& [k, v] : res.headers) out_.insert(k, v);
    out_.body() = std::move(res.body);
    out_.keep_alive(keep_alive_);
    out_.prepare_payload();
    stream_.expires_after(std::chrono::seconds(5));
    http::async_write(stream_, out_, [self = shared_from_this(), ex](beast::error_code ec, std::size_t) {
      if (!ex->req.method.empty()) {
        Metrics::get()
            .requests.Add({{"route", ex->route.empty() ? "unmatched" : ex->route},
                           {"method", ex->req.method},
                           {"status", std::to_string(ex->res.status)}})
            .Increment();
        self->srv_.log(*ex);
      }
      if (ec || !self->keep_alive_) {
        self->close();
        return;
      }
      self->read();
    });
  }

  // Closes after the answer is out; unread bytes of a refused request are
  // drained for a moment so that the client reads the answer instead of a reset.
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(1));
    drain_ = std::make_unique<std::array<char, 4096>>();
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(*drain_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        beast::error_code ignored;
        self->stream_.socket().close(ignored);
        return;
      }
      self->drain();
    });
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> out_;
  bool keep_alive_ = true;
  std::string peer_addr_;  // the client's address and port, once known
  int peer_port_ = -1;
  std::unique_ptr<std::array<char, 4096>> drain_;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), *this)->start();
      accept();
      return;
    }
    // Out of descriptors or similar: try again shortly instead of spinning.
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(50));
    timer->async_wait([this, timer](beast::error_code) { accept(); });
  });
}

bool HttpServer::Impl::admin_refused(httplib::Response& res, const sagalab::HttpRequest& req) const {
  if (cfg.admin_token.empty() || (req.path.rfind("/admin", 0) != 0 && req.path != "/metrics")) return false;
  auto auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  std::string given = auth.rfind(bearer, 0) == 0 ? auth.substr(bearer.size()) : "";
  if (token_matches(given, cfg.admin_token)) return false;
  res.set_header("WWW-Authenticate", "Bearer");
  send_error(res, 401, "admin routes need 'Authorization: Bearer <token>' (SAGA_ADMIN_TOKEN)");
  return true;
}

void HttpServer::Impl::dispatch(const ExchangePtr& ex) {
  if (admin_refused(ex->res, ex->req)) {
    ex->done();
    return;
  }
  for (const auto& route : routes) {
    if (route.method != ex->req.method || !std::regex_match(ex->req.path, ex->req.matches, route.pattern)) continue;
    ex->route = route.source;
    if (route.async) {
      (void)take_fault_note();
      try {
        route.async(ex);
      } catch (...) {
        ex->fail(std::current_exception());
      }
      return;
    }
    run_blocking(ex, route.blocking);
    return;
  }
  send_error(ex->res, 404, "unknown route " + ex->req.method + " " + ex->req.path);
  ex->done();
}

void HttpServer::Impl::run_blocking(const ExchangePtr& ex, Handler h) {
  asio::post(workers, [ex, h = std::move(h)] {
    (void)take_fault_note();
    (void)take_connection_drop();
    try {
      h(ex->req, ex->res);
    } catch (...) {
      ex->res = httplib::Response();
      send_exception(ex->res, std::current_exception());
    }
    if (auto note = take_fault_note(); !note.empty()) ex->fault = note;
    ex->drop = take_connection_drop();
    ex->done();
  });
}

void HttpServer::run_blocking(const ExchangePtr& ex, Handler h) { impl_->run_blocking(ex, std::move(h)); }

void HttpServer::Impl::log(const Exchange& ex) const {
  if (cfg.quiet) return;
  auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - ex.started).count();
  const auto& req = ex.req;
  Json line{{"ts", wall_ms()},   {"program", cfg.program},   {"method", req.method},
            {"path", req.path},  {"status", ex.res.status},  {"ms", static_cast<double>(us) / 1000.0}};
  if (req.has_header("X-Saga-Id")) line["saga_id"] = req.get_header_value("X-Saga-Id");
  if (!ex.saga_id.empty()) line["saga_id"] = ex.saga_id;
  auto trace = ex.trace_id.empty() ? trace_id_of(req.get_header_value("traceparent")) : ex.trace_id;
  if (!trace.empty()) line["trace_id"] = trace;
  if (req.has_header("X-Saga-Attempt")) line["attempt"] = req.get_header_value("X-Saga-Attempt");
  if (!ex.fault.empty()) line["fault"] = ex.fault;
  std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

HttpServer::HttpServer(const ServerConfig& cfg) : impl_(std::make_unique<Impl>(cfg)) {
  Get("/metrics", [](const sagalab::HttpRequest&, httplib::Response& res) {
    res.status = 200;
    res.set_content(Metrics::get().text(), "text/plain; version=0.0.4");
  });
}
HttpServer::~HttpServer() {
  impl_->io.stop();
  impl_->workers.stop();
  impl_->workers.join();
}

void HttpServer::Get(const std::string& pattern, Handler h) {
  impl_->routes.push_back({"GET", pattern, std::regex(pattern), std::move(h), nullptr});
}
void HttpServer::Post(const std::string& pattern, Handler h) {
  impl_->routes.push_back({"POST", pattern, std::regex(pattern), std::move(h), nullptr});
}
void HttpServer::Delete(const std::string& pattern, Handler h) {
  impl_->routes.push_back({"DELETE", pattern, std::regex(pattern), std::move(h), nullptr});
}
void HttpServer::get_async(const std::string& pattern, AsyncHandler h) {
  impl_->routes.push_back({"GET", pattern, std::regex(pattern), nullptr, std::move(h)});
}
void HttpServer::post_async(const std::string& pattern, AsyncHandler h) {
  impl_->routes.push_back({"POST", pattern, std::regex(pattern), nullptr, std::move(h)});
}

boost::asio::io_context& HttpServer::io() { return impl_->io; }

int HttpServer::serve(const std::function<void()>& on_stop) {
  auto& i = *impl_;
  const auto& cfg = i.cfg;
  beast::error_code ec;
  auto addr = asio::ip::make_address(cfg.host, ec);
  if (ec) {
    std::cerr << cfg.program << ": --host '" << cfg.host << "' is not an IP address\n";
    return 1;
  }
  tcp::endpoint ep(addr, static_cast<unsigned short>(cfg.port));
  i.acceptor.open(ep.protocol(), ec);
  if (!ec) i.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(ep, ec);
  if (!ec) i.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << cfg.program << ": cannot listen on " << cfg.host << ":" << cfg.port << " (" << ec.message()
              << "; in use? pick another with --port or PORT)\n";
    return 1;
  }
  int port = i.acceptor.local_endpoint().port();
  if (!cfg.port_file.empty()) {
    auto tmp = cfg.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, cfg.port_file);
  }
  std::cout << Json{{"ts", wall_ms()},          {"program", cfg.program}, {"event", "listening"},
                    {"host", cfg.host},         {"port", port},           {"pid", ::getpid()},
                    {"workers", cfg.workers},   {"io_threads", i.io_threads}}
                   .dump()
            << std::endl;
  i.accept();
  std::vector<std::thread> threads;
  for (int t = 0; t < i.io_threads; ++t) threads.emplace_back([&i] { i.io.run(); });

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  if (on_stop) on_stop();
  asio::post(i.io, [&i] {
    beast::error_code ignored;
    i.acceptor.close(ignored);
  });
  i.workers.join();  // requests being handled finish
  i.io.stop();
  for (auto& t : threads) t.join();
  std::cout << Json{{"ts", wall_ms()}, {"program", cfg.program}, {"event", "stopped"}}.dump() << std::endl;
  return 0;
}

}  // namespace sagalab
