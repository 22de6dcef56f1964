// `sagactl check`: the saga protocol checked from the outside, on a recording
// of HTTP exchanges (`sagactl proxy --record`) and a short description of the
// saga (its steps, their forward and compensation endpoints, the pivot, and
// the links that join exchanges into sagas). No I/O: the caller reads the
// files and performs the state probes that check_recording() asks for.
//
// Correlation: a saga is a connected component (union-find) of the exchanges
// that the description's links join: a saga id where the stack sends one
// (`saga_id`), id chains (a compensation names the id its forward call
// created or carried: `id`), and value flow (a forward call carries values of
// the client's request: `carries`, `flow`). An exchange that the description
// matches but no link places in exactly one saga is reported as uncorrelated,
// never dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sagalab/checker_json.hpp"
#include "sagalab/rules.hpp"
#include "sagalab/violation.hpp"

namespace sagalab::check {

// Where a value is read in an exchange: "header.X-Saga-Id", "request.a.b"
// (a field of the request body), "response.saga_id" (a field of the answer
// the upstream gave), "path.id" (a {id} segment of the route's pattern),
// "trace" (the trace id of a W3C traceparent header).
struct Locator {
  enum class From { Header, Request, Response, Path, Trace } from = From::Header;
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

// A value that a forward call passes on: of the client's request, or of an
// earlier step's forward exchange (a confirmation naming the id a step returned).
struct Carry {
  Locator client;      // in the client's request ("usuario_id" means request.usuario_id), or in from_step's
  Locator here;        // in the forward call
  int from_step = -1;  // an earlier step's index; -1 the client's request
  bool flow = false;   // from the description's flow: (carried where present)
};

// How a step's effect is read back: GET <read> with {id} the effect's id.
struct StateProbe {
  Route read;
  std::string field;  // a dotted field of the answer
  std::vector<std::string> done, undone;
};

struct StepDesc {
  std::string name;
  Route forward;
  std::optional<Route> compensation;
  bool no_compensation = false;            // `compensation: none`: a read-only step
  std::optional<Locator> forward_id;       // the effect's id in the forward exchange
  std::optional<Locator> compensation_id;  // the id the compensation names
  std::optional<Locator> effect;           // what the forward call created (default: forward_id)
  std::vector<Carry> carries;              // the step's own and the description's flow:
  std::optional<StateProbe> state;
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

// The value at a dotted field of a JSON body ("order.ref"), as text (a string
// as it is, a number or a boolean as its JSON text); "" when absent or not a
// scalar. The proxy's rules match body fields with it too.
std::string field_text(const Json& body, const std::string& dotted);
// A header name as recordings, rules and locators keep it: lower case (HTTP names are case-insensitive).
std::string header_key(std::string name);
// The trace id of a W3C traceparent value ("00-<32 hex>-<16 hex>-<2 hex>"); "" when it is not one.
std::string trace_id(const std::string& traceparent);

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


// An exchange the description matches that belongs to no saga, or to more than one candidate.
struct Uncorrelated {
  std::int64_t seq = 0;
  std::string what;    // "step crear_compra forward: compras POST /compras"
  std::string reason;
};

// A read of one effect, asked for by check_recording(), performed by the caller.
struct ProbeRequest {
  std::string saga;
  std::size_t step = 0;
  std::string effect;
  std::string upstream, path;  // GET path at upstream
  bool expect_undone = false;  // the saga failed: its effects must be undone
  std::vector<std::int64_t> exchanges;
  std::vector<ExchangeFault> faults;
};
struct ProbeResult {
  std::optional<int> status;  // none: no answer
  Json body;
  std::string error;
};

struct Report {
  unsigned inputs = kExchanges;  // kProbes added by judge_probes(): what decides which rules were judged
  std::size_t exchanges = 0;
  std::size_t matched = 0;    // exchanges the description names (client, forward, compensation)
  std::size_t refused = 0;    // client requests refused before any step (a 4xx without an outcome)
  std::size_t sagas = 0, completed = 0, failed = 0, unknown = 0;
  std::size_t probed = 0;     // effects read back by judge_probes()
  std::vector<Uncorrelated> uncorrelated;
  std::vector<std::string> warnings;
  std::vector<ProbeRequest> probes;  // what to read back, for --probe
  std::vector<Violation> violations;
  std::vector<std::vector<std::int64_t>> saga_seqs;  // each saga's exchanges (seq numbers), client requests too
};

Report check_recording(const Description& d, const std::vector<Recorded>& exchanges);

// The exchanges a description names as a step's forward call or compensation, in recording
// order, each with its attempt (1 the first of that step and kind, 2 the next, ...): the fault
// points of `sagactl explore`.
struct StepExchange {
  std::size_t index = 0;  // into the recording
  std::size_t step = 0;
  bool compensation = false;
  int attempt = 1;
};
std::vector<StepExchange> step_exchanges(const Description& d, const std::vector<Recorded>& exchanges);
// A route as a proxy rule's path glob: "/bookings/*/cancel" for "/bookings/{id}/cancel".
std::string route_glob(const Route& r);
// Judges the probes' answers (results[i] answers rep.probes[i]) into rep.
void judge_probes(const Description& d, Report& rep, const std::vector<ProbeResult>& results);
// Keeps only the violations of these rules (canonical names, rules.hpp).
void keep_rules(Report& rep, const std::set<std::string>& rules);

Json to_json(const Report& r);

}  // namespace sagalab::check
