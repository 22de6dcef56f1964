// The simulation driver (see sim.hpp). Everything runs from one event queue
// ordered by (virtual time, sequence), so a seed replays byte for byte.
#include "sagalab/sim.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <deque>
#include <queue>
#include <set>
#include <unordered_map>

#include "sagalab/contract.hpp"
#include "sagalab/domain.hpp"
#include "sagalab/history.hpp"
#include "sagalab/orchestrator.hpp"
#include "sagalab/purchase.hpp"
#include "sagalab/saga_log.hpp"
#include "saga_ids.hpp"

namespace sagalab {

using sim_ids::parse_saga_id;
using sim_ids::saga_id;

namespace {

enum NodeId { kCatalogo, kCompras, kPagos, kInventario, kNodes };
const char* const kNodeNames[kNodes] = {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"};
int node_of(const std::string& svc) {
  for (int i = 0; i < kNodes; ++i) {
    if (svc == kNodeNames[i]) return i;
  }
  return -1;
}

// A settled saga waits this long before it is checked and forgotten: longer
// than any message can stay in flight (delay + a hang + a duplicate), so that
// no late request can still reach its records.
constexpr std::int64_t kRetireAfterMs = 2000;
// A restarted orchestrator stays up at least FaultMix::min_uptime_ms: a crash
// chance per log write would otherwise crash it again while it recovers a
// large backlog, and a run would measure a crash loop rather than the saga
// protocol. Swarm mixes shorten it now and then, to crash right after recovery.

class Sim {
 public:
  explicit Sim(const SimConfig& cfg)
      : cfg_(cfg),
        mix_(cfg.mix()),
        engine_(simulation_definition()),
        net_rng_(cfg.seed * 0x9E37ULL + 1),
        crash_rng_(cfg.seed * 0x85EBULL + 2),
        work_rng_(cfg.seed * 0xC2B2ULL + 3),
        orch_faults_(cfg.seed + 4),
        tries_(static_cast<std::size_t>(cfg.sagas), 0),
        logged_try_(static_cast<std::size_t>(cfg.sagas), 0) {}
  ~Sim() { teardown(); }
  Sim(const Sim&) = delete;
  Sim& operator=(const Sim&) = delete;

  SimResult run() {
    if (mix_.sqlite_log) sqlite_log_ = std::make_unique<SqliteSagaLog>(":memory:", SyncMode::Normal);
    setup_nodes();
    boot_orchestrator();
    if (cfg_.scripted) {
      std::set<int> named(cfg_.script_sagas.begin(), cfg_.script_sagas.end());
      for (const auto& f : cfg_.script) named.insert(f.saga);
      sequence_.assign(named.begin(), named.end());
      if (!sequence_.empty()) at(1, Ev::NextInSequence);
      deadline_ = 1'000'000'000 + cfg_.liveness_bound_ms;  // scripted faults fire once each; nothing to heal
    } else if (cfg_.sagas > 0) {
      schedule_arrival(0, 0);
      quiet_bound_ = quiet_bound();
      at(liveness_period(), Ev::LivenessCheck);
    }
    Item item;
    while (next_item(item)) {
      if (item.t > deadline_) break;
      SAGALAB_ASSERT(item.t >= now_, "virtual time never goes back");
      now_ = item.t;
      ++res_.events;
      dispatch(item);
    }
    finish();
    teardown();
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
  // What the durable saga log and the harness keep of a saga until it is retired.
  struct Slot {
    std::vector<Event> log;
    bool terminal = false;
    SagaSummary summary;
    std::vector<ServiceFault> hits;  // faults that hit it
    // Its calls refused with a 4xx that no fault made (stock that other sagas
    // held): a script replays each as an error fault, for its sagas run alone.
    std::vector<ServiceFault> refusals;
    std::vector<CallRecord> calls;   // the calls it issued, for the history checker
    std::vector<std::uint8_t> call_tries;  // which try of the saga issued each
    // What a client waiting on its purchase (POST /compra's wait) was told of a finished saga.
    std::string waited_id, waited_estado;
    std::int64_t disturbed_at = 0;  // its start, or the last fault that hit it
  };
  // A call of the orchestrator's, until its answer or its timeout.
  struct Call {
    int saga = 0;
    int orch_inc = 0;
    std::string service, endpoint;
    int attempt = 1;
    std::function<void(CallOutcome)> done;
  };
  // What happens at a point of virtual time. Items are plain values (no
  // closures): the queue moves nothing but a few integers, and the messages
  // they refer to live in slots.
  enum class Ev : std::uint8_t {
    Arrival,         // saga
    StartSaga,       // saga (a client's retry while the orchestrator is down)
    ClientRetry,     // saga (never acknowledged)
    ClientRepeat,    // saga (acknowledged; the client sends the same request again)
    Task,            // slot: a continuation of the orchestrator's (a strand's post, a timer)
    CallTimeout,     // call
    Receive,         // call, node, incarnation (the node's), attempt, slot: the request
    Held,            // the same, after a latency or hang fault
    Response,        // call, slot: the reply
    RestartOrchestrator,
    NodeUp,          // node
    Heal,
    Retire,          // saga
    LogWrite,        // slot: a saga-log write that becomes durable now
    NextInSequence,
    ScriptDeadline,  // saga (scripted mode: its liveness bound)
    LivenessCheck,   // every open saga left alone by faults for the liveness bound must have ended
    Stray,           // saga, node, slot: the request (no caller waits for it)
  };
  // What an event names; each kind reads the fields its comment above lists.
  struct Args {
    int saga = 0;
    int call = 0;
    int node = 0;
    int incarnation = 0;
    int attempt = 0;
    std::uint32_t slot = 0;  // into the pool of tasks, requests, replies or log writes the kind names
  };
  struct Item {
    std::int64_t t = 0;
    std::uint64_t seq = 0;
    Ev kind = Ev::Heal;
    Args on;
    bool operator>(const Item& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  // Items for now (most of them: the orchestrator's continuations) wait in a
  // FIFO, the rest in a heap; taking the smaller of the two fronts keeps the
  // one order (time, then sequence).
  void at(std::int64_t t, Ev kind) { at(t, kind, Args{}); }
  void at(std::int64_t t, Ev kind, Args on) {
    Item item{t, seq_++, kind, on};
    if (t == now_) {
      ready_.push_back(item);
    } else {
      queue_.push(item);
    }
  }
  bool next_item(Item& out) {
    if (ready_.empty() && queue_.empty()) return false;
    if (!ready_.empty() && (queue_.empty() || queue_.top() > ready_.front())) {
      out = ready_.front();
      ready_.pop_front();
    } else {
      out = queue_.top();
      queue_.pop();
    }
    return true;
  }

  void dispatch(const Item& it) {
    const Args& on = it.on;
    switch (it.kind) {
      case Ev::Arrival: {
        start_saga(on.saga);
        if (on.saga + 1 < cfg_.sagas) {
          schedule_arrival(on.saga + 1, now_);
        } else {
          std::int64_t heal_at = now_ + 1000;
          deadline_ = heal_at + cfg_.liveness_bound_ms;
          at(heal_at, Ev::Heal);
        }
        return;
      }
      case Ev::StartSaga: start_saga(on.saga); return;
      case Ev::ClientRepeat: repeat_request(on.saga); return;
      case Ev::ClientRetry:
        client_retrying_.erase(on.saga);
        start_saga(on.saga);
        return;
      case Ev::Task: run_task(on.slot); return;
      case Ev::CallTimeout: resolve(on.call, std::nullopt, "timeout"); return;
      case Ev::Receive: receive_request(on.call, on.node, on.incarnation, on.attempt, on.slot); return;
      case Ev::Held: {
        auto& nd = nodes_[on.node];
        if (nd.up && nd.inc == on.incarnation) {
          auto reply = process(nd, on.slot);
          send_response(on.call, std::move(reply), on.node, on.slot, on.attempt);
        }
        release_request(on.slot);
        return;
      }
      case Ev::Response: {
        std::optional<Reply> r = std::move(replies_[on.slot]);
        free_replies_.push_back(on.slot);
        resolve(on.call, std::move(r), "");
        return;
      }
      case Ev::RestartOrchestrator: restart_orchestrator(); return;
      case Ev::NodeUp:
        nodes_[on.node].up = true;
        outage_at_ = now_;
        return;
      case Ev::Heal: heal(); return;
      case Ev::Retire: retire(on.saga); return;
      case Ev::LogWrite: finish_write(on.slot); return;
      case Ev::NextInSequence: start_next_in_sequence(); return;
      case Ev::ScriptDeadline: script_deadline(on.saga); return;
      case Ev::LivenessCheck: check_liveness(); return;
      case Ev::Stray: {
        auto& nd = nodes_[on.node];
        if (nd.up) process(nd, on.slot);
        release_request(on.slot);
        return;
      }
    }
  }

  // Requests in flight: shared by a duplicate and a held copy, freed by the last.
  struct RequestSlot {
    Request req;
    int refs = 0;
  };
  std::uint32_t hold_request(Request req) {
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
  void release_request(std::uint32_t i) {
    if (--requests_[i].refs == 0) free_requests_.push_back(i);
  }
  std::uint32_t hold_reply(Reply&& r) {
    if (!free_replies_.empty()) {
      auto i = free_replies_.back();
      free_replies_.pop_back();
      replies_[i] = std::move(r);
      return i;
    }
    replies_.push_back(std::move(r));
    return static_cast<std::uint32_t>(replies_.size() - 1);
  }

  // Arrivals are generated one at a time, so the queue never holds the whole workload.
  void schedule_arrival(int i, std::int64_t prev) {
    std::int64_t t = prev + 1 + work_rng_.uniform(0, 2 * mix_.arrival_gap_ms);
    at(t, Ev::Arrival, {.saga = i});
  }

  void setup_nodes() {
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
      std::int64_t hang = 3 * engine_.definition().steps[0].retry.timeout_ms;
      std::vector<FaultRule> rules;
      auto add = [&](FaultAction a, double p, int status = 503) {
        FaultRule r;
        r.action = a;
        r.probability = p;
        if (a == FaultAction::Error) r.status = status;
        if (a == FaultAction::Latency) {
          r.latency_ms = 5;
          r.jitter_ms = 40;
        }
        if (a == FaultAction::Hang) r.duration_ms = hang;
        rules.push_back(r);
      };
      add(FaultAction::Error, mix_.error);
      if (mix_.refusal > 0) add(FaultAction::Error, mix_.refusal, 409);  // a refusal: nothing done
      add(FaultAction::Latency, mix_.latency);
      add(FaultAction::Hang, mix_.hang);
      add(FaultAction::CommitThenError, mix_.commit_then_error);
      add(FaultAction::CommitThenDrop, mix_.commit_then_drop);
      add(FaultAction::CrashBefore, mix_.crash / 2);
      add(FaultAction::CrashAfter, mix_.crash / 2);
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

  // Scripted mode: the next saga starts when the previous one has ended.
  void start_next_in_sequence() {
    if (next_in_sequence_ >= sequence_.size()) return;
    current_in_sequence_ = sequence_[next_in_sequence_++];
    start_saga(current_in_sequence_);
    // Nothing heals in a script (each fault fires once): a saga not ended
    // within the liveness bound of its start is stuck, and the run ends there.
    at(now_ + cfg_.liveness_bound_ms, Ev::ScriptDeadline, {.saga = current_in_sequence_});
  }
  void script_deadline(int idx) {
    if (idx != current_in_sequence_) return;
    auto it = slots_.find(idx);
    if (it != slots_.end() && it->second.terminal) return;
    deadline_ = now_;  // finish() reports it as not ended within the bound
  }

  // Liveness, decided as early as it can be: a saga that no fault has hit, and
  // that no crash has touched, for long enough to run every step and every
  // compensation once more (each its timeout, its longest backoff, the network
  // and the log both ways: four times over) has had every chance to end. One
  // that has not is stuck, and the run ends there: its retries would otherwise
  // run on until the faults heal and the liveness bound has passed after that.
  std::int64_t quiet_bound() const {
    const auto& def = engine_.definition();
    const std::int64_t trip = 2 * (mix_.net_delay_ms + mix_.log_delay_ms);
    std::int64_t all = cfg_.restart_delay_ms + mix_.min_uptime_ms;
    for (const auto& st : def.steps) {
      all += st.retry.timeout_ms + st.retry.backoff_max_ms + trip;
      if (st.kind == StepKind::Compensatable)
        all += def.compensation.timeout_ms + def.compensation.backoff_max_ms + trip;
    }
    return std::min(cfg_.liveness_bound_ms, 4 * all);
  }
  std::int64_t liveness_period() const { return std::max<std::int64_t>(1, quiet_bound_ / 4); }
  void check_liveness() {
    for (const auto& [idx, slot] : slots_) {
      if (slot.terminal || slot.log.empty()) continue;
      if (now_ - std::max(slot.disturbed_at, outage_at_) > quiet_bound_) stuck_.push_back(idx);
    }
    if (!stuck_.empty()) {
      std::sort(stuck_.begin(), stuck_.end());
      deadline_ = now_;
      return;
    }
    if (!queue_.empty() || !ready_.empty()) at(now_ + liveness_period(), Ev::LivenessCheck);
  }

  bool chance(double p) { return p > 0 && net_rng_.unit() < p; }
  std::int64_t delay() { return net_rng_.uniform(1, std::max<std::int64_t>(1, mix_.net_delay_ms)); }
  bool network_faults() const { return !cfg_.scripted && !healed_; }

  // ---- the orchestrator ----------------------------------------------------
  //
  // The real Orchestrator class, over the simulator's world: its strands and
  // timers are tasks in the event queue, its clock is virtual time, its
  // transport is the simulated network, its saga log the slots below (and
  // the real SQLite log, in part of the runs), and a crash destroys the
  // object: a new one is built over the same log after the restart delay.

  struct OrchestratorExit : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  struct SimStrand final : Strand {
    SimStrand(Sim& s, int i) : sim(s), inc(i) {}
    // Posted from outside every strand (a network or client event of the
    // simulator's), the work runs at once: nothing else of the orchestrator's
    // runs then, and virtual time does not move. From a strand's work, it waits
    // in the queue for its turn.
    void post(std::function<void()> f) override {
      if (sim.running_ || inc != sim.orch_inc_ || !sim.orch_up_) return (void)sim.add_task(sim.now_, this, std::move(f));
      sim.run_inline(this, f);
    }
    // The log's completion comes at once, inside this strand's task: it runs there.
    void dispatch(std::function<void()> f) override {
      if (sim.running_ == this) return f();
      post(std::move(f));
    }
    Sim& sim;
    int inc;  // the orchestrator that made it: its tasks die with it
  };
  struct SimTimer final : Timer {
    SimTimer(Sim& s, std::uint32_t t, std::uint32_t g) : sim(s), task(t), gen(g) {}
    ~SimTimer() override { cancel(); }
    void cancel() override { sim.cancel_task(task, gen); }
    Sim& sim;
    std::uint32_t task, gen;
  };
  struct SimRuntime final : Runtime {
    explicit SimRuntime(Sim& s) : sim(s) {}
    std::int64_t now_ms() override { return sim.now_; }
    double monotonic_s() override { return static_cast<double>(sim.now_) / 1000.0; }
    std::unique_ptr<Strand> make_strand() override { return std::make_unique<SimStrand>(sim, sim.orch_inc_); }
    std::unique_ptr<Timer> start_timer(Strand& on, std::int64_t delay_ms, std::function<void()> fire) override {
      auto [task, gen] = sim.add_task(sim.now_ + delay_ms, &static_cast<SimStrand&>(on), std::move(fire));
      return std::make_unique<SimTimer>(sim, task, gen);
    }
    std::unique_ptr<Ticker> every(std::int64_t, std::function<void()>) override {
      throw std::logic_error("the simulator's saga log is not shared: there are no leases to keep");
    }
    std::string new_saga_id() override { return sim.next_saga_id(); }
    // The program would exit: here the orchestrator crashes (run_task and
    // finish_write catch this, outside the orchestrator's frames).
    [[noreturn]] void fatal(const std::string& why) override { throw OrchestratorExit(why); }
    Sim& sim;
  };
  struct SimTransport final : Transport {
    explicit SimTransport(Sim& s) : sim(s) {}
    void call(StepCall call, CallMeta meta, std::function<void(CallOutcome)> done) override {
      sim.send_call(std::move(call), std::move(meta), std::move(done));
    }
    Sim& sim;
  };
  struct SimCrashPoints final : CrashPoints {
    explicit SimCrashPoints(Sim& s) : sim(s) {}
    bool crash(const SagaDefinition&, const CrashSpot& spot) override { return sim.crash_point(spot); }
    Sim& sim;
  };
  // The orchestrator's durable log: each logged saga's events in its slot
  // (and, when the mix asks for it, in the real SQLite log, whose query for
  // unfinished sagas and decoding of events recovery then uses). Writes are
  // durable at once; nothing is lost by a crash.
  struct SimLog final : SagaLog {
    explicit SimLog(Sim& s) : sim(s) {}
    void append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
                std::int64_t, Done done) override {
      if (sim.mix_.log_delay_ms > 0) return sim.start_write(saga_id, seq, std::move(events), std::move(row), std::move(done));
      done(sim.write(saga_id, seq, std::move(events), row));
    }
    void append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                    const std::optional<Row>& row, std::int64_t) override {
      sim.log_append(saga_id, seq, events, row);
    }
    void snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) override {
      auto events = this->events(saga_id);
      if (events.empty()) return done(std::nullopt);
      SplitMix64 rng(0);
      done(to_json(sim.engine_.replay(events, rng), sim.engine_.definition()));
    }
    void find_by_idem(const std::string& key,
                      std::function<void(std::optional<std::string>, std::exception_ptr)> done) override {
      auto it = sim.idem_.find(key);
      done(it == sim.idem_.end() ? std::nullopt : std::optional<std::string>(it->second), nullptr);
    }
    std::vector<std::string> unfinished() override { return sim.unfinished(); }
    std::vector<Event> events(const std::string& saga_id) override {
      if (sim.sqlite_log_) return sim.sqlite_log_->events(saga_id);
      Slot* s = sim.slot_of(saga_id);
      return s ? s->log : std::vector<Event>{};
    }
    const std::vector<Event>* events_in_memory(const std::string& saga_id) override {
      if (sim.sqlite_log_) return nullptr;  // recovery reads and decodes the real log's rows
      Slot* s = sim.slot_of(saga_id);
      return s ? &s->log : nullptr;
    }
    std::vector<Json> list(const std::string&, int) override { return {}; }
    void reset() override { throw std::logic_error("the simulator's saga log is never reset"); }
    void close() override {}
    void observe_batches(std::function<void(std::size_t)>) override {}
    bool stores_snapshots() const override { return sim.sqlite_log_ != nullptr; }
    Sim& sim;
  };

  // Continuations of the orchestrator's, in the event queue. A task of a
  // crashed orchestrator never runs.
  struct TaskSlot {
    std::function<void()> fn;
    const SimStrand* strand = nullptr;
    int inc = 0;
    std::uint32_t gen = 0;  // bumped when the slot is reused: a timer cancels only its own task
  };
  // A free slot of a pool (a vector and its free list), reused before the vector grows.
  template <class T>
  static std::uint32_t take_slot(std::vector<T>& slots, std::vector<std::uint32_t>& free) {
    if (free.empty()) {
      slots.emplace_back();
      return static_cast<std::uint32_t>(slots.size() - 1);
    }
    const auto i = free.back();
    free.pop_back();
    return i;
  }
  std::pair<std::uint32_t, std::uint32_t> add_task(std::int64_t t, const SimStrand* strand, std::function<void()> fn) {
    const std::uint32_t i = take_slot(tasks_, free_tasks_);
    tasks_[i].fn = std::move(fn);
    tasks_[i].strand = strand;
    tasks_[i].inc = strand->inc;
    at(std::max(t, now_), Ev::Task, {.slot = i});
    return {i, tasks_[i].gen};
  }
  void cancel_task(std::uint32_t i, std::uint32_t gen) {
    if (i < tasks_.size() && tasks_[i].gen == gen) tasks_[i].fn = nullptr;
  }
  // Runs a continuation as the strand's work; a fatal error of the orchestrator's crashes it.
  void run_inline(const SimStrand* strand, const std::function<void()>& fn) {
    running_ = strand;
    try {
      fn();
    } catch (const OrchestratorExit&) {
      crash_orchestrator();
    }
    running_ = nullptr;
  }
  void run_task(std::uint32_t i) {
    auto fn = std::move(tasks_[i].fn);
    tasks_[i].fn = nullptr;
    const bool live = tasks_[i].inc == orch_inc_ && orch_up_;
    const SimStrand* strand = tasks_[i].strand;
    ++tasks_[i].gen;
    free_tasks_.push_back(i);
    if (live && fn) run_inline(strand, fn);
  }

  void boot_orchestrator() {
    OrchestratorOptions opts;
    opts.seed = cfg_.seed;
    opts.max_in_flight = SIZE_MAX;  // a real client would be told 503; the workload here never backs off
    orch_ = std::make_unique<Orchestrator>(engine_.definition(),
                                           OrchestratorEnv{runtime_, transport_, log_, &crashes_, nullptr}, opts);
  }

  // Objects that may still hold tasks, calls or the orchestrator go in an
  // order that never touches what is already gone.
  void teardown() {
    auto tasks = std::move(tasks_);
    tasks_.clear();
    calls_.clear();
    writes_.clear();
    orch_.reset();
  }

  // ---- the clients ---------------------------------------------------------

  static std::string idem_key_of(int idx) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "sim-%06d", idx);
    return buf;
  }

  // A client asks for purchase `idx` (again, after a crash: with the same
  // idempotency key, as a careful client does).
  void start_saga(int idx) {
    if (!orch_up_) {
      at(now_ + 50, Ev::StartSaga, {.saga = idx});  // the client retries
      return;
    }
    SagaContext ctx = request_of(idx);
    const bool first = !awaiting_ack_.count(idx) && tries_[static_cast<std::size_t>(idx)] == 0;
    awaiting_ack_.insert(idx);
    pending_start_ = idx;
    orch_->start(std::move(ctx), idem_key_of(idx),
                 [this, idx](const std::string& id, bool existed, std::exception_ptr error) {
                   acknowledged(idx, id, existed, error);
                 });
    pending_start_ = -1;
    // Now and then the client sends its request again at once (a retry after
    // its own timeout): it races the first one's write to the log.
    if (first && chance(mix_.dup / 2)) at(now_ + net_rng_.uniform(0, 3), Ev::ClientRepeat, {.saga = idx});
  }

  // What purchase idx's client asks for: the plan, and now and then an amount
  // of its own (a pure function of the seed, so that the verdict can read it again).
  struct ClientAmount {
    std::optional<double> sent;
    bool wrong = false;
  };
  ClientAmount client_amount_of(int idx, const SagaPlan& plan) const {
    ClientAmount a;
    if (mix_.client_amount <= 0) return a;
    SplitMix64 r(cfg_.seed * 0x2545F4914F6CDD1DULL + static_cast<std::uint64_t>(idx) * 0x9E3779B97F4A7C15ULL + 7);
    if (r.unit() >= mix_.client_amount) return a;
    const double right = price_of(plan);
    a.wrong = r.unit() < 0.5;
    a.sent = !a.wrong ? right : plan.cantidad > 1 ? right / static_cast<double>(plan.cantidad)  // the unit price
                                                  : right + 0.01 * static_cast<double>(r.uniform(1, 500));
    return a;
  }
  // The catalog's price times the quantity, to the cent.
  static double price_of(const SagaPlan& plan) {
    static const auto catalog = default_catalog();
    for (const auto& p : catalog) {
      if (p.nombre == plan.product) return std::round(p.precio * static_cast<double>(plan.cantidad) * 100.0) / 100.0;
    }
    throw std::logic_error("the plan names a product the catalog does not have: " + plan.product);
  }
  SagaContext request_of(int idx) const {
    const auto plan = plan_of(cfg_, mix_, idx);
    SagaContext ctx;
    ctx.usuario_id = plan.user;
    ctx.producto_solicitado = plan.product;
    ctx.cantidad = plan.cantidad;
    ctx.monto_cliente = client_amount_of(idx, plan).sent;
    return ctx;
  }

  // The orchestrator names a new saga: the try of the client's request being started.
  std::string next_saga_id() {
    if (pending_start_ < 0) throw std::logic_error("the orchestrator made a saga id outside a client's request");
    auto& tries = tries_[static_cast<std::size_t>(pending_start_)];
    return saga_id(pending_start_, ++tries);
  }

  // The orchestrator's answer to a client's request for purchase idx.
  void acknowledged(int idx, const std::string& id, bool existed, std::exception_ptr error) {
    if (!awaiting_ack_.erase(idx)) return;
    if (error) {  // refused: the client asks again a little later
      client_retrying_.insert(idx);
      at(now_ + 50, Ev::ClientRetry, {.saga = idx});
      return;
    }
    check_same_saga(idx, id, existed);
    const auto [i, attempt] = parse_saga_id(id);
    if (i == idx && attempt != logged_try_[static_cast<std::size_t>(idx)]) acked_unlogged_[idx] = attempt;
    // Now and then the client sends its request again (a retry after a lost
    // answer): it must be told the same saga, while it runs and after it ended.
    if (!existed && chance(mix_.dup / 2)) at(now_ + 1 + net_rng_.uniform(0, 100), Ev::ClientRepeat, {.saga = idx});
    // One client in twenty waits for its saga's end, as POST /compra does (the program's
    // default response timeout): answered once it settles, or with its state at the timeout.
    if (!existed && chance(0.05)) {  // a waiter costs a snapshot (to_json), a fifth of a saga
      orch_->wait(id, kClientWaitMs, [this, idx, id, inc = orch_inc_, since = now_](std::optional<Json> snap) {
        waited(idx, id, inc, since, snap);
      });
    }
  }

  static constexpr std::int64_t kClientWaitMs = 30000;
  // A waiting client's answer: a settled saga's state, or any state once its wait ran out.
  void waited(int idx, const std::string& id, int inc, std::int64_t since, const std::optional<Json>& snap) {
    if (inc != orch_inc_) return;  // its orchestrator crashed: the connection is gone
    auto slot = slots_.find(idx);
    if (slot == slots_.end()) return;
    const std::string estado = snap && snap->is_object() ? snap->value("estado", "") : "";
    const bool settled = estado == "completada" || estado == "compensada" || estado == "atascada";
    if (!settled && now_ - since < kClientWaitMs) {
      Violation v;
      v.invariant = 7;
      v.rule = "waiter-settled";
      v.saga_id = id;
      v.message = "the client waiting for saga " + id + " was answered " +
                  (estado.empty() ? std::string("with nothing") : "'" + estado + "'") + " after " +
                  std::to_string(now_ - since) + " ms, before the saga settled and before its wait of " +
                  std::to_string(kClientWaitMs) + " ms ran out";
      v.faults = slot->second.hits;
      checker_.add(std::move(v));
      return;
    }
    if (estado == "completada" || estado == "compensada") {
      slot->second.waited_id = id;
      slot->second.waited_estado = estado;
    }
  }

  // A saga whose id the client was given must be in the log: checked when the
  // orchestrator crashes (what it had not written is lost then) and at the end.
  void check_acknowledged() {
    for (const auto& [idx, attempt] : acked_unlogged_) {
      if (attempt == logged_try_[static_cast<std::size_t>(idx)]) continue;
      Violation v;
      v.invariant = 7;
      v.rule = "acknowledged-durable";
      v.saga_id = saga_id(idx, attempt);
      v.message = "the client was told saga " + v.saga_id + " for its request (key " + idem_key_of(idx) +
                  "), but the saga's start is not in the log";
      if (auto s = slots_.find(idx); s != slots_.end()) v.faults = s->second.hits;
      checker_.add(std::move(v));
    }
    acked_unlogged_.clear();
  }

  void repeat_request(int idx) {
    const bool retired = logged_try_[static_cast<std::size_t>(idx)] != 0 && !slots_.count(idx);
    if (!orch_up_ || retired) return;  // retired: the key's saga is forgotten
    res_.faults_by_kind[kRepeat]++;
    SagaContext ctx = request_of(idx);
    pending_start_ = idx;
    orch_->start(std::move(ctx), idem_key_of(idx),
                 [this, idx](const std::string& id, bool existed, std::exception_ptr error) {
                   if (!error) check_same_saga(idx, id, existed);
                 });
    pending_start_ = -1;
  }

  // The answer to a request with purchase idx's key must name the key's one saga.
  void check_same_saga(int idx, const std::string& id, bool existed) {
    const auto [i, attempt] = parse_saga_id(id);
    const int logged = logged_try_[static_cast<std::size_t>(idx)];
    if (existed && i == idx && logged == 0) {
      // Told of a saga whose start is not durable yet: a crash now would lose it.
      Violation v;
      v.invariant = 7;
      v.rule = "acknowledged-durable";
      v.saga_id = id;
      v.message = "the client's repeated request (key " + idem_key_of(idx) + ") was answered with saga " + id +
                  " before that saga's start was in the log";
      if (auto s = slots_.find(idx); s != slots_.end()) v.faults = s->second.hits;
      checker_.add(std::move(v));
      return;
    }
    if (i != idx || (existed && attempt != logged)) {
      Violation v;
      v.invariant = 7;
      v.rule = "idempotent-start";
      v.saga_id = logged > 0 ? saga_id(idx, logged) : id;
      v.message = "the client's request with idempotency key " + idem_key_of(idx) + " was answered with saga " + id +
                  (existed ? " (an existing one)" : "") + ", but the saga of that key is " +
                  (logged > 0 ? saga_id(idx, logged) : std::string("none"));
      if (auto s = slots_.find(idx); s != slots_.end()) v.faults = s->second.hits;
      checker_.add(std::move(v));
    }
  }

  Slot* slot_of(const std::string& id) {
    auto [idx, attempt] = parse_saga_id(id);
    if (idx < 0 || idx >= cfg_.sagas || logged_try_[static_cast<std::size_t>(idx)] != attempt) return nullptr;
    auto it = slots_.find(idx);
    return it == slots_.end() ? nullptr : &it->second;
  }

  void note_fault(const std::string& id, const std::string& svc, FiredFault f) {
    auto [idx, attempt] = parse_saga_id(id);
    (void)attempt;
    if (idx < 0) return;
    Slot* s = slot_of(id);
    if (!s) s = &slots_[idx];  // not logged yet: kept with the saga's slot all the same
    s->hits.push_back({svc, std::move(f)});
    s->disturbed_at = now_;
  }

  // A fault that fired, as the rule that replays it in a script or a scenario.
  static FaultRule replay_rule(const FiredFault& f) {
    FaultRule rule;
    rule.action = f.action;
    rule.endpoint = f.endpoint;
    rule.attempts = {std::max(f.attempt, 1)};
    if (f.action == FaultAction::Error || f.action == FaultAction::CommitThenError) rule.status = f.status;
    if (f.action == FaultAction::Latency) rule.latency_ms = f.delay_ms;
    if (f.action == FaultAction::Hang) rule.duration_ms = f.delay_ms;
    return rule;
  }

  // True when the orchestrator crashes at this log boundary (a script's rule,
  // or the mix's chance); it is then down until the restart.
  bool crash_point(const CrashSpot& spot) {
    const auto& id = *spot.saga_id;
    auto point_name = [&] { return crash_point_name(engine_.definition(), spot); };
    bool crash = false;
    if (cfg_.scripted) {
      crash = orch_faults_.match({point_name(), id, spot.attempt, now_}).has_value();
    } else if (!healed_ && mix_.crash > 0 &&
               crash_rng_.unit() < mix_.crash / 2 * (spot.compensating ? mix_.crash_compensating : 1.0) &&
               now_ - orch_up_since_ >= mix_.min_uptime_ms) {
      crash = true;
    }
    if (crash) {
      res_.faults_by_kind[kCrashOrchestrator]++;
      FiredFault f;
      f.action = FaultAction::CrashBefore;
      f.endpoint = point_name();
      f.saga_id = id;
      f.attempt = spot.attempt;
      f.at_ms = now_;
      note_fault(id, kOrchestrator, std::move(f));
      crash_orchestrator();
    }
    return crash;
  }

  // What the orchestrator appends: kept in the saga's slot (the durable log
  // the checker reads), and in the real SQLite log when the mix has one.
  void log_append(const std::string& id, int seq, std::vector<Event> events, const std::optional<SagaLog::Row>& row) {
    auto [idx, attempt] = parse_saga_id(id);
    if (idx < 0 || idx >= cfg_.sagas) throw std::logic_error("the orchestrator appended to a saga it never started: " + id);
    // The real log, written as the orchestrator writes it; a crash after
    // this returns finds it there, one before it does not.
    if (sqlite_log_) sqlite_log_->append_now(id, seq, events, row, now_);
    const bool starts = !events.empty() && events.front().type == Event::Type::Start;
    auto& slot = slots_[idx];
    auto i = static_cast<std::size_t>(idx);
    if (extra_sagas_.count(id)) return;
    for (auto& e : events) {
      if (e.type == Event::Type::Start) {
        if (logged_try_[i] != 0 && logged_try_[i] != attempt) {
          Violation v;
          v.invariant = 7;
          v.rule = "idempotent-start";
          v.saga_id = id;
          v.message = "a second saga (" + id + ") was started for the client's request with idempotency key " +
                      idem_key_of(idx) + ", whose saga " + saga_id(idx, logged_try_[i]) + " is in the log";
          v.faults = slot.hits;
          checker_.add(std::move(v));
          // The key's first saga is the one judged; this one runs on, its records end up as orphans.
          extra_sagas_.insert(id);
          return;
        }
        slot.log.clear();
        slot.log.reserve(16);
        slot.disturbed_at = now_;
        logged_try_[i] = static_cast<std::uint8_t>(attempt);
        if (auto a = acked_unlogged_.find(idx); a != acked_unlogged_.end() && a->second == attempt) acked_unlogged_.erase(a);
      } else if (logged_try_[i] != attempt) {
        throw std::logic_error("the orchestrator appended to saga " + id + ", whose start is not in the log");
      }
      if (seq != static_cast<int>(slot.log.size()) + 1) {
        Violation v;
        v.invariant = 7;
        v.rule = "log-sequence";
        v.saga_id = id;
        v.message = "the orchestrator appended event number " + std::to_string(seq) + " to a log that holds " +
                    std::to_string(slot.log.size()) + " events of the saga";
        v.faults = slot.hits;
        checker_.add(std::move(v));
      }
      slot.log.push_back(std::move(e));
      ++seq;
    }
    if (!row) return;
    if (starts && !row->idem_key.empty()) idem_[row->idem_key] = id;
    if (!slot.terminal && row->state && is_terminal(row->state->estado)) {
      const SagaState& next = *row->state;
      slot.terminal = true;
      slot.summary = {next.id, next.estado, "", next.ctx.monto.value_or(0), next.ctx.cantidad};
      // A script replays on the real stack, where nobody else sends requests.
      if (next.estado == Estado::Compensada && !cfg_.scripted && chance(mix_.stray)) {
        send_strays(idx, next);
        probe_tombstones(next);
      }
      // A completed saga's purchase, compensated by its id alone, must stay
      // confirmed (its check at retirement says so). Only the purchase: a
      // payment or a reservation cannot tell a completed saga from a running one.
      if (next.estado == Estado::Completada && !cfg_.scripted && chance(mix_.stray) && !next.ctx.compra_id.empty()) {
        Request req;
        req.endpoint = "compensacion";
        req.body = Compensar{IdField::Compra, next.ctx.compra_id, ""};
        send_stray(idx, next.id, kCompras, std::move(req), 1 + net_rng_.uniform(0, 200));
      }
      if (cfg_.scripted && idx == current_in_sequence_) at(now_ + 1, Ev::NextInSequence);
      at(now_ + kRetireAfterMs, Ev::Retire, {.saga = idx});
    }
  }

  // A write in flight (log_delay_ms): durable when its LogWrite comes, lost
  // if the orchestrator that made it crashes first.
  struct PendingWrite {
    std::string saga_id;
    int seq = 0;
    std::vector<Event> events;
    std::optional<SagaLog::Row> row;
    std::optional<SagaState> state;  // the row's (its pointer is the orchestrator's, valid only during append)
    SagaLog::Done done;
    int inc = 0;
  };
  void start_write(const std::string& id, int seq, std::vector<Event> events, std::optional<SagaLog::Row> row,
                   SagaLog::Done done) {
    const std::uint32_t i = take_slot(writes_, free_writes_);
    auto& w = writes_[i];
    w.saga_id = id;
    w.seq = seq;
    w.events = std::move(events);
    w.state.reset();
    if (row && row->state) w.state = *row->state;
    w.row = std::move(row);
    if (w.row) w.row->state = nullptr;
    w.done = std::move(done);
    w.inc = orch_inc_;
    at(now_ + net_rng_.uniform(0, mix_.log_delay_ms), Ev::LogWrite, {.slot = i});
  }
  void finish_write(std::uint32_t i) {
    auto w = std::move(writes_[i]);
    writes_[i] = PendingWrite{};
    free_writes_.push_back(i);
    if (w.inc != orch_inc_ || !orch_up_) return;  // its orchestrator crashed first: never written
    if (w.row && w.state) w.row->state = &*w.state;
    auto error = write(w.saga_id, w.seq, std::move(w.events), w.row);
    try {
      w.done(error);
    } catch (const OrchestratorExit&) {
      crash_orchestrator();
    }
  }

  // An append, as the log reports it: a write the real SQLite log refuses
  // (its sequence numbers and idempotency keys are unique) is the
  // orchestrator's error, reported to it, and a violation.
  std::exception_ptr write(const std::string& id, int seq, std::vector<Event> events,
                           const std::optional<SagaLog::Row>& row) {
    try {
      log_append(id, seq, std::move(events), row);
      return nullptr;
    } catch (const SqliteError& e) {
      Violation v;
      v.invariant = 7;
      v.rule = "log-write";
      v.saga_id = id;
      v.message = std::string("the saga log refused the orchestrator's append of event ") + std::to_string(seq) +
                  ": " + e.what();
      checker_.add(std::move(v));
      // The orchestrator exits now, and would again after every restart: the
      // run ends here, with this as its verdict.
      aborted_ = true;
      deadline_ = now_;
      return std::current_exception();
    }
  }

  // The log's unfinished sagas, oldest first, as recovery reads them.
  std::vector<std::string> unfinished() {
    std::vector<std::string> ids;
    if (sqlite_log_) {
      for (auto& id : sqlite_log_->unfinished()) {
        if (slot_of(id)) ids.push_back(std::move(id));  // else retired: checked and forgotten already
      }
      return ids;
    }
    std::vector<int> open;
    for (const auto& [idx, slot] : slots_) {
      if (!slot.terminal && !slot.log.empty()) open.push_back(idx);
    }
    std::sort(open.begin(), open.end());
    for (int idx : open) ids.push_back(saga_id(idx, logged_try_[static_cast<std::size_t>(idx)]));
    return ids;
  }

  // Requests from another client (an operator's script, a second system) to
  // a compensated saga's records: each compensation again by its id alone,
  // with no idempotency key or forward key, and a confirmation of the
  // cancelled purchase. Services must answer them without changing anything.
  // They reach the services without faults, before the saga is retired, and
  // nobody reads their answers.
  void send_stray(int idx, const std::string& saga, int node, Request req, std::int64_t after) {
    res_.faults_by_kind[kStray]++;
    req.saga_id = saga;
    auto slot = hold_request(std::move(req));
    requests_[slot].refs++;
    at(now_ + after, Ev::Stray, {.saga = idx, .node = node, .slot = slot});
  }
  void send_strays(int idx, const SagaState& s) {
    auto send = [&](int node, Request req, std::int64_t after) { send_stray(idx, s.id, node, std::move(req), after); };
    auto compensate = [&](int node, IdField field, const std::string& id, std::int64_t after) {
      if (id.empty()) return;
      Request req;
      req.endpoint = "compensacion";
      req.body = Compensar{field, id, ""};
      send(node, std::move(req), after);
    };
    const std::int64_t base = 1 + net_rng_.uniform(0, 200);
    compensate(kInventario, IdField::Reserva, s.ctx.reserva_id, base);
    compensate(kPagos, IdField::Pago, s.ctx.pago_id, base + 1);
    compensate(kCompras, IdField::Compra, s.ctx.compra_id, base + 2);
    if (!s.ctx.compra_id.empty()) {
      Request req;
      req.endpoint = "confirmacion";
      req.body = Confirmar{s.ctx.compra_id};
      req.idempotency_key = s.id + ":stray-confirmacion";
      send(kCompras, std::move(req), base + 3);
    }
  }

  // Another client's own operation on each service whose steps are undone,
  // as DESIGN's tombstone rule states it: its forward call, a compensation by
  // the record's id alone (no keys: the service must find the forward call's
  // key itself), then a late copy of the forward call, which must be refused
  // with 409 and change nothing. It runs at once (no faults, no time passes),
  // with the bodies of a compensated saga under an id of its own, and takes
  // its records away again: they must all be undone.
  void probe_tombstones(const SagaState& s) {
    const auto& def = engine_.definition();
    SagaState other = s;
    other.id = s.id + "~otro-cliente";
    for (std::size_t k = 0; k < def.steps.size(); ++k) {
      const auto kind = def.steps[k].kind;
      if (kind != StepKind::Compensatable && kind != StepKind::Pivot) continue;
      const int n = node_of(def.steps[k].service);
      if (n < 0 || !nodes_[n].up) continue;
      auto& node = nodes_[n];
      Command fwd;
      fwd.type = Command::Type::Call;
      fwd.step = static_cast<int>(k);
      fwd.forward_key = fwd.idempotency_key = other.id + ":" + def.steps[k].name;
      auto call = build_step_call(def, other, fwd);
      auto send = [&](const StepCall& c, const std::string& key) {
        Request req;
        req.endpoint = c.endpoint;
        req.body = c.body;
        req.idempotency_key = key;
        req.saga_id = other.id;
        req.now_ms = now_;
        if (cfg_.rewrite_request) cfg_.rewrite_request(node.logic->name(), req);
        return node.logic->handle(node.store, req);
      };
      auto first = send(call, fwd.idempotency_key);
      if (!first.ok() || first.receipt.id.empty()) continue;  // refused (no stock, say): nothing to undo
      fwd.compensation = true;
      auto comp_call = build_step_call(def, other, fwd);
      auto& comp = std::get<Compensar>(comp_call.body);
      comp.id = first.receipt.id;
      comp.forward_key.clear();
      auto compensated = send(comp_call, "");
      auto late = send(call, fwd.idempotency_key);
      auto effects = take_effects(other.id);
      if (compensated.ok() && late.status != 409) {
        Violation v;
        v.invariant = 7;
        v.rule = "late-forward-refused";
        v.saga_id = other.id;
        v.message = "another client's " + def.steps[k].name + " (key " + fwd.idempotency_key + "), compensated by id " +
                    first.receipt.id + " alone, then sent again, was answered " + std::to_string(late.status) +
                    " instead of 409: the compensation left no tombstone for the forward call's key";
        checker_.add(std::move(v));
      }
      // What it left must be undone, as a compensated saga's (invariant 3).
      auto all_undone = [](const auto& records) {
        return std::all_of(records.begin(), records.end(), [](const auto& r) { return undone(r); });
      };
      bool undone_all = all_undone(effects.cs) && all_undone(effects.ps) && all_undone(effects.rs);
      if (!undone_all) {
        Violation v;
        v.invariant = 3;
        v.saga_id = other.id;
        v.message = "another client's " + def.steps[k].name + ", compensated by id alone, left a record that is not undone";
        for (auto& c : effects.cs) v.records.emplace_back(std::move(c));
        for (auto& p : effects.ps) v.records.emplace_back(std::move(p));
        for (auto& r : effects.rs) v.records.emplace_back(std::move(r));
        checker_.add(std::move(v));
      }
    }
  }

  // A call of the orchestrator's goes out on the simulated network; its
  // answer, or its timeout, goes back through done().
  void send_call(StepCall sc, CallMeta m, std::function<void(CallOutcome)> done) {
    auto [idx, try_no] = parse_saga_id(m.saga_id);
    if (idx < 0 || idx >= cfg_.sagas) throw std::logic_error("a call for a saga the simulator never started: " + m.saga_id);
    auto i = static_cast<std::size_t>(idx);
    {
      auto& slot = slots_[idx];
      CallRecord rec;
      rec.step = m.step;
      rec.compensation = m.compensation;
      rec.attempt = m.attempt;
      rec.seen = true;
      rec.idempotency_key = m.idempotency_key;  // (the request takes the meta's strings below)
      if (const auto* comp = std::get_if<Compensar>(&sc.body)) rec.id_sent = comp->id;
      rec.logged = logged_try_[i] == try_no ? slot.log.size() : 0;
      slot.calls.push_back(std::move(rec));
      slot.call_tries.push_back(static_cast<std::uint8_t>(try_no));
    }
    // The deadline the saga's configuration gives the call, and nothing else.
    const auto& def = engine_.definition();
    const auto deadline = m.compensation ? def.compensation.timeout_ms
                                         : def.steps[static_cast<std::size_t>(m.step)].retry.timeout_ms;
    if (m.timeout_ms != deadline) {
      Violation v;
      v.invariant = 7;
      v.rule = "call-deadline";
      v.saga_id = m.saga_id;
      v.message = std::string(m.compensation ? "compensation of " : "") + def.steps[static_cast<std::size_t>(m.step)].name +
                  " attempt " + std::to_string(m.attempt) + " was sent with a deadline of " +
                  std::to_string(m.timeout_ms) + " ms; the saga's configuration gives " + std::to_string(deadline) + " ms";
      checker_.add(std::move(v));
    }
    int call_id = next_call_++;
    Call& call = calls_[call_id];
    call.saga = idx;
    call.orch_inc = orch_inc_;
    call.service = std::move(sc.service);
    call.endpoint = sc.endpoint;
    call.attempt = m.attempt;
    call.done = std::move(done);
    Request req;
    req.endpoint = std::move(sc.endpoint);
    req.body = std::move(sc.body);
    req.idempotency_key = std::move(m.idempotency_key);
    req.saga_id = std::move(m.saga_id);
    send_request(call_id, node_of(call.service), m.attempt, std::move(req));
    at(now_ + m.timeout_ms, Ev::CallTimeout, {.call = call_id});
  }

  void resolve(int call_id, std::optional<Reply>&& a, const char* why) {
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;  // answered already (or timed out)
    Call call = std::move(it->second);
    calls_.erase(it);
    if (call.orch_inc != orch_inc_ || !orch_up_) return;  // its orchestrator crashed
    if (a && a->status >= 400 && a->status < 500) note_refusal(call, a->status);
    call.done(CallOutcome{std::move(a), why});
  }

  void note_refusal(const Call& call, int status) {
    auto slot = slots_.find(call.saga);
    if (slot == slots_.end()) return;
    FiredFault f;
    f.action = FaultAction::Error;
    f.endpoint = call.endpoint;
    f.attempt = call.attempt;
    f.status = status;
    slot->second.refusals.push_back({call.service, std::move(f)});
  }

  void crash_orchestrator() {
    orch_up_ = false;
    outage_at_ = now_;
    ++orch_inc_;
    check_acknowledged();
    // A request the orchestrator never acknowledged: its client asks again.
    std::vector<int> unacknowledged;
    for (int idx : awaiting_ack_) {
      if (!client_retrying_.count(idx)) unacknowledged.push_back(idx);
    }
    for (int idx : unacknowledged) {
      const auto i = static_cast<std::size_t>(idx);
      const bool never_logged = logged_try_[i] != tries_[i];
      if (auto it = slots_.find(idx); never_logged && it != slots_.end()) {
        std::size_t before = checker_.violations();
        check_unlogged_try(idx, it->second, tries_[i]);
        if (checker_.violations() > before) {
          Slot evidence;
          evidence.hits = it->second.hits;
          keep_evidence(idx, evidence);
        }
        // What hit the lost try is kept apart: its calls may still leave records behind.
        if (!it->second.hits.empty()) {
          auto& stale = stale_[saga_id(idx, tries_[i])];
          stale.hits = std::move(it->second.hits);
          it->second.hits.clear();
        }
      }
      client_retrying_.insert(idx);
      at(now_ + 50, Ev::ClientRetry, {.saga = idx});
    }
    // Memory is lost, the log is not: the object goes at the restart (this
    // runs inside one of its calls).
    at(now_ + cfg_.restart_delay_ms, Ev::RestartOrchestrator);
  }

  void restart_orchestrator() {
    orch_.reset();
    boot_orchestrator();
    orch_up_ = true;
    orch_up_since_ = now_;
    outage_at_ = now_;
    orch_->recover();
    // Scripted mode: a saga lost with the crash (never logged, and not asked
    // for again) will not end; move on.
    int cur = current_in_sequence_;
    if (cfg_.scripted && cur >= 0 && logged_try_[static_cast<std::size_t>(cur)] == 0 && !client_retrying_.count(cur) &&
        !awaiting_ack_.count(cur))
      at(now_ + 1, Ev::NextInSequence);
  }

  // ---- network and services -----------------------------------------------

  // A lost or doubled message, recorded as the fault rule that has the same
  // effect on the service, so that shrinking and scenarios can replay it: a
  // lost request is an error without effect, a lost answer is commit-then-drop,
  // a request delivered twice is commit-then-error (the orchestrator's retry
  // then delivers it again, with the same key).
  void record_drop(int node, const Request& req, int attempt, FaultAction action, const char* name = "network-drop") {
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

  void send_request(int call_id, int node, int attempt, Request req) {
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

  void send_response(int call_id, Reply&& a, int node, std::uint32_t req, int attempt) {
    if (network_faults() && chance(mix_.drop)) {
      res_.faults_by_kind[kDrop]++;
      if (a.ok()) record_drop(node, requests_[req].req, attempt, FaultAction::CommitThenDrop);
      return;
    }
    at(now_ + delay(), Ev::Response, {.call = call_id, .slot = hold_reply(std::move(a))});
  }

  Reply error_reply(const FiredFault& f) {
    Reply r;
    r.status = f.status;
    r.error = f.message;
    return r;
  }

  void receive_request(int call_id, int n, int inc, int attempt, std::uint32_t slot) {
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

  Reply process(Node& node, std::uint32_t slot) {
    Request& r = requests_[slot].req;
    r.now_ms = now_;
    if (cfg_.rewrite_request) cfg_.rewrite_request(node.logic->name(), r);
    return node.logic->handle(node.store, r);
  }

  void record_fired(int node, const FiredFault& f) { note_fault(f.saga_id, node_names_[static_cast<std::size_t>(node)], f); }

  void crash_service(int n) {
    auto& node = nodes_[n];
    node.up = false;
    ++node.inc;
    outage_at_ = now_;
    at(now_ + cfg_.restart_delay_ms, Ev::NodeUp, {.node = n});
  }

  void heal() {
    healed_ = true;
    for (auto& n : nodes_) n.faults->clear();
    orch_faults_.clear();
  }

  // ---- the verdict ----------------------------------------------------------

  struct Effects {
    std::vector<Compra> cs;
    std::vector<Pago> ps;
    std::vector<Reserva> rs;
  };

  Effects take_effects(const std::string& id) {
    Effects e;
    for (int n : {kCompras, kPagos, kInventario}) {
      for (auto& [t, rec] : nodes_[n].store.extract_saga(id)) {
        if (auto* c = std::get_if<Compra>(&rec)) e.cs.push_back(std::move(*c));
        if (auto* p = std::get_if<Pago>(&rec)) e.ps.push_back(std::move(*p));
        if (auto* r = std::get_if<Reserva>(&rec)) e.rs.push_back(std::move(*r));
      }
    }
    return e;
  }

  // Checks a saga against the invariants and forgets it (unless it broke one).
  void check_and_forget(int idx, const SagaSummary& summary) {
    auto it = slots_.find(idx);
    auto effects = take_effects(summary.saga_id);
    std::size_t before = checker_.violations();
    static const std::vector<ServiceFault> none;
    const auto& hits = it == slots_.end() ? none : it->second.hits;
    checker_.saga(summary, effects.cs, effects.ps, effects.rs, hits);
    check_request(idx, summary, effects, hits);
    if (it != slots_.end()) check_waiter(summary, it->second);
    if (it != slots_.end()) check_protocol(idx, summary, it->second);
    if (checker_.violations() > before && it != slots_.end()) keep_evidence(idx, it->second);
    if (it != slots_.end()) slots_.erase(it);
    idem_.erase(idem_key_of(idx));
  }

  // The records against what the client asked for and against each other:
  // the amount charged is the catalog's price times the quantity to the cent
  // (and a wrong amount of the client's is never charged); the purchase, the
  // payment and the reservation name the client's product, quantity and user;
  // the payment names the saga's purchase.
  void check_request(int idx, const SagaSummary& summary, const Effects& e, const std::vector<ServiceFault>& hits) {
    const auto plan = plan_of(cfg_, mix_, idx);
    const double price = price_of(plan);
    const auto amount = client_amount_of(idx, plan);
    std::vector<std::string> wrong;
    auto money = [](double v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", v);
      return std::string(buf);
    };
    auto off = [](double a, double b) { return std::fabs(a - b) > 0.005; };
    if (summary.estado == Estado::Completada) {
      if (amount.wrong)
        wrong.push_back("the client sent the amount " + money(*amount.sent) + " for a purchase of " + money(price) +
                        ", and the saga completed");
      for (const auto& c : e.cs) {
        if (c.estado == CompraEstado::Confirmada && off(c.monto, price))
          wrong.push_back("purchase " + c.compra_id + " is for " + money(c.monto) + ", the catalog's price times " +
                          std::to_string(plan.cantidad) + " is " + money(price));
      }
      for (const auto& p : e.ps) {
        if (p.estado == PagoEstado::Aprobado && off(p.monto, price))
          wrong.push_back("payment " + p.pago_id + " charged " + money(p.monto) + ", the catalog's price times " +
                          std::to_string(plan.cantidad) + " is " + money(price));
      }
    }
    for (const auto& c : e.cs) {
      if (c.producto != plan.product || c.cantidad != plan.cantidad || c.usuario_id != plan.user)
        wrong.push_back("purchase " + c.compra_id + " is " + std::to_string(c.cantidad) + " x '" + c.producto +
                        "' for " + c.usuario_id + "; the client asked for " + std::to_string(plan.cantidad) + " x '" +
                        plan.product + "' for " + plan.user);
    }
    for (const auto& p : e.ps) {
      const bool names_purchase =
          std::any_of(e.cs.begin(), e.cs.end(), [&](const Compra& c) { return c.compra_id == p.compra_id; });
      if (p.usuario_id != plan.user || (!e.cs.empty() && !names_purchase))
        wrong.push_back("payment " + p.pago_id + " of " + p.usuario_id + " names purchase '" + p.compra_id +
                        "', not the saga's" + (e.cs.empty() ? std::string() : " (" + e.cs.front().compra_id + ")") +
                        " of " + plan.user);
    }
    for (const auto& r : e.rs) {
      if (r.producto != inventory_key(plan.product) || r.cantidad != plan.cantidad)
        wrong.push_back("reservation " + r.reserva_id + " holds " + std::to_string(r.cantidad) + " x " + r.producto +
                        "; the client asked for " + std::to_string(plan.cantidad) + " x " + inventory_key(plan.product));
    }
    if (wrong.empty()) return;
    Violation v;
    v.invariant = 2;
    v.rule = "records-match-request";
    v.saga_id = summary.saga_id;
    v.message = wrong.front() + (wrong.size() > 1 ? " (and " + std::to_string(wrong.size() - 1) + " more)" : "");
    for (const auto& c : e.cs) v.records.emplace_back(c);
    for (const auto& p : e.ps) v.records.emplace_back(p);
    for (const auto& r : e.rs) v.records.emplace_back(r);
    v.faults = hits;
    checker_.add(std::move(v));
  }

  // The history checker over the saga's log and the calls its logged try issued.
  // A waiting client told that its saga finished was told how it finished.
  void check_waiter(const SagaSummary& summary, const Slot& slot) {
    if (slot.waited_id != summary.saga_id || slot.waited_estado == to_string(summary.estado)) return;
    Violation v;
    v.invariant = 7;
    v.rule = "waiter-truthful";
    v.saga_id = summary.saga_id;
    v.message = "the client waiting for saga " + summary.saga_id + " was told '" + slot.waited_estado +
                "', but the saga ended " + to_string(summary.estado);
    v.faults = slot.hits;
    checker_.add(std::move(v));
  }

  void check_protocol(int idx, const SagaSummary& summary, Slot& slot) {
    SagaHistory h;
    h.saga_id = summary.saga_id;
    h.estado = summary.estado;
    h.has_log = true;
    h.log = std::move(slot.log);
    auto logged = logged_try_[static_cast<std::size_t>(idx)];
    for (std::size_t k = 0; k < slot.calls.size(); ++k) {
      if (slot.call_tries[k] == logged) h.calls.push_back(std::move(slot.calls[k]));
    }
    for (auto& v : check_history(engine_.definition(), h)) {
      v.faults = slot.hits;
      checker_.add(std::move(v));
    }
    slot.log = std::move(h.log);
  }

  // A try that never reached the log must not have issued a call.
  void check_unlogged_try(int idx, Slot& slot, int try_no) {
    for (std::size_t k = 0; k < slot.calls.size(); ++k) {
      if (slot.call_tries[k] != try_no) continue;
      Violation v;
      v.invariant = 7;
      v.rule = "log-before-call";
      v.saga_id = saga_id(idx, try_no);
      v.message = "the saga issued a call (" + engine_.definition().steps[static_cast<std::size_t>(slot.calls[k].step)].name +
                  ") although its start never reached the log";
      v.faults = slot.hits;
      checker_.add(std::move(v));
      return;
    }
  }

  void keep_evidence(int idx, Slot& slot) {
    if (res_.histories.size() < 5 && !slot.log.empty() && !slot.log.front().saga_id.empty())
      res_.histories[slot.log.front().saga_id] = slot.log;
    (void)idx;
    for (const auto& h : slot.hits) {
      auto [i, attempt] = parse_saga_id(h.fault.saga_id);
      (void)attempt;
      res_.fired.push_back({i < 0 ? idx : i, h.service, replay_rule(h.fault)});
    }
    for (const auto& r : slot.refusals) {
      bool by_fault = std::any_of(slot.hits.begin(), slot.hits.end(), [&](const ServiceFault& h) {
        return h.service == r.service && h.fault.endpoint == r.fault.endpoint && h.fault.attempt == r.fault.attempt;
      });
      if (!by_fault) res_.fired.push_back({idx, r.service, replay_rule(r.fault), true});
    }
    slot.hits.clear();
    slot.refusals.clear();
  }

  void retire(int idx) {
    auto it = slots_.find(idx);
    if (it == slots_.end() || !it->second.terminal) return;
    auto summary = it->second.summary;
    check_and_forget(idx, summary);
  }

  void finish() {
    check_acknowledged();
    res_.seed = cfg_.seed;
    res_.sagas = cfg_.sagas;
    res_.mix = mix_;
    res_.virtual_ms = now_;
    if (aborted_) {  // the run ended at a fatal error: what was left unfinished says nothing more
      auto report = checker_.finish({});
      res_.by_state = report.by_state;
      for (auto& v : report.violations) {
        if (v.invariant != 5) res_.violations.push_back(std::move(v));
      }
      res_.live = false;
      return;
    }
    if (!stuck_.empty()) {
      // The run ended at a stuck saga: the sagas still running are not judged.
      auto report = checker_.finish({});
      res_.by_state = report.by_state;
      for (auto& v : report.violations) {
        if (v.invariant != 5) res_.violations.push_back(std::move(v));
      }
      for (int idx : stuck_) {
        auto& slot = slots_[idx];
        Violation v;
        v.invariant = 1;
        v.saga_id = slot.log.front().saga_id;
        v.message = "saga did not end within the liveness bound (" + std::to_string(quiet_bound_) +
                    " ms with no fault or crash touching it: time for every step and compensation to run once more, "
                    "four times over)";
        v.faults = slot.hits;
        res_.violations.push_back(std::move(v));
        keep_evidence(idx, slot);
      }
      res_.live = false;
      return;
    }
    // Settled sagas not yet retired, then those that never settled.
    std::vector<int> left;
    for (const auto& [idx, slot] : slots_) {
      if (!slot.log.empty()) left.push_back(idx);
    }
    std::sort(left.begin(), left.end());
    std::vector<Violation> stuck;
    for (int idx : left) {
      auto& slot = slots_[idx];
      SagaSummary summary = slot.summary;
      if (!slot.terminal) {
        SplitMix64 rng(0);
        auto s = engine_.replay(slot.log, rng);
        summary = {s.id, s.estado, "", s.ctx.monto.value_or(0), s.ctx.cantidad};
        res_.live = false;
        Violation v;
        v.invariant = 1;
        v.saga_id = s.id;
        v.message = "saga did not end within the liveness bound after the faults healed";
        v.faults = slot.hits;
        stuck.push_back(std::move(v));
      }
      check_and_forget(idx, summary);
    }
    // What is left in the stores belongs to no saga that was checked: a saga
    // never logged, or an effect that arrived after its saga had settled.
    std::set<std::string> others;
    for (int n : {kCompras, kPagos, kInventario}) {
      for (auto& id : nodes_[n].store.saga_ids()) others.insert(id);
    }
    for (const auto& id : others) {
      auto effects = take_effects(id);
      auto [idx, attempt] = parse_saga_id(id);
      bool was_logged = idx >= 0 && idx < cfg_.sagas && logged_try_[static_cast<std::size_t>(idx)] == attempt;
      std::string why = was_logged ? "effect on a saga after it had settled" : "";
      Slot* evidence = nullptr;
      if (auto it = stale_.find(id); it != stale_.end()) evidence = &it->second;
      static const std::vector<ServiceFault> none;
      const auto& hits = evidence ? evidence->hits : none;
      std::size_t before = checker_.violations();
      for (const auto& c : effects.cs) checker_.orphan(c, why, hits);
      for (const auto& p : effects.ps) checker_.orphan(p, why, hits);
      for (const auto& r : effects.rs) checker_.orphan(r, why, hits);
      if (checker_.violations() > before && evidence) keep_evidence(idx, *evidence);
    }
    std::vector<std::pair<std::string, StockLevel>> stock;
    nodes_[kInventario].store.transact([&](Tx& tx) {
      tx.for_each(Table::Stock, [&](const std::string& k, const Record& r) {
        if (const auto* s = std::get_if<StockLevel>(&r)) stock.emplace_back(k, *s);
      });
      return false;
    });
    auto report = checker_.finish(stock);
    res_.by_state = report.by_state;
    res_.violations = std::move(report.violations);
    for (auto& v : stuck) res_.violations.push_back(std::move(v));
  }

  const SimConfig& cfg_;
  FaultMix mix_;
  std::unique_ptr<SagaLog> sqlite_log_;  // the real saga log, when the mix asks for it
  SagaEngine engine_;
  SplitMix64 net_rng_, crash_rng_, work_rng_;
  FaultSet orch_faults_;
  std::int64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::int64_t deadline_ = INT64_MAX;
  bool healed_ = false;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue_;
  std::deque<Item> ready_;
  Node nodes_[kNodes];
  bool orch_up_ = true;
  std::int64_t orch_up_since_ = -1'000'000;
  int orch_inc_ = 0;
  std::unordered_map<int, Slot> slots_;  // durable: the saga log, until a saga is retired
  std::map<std::string, Slot> stale_;     // faults that hit tries the orchestrator lost before logging them
  std::vector<std::uint8_t> tries_;      // per saga: how often the client asked
  std::vector<std::uint8_t> logged_try_;  // per saga: which try reached the log (0: none)
  std::vector<PendingWrite> writes_;
  std::vector<std::uint32_t> free_writes_;
  std::set<std::string> extra_sagas_;  // second sagas of one key (a violation): not kept in the slots
  bool aborted_ = false;               // a fatal error of the orchestrator's ended the run
  std::int64_t outage_at_ = 0;         // the last crash or restart of a program
  std::vector<int> stuck_;             // open sagas the liveness check found stuck (the run ended there)
  std::int64_t quiet_bound_ = 0;       // how long a saga no fault touches may stay open
  std::map<int, int> acked_unlogged_;  // purchases told a saga id whose start was not yet in the log: the try
  std::set<int> client_retrying_;
  std::vector<int> sequence_;  // scripted mode: the sagas to run, in order
  std::size_t next_in_sequence_ = 0;
  int current_in_sequence_ = -1;
  std::unordered_map<int, Call> calls_;  // calls not yet answered or timed out
  std::vector<RequestSlot> requests_;
  std::vector<std::uint32_t> free_requests_;
  std::vector<std::optional<Reply>> replies_;
  std::vector<std::uint32_t> free_replies_;
  const std::string kOrchestrator = "orquestador";
  const std::vector<std::string> node_names_{kNodeNames, kNodeNames + kNodes};
  const std::string kDrop = "drop", kDuplicate = "duplicate", kCrashOrchestrator = "crash-orquestador",
                    kStray = "stray-request", kRepeat = "client-repeat";
  const std::vector<std::string> fault_names_ = fault_action_names();
  int next_call_ = 0;
  InvariantChecker checker_;
  SimResult res_;
  // The orchestrator and its world.
  SimRuntime runtime_{*this};
  SimTransport transport_{*this};
  SimCrashPoints crashes_{*this};
  SimLog log_{*this};
  std::vector<TaskSlot> tasks_;
  std::vector<std::uint32_t> free_tasks_;
  std::set<int> awaiting_ack_;  // purchases whose client waits for the orchestrator's acknowledgement
  int pending_start_ = -1;      // the purchase whose request the orchestrator is taking
  const SimStrand* running_ = nullptr;  // whose task is running
  std::unordered_map<std::string, std::string> idem_;  // idempotency key -> saga id, until retired
  std::unique_ptr<Orchestrator> orch_;
};

}  // namespace

SimResult run_simulation(const SimConfig& cfg) { return Sim(cfg).run(); }

}  // namespace sagalab
