// JSON-over-HTTP calls with cpp-httplib, failures returned as values.
#include "sagalab/http_client.hpp"

#include <stdexcept>

namespace sagalab {

BaseUrl parse_base_url(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos || url.compare(0, scheme, "http") != 0)
    throw std::invalid_argument("URL '" + url + "' must start with http://");
  auto slash = url.find('/', scheme + 3);
  BaseUrl b;
  b.origin = slash == std::string::npos ? url : url.substr(0, slash);
  b.prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!b.prefix.empty() && b.prefix.back() == '/') b.prefix.pop_back();
  if (b.origin.size() <= scheme + 3) throw std::invalid_argument("URL '" + url + "' has no host");
  return b;
}

std::unique_ptr<httplib::Client> make_client(const BaseUrl& base, std::int64_t timeout_ms, bool keep_alive) {
  auto cli = std::make_unique<httplib::Client>(base.origin);
  cli->set_tcp_nodelay(true);
  cli->set_keep_alive(keep_alive);
  auto to = std::chrono::milliseconds(timeout_ms);
  cli->set_connection_timeout(to);
  cli->set_read_timeout(to);
  cli->set_write_timeout(to);
  return cli;
}

HttpResult do_request(httplib::Client& cli, const BaseUrl& base, const std::string& method,
                      const std::string& path, const Json* body, const httplib::Headers& headers) {
  auto full = base.prefix + path;
  httplib::Result r{nullptr, httplib::Error::Unknown};
  std::string payload = body ? body->dump() : std::string();
  if (method == "GET") {
    r = cli.Get(full.c_str(), headers);
  } else if (method == "POST") {
    r = cli.Post(full.c_str(), headers, payload, "application/json");
  } else if (method == "DELETE") {
    r = cli.Delete(full.c_str(), headers, payload, "application/json");
  } else {
    return {std::nullopt, "unsupported method " + method};
  }
  if (!r) return {std::nullopt, httplib::to_string(r.error())};
  HttpAnswer a;
  a.status = r->status;
  if (!r->body.empty()) {
    a.body = Json::parse(r->body, nullptr, false);
    if (a.body.is_discarded()) a.body = Json{{"raw", r->body}};
  }
  return {a, ""};
}

HttpResult http_call(const std::string& base_url, const std::string& method, const std::string& path,
                     const Json* body, const httplib::Headers& headers, std::int64_t timeout_ms) {
  BaseUrl base;
  try {
    base = parse_base_url(base_url);
  } catch (const std::exception& e) {
    return {std::nullopt, e.what()};
  }
  auto cli = make_client(base, timeout_ms, false);
  return do_request(*cli, base, method, path, body, headers);
}

}  // namespace sagalab
