// What each step of the purchase saga sends and how its answer is read: the
// glue between the engine's commands and the services' API, shared by the
// HTTP orchestrator and the simulator.
#pragma once

#include <optional>
#include <string>

#include "sagalab/records.hpp"
#include "sagalab/saga.hpp"

namespace sagalab {

struct StepCall {
  std::string service;   // "ms-compras", ...
  std::string method;    // "GET" / "POST"
  std::string path;
  std::string endpoint;  // the service's endpoint name, as fault rules see it
  RequestBody body;      // monostate for a GET without a query
};

// A service's answer as the orchestrator read it (over HTTP: parsed at the edge).
using Answer = Reply;

StepCall build_step_call(const SagaDefinition& def, const SagaState& s, const Command& c);

// Reads an answer (or its absence: transport_error) into a Result event. Of
// the state it reads only the context's cantidad, seleccion and monto_cliente.
Event interpret_answer(const SagaDefinition& def, const SagaState& s, const Command& c,
                       const std::optional<Answer>& answer, const std::string& transport_error,
                       std::int64_t now_ms);

// The endpoints a program's fault rules may name: a service's routes ("transaccion",
// "compensacion", ...), or the orchestrator's "compra" and "log:<step>:before|after" of def.
// Empty for a program that is not one of the five.
std::vector<std::string> fault_endpoints(const std::string& program,
                                         const SagaDefinition& def = SagaDefinition::default_purchase());

std::string percent_encode(const std::string& s);
std::string percent_decode(const std::string& s);

}  // namespace sagalab
