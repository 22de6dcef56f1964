// Our own request type (see http_request.hpp).
#include "sagalab/http_request.hpp"

#include <algorithm>
#include <cctype>

namespace sagalab {

bool CaseLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) < std::tolower(y);
  });
}

namespace {

template <typename Map>
std::string nth_value(const Map& m, const std::string& key, std::size_t id) {
  auto [lo, hi] = m.equal_range(key);
  for (auto it = lo; it != hi; ++it, --id)
    if (id == 0) return it->second;
  return "";
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string HttpRequest::get_header_value(const std::string& name, std::size_t id) const {
  return nth_value(headers, name, id);
}

std::string HttpRequest::get_param_value(const std::string& name, std::size_t id) const {
  return nth_value(params, name, id);
}

std::string url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int h = hex(s[i + 1]), l = hex(s[i + 2]);
      if (h >= 0 && l >= 0) {
        out.push_back(static_cast<char>(h * 16 + l));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

QueryParams parse_query(std::string_view query) {
  QueryParams out;
  std::size_t i = 0;
  while (i <= query.size()) {
    auto amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    auto part = query.substr(i, amp - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      auto key = url_decode(part.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::string() : url_decode(part.substr(eq + 1), true);
      out.emplace(std::move(key), std::move(value));
    }
    i = amp + 1;
  }
  return out;
}

void set_target(HttpRequest& r, std::string target) {
  r.target = std::move(target);
  auto q = r.target.find('?');
  r.path = url_decode(std::string_view(r.target).substr(0, q), false);
  r.params.clear();
  if (q != std::string::npos) r.params = parse_query(std::string_view(r.target).substr(q + 1));
}

}  // namespace sagalab
