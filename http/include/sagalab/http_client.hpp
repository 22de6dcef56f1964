// An HTTP client for JSON APIs over cpp-httplib: TCP_NODELAY, timeouts, and a
// failed call returned as a value (no exception).
#pragma once

#include <httplib.h>

#include <memory>
#include <optional>
#include <string>

#include "sagalab/json_codec.hpp"

namespace sagalab {

struct HttpAnswer {
  int status = 0;
  Json body;  // null when the answer had no body
};

struct HttpResult {
  std::optional<HttpAnswer> answer;  // absent: no answer (refused, timeout, dropped)
  std::string error;             // why there is no answer
  bool ok() const { return answer && answer->status >= 200 && answer->status < 300; }
};

struct BaseUrl {
  std::string origin;  // scheme://host:port
  std::string prefix;  // path prefix, e.g. "/ms_compras" behind a gateway
};
BaseUrl parse_base_url(const std::string& url);  // throws std::invalid_argument

std::unique_ptr<httplib::Client> make_client(const BaseUrl& base, std::int64_t timeout_ms, bool keep_alive);

HttpResult do_request(httplib::Client& cli, const BaseUrl& base, const std::string& method,
                      const std::string& path, const Json* body, const httplib::Headers& headers);

// One-shot calls (a new connection each time).
HttpResult http_call(const std::string& base_url, const std::string& method, const std::string& path,
                     const Json* body = nullptr, const httplib::Headers& headers = {},
                     std::int64_t timeout_ms = 5000);

}  // namespace sagalab
