// Messages in flight: each request and reply waits in a pool slot while the
// queue carries its number; the network delays, loses and doubles them.
#include "world.hpp"

namespace sagalab::sim_world {

std::uint32_t Sim::hold_request(Request req) {
  std::uint32_t i;
  if (!free_requests_.empty()) {
    i = free_requests_.back();
    free_requests_.pop_back();
    requests_[i].req = std::move(req);
  } else {
    i = static_cast<std::uint32_t>(requests_.size());
    requests_.push_back({std::move(req), 0});
  }
  requests_[i].refs = 0;
  return i;
}

std::uint32_t Sim::hold_reply(Reply&& r) {
  if (!free_replies_.empty()) {
    auto i = free_replies_.back();
    free_replies_.pop_back();
    replies_[i] = std::move(r);
    return i;
  }
  replies_.push_back(std::move(r));
  return static_cast<std::uint32_t>(replies_.size() - 1);
}

// A lost or doubled message, recorded as the fault rule that has the same
// effect on the service, so that shrinking and scenarios can replay it: a
// lost request is an error without effect, a lost answer is commit-then-drop,
// a request delivered twice is commit-then-error (the orchestrator's retry
// then delivers it again, with the same key).
void Sim::record_drop(int node, const Request& req, int attempt, FaultAction action, const char* name) {
  FiredFault f;
  f.action = action;
  f.endpoint = req.endpoint;
  f.saga_id = req.saga_id;
  f.attempt = attempt;
  f.at_ms = now_;
  f.name = name;
  if (action == FaultAction::Error || action == FaultAction::CommitThenError) f.status = 503;
  note_fault(req.saga_id, node_names_[static_cast<std::size_t>(node)], std::move(f));
}

void Sim::send_request(int call_id, int node, int attempt, Request req) {
  if (network_faults() && chance(mix_.drop)) {
    res_.faults_by_kind[kDrop]++;
    record_drop(node, req, attempt, FaultAction::Error);
    return;
  }
  int copies = network_faults() && chance(mix_.dup) ? 2 : 1;
  if (copies == 2) {
    res_.faults_by_kind[kDuplicate]++;
    record_drop(node, req, attempt, FaultAction::CommitThenError, "network-duplicate");
  }
  auto slot = hold_request(std::move(req));
  for (int i = 0; i < copies; ++i) {
    requests_[slot].refs++;
    at(now_ + delay() + i, Ev::Receive,
       {.call = call_id, .node = node, .incarnation = nodes_[node].inc, .attempt = attempt, .slot = slot});
  }
}

void Sim::send_response(int call_id, Reply&& a, int node, std::uint32_t req, int attempt) {
  if (network_faults() && chance(mix_.drop)) {
    res_.faults_by_kind[kDrop]++;
    if (a.ok()) record_drop(node, requests_[req].req, attempt, FaultAction::CommitThenDrop);
    return;
  }
  at(now_ + delay(), Ev::Response, {.call = call_id, .slot = hold_reply(std::move(a))});
}

}  // namespace sagalab::sim_world
