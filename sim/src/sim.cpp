// The simulation driver (see sim.hpp). Everything runs from one event queue
// ordered by (virtual time, sequence), so a seed replays byte for byte.
#include "sagalab/sim.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <set>

#include "sagalab/domain.hpp"
#include "sagalab/purchase.hpp"

namespace sagalab {

SagaDefinition simulation_definition(const std::string& planted_defect) {
  auto def = SagaDefinition::default_purchase();
  for (auto& s : def.steps) s.retry = RetryPolicy{3, 80, 5, 200};
  def.compensation = RetryPolicy{0, 80, 5, 400};
  def.stuck_after = 8;
  def.planted_defect = planted_defect;
  return def;
}

std::string planted_defects_help() {
  return "skip-compensation (the engine forgets to release a reservation), non-idempotent-reservation "
         "(a retried reservation reserves again), no-log-before-call (a saga's first call goes out before "
         "its start is logged)";
}

namespace {

const std::vector<std::string> kServices = {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"};

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string saga_id(int idx, int attempt) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "sim-%06d-%d", idx, attempt);
  return buf;
}

class Sim {
 public:
  explicit Sim(const SimConfig& cfg)
      : cfg_(cfg),
        engine_(simulation_definition(cfg.planted_defect)),
        net_rng_(cfg.seed * 0x9E37ULL + 1),
        crash_rng_(cfg.seed * 0x85EBULL + 2),
        work_rng_(cfg.seed * 0xC2B2ULL + 3),
        orch_faults_(cfg.seed + 4) {}

  SimResult run() {
    setup_nodes();
    plan_workload();
    std::int64_t last_arrival = 0;
    if (cfg_.scripted) {
      std::set<int> named;
      for (const auto& f : cfg_.script) named.insert(f.saga);
      sequence_.assign(named.begin(), named.end());
      if (!sequence_.empty()) at(1, [this] { start_next_in_sequence(); });
      heal_at_ = 1'000'000'000;  // scripted faults fire once each; nothing to heal
    } else {
      for (int i = 0; i < cfg_.sagas; ++i) {
        last_arrival += 1 + work_rng_.uniform(0, 2 * cfg_.arrival_gap_ms);
        at(last_arrival, [this, i] { start_saga(i); });
      }
      heal_at_ = last_arrival + 1000;
      at(heal_at_, [this] { heal(); });
    }
    const std::int64_t deadline = heal_at_ + cfg_.liveness_bound_ms;
    while (!queue_.empty()) {
      // top() is const: move the item out before popping, rather than copy its closure.
      Item item = std::move(const_cast<Item&>(queue_.top()));
      queue_.pop();
      if (item.t > deadline) break;
      now_ = item.t;
      ++res_.events;
      item.f();
    }
    finish();
    return std::move(res_);
  }

 private:
  struct Node {
    std::unique_ptr<ServiceLogic> logic;
    MemoryStore store;
    std::unique_ptr<FaultSet> faults;
    std::vector<std::string> endpoints;
    bool up = true;
    int inc = 0;
  };
  struct Run {
    SagaState state;
    SplitMix64 rng{0};
  };
  struct Call {
    int saga = 0;
    int orch_inc = 0;
    Command cmd;
    SagaState view;
  };
  struct Item {
    std::int64_t t;
    std::uint64_t seq;
    std::function<void()> f;
    bool operator>(const Item& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  void at(std::int64_t t, std::function<void()> f) { queue_.push(Item{t, seq_++, std::move(f)}); }

  void setup_nodes() {
    auto catalog = default_catalog();
    std::map<std::string, std::int64_t> stock;
    // Enough stock that most sagas can complete and the last ones compete for it.
    for (const auto& [k, v] : default_stock()) stock[k] = std::max<std::int64_t>(v, cfg_.sagas / 3);
    res_.stock = stock;
    nodes_["ms-catalogo"].logic = make_catalogo(catalog);
    nodes_["ms-compras"].logic = make_compras();
    nodes_["ms-pagos"].logic = make_pagos();
    nodes_["ms-inventario"].logic =
        make_inventario(catalog, stock, cfg_.planted_defect == "non-idempotent-reservation");
    std::uint64_t k = 10;
    for (auto& [name, n] : nodes_) {
      n.logic->ensure_initialised(n.store);
      for (const auto& e : n.logic->endpoints()) n.endpoints.push_back(e.name);
      n.faults = std::make_unique<FaultSet>(cfg_.seed * 1000 + k++);
      if (cfg_.scripted) continue;
      double p = cfg_.fault_rate / 5.0;
      std::int64_t hang = 3 * engine_.definition().steps[0].retry.timeout_ms;
      Json rules = Json::array({{{"action", "error"}, {"status", 503}, {"probability", p}},
                                {{"action", "latency"}, {"latency_ms", 5}, {"jitter_ms", 40}, {"probability", p}},
                                {{"action", "hang"}, {"duration_ms", hang}, {"probability", p}},
                                {{"action", "commit-then-error"}, {"probability", p}},
                                {{"action", "commit-then-drop"}, {"probability", p}},
                                {{"action", "crash-before"}, {"probability", cfg_.crash_rate / 2}},
                                {{"action", "crash-after"}, {"probability", cfg_.crash_rate / 2}}});
      n.faults->add(rules, n.endpoints);
    }
    std::vector<std::string> log_points;
    for (const auto& s : engine_.definition().steps) {
      log_points.push_back("log:" + s.name + ":before");
      log_points.push_back("log:" + s.name + ":after");
    }
    for (const auto& f : cfg_.script) {
      Json r = f.rule;
      r["saga_id"] = saga_id(f.saga, 1);
      r["times"] = 1;
      if (f.service == "orquestador") {
        orch_faults_.add(r, log_points);
      } else {
        nodes_.at(f.service).faults->add(r, nodes_.at(f.service).endpoints);
      }
    }
  }

  // Scripted mode: the next saga starts when the previous one has ended.
  void start_next_in_sequence() {
    if (next_in_sequence_ >= sequence_.size()) return;
    current_in_sequence_ = sequence_[next_in_sequence_++];
    start_saga(current_in_sequence_);
  }

  void plan_workload() {
    auto catalog = default_catalog();
    for (int i = 0; i < cfg_.sagas; ++i) {
      SagaPlan p;
      p.user = "user" + std::to_string(work_rng_.uniform(1, 50));
      p.product = catalog[static_cast<std::size_t>(work_rng_.uniform(0, static_cast<std::int64_t>(catalog.size()) - 1))].nombre;
      p.cantidad = static_cast<int>(work_rng_.uniform(1, 3));
      res_.workload.push_back(p);
    }
  }

  bool chance(double p) { return p > 0 && net_rng_.unit() < p; }
  std::int64_t delay() { return net_rng_.uniform(1, std::max<std::int64_t>(1, cfg_.net_delay_ms)); }
  bool network_faults() const { return !cfg_.scripted && !healed_; }

  // ---- orchestrator ------------------------------------------------------

  void start_saga(int idx) {
    if (!orch_up_) {
      at(now_ + 50, [this, idx] { start_saga(idx); });  // the client retries
      return;
    }
    int attempt = ++tries_[idx];
    const auto& plan = res_.workload[static_cast<std::size_t>(idx)];
    Run run;
    run.rng = SplitMix64(cfg_.seed ^ (static_cast<std::uint64_t>(idx) * 0x100000001B3ULL));
    runs_[idx] = std::move(run);
    Event e;
    e.type = Event::Type::Start;
    e.now_ms = now_;
    e.saga_id = saga_id(idx, attempt);
    e.ctx = {{"usuario_id", plan.user}, {"producto_solicitado", plan.product}, {"cantidad", plan.cantidad},
             {"seleccion", 0}};
    int inc = orch_inc_;
    deliver(idx, e);
    if (orch_inc_ != inc && !log_.count(idx)) {
      client_retrying_.insert(idx);
      at(now_ + 50, [this, idx] {
        client_retrying_.erase(idx);
        start_saga(idx);
      });  // never acknowledged: the client retries
    }
  }

  // True when the orchestrator crashes at this log boundary.
  bool crash_point(const Run& run, const std::string& id, const Event& e, const char* when) {
    const auto& def = engine_.definition();
    int step = log_step_of(e, run.state);
    int attempt = run.state.steps.empty() ? 1 : run.state.steps[static_cast<std::size_t>(step)].attempts;
    std::string point = "log:" + def.steps[static_cast<std::size_t>(step)].name + ":" + when;
    bool crash = false;
    if (cfg_.scripted) {
      crash = orch_faults_.match({point, id, attempt, now_}).has_value();
    } else if (!healed_ && cfg_.crash_rate > 0 && crash_rng_.unit() < cfg_.crash_rate / 2) {
      crash = true;
    }
    if (crash) {
      res_.faults_by_kind["crash-orquestador"]++;
      auto it = id_to_idx_.find(id);
      if (it != id_to_idx_.end() || id.size() > 4) {
        int idx = it != id_to_idx_.end() ? it->second : std::stoi(id.substr(4, 6));
        res_.fired.push_back({idx, "orquestador",
                              {{"action", "crash-before"}, {"endpoint", point}, {"attempts", {attempt}}}});
      }
      crash_orchestrator();
    }
    return crash;
  }

  void deliver(int idx, const Event& e) {
    if (!orch_up_) return;
    auto it = runs_.find(idx);
    if (it == runs_.end()) return;
    Run& run = it->second;
    const std::string id = e.type == Event::Type::Start ? e.saga_id : run.state.id;
    // A crash loses the volatile run anyway, so the event is applied in place:
    // what matters is whether it reached the log.
    if (cfg_.planted_defect == "no-log-before-call" && (e.type == Event::Type::Start || unlogged_.count(idx))) {
      // The bug: a new saga's events are logged late, after the calls they lead to.
      auto early = engine_.apply(run.state, e, run.rng);
      auto& pending = unlogged_[idx];
      pending.push_back(e);
      for (const auto& c : early) execute(idx, c);
      if (run.state.current == 0 && !is_terminal(run.state.estado)) return;  // still looking up the product
      if (crash_point(run, id, e, "before")) return;
      for (const auto& ev : pending) log_append(idx, ev, run.state);
      unlogged_.erase(idx);
      crash_point(run, id, e, "after");
      return;
    }
    if (crash_point(run, id, e, "before")) return;
    auto cmds = engine_.apply(run.state, e, run.rng);
    log_append(idx, e, run.state);
    if (crash_point(runs_.at(idx), id, e, "after")) return;
    for (const auto& c : cmds) execute(idx, c);
  }

  void log_append(int idx, const Event& e, const SagaState& next) {
    auto& log = log_[idx];
    if (e.type == Event::Type::Start) {
      log.clear();
      id_to_idx_[e.saga_id] = idx;
    }
    log.push_back(e);
    if (is_terminal(next.estado)) {
      open_.erase(idx);
      if (cfg_.scripted && idx == current_in_sequence_) at(now_ + 1, [this] { start_next_in_sequence(); });
    } else {
      open_.insert(idx);
    }
  }

  void execute(int idx, const Command& c) {
    switch (c.type) {
      case Command::Type::Finish:
        return;
      case Command::Type::Schedule: {
        int inc = orch_inc_;
        Event e;
        e.type = Event::Type::Timer;
        e.step = c.step;
        e.attempt = c.attempt;
        e.compensation = c.compensation;
        at(std::max(now_, c.at_ms), [this, idx, inc, e]() mutable {
          if (inc != orch_inc_) return;
          e.now_ms = now_;
          deliver(idx, e);
        });
        return;
      }
      case Command::Type::Call: {
        const auto& run = runs_.at(idx);
        auto sc = build_step_call(engine_.definition(), run.state, c);
        int call_id = next_call_++;
        Call& call = calls_[call_id];
        call.saga = idx;
        call.orch_inc = orch_inc_;
        call.cmd = c;
        call.view.id = run.state.id;
        call.view.ctx = run.state.ctx;  // all that reading the answer needs
        Request req;
        req.endpoint = sc.endpoint;
        if (sc.endpoint == "buscar") req.params["nombre"] = percent_decode(sc.path.substr(8));
        if (sc.endpoint == "producto_id") req.params["id"] = percent_decode(sc.path.substr(10));
        req.body = sc.body;
        req.idempotency_key = c.idempotency_key;
        req.saga_id = run.state.id;
        send_request(call_id, sc.service, req);
        at(now_ + c.timeout_ms, [this, call_id] { resolve(call_id, std::nullopt, "timeout"); });
        return;
      }
    }
  }

  void resolve(int call_id, const std::optional<Answer>& a, const std::string& why) {
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;  // answered already (or timed out)
    Call call = std::move(it->second);
    calls_.erase(it);
    if (call.orch_inc != orch_inc_ || !orch_up_) return;
    auto ev = interpret_answer(engine_.definition(), call.view, call.cmd, a, why, now_);
    deliver(call.saga, ev);
  }

  void crash_orchestrator() {
    orch_up_ = false;
    ++orch_inc_;
    runs_.clear();  // memory is lost; the log is not
    unlogged_.clear();
    at(now_ + cfg_.restart_delay_ms, [this] { restart_orchestrator(); });
  }

  void restart_orchestrator() {
    orch_up_ = true;
    std::vector<int> open(open_.begin(), open_.end());
    for (int idx : open) {
      Run run;
      run.rng = SplitMix64(cfg_.seed ^ (static_cast<std::uint64_t>(idx) * 0x100000001B3ULL) ^ 0xABCDEF);
      run.state = engine_.replay(log_[idx], run.rng);
      runs_[idx] = std::move(run);
    }
    for (int idx : open) {
      Event e;
      e.type = Event::Type::Recovered;
      e.now_ms = now_;
      deliver(idx, e);
      if (!orch_up_) return;  // crashed again while recovering
    }
    // Scripted mode: a saga lost with the crash (never logged) will not end; move on.
    int cur = current_in_sequence_;
    if (cfg_.scripted && cur >= 0 && !log_.count(cur) && !client_retrying_.count(cur))
      at(now_ + 1, [this] { start_next_in_sequence(); });
  }

  // ---- network and services -----------------------------------------------

  // A lost message, recorded as the fault rule that has the same effect on the
  // caller, so that shrinking and scenarios can replay it: a lost request is
  // an error without effect, a lost answer is commit-then-drop.
  void record_drop(int call_id, const std::string& svc, const std::string& endpoint, const char* action) {
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;
    Json rule{{"action", action}, {"endpoint", endpoint}, {"attempts", {it->second.cmd.attempt}}};
    if (std::string(action) == "error") rule["status"] = 503;
    res_.fired.push_back({it->second.saga, svc, rule});
  }

  void send_request(int call_id, const std::string& svc, const Request& req) {
    if (network_faults() && chance(cfg_.drop_rate)) {
      res_.faults_by_kind["drop"]++;
      record_drop(call_id, svc, req.endpoint, "error");
      return;
    }
    int copies = network_faults() && chance(cfg_.dup_rate) ? 2 : 1;
    if (copies == 2) res_.faults_by_kind["duplicate"]++;
    for (int i = 0; i < copies; ++i) {
      int inc = nodes_.at(svc).inc;
      at(now_ + delay() + i, [this, call_id, svc, inc, req] { receive_request(call_id, svc, inc, req); });
    }
  }

  void send_response(int call_id, const Answer& a, const std::string& svc, const std::string& endpoint) {
    if (network_faults() && chance(cfg_.drop_rate)) {
      res_.faults_by_kind["drop"]++;
      if (a.status >= 200 && a.status < 300) record_drop(call_id, svc, endpoint, "commit-then-drop");
      return;
    }
    at(now_ + delay(), [this, call_id, a] { resolve(call_id, a, ""); });
  }

  void receive_request(int call_id, const std::string& svc, int inc, Request req) {
    auto& node = nodes_.at(svc);
    if (!node.up || node.inc != inc) return;  // the connection died with the process
    req.now_ms = now_;
    auto call = calls_.find(call_id);
    int attempt = call == calls_.end() ? 0 : call->second.cmd.attempt;
    auto fired = node.faults->empty() || (healed_ && !cfg_.scripted)
                     ? std::nullopt
                     : node.faults->match({req.endpoint, req.saga_id, attempt, now_});
    if (!fired) {
      send_response(call_id, process(node, req), svc, req.endpoint);
      return;
    }
    auto action = fired->action;
    res_.faults_by_kind[to_string(action)]++;
    record_fired(svc, *fired);
    switch (action) {
      case FaultAction::Error:
        send_response(call_id, Answer{fired->status, {{"success", false}, {"error", fired->message}}}, svc,
                      req.endpoint);
        return;
      case FaultAction::Latency:
      case FaultAction::Hang:
        at(now_ + fired->delay_ms, [this, call_id, svc, inc, req] {
          auto& n = nodes_.at(svc);
          if (!n.up || n.inc != inc) return;
          Request r = req;
          r.now_ms = now_;
          send_response(call_id, process(n, r), svc, r.endpoint);
        });
        return;
      case FaultAction::CommitThenError:
        process(node, req);
        send_response(call_id, Answer{fired->status, {{"success", false}, {"error", fired->message}}}, svc,
                      req.endpoint);
        return;
      case FaultAction::CommitThenDrop:
        process(node, req);
        return;
      case FaultAction::CrashBefore:
        crash_service(svc);
        return;
      case FaultAction::CrashAfter:
        process(node, req);
        crash_service(svc);
        return;
    }
  }

  Answer process(Node& node, const Request& req) {
    auto r = node.logic->handle(node.store, req);
    return Answer{r.status, std::move(r.body)};
  }

  void record_fired(const std::string& svc, const FiredFault& f) {
    auto it = id_to_idx_.find(f.saga_id);
    if (it == id_to_idx_.end()) return;
    Json rule{{"action", to_string(f.action)}, {"endpoint", f.endpoint}, {"attempts", {f.attempt}}};
    if (f.action == FaultAction::Error || f.action == FaultAction::CommitThenError) rule["status"] = f.status;
    if (f.action == FaultAction::Latency) rule["latency_ms"] = f.delay_ms;
    if (f.action == FaultAction::Hang) rule["duration_ms"] = f.delay_ms;
    res_.fired.push_back({it->second, svc, rule});
  }

  void crash_service(const std::string& svc) {
    auto& node = nodes_.at(svc);
    node.up = false;
    ++node.inc;
    at(now_ + cfg_.restart_delay_ms, [this, svc] { nodes_.at(svc).up = true; });
  }

  void heal() {
    healed_ = true;
    for (auto& [name, n] : nodes_) n.faults->clear();
    orch_faults_.clear();
  }

  // ---- the verdict ----------------------------------------------------------

  void finish() {
    res_.seed = cfg_.seed;
    res_.sagas = cfg_.sagas;
    res_.virtual_ms = now_;
    res_.live = open_.empty();
    Json sagas = Json::array();
    SplitMix64 rng(0);
    for (const auto& [idx, log] : log_) {
      auto s = engine_.replay(log, rng);
      res_.by_state[to_string(s.estado)]++;
      sagas.push_back(to_json(s, engine_.definition()));
    }
    Json states{{"orquestador", {{"sagas", sagas}}}};
    Json fallos = Json::object();
    for (auto& entry : nodes_) {
      const std::string& name = entry.first;
      Node& n = entry.second;
      n.store.transact([&](Tx& tx) {
        states[name] = n.logic->state(tx);
        return false;
      });
      fallos[name] = n.faults->fired_json();
    }
    states["fallos"] = fallos;
    auto report = check_invariants(states);
    res_.violations = report.violations;
    if (!res_.live) {
      for (int idx : open_) {
        Violation v;
        v.invariant = 1;
        v.saga_id = runs_.count(idx) ? runs_[idx].state.id : saga_id(idx, 1);
        v.message = "saga did not end within the liveness bound after the faults healed";
        res_.violations.push_back(v);
      }
    }
    for (const auto& v : res_.violations) {
      if (v.saga_id.empty() || res_.histories.size() >= 5) continue;
      auto it = id_to_idx_.find(v.saga_id);
      if (it == id_to_idx_.end()) continue;
      Json h = Json::array();
      for (const auto& e : log_[it->second]) h.push_back(to_json(e));
      res_.histories[v.saga_id] = h;
    }
  }

  const SimConfig& cfg_;
  SagaEngine engine_;
  SplitMix64 net_rng_, crash_rng_, work_rng_;
  FaultSet orch_faults_;
  std::int64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::int64_t heal_at_ = 0;
  bool healed_ = false;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue_;
  std::map<std::string, Node> nodes_;
  bool orch_up_ = true;
  int orch_inc_ = 0;
  std::map<int, std::vector<Event>> log_;  // durable: the saga log
  std::set<int> open_;                     // durable: derived from the log
  std::map<std::string, int> id_to_idx_;
  std::map<int, Run> runs_;  // volatile: lost when the orchestrator crashes
  std::map<int, int> tries_;
  std::set<int> client_retrying_;
  std::vector<int> sequence_;  // scripted mode: the sagas to run, in order
  std::size_t next_in_sequence_ = 0;
  int current_in_sequence_ = -1;
  std::map<int, std::vector<Event>> unlogged_;  // planted defect no-log-before-call
  std::map<int, Call> calls_;  // calls not yet answered or timed out
  int next_call_ = 0;
  SimResult res_;
};

}  // namespace

SimResult run_simulation(const SimConfig& cfg) { return Sim(cfg).run(); }

std::optional<std::vector<ScriptedFault>> shrink_failure(const SimConfig& cfg,
                                                        const std::vector<ScriptedFault>& fired, int& runs,
                                                        int max_runs) {
  SimConfig sc = cfg;
  sc.scripted = true;
  auto fails = [&](const std::vector<ScriptedFault>& script) {
    ++runs;
    sc.script = script;
    return !run_simulation(sc).ok();
  };
  runs = 0;
  if (fails({})) return std::vector<ScriptedFault>{};
  std::vector<ScriptedFault> current = fired;
  if (!fails(current)) return std::nullopt;
  std::size_t n = 2;
  while (current.size() >= 2 && runs < max_runs) {
    std::size_t chunk = (current.size() + n - 1) / n;
    bool reduced = false;
    for (std::size_t i = 0; i < current.size() && !reduced && runs < max_runs; i += chunk) {
      std::vector<ScriptedFault> part(current.begin() + static_cast<long>(i),
                                      current.begin() + static_cast<long>(std::min(i + chunk, current.size())));
      if (fails(part)) {
        current = part;
        n = 2;
        reduced = true;
        break;
      }
      std::vector<ScriptedFault> rest(current.begin(), current.begin() + static_cast<long>(i));
      rest.insert(rest.end(), current.begin() + static_cast<long>(std::min(i + chunk, current.size())), current.end());
      if (n > 2 && fails(rest)) {
        current = rest;
        n = std::max<std::size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.size()) break;
      n = std::min(n * 2, current.size());
    }
  }
  return current;
}

Json to_json(const SimResult& r, bool with_details) {
  Json j{{"seed", r.seed},
         {"sagas", r.sagas},
         {"por_estado", r.by_state},
         {"fallos", r.faults_by_kind},
         {"tiempo_virtual_ms", r.virtual_ms},
         {"eventos", r.events},
         {"vivo", r.live},
         {"ok", r.ok()}};
  Json vs = Json::array();
  for (const auto& v : r.violations) vs.push_back(to_json(v));
  j["violaciones"] = vs;
  if (with_details) j["historias"] = r.histories;
  return j;
}

}  // namespace sagalab
