// The proxy's listeners and connections (see proxy.hpp).
//
// Each client connection gets its own keep-alive connection to the upstream,
// opened on its first request; every step of a connection runs on one strand,
// so a connection needs no lock. Per request: read it, ask the fault rules,
// then forward, answer, lie or cut, and record the exchange before the
// caller gets anything.
#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "sagalab/http_client.hpp"
#include "sagalab/http_common.hpp"
#include "sagalab/proxy.hpp"
#include "sagalab/recording_check.hpp"

namespace sagalab::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::uint64_t kMaxRequestBody = 1024 * 1024;
constexpr std::uint64_t kMaxResponseBody = 8 * 1024 * 1024;
constexpr std::size_t kMaxRecordedBody = 64 * 1024;
constexpr int kSlowBodyPieces = 10;

bool is_2xx(int status) { return status >= 200 && status < 300; }

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json body_json(const std::string& body) {
  if (body.empty()) return nullptr;
  auto j = Json::parse(body, nullptr, false);
  if (!j.is_discarded()) return j;
  return body.size() > kMaxRecordedBody ? body.substr(0, kMaxRecordedBody) : body;
}

struct Target {
  std::string name, host, port, prefix, url;
  bool trace = false;  // add a W3C traceparent to requests that carry none
};

// A new W3C traceparent: version 00, a random trace id and parent id, sampled.
std::string new_traceparent() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[56];
  std::snprintf(buf, sizeof buf, "00-%016llx%016llx-%016llx-01", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng() | 1));
  return buf;
}

Target target_of(const Upstream& u) {
  auto base = parse_base_url(u.url);
  Target t;
  t.name = u.name;
  t.url = u.url;
  t.trace = u.trace;
  t.prefix = base.prefix;
  auto hp = base.origin.substr(std::string("http://").size());
  auto colon = hp.rfind(':');
  t.host = colon == std::string::npos ? hp : hp.substr(0, colon);
  t.port = colon == std::string::npos ? "80" : hp.substr(colon + 1);
  return t;
}

struct Shared {
  Faults& faults;
  Recorder recorder;
  Config cfg;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Target& target, Shared& shared)
      : client_(std::move(socket)),
        upstream_(client_.get_executor()),
        timer_(client_.get_executor()),
        resolver_(client_.get_executor()),
        target_(target),
        shared_(shared) {}

  void start() {
    beast::error_code ec;
    client_.socket().set_option(tcp::no_delay(true), ec);
    read();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    parser_->header_limit(16 * 1024);
    client_.expires_after(std::chrono::milliseconds(shared_.cfg.idle_timeout_ms));
    http::async_read_header(client_, cbuf_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_header(ec);
    });
  }

  // A client that sends `Expect: 100-continue` (curl, for a body past 1 KiB)
  // waits for the interim answer before it sends the body.
  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(client_, asio::buffer(kContinue),
                               [self = shared_from_this()](beast::error_code ec2, std::size_t) {
                                 if (ec2) return self->close_all();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    http::async_read(client_, cbuf_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      req_ = {};
      req_.method(parser_->get().method());
      path_ = std::string(parser_->get().target());
      seq_ = shared_.recorder.next_seq();
      t_us_ = now_us();
      keep_alive_ = false;  // the rest of the body is unread: the answer says so, and the connection closes
      answer_local(413, "request too large for the proxy (body at most 1 MiB)");
      return;
    }
    if (ec) return close_all();
    client_.expires_never();
    req_ = parser_->release();
    keep_alive_ = req_.keep_alive();
    seq_ = shared_.recorder.next_seq();
    t_us_ = now_us();
    std::string target(req_.target());
    auto q = target.find('?');
    path_ = q == std::string::npos ? target : target.substr(0, q);
    query_ = q == std::string::npos ? "" : target.substr(q + 1);
    req_body_ = body_json(req_.body());
    headers_ = Json::object();
    RequestView view;
    view.upstream = target_.name;
    view.method = std::string(req_.method_string());
    view.path = path_;
    for (const auto& f : req_) {
      auto name = check::header_key(std::string(f.name_string()));
      std::string value(f.value());
      headers_[name] = value;
      view.headers[name] = value;
    }
    if (target_.trace && !headers_.contains("traceparent")) {
      // The client's request gets a trace id; an orchestrator that propagates trace context passes it on.
      auto tp = new_traceparent();
      req_.set("traceparent", tp);
      headers_["traceparent"] = tp;
      view.headers["traceparent"] = tp;
    }
    if (!req_body_.is_null() && !req_body_.is_string()) view.body = &req_body_;
    auto key = view.headers.count("idempotency-key") ? view.headers["idempotency-key"] : req_.body();
    view.attempt = shared_.faults.attempt_of(target_.name + " " + view.method + " " + path_ + " " + key);
    attempt_ = view.attempt;
    view.now_ms = wall_ms();
    if (shared_.faults.partitioned(target_.name, view.now_ms)) {
      fault_ = {{"action", "partition"}, {"rule_id", nullptr}};
      record(std::nullopt, Json(), false);
      return close_all();
    }
    hit_ = shared_.faults.match(view);
    fault_ = hit_ ? Json{{"action", to_string(hit_->action)},
                         {"rule_id", hit_->fired.rule_id},
                         {"name", hit_->fired.name.empty() ? Json(nullptr) : Json(hit_->fired.name)}}
                  : Json(nullptr);
    if (!hit_) return forward();
    switch (hit_->action) {
      case Action::Error:
        return answer_local(hit_->fired.status, hit_->fired.message);
      case Action::Reset:
      case Action::Partition: {
        record(std::nullopt, Json(), false);
        // A reset: RST instead of FIN, so the caller sees "connection reset".
        beast::error_code ignored;
        client_.socket().set_option(asio::socket_base::linger(true, 0), ignored);
        return close_all();
      }
      case Action::Latency:
      case Action::Hang:
        timer_.expires_after(std::chrono::milliseconds(hit_->fired.delay_ms));
        return timer_.async_wait([self = shared_from_this()](beast::error_code) { self->forward(); });
      default:
        return forward();
    }
  }

  // Sends the request upstream on this connection's own upstream connection,
  // opening it first when there is none.
  void forward() {
    forwarded_ = true;
    if (!up_open_) {
      upstream_.expires_after(std::chrono::milliseconds(shared_.cfg.upstream_timeout_ms));
      resolver_.async_resolve(target_.host, target_.port,
                              [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                                if (ec) return self->upstream_failed("cannot resolve " + self->target_.host, ec);
                                self->upstream_.async_connect(
                                    r, [self](beast::error_code ec2, const tcp::endpoint&) {
                                      if (ec2) return self->upstream_failed("cannot connect", ec2);
                                      beast::error_code ignored;
                                      self->upstream_.socket().set_option(tcp::no_delay(true), ignored);
                                      self->up_open_ = true;
                                      self->send_upstream(true);
                                    });
                              });
      return;
    }
    send_upstream(false);
  }

  void send_upstream(bool fresh) {
    up_req_ = req_;
    up_req_.target(target_.prefix + std::string(req_.target()));
    up_req_.set(http::field::host, target_.host + ":" + target_.port);
    up_req_.erase(http::field::expect);  // the body goes with the headers: no interim answer to read
    up_req_.keep_alive(true);
    up_req_.prepare_payload();
    upstream_.expires_after(std::chrono::milliseconds(shared_.cfg.upstream_timeout_ms));
    http::async_write(upstream_, up_req_, [self = shared_from_this(), fresh](beast::error_code ec, std::size_t) {
      if (ec) return self->stale_or_failed(fresh, "cannot send", ec);
      self->up_parser_.emplace();
      self->up_parser_->body_limit(kMaxResponseBody);
      if (self->req_.method() == http::verb::head) self->up_parser_->skip(true);  // no body follows
      http::async_read(self->upstream_, self->ubuf_, *self->up_parser_,
                       [self, fresh](beast::error_code ec2, std::size_t) {
                         if (ec2) return self->stale_or_failed(fresh, "no answer", ec2);
                         self->on_upstream();
                       });
    });
  }

  // A kept-alive upstream connection that the upstream closed while idle
  // fails at once: open a new one and send again, once.
  void stale_or_failed(bool fresh, const std::string& what, beast::error_code ec) {
    beast::error_code ignored;
    upstream_.socket().close(ignored);
    up_open_ = false;
    ubuf_.consume(ubuf_.size());
    bool stale = !fresh && (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                            ec == asio::error::broken_pipe || ec == asio::error::eof);
    if (stale) return forward();
    upstream_failed(what, ec);
  }

  void upstream_failed(const std::string& what, beast::error_code ec) {
    beast::error_code ignored;
    upstream_.socket().close(ignored);
    up_open_ = false;
    bool timeout = ec == beast::error::timeout;
    error_ = what + ": " + ec.message();
    int status = timeout ? 504 : 502;
    auto msg = "upstream " + target_.name + " (" + target_.url + ") " +
               (timeout ? "did not answer within " + std::to_string(shared_.cfg.upstream_timeout_ms) + " ms"
                        : what + ": " + ec.message());
    answer_local(status, msg);
  }

  void on_upstream() {
    auto res = up_parser_->release();
    int ustatus = static_cast<int>(res.result_int());
    Json ubody = body_json(res.body());
    if (!res.keep_alive()) {
      beast::error_code ignored;
      upstream_.socket().close(ignored);
      up_open_ = false;
    }
    upstream_status_ = ustatus;
    auto fault_is = [this](Action a) { return hit_ && hit_->action == a; };
    if ((fault_is(Action::CommitThenError) || fault_is(Action::CommitThenDrop)) && !hit_->on_any && !is_2xx(ustatus)) {
      // `on: success`: the upstream refused, so nothing was committed; the caller gets its answer, the rule keeps its count.
      shared_.faults.unfire(*hit_);
      hit_.reset();
      fault_ = nullptr;
    }
    if (fault_is(Action::CommitThenError) || fault_is(Action::CommitThenDrop)) {
      upstream_body_ = ubody;  // the caller gets something else
      if (fault_is(Action::CommitThenError)) return answer_local(hit_->fired.status, hit_->fired.message);
      record(std::nullopt, Json(), true);
      return close_all();
    }
    res_ = std::move(res);
    res_.keep_alive(keep_alive_);
    res_.prepare_payload();
    record(ustatus, ubody, true);  // upstream_body_ stays null: the same as what the caller gets
    if (fault_is(Action::SlowBody)) return slow_body();
    write_response();
  }

  void answer_local(int status, const std::string& message) {
    res_ = {};
    res_.result(static_cast<unsigned>(status));
    res_.version(11);
    res_.set(http::field::content_type, "application/json");
    Json body = {{"success", false}, {"error", message}};
    res_.body() = body.dump();
    res_.keep_alive(keep_alive_);
    res_.prepare_payload();
    record(status, body, forwarded_);
    write_response();
  }

  void write_response() {
    http::async_write(client_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close_all();
      self->reset_request();
      self->read();
    });
  }

  // The header at once, then the body in pieces spread over the rule's time.
  void slow_body() {
    sr_.emplace(res_);
    http::async_write_header(client_, *sr_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close_all();
      self->body_at_ = 0;
      self->next_piece();
    });
  }

  void next_piece() {
    const auto& body = res_.body();
    if (body_at_ >= body.size()) {
      sr_.reset();
      if (!keep_alive_) return close_all();
      reset_request();
      return read();
    }
    auto piece = std::max<std::size_t>(1, (body.size() + kSlowBodyPieces - 1) / kSlowBodyPieces);
    timer_.expires_after(std::chrono::milliseconds(hit_->fired.delay_ms / kSlowBodyPieces));
    timer_.async_wait([self = shared_from_this(), piece](beast::error_code) {
      const auto& b = self->res_.body();
      auto n = std::min(piece, b.size() - self->body_at_);
      asio::async_write(self->client_, asio::buffer(b.data() + self->body_at_, n),
                        [self, n](beast::error_code ec, std::size_t) {
                          if (ec) return self->close_all();
                          self->body_at_ += n;
                          self->next_piece();
                        });
    });
  }

  void record(std::optional<int> status, const Json& body, bool forwarded) {
    Json line = {{"seq", seq_},
                 {"t_us", t_us_},
                 {"done_us", now_us()},
                 {"upstream", target_.name},
                 {"method", std::string(req_.method_string())},
                 {"path", path_},
                 {"query", query_},
                 {"attempt", attempt_},
                 {"headers", headers_},
                 {"request", req_body_},
                 {"status", status ? Json(*status) : Json(nullptr)},
                 {"response", body},
                 {"forwarded", forwarded},
                 {"upstream_status", upstream_status_ ? Json(*upstream_status_) : Json(nullptr)},
                 {"upstream_response", upstream_body_},
                 {"fault", fault_}};
    if (!error_.empty()) line["error"] = error_;
    if (hit_) shared_.faults.settle(*hit_, forwarded, upstream_status_, status);
    shared_.recorder.write(line);
  }

  void reset_request() {
    hit_.reset();
    forwarded_ = false;
    upstream_status_.reset();
    upstream_body_ = nullptr;
    error_.clear();
    fault_ = nullptr;
  }

  void close_all() {
    beast::error_code ignored;
    timer_.cancel();
    client_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    client_.socket().close(ignored);
    upstream_.socket().close(ignored);
    up_open_ = false;
  }

  beast::tcp_stream client_, upstream_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  const Target& target_;
  Shared& shared_;
  beast::flat_buffer cbuf_, ubuf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response_parser<http::string_body>> up_parser_;
  std::optional<http::response_serializer<http::string_body>> sr_;
  http::request<http::string_body> req_, up_req_;
  http::response<http::string_body> res_;
  bool keep_alive_ = true, up_open_ = false, forwarded_ = false;
  std::optional<Hit> hit_;
  std::int64_t seq_ = 0, t_us_ = 0;
  int attempt_ = 0;
  std::string path_, query_, error_;
  Json req_body_, headers_, fault_, upstream_body_;
  std::optional<int> upstream_status_;
  std::size_t body_at_ = 0;
};

}  // namespace

struct Server::Impl {
  Impl(asio::io_context& io_, Config c, Faults& f) : io(io_), shared{f, Recorder(c.record_path), c} {}
  asio::io_context& io;
  Shared shared;
  std::vector<Target> targets;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<int> ports;

  void accept(std::size_t i) {
    acceptors[i]->async_accept(asio::make_strand(io), [this, i](beast::error_code ec, tcp::socket s) {
      if (!ec) std::make_shared<Session>(std::move(s), targets[i], shared)->start();
      if (ec != asio::error::operation_aborted) accept(i);
    });
  }
};

Server::Server(asio::io_context& io, Config cfg, Faults& faults)
    : impl_(std::make_unique<Impl>(io, std::move(cfg), faults)) {}

Server::~Server() {
  for (auto& a : impl_->acceptors) {
    beast::error_code ignored;
    a->close(ignored);
  }
}

void Server::start() {
  for (const auto& u : impl_->shared.cfg.upstreams) {
    impl_->targets.push_back(target_of(u));
    auto a = std::make_unique<tcp::acceptor>(impl_->io);
    beast::error_code ec;
    tcp::endpoint ep(asio::ip::make_address(u.listen_host, ec), static_cast<unsigned short>(u.listen_port));
    if (ec) throw std::runtime_error("upstream " + u.name + ": '" + u.listen_host + "' is not an IP address");
    a->open(ep.protocol(), ec);
    if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error("upstream " + u.name + ": cannot listen on " + u.listen_host + ":" +
                               std::to_string(u.listen_port) + ": " + ec.message());
    impl_->ports.push_back(a->local_endpoint().port());
    impl_->acceptors.push_back(std::move(a));
  }
  for (std::size_t i = 0; i < impl_->acceptors.size(); ++i) impl_->accept(i);
}

Json Server::upstreams_json() const {
  Json out = Json::array();
  for (std::size_t i = 0; i < impl_->targets.size(); ++i) {
    const auto& u = impl_->shared.cfg.upstreams[i];
    out.push_back({{"name", u.name},
                   {"listen", u.listen_host + ":" + std::to_string(impl_->ports[i])},
                   {"port", impl_->ports[i]},
                   {"url", u.url}});
  }
  return out;
}

Recorder& Server::recorder() { return impl_->shared.recorder; }

}  // namespace sagalab::proxy
