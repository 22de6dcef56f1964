// The request a handler of sagalab's HTTP server reads: what the Beast session
// parsed, in a type of our own (no HTTP library's internals between the socket
// and the handler). The accessors read as cpp-httplib's did, so that a handler
// reads a header, a query parameter or a route's capture the same way.
#pragma once

#include <cstddef>
#include <map>
#include <regex>
#include <string>
#include <string_view>

namespace sagalab {

// Header names compare without case (RFC 9110).
struct CaseLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using HeaderMap = std::multimap<std::string, std::string, CaseLess>;
using QueryParams = std::multimap<std::string, std::string>;

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: the path and the query, still encoded
  std::string path;    // decoded, without the query
  std::string version;  // "HTTP/1.1"
  HeaderMap headers;
  QueryParams params;  // the query's parameters, decoded
  std::string body;
  std::smatch matches;  // the route pattern's groups, over `path`
  std::string remote_addr;
  int remote_port = 0;

  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
  // The id-th value of the header ("" when there is none).
  std::string get_header_value(const std::string& name, std::size_t id = 0) const;
  bool has_param(const std::string& name) const { return params.count(name) > 0; }
  std::string get_param_value(const std::string& name, std::size_t id = 0) const;
};

// Percent-decoding of a URL component; `plus_is_space` for a query's form encoding.
// A malformed escape ("%G1", a lone "%") is kept as it is.
std::string url_decode(std::string_view s, bool plus_is_space);
// "a=1&b=x%20y&c" -> {a: 1, b: "x y", c: ""}.
QueryParams parse_query(std::string_view query);
// Splits a request target into `path` (decoded) and `params`.
void set_target(HttpRequest& r, std::string target);

}  // namespace sagalab
