// The JSON edge of the core: every place where a typed value of the core is
// read from or written to JSON (HTTP bodies, the saga log, the SQLite store's
// documents, /admin/state, scenario and --json output). Parsers check their
// input once, here, and throw ClientError(400) or std::invalid_argument naming
// the field; past them the core works on values that are already valid.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sagalab/domain.hpp"
#include "sagalab/faults.hpp"
#include "sagalab/records.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/store.hpp"

namespace sagalab {

using Json = nlohmann::json;

// ---- products and initial data (std::invalid_argument naming the field) ----
Json to_json(const Product& p);
std::vector<Product> parse_catalog(const Json& j);
std::map<std::string, std::int64_t> parse_stock(const Json& j);
// {"catalog": [...], "stock": {...}}; other keys and bad data: ClientError(400).
InitialData parse_initial_data(const Json& j);

// ---- records, as /admin/state shows them and the SQLite store keeps them ----
Json to_json(const Compra& r);
Json to_json(const Pago& r);
Json to_json(const Reserva& r);
Json to_json(const EffectRecord& r);
Json to_json(const Receipt& r);  // the body of a mutating call's answer
Json record_to_json(Table t, const Record& r);
Record record_from_json(Table t, const Json& j);  // throws std::invalid_argument

// ---- service requests and answers ------------------------------------------
// Reads an HTTP request of `service`'s endpoint into a typed request; throws
// ClientError(400/413) naming what is wrong.
Request parse_request(const std::string& service, const Endpoint& ep, const std::string& path_param,
                      const Json& body, const std::string& idempotency_key, const std::string& saga_header);
// The JSON body a request is sent with (the orchestrator's client side).
Json to_json(const RequestBody& body, const std::string& saga_id);
// The JSON body of an answer.
Json reply_to_json(const std::string& service, const std::string& endpoint, const Reply& r);
// Reads an answer's body as the orchestrator sees it (tolerant: what is
// missing stays empty, and interpret_answer decides what that means).
Reply reply_from_json(int status, const Json& body);
Json state_to_json(const std::string& service, const ServiceData& d);

// Checks of single fields of a JSON object; each throws ClientError(400) naming the field.
namespace input {
const Json& object(const Json& body);
std::string string_field(const Json& body, const std::string& field, bool required, std::size_t max_len = 200);
std::int64_t int_field(const Json& body, const std::string& field, std::int64_t dflt, std::int64_t lo,
                       std::int64_t hi);
double number_field(const Json& body, const std::string& field, double dflt, double lo, double hi, bool required);
}  // namespace input

// ---- the saga: context, events (the saga log), snapshots --------------------
Json to_json(const SagaContext& c);
SagaContext context_from_json(const Json& j);  // throws std::invalid_argument
Json to_json(const StepOutput& o);
Json to_json(const Event& e);
Event event_from_json(const Json& j);  // throws std::invalid_argument
Json to_json(const SagaState& s, const SagaDefinition& def);
// The text of to_json(e).dump() and to_json(s, def).dump(), byte for byte,
// written without building the tree: the saga log stores one per event and
// one per change of a saga's state (a unit test holds the two equal).
std::string event_text(const Event& e);
std::string snapshot_text(const SagaState& s, const SagaDefinition& def);

// ---- fault rules -------------------------------------------------------------
// Parses and checks one rule; throws ClientError(400) naming the field.
// `endpoints` lists the endpoint names this target has.
FaultRule parse_fault_rule(const Json& j, const std::vector<std::string>& endpoints);
// One rule or a list of them.
std::vector<FaultRule> parse_fault_rules(const Json& j, const std::vector<std::string>& endpoints);
Json to_json(const FaultRule& r);
Json to_json(const FiredFault& f);
FiredFault fired_from_json(const Json& j);  // tolerant: missing fields stay default
Json rules_json(const FaultSet& set);
Json fired_json(const FaultSet& set);

}  // namespace sagalab
