// `sagactl check`: the saga protocol checked from the outside, on a recording
// of HTTP exchanges (`sagactl proxy --record`) and a short description of the
// saga (its steps, their forward and compensation endpoints, the pivot, where
// the saga id and the outcome are read). No I/O: the caller reads the files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/json_codec.hpp"

namespace sagalab::check {

// Where a value is read in an exchange: "header.X-Saga-Id", "request.a.b"
// (a field of the request body), "response.saga_id" (a field of the answer
// the upstream gave), "path.id" (a {id} segment of the route's pattern).
struct Locator {
  enum class From { Header, Request, Response, Path } from = From::Header;
  std::string name;
  std::string text;  // as written, for messages
};

// "POST /bookings/{id}/cancel" at an upstream; `*` or `{name}` match one segment.
struct Route {
  std::string upstream;
  std::string method;
  std::vector<std::string> segments;
  std::string text;
};

struct StepDesc {
  std::string name;
  Route forward;
  std::optional<Route> compensation;
  std::optional<Locator> forward_id;       // the effect's id in the forward exchange
  std::optional<Locator> compensation_id;  // the id the compensation names
  std::optional<Locator> effect;           // what the forward call created (default: forward_id)
};

struct ClientDesc {
  Route route;
  Locator outcome;
  std::vector<std::string> success, failure;
  // Outcomes of an honest "not yet" (an answer that points to a status URL):
  // not a violation; the saga's outcome is then read from its compensations.
  std::vector<std::string> pending;
};

struct Description {
  std::string name;
  std::vector<Locator> saga_id;  // the first that yields a value names the exchange's saga
  std::optional<ClientDesc> client;
  std::vector<StepDesc> steps;
  int pivot = -1;  // index into steps
};

// Strict: an unknown key or a bad value throws std::invalid_argument naming it.
Description parse_description(const Json& j);

// The value at a dotted field of a JSON body ("order.ref"), as text; "" when
// absent or not a scalar. The proxy's rules match body fields with it too.
std::string field_text(const Json& body, const std::string& dotted);
// A header name as recordings, rules and locators keep it: lower case (HTTP names are case-insensitive).
std::string header_key(std::string name);

// One exchange of a recording (a JSON line written by the proxy).
struct Recorded {
  std::int64_t seq = 0;
  std::int64_t t_us = 0, done_us = 0;  // request received; answered (or dropped)
  std::string upstream, method, path;
  Json headers = Json::object();  // lower-case names
  Json request;                   // the request body (JSON, or a string, or null)
  std::optional<int> status;      // what the caller got; none: no answer
  Json response;                  // the body the caller got
  std::optional<int> upstream_status;  // what the upstream answered; none: not forwarded or no answer
  Json upstream_response;              // its body
  bool forwarded = false;
  std::string fault;  // the proxy's fault on this exchange ("" none)
};
// Throws std::invalid_argument naming the field.
Recorded recorded_from_json(const Json& j);

struct Violation {
  std::string rule;
  std::string saga;
  std::string message;
  std::vector<std::int64_t> exchanges;  // seq numbers
  std::vector<std::string> faults;      // the proxy's faults that hit the saga
};

struct Report {
  std::size_t exchanges = 0;
  std::size_t sagas = 0, completed = 0, failed = 0, unknown = 0;
  std::vector<Violation> violations;
};

// The rules, one line each (also printed by `sagactl check --rules`).
const std::vector<std::pair<std::string, std::string>>& rules();

Report check_recording(const Description& d, const std::vector<Recorded>& exchanges);

Json to_json(const Violation& v);
Json to_json(const Report& r);

}  // namespace sagalab::check
