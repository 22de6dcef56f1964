// `sagactl proxy`: an HTTP reverse proxy (Boost.Asio/Beast) placed between a
// saga's orchestrator and each of its services, one listener per upstream.
// It injects the same fault rules as sagalab's services, through the same
// /admin/faults API (on its own admin listener), plus what only a proxy can
// do: reset, partition, slow-body. It records every exchange as JSON Lines
// for `sagactl check`.
#pragma once

#include <utility>  // before Boost 1.74 asio, which uses std::exchange without it

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/faults.hpp"
#include "sagalab/json_codec.hpp"

namespace sagalab::proxy {

enum class Action { Error, Latency, Hang, CommitThenError, CommitThenDrop, Reset, Partition, SlowBody };
std::string to_string(Action a);
const std::vector<std::string>& action_names();

// What a rule matches beyond the fault rule's own saga_id / attempts / endpoint
// (the first path segment, as sagalab's services name their endpoints).
struct Match {
  std::string upstream;  // "" every upstream
  std::string method;    // "" every method
  std::string path;      // glob, `*` matches any characters; "" every path
  std::string header_name, header_value;
  std::string body_field, body_value;  // a dotted field of a JSON body, compared as text
};

struct Rule {
  Action action = Action::Error;
  Match match;
  // commit-then-error / commit-then-drop: fire only when the upstream answered 2xx (`on: success`, the
  // default: a refusal committed nothing, and the rule's `times` is kept for a call that commits), or on
  // any answer (`on: any`).
  bool on_any = false;
  // Let the first `skip` matching requests through (whichever rule fires on them): with times 1,
  // the rule hits exactly the (skip+1)-th exchange of its kind (how `sagactl explore` targets one
  // exchange of a saga).
  std::int64_t skip = 0;
  std::int64_t seen = 0;  // matching requests so far
};

// The request as the matcher sees it.
struct RequestView {
  std::string upstream, method, path;  // path without the query
  std::map<std::string, std::string> headers;  // lower-case names
  const Json* body = nullptr;                  // parsed JSON body, if any
  int attempt = 0;
  std::int64_t now_ms = 0;
};

struct Hit {
  Action action;
  FiredFault fired;
  std::string upstream;
  bool on_any = false;
  std::int64_t serial = 0;  // its entry in the proxy's fired log
};

// What the proxy's fired log keeps of one firing: where, and what the upstream and the caller really got.
struct ProxyFired {
  std::int64_t serial = 0;
  FiredFault fired;
  Action action = Action::Error;
  std::string upstream, method, path, saga;
  bool settled = false;
  bool forwarded = false;
  std::optional<int> upstream_status;  // none: not forwarded, or no answer
  std::optional<int> caller_status;    // none: the caller got no answer (a drop, a reset)
};

// The proxy's rules, thread-safe. Rules are JSON as for the services, plus
// upstream, method, path, header_name/header_value, body_field/body_value.
class Faults {
 public:
  Faults(std::uint64_t seed, std::vector<std::string> upstreams);
  // Parses and adds (all or none); throws ClientError(400) naming the field.
  std::vector<std::int64_t> add(const Json& rules);
  void clear();
  bool remove(std::int64_t id);
  void reseed(std::uint64_t seed);
  Json rules_json();
  Json fired_json();
  std::optional<Hit> match(const RequestView& r);
  // The exchange a hit fired on is over: what the upstream answered, what the caller got.
  void settle(const Hit& hit, bool forwarded, std::optional<int> upstream_status, std::optional<int> caller_status);
  // A commit-then-* rule `on: success` whose upstream did not answer 2xx: not a firing after all.
  void unfire(const Hit& hit);
  // A partition cuts an upstream for duration_ms from when its rule fires.
  bool partitioned(const std::string& upstream, std::int64_t now_ms);
  // The proxy's count of this request: 1 the first time it sees the same
  // upstream, method, path and Idempotency-Key (or body), 2 the next, ...
  int attempt_of(const std::string& key);

 private:
  Rule parse(const Json& j);
  std::mutex mutex_;
  std::vector<std::string> upstreams_;
  FaultSet set_;
  std::map<std::int64_t, Rule> rules_;
  std::map<std::string, std::int64_t> cut_until_;
  std::map<std::string, int> attempts_;
  std::deque<ProxyFired> fired_;
  std::int64_t next_serial_ = 1;
};

struct Upstream {
  std::string name;
  std::string listen_host = "127.0.0.1";
  int listen_port = 0;
  std::string url;  // http://host:port[/prefix]
  bool trace = false;  // add a traceparent to requests without one (the client's upstream: a saga id for free)
};
// "name=host:port->http://host:port"; throws std::invalid_argument saying what is wrong.
Upstream parse_upstream(const std::string& spec);

struct Config {
  std::vector<Upstream> upstreams;
  std::string record_path;  // "" no recording
  std::int64_t upstream_timeout_ms = 30000;
  std::int64_t idle_timeout_ms = 120000;
};

// JSON Lines, one exchange per line, flushed before the caller gets its answer.
class Recorder {
 public:
  explicit Recorder(const std::string& path);  // "" records nothing
  std::int64_t next_seq() { return ++seq_; }
  void write(const Json& line);
  std::int64_t written() const { return written_.load(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
  std::atomic<std::int64_t> seq_{0}, written_{0};
};

class Server {
 public:
  Server(boost::asio::io_context& io, Config cfg, Faults& faults);
  ~Server();
  // Binds every listener (port 0 picks a free one); throws std::runtime_error naming the one that failed.
  void start();
  Json upstreams_json() const;
  Recorder& recorder();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagalab::proxy

namespace sagalab {
class HttpServer;
}

namespace sagalab::proxy {
// The admin listener's routes: /health, /admin/faults (GET, POST, DELETE,
// DELETE /{id}, /fired, /seed) as on every sagalab service, /admin/upstreams
// and /admin/record.
void register_admin_routes(HttpServer& srv, Faults& faults, Server& server);
}  // namespace sagalab::proxy
