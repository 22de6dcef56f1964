// The asynchronous client pool (see async_client.hpp).
#include "sagalab/async_client.hpp"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

namespace sagalab {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
// A connection idle for longer is not reused: the services close idle
// connections after their read timeout (5 s by default), and a request sent
// on a connection the server is closing cannot be told from one it dropped.
constexpr auto kMaxIdle = std::chrono::seconds(2);
constexpr std::size_t kMaxAnswerBytes = 8 * 1024 * 1024;
}  // namespace

struct AsyncClientPool::Conn {
  explicit Conn(asio::io_context& io) : stream(asio::make_strand(io)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
  Clock::time_point idle_since;
};

struct AsyncClientPool::Call {
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  std::int64_t timeout_ms = 0;
  Clock::time_point deadline;
  Done done;
};

AsyncClientPool::AsyncClientPool(asio::io_context& io, const std::string& base_url, std::size_t max_connections)
    : io_(io), base_(parse_base_url(base_url)), max_(max_connections == 0 ? 1 : max_connections) {
  const std::string scheme = "http://";
  if (base_.origin.rfind(scheme, 0) != 0)
    throw std::invalid_argument("only http:// service URLs are supported: " + base_url);
  auto hostport = base_.origin.substr(scheme.size());
  auto colon = hostport.rfind(':');
  host_ = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  port_ = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
}

AsyncClientPool::~AsyncClientPool() = default;

void AsyncClientPool::call(std::string method, std::string path, std::string body, Headers headers,
                           std::int64_t timeout_ms, Done done) {
  auto c = std::make_shared<Call>();
  c->req.method_string(method);
  c->req.target(base_.prefix + path);
  c->req.version(11);
  c->req.set(http::field::host, host_ + ":" + port_);
  for (auto& [k, v] : headers) c->req.set(k, v);
  if (!body.empty()) {
    c->req.set(http::field::content_type, "application/json");
    c->req.body() = std::move(body);
  }
  c->req.keep_alive(true);
  c->req.prepare_payload();
  c->timeout_ms = timeout_ms;
  c->deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  c->done = std::move(done);

  std::shared_ptr<Conn> conn;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    while (!idle_.empty()) {
      auto candidate = std::move(idle_.back());
      idle_.pop_back();
      // Stale, or closed by the server while idle (a peek sees the end of stream).
      char byte;
      bool closed = ::recv(candidate->stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
      if (now - candidate->idle_since < kMaxIdle && !closed) {
        conn = std::move(candidate);
        break;
      }
      --open_;
    }
    if (!conn) {
      if (open_ >= max_) {
        waiting_.push_back(std::move(c));
        return;
      }
      ++open_;
      conn = std::make_shared<Conn>(io_);
    }
  }
  start(std::move(c), std::move(conn));
}

void AsyncClientPool::start(std::shared_ptr<Call> c, std::shared_ptr<Conn> conn) {
  auto executor = conn->stream.get_executor();
  asio::dispatch(executor, [this, c = std::move(c), conn = std::move(conn)]() mutable {
    auto fail = [this, c, conn](const std::string& why) {
      beast::error_code ignored;
      conn->stream.socket().close(ignored);
      finished(conn, false);
      c->done(HttpResult{std::nullopt, why});
    };
    auto error_text = [c](beast::error_code ec) {
      if (ec == beast::error::timeout) return "timeout after " + std::to_string(c->timeout_ms) + " ms";
      return ec.message();
    };
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - Clock::now());
    if (left.count() <= 0) {
      fail("timeout after " + std::to_string(c->timeout_ms) + " ms (waiting for a connection)");
      return;
    }
    auto exchange = [this, c, conn, fail, error_text] {
      http::async_write(conn->stream, c->req, [this, c, conn, fail, error_text](beast::error_code ec, std::size_t) {
        if (ec) return fail(error_text(ec));
        c->parser.emplace();
        c->parser->body_limit(kMaxAnswerBytes);
        http::async_read(conn->stream, conn->buffer, *c->parser,
                         [this, c, conn, fail, error_text](beast::error_code read_ec, std::size_t) {
                           if (read_ec) return fail(error_text(read_ec));
                           auto res = c->parser->release();
                           HttpAnswer a;
                           a.status = static_cast<int>(res.result_int());
                           if (!res.body().empty()) {
                             a.body = Json::parse(res.body(), nullptr, false);
                             if (a.body.is_discarded()) a.body = Json{{"raw", res.body()}};
                           }
                           bool reusable = res.keep_alive();
                           if (!reusable) {
                             beast::error_code ignored;
                             conn->stream.socket().close(ignored);
                           }
                           finished(conn, reusable);
                           c->done(HttpResult{std::move(a), ""});
                         });
      });
    };
    conn->stream.expires_after(left);
    if (conn->connected) {
      exchange();
      return;
    }
    auto resolver = std::make_shared<tcp::resolver>(conn->stream.get_executor());
    resolver->async_resolve(
        host_, port_, [conn, resolver, fail, error_text, exchange](beast::error_code ec, tcp::resolver::results_type r) {
          if (ec) return fail("cannot resolve: " + ec.message());
          conn->stream.async_connect(r, [conn, fail, error_text, exchange](beast::error_code connect_ec, tcp::endpoint) {
            if (connect_ec) return fail(error_text(connect_ec));
            beast::error_code ignored;
            conn->stream.socket().set_option(tcp::no_delay(true), ignored);
            conn->connected = true;
            exchange();
          });
        });
  });
}

void AsyncClientPool::finished(const std::shared_ptr<Conn>& conn, bool reusable) {
  std::shared_ptr<Call> next;
  std::shared_ptr<Conn> with;
  {
    std::lock_guard lock(mutex_);
    if (reusable) {
      conn->stream.expires_never();
      if (!waiting_.empty()) {
        next = std::move(waiting_.front());
        waiting_.pop_front();
        with = conn;
      } else {
        conn->idle_since = Clock::now();
        idle_.push_back(conn);
      }
    } else {
      --open_;
      if (!waiting_.empty()) {
        next = std::move(waiting_.front());
        waiting_.pop_front();
        ++open_;
        with = std::make_shared<Conn>(io_);
      }
    }
  }
  if (next) start(std::move(next), std::move(with));
}

}  // namespace sagalab
