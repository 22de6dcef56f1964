// Shared server plumbing: JSON answers and bodies, the admin token, signals,
// the health probe. (Flags: server_options.cpp; trace ids: trace.cpp; the
// fault gate: fault_gate.cpp.)
#include "sagalab/http_common.hpp"

#include <signal.h>

#include "sagalab/errors.hpp"

namespace sagalab {

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"success", false}, {"error", message}});
}

namespace {

// Refuses nesting deeper than kMaxJsonDepth before the parser sees the text.
bool too_deep(const std::string& s) {
  int depth = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == '}' || c == ']') --depth;
  }
  return false;
}

}  // namespace

Json parse_body(const sagalab::HttpRequest& req, bool allow_empty) {
  if (req.body.empty()) {
    if (allow_empty) return Json::object();
    throw bad_request("the request needs a JSON body");
  }
  if (req.body.size() > kMaxBodyBytes) throw ClientError(413, "body larger than 64 KiB");
  if (too_deep(req.body)) throw bad_request("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  Json j = Json::parse(req.body, nullptr, false);
  if (j.is_discarded()) throw bad_request("malformed JSON body");
  return j;
}

bool token_matches(const std::string& given, const std::string& expected) {
  // Constant time in the length of the expected token.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int health_check(int port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_tcp_nodelay(true);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(2, 0);
  auto res = cli.Get("/health");
  return res && res->status == 200 ? 0 : 1;
}

}  // namespace sagalab
