// The four services: the real service logic over an in-memory store, their
// fault rules (random or scripted), crashes and restarts.
#include "fault_kinds.hpp"
#include "world.hpp"

namespace sagalab::sim_world {

void Sim::setup_nodes() {
  auto catalog = default_catalog();
  auto stock = stock_of(cfg_);
  res_.stock = stock;
  nodes_[kCatalogo].logic = make_catalogo(catalog);
  nodes_[kCompras].logic = make_compras();
  nodes_[kPagos].logic = make_pagos();
  nodes_[kInventario].logic = make_inventario(catalog, stock);
  std::uint64_t k = 10;
  // The seeds of the fault matchers follow the old (alphabetical) node order.
  for (int n : {kCatalogo, kCompras, kInventario, kPagos}) {
    auto& node = nodes_[n];
    node.logic->ensure_initialised(node.store);
    for (const auto& e : node.logic->endpoints()) node.endpoints.push_back(e.name);
    node.faults = std::make_unique<FaultSet>(cfg_.seed * 1000 + k++);
    if (cfg_.scripted) continue;
    const std::int64_t hang = 3 * engine_.definition().steps[0].retry.timeout_ms;
    std::vector<FaultRule> rules;
    for (const auto& kind : fault_kinds()) {
      for (auto& r : kind.rules(mix_.*kind.rate, hang)) rules.push_back(std::move(r));
    }
    node.faults->add(std::move(rules));
  }
  for (const auto& f : cfg_.script) {
    FaultRule r = f.rule;
    r.saga_id = saga_id(f.saga, 1);
    r.times = 1;
    r.probability = 1.0;
    if (f.service == "orquestador") {
      orch_faults_.add({r});
    } else if (int n = node_of(f.service); n >= 0) {
      nodes_[n].faults->add({r});
    }
  }
}

Reply Sim::error_reply(const FiredFault& f) {
  Reply r;
  r.status = f.status;
  r.error = f.message;
  return r;
}

void Sim::receive_request(int call_id, int n, int inc, int attempt, std::uint32_t slot) {
  auto& node = nodes_[n];
  const Request& req = requests_[slot].req;
  if (!node.up || node.inc != inc) {
    // The connection died with the process: to the caller, a request lost without effect.
    record_drop(n, req, attempt, FaultAction::Error);
    release_request(slot);
    return;
  }
  auto fired = node.faults->empty() || (healed_ && !cfg_.scripted)
                   ? std::nullopt
                   : node.faults->match({req.endpoint, req.saga_id, attempt, now_});
  if (!fired) {
    auto reply = process(node, slot);
    send_response(call_id, std::move(reply), n, slot, attempt);
    release_request(slot);
    return;
  }
  auto action = fired->action;
  res_.faults_by_kind[fault_names_[static_cast<std::size_t>(action)]]++;
  record_fired(n, *fired);
  switch (action) {
    case FaultAction::Error:
      send_response(call_id, error_reply(*fired), n, slot, attempt);
      break;
    case FaultAction::Latency:
    case FaultAction::Hang:
      at(now_ + fired->delay_ms, Ev::Held,
         {.call = call_id, .node = n, .incarnation = inc, .attempt = attempt, .slot = slot});
      return;  // the held copy keeps the request
    case FaultAction::CommitThenError:
      process(node, slot);
      send_response(call_id, error_reply(*fired), n, slot, attempt);
      break;
    case FaultAction::CommitThenDrop:
      process(node, slot);
      break;
    case FaultAction::CrashBefore:
      crash_service(n);
      break;
    case FaultAction::CrashAfter:
      process(node, slot);
      crash_service(n);
      break;
  }
  release_request(slot);
}

Reply Sim::process(Node& node, std::uint32_t slot) {
  Request& r = requests_[slot].req;
  r.now_ms = now_;
  if (cfg_.rewrite_request) cfg_.rewrite_request(node.logic->name(), r);
  return node.logic->handle(node.store, r);
}

void Sim::crash_service(int n) {
  auto& node = nodes_[n];
  node.up = false;
  ++node.inc;
  outage_at_ = now_;
  at(now_ + cfg_.restart_delay_ms, Ev::NodeUp, {.node = n});
}

void Sim::heal() {
  healed_ = true;
  for (auto& n : nodes_) n.faults->clear();
  orch_faults_.clear();
}

Sim::Effects Sim::take_effects(const std::string& id) {
  Effects e;
  for (int n : {kCompras, kPagos, kInventario}) {
    nodes_[n].store.extract_saga(id, [&](Record&& rec) {
      if (auto* c = std::get_if<Compra>(&rec)) e.cs.push_back(std::move(*c));
      if (auto* p = std::get_if<Pago>(&rec)) e.ps.push_back(std::move(*p));
      if (auto* r = std::get_if<Reserva>(&rec)) e.rs.push_back(std::move(*r));
    });
  }
  return e;
}

}  // namespace sagalab::sim_world
