// The simulator's world, one class in parts (see sim.hpp for what it does).
// Everything runs from one event queue ordered by (virtual time, sequence),
// so a seed replays byte for byte. The class is declared here; its parts are
// defined each in its own file:
//
//   loop.cpp               the event loop, arrivals, scripted runs, liveness
//   orchestrator_host.cpp  the real Orchestrator over the simulator's strands,
//                          timers, transport, crash points and saga log; its
//                          crashes and restarts
//   network.cpp            messages in flight: delay, loss, duplicates
//   nodes.cpp              the four services: their logic, fault rules, crashes
//   clients.cpp            the purchasing clients (acknowledgements, repeats,
//                          waits) and the probes (stray requests by id alone)
//   verdict.cpp            the checker adapter: what each settled saga left in
//                          the services, its history, the run's verdict
//   fault_kinds.cpp        each fault kind in one place: its name, its rate in a
//                          mix, its swarm draw, the service rules it becomes
//   mix.cpp                fault mixes (fixed and swarm), the workload
//   shrink.cpp             delta debugging of a failure into a script
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <unordered_map>

#include "sagalab/contract.hpp"
#include "sagalab/domain.hpp"
#include "sagalab/history.hpp"
#include "sagalab/orchestrator.hpp"
#include "sagalab/purchase.hpp"
#include "sagalab/memory_saga_log.hpp"
#include "sagalab/saga_log.hpp"
#include "sagalab/sim.hpp"
#include "saga_ids.hpp"

namespace sagalab::sim_world {

using sim_ids::parse_saga_id;
using sim_ids::saga_id;

enum NodeId { kCatalogo, kCompras, kPagos, kInventario, kNodes };
inline constexpr const char* kNodeNames[kNodes] = {"ms-catalogo", "ms-compras", "ms-pagos", "ms-inventario"};
inline int node_of(const std::string& svc) {
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

  SimResult run();

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
    int writer = -1;                // the orchestrator that last appended to its log
  };
  // A call of the orchestrator's, until its answer or its timeout.
  struct Call {
    int saga = 0;
    int orch = 0, orch_inc = 0;  // whose call: the orchestrator program and its incarnation
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
    RestartOrchestrator,  // orch
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
    int orch = 0;  // an orchestrator program
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

  void dispatch(const Item& it);

  // Requests in flight: shared by a duplicate and a held copy, freed by the last.
  struct RequestSlot {
    Request req;
    int refs = 0;
  };
  std::uint32_t hold_request(Request req);
  void release_request(std::uint32_t i) {
    if (--requests_[i].refs == 0) free_requests_.push_back(i);
  }
  std::uint32_t hold_reply(Reply&& r);

  void schedule_arrival(int i, std::int64_t prev);

  void setup_nodes();

  void start_next_in_sequence();
  void script_deadline(int idx);

  std::int64_t quiet_bound() const;
  std::int64_t liveness_period() const { return std::max<std::int64_t>(1, quiet_bound_ / 4); }
  void check_liveness();

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
  // With several orchestrators (FaultMix::orchestrators) each is a program
  // of its own over one shared log with leases and fencing (MemorySagaLog):
  // the others take over the sagas of one that crashed or froze.

  struct OrchestratorExit : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  struct SimStrand final : Strand {
    SimStrand(Sim& s, int o, int i) : sim(s), orch(o), inc(i) {}
    // Posted from outside every strand (a network or client event of the
    // simulator's), the work runs at once: nothing else of the orchestrator's
    // runs then, and virtual time does not move. From a strand's work, it waits
    // in the queue for its turn.
    void post(std::function<void()> f) override {
      if (sim.running_ || !sim.runs_now(orch, inc)) return (void)sim.add_task(sim.now_, this, std::move(f));
      sim.run_inline(this, f);
    }
    // The log's completion comes at once, inside this strand's task: it runs there.
    void dispatch(std::function<void()> f) override {
      if (sim.running_ == this) return f();
      post(std::move(f));
    }
    Sim& sim;
    int orch;  // the orchestrator program that made it ...
    int inc;   // ... and its incarnation: its tasks die with it
  };
  struct SimTimer final : Timer {
    SimTimer(Sim& s, std::uint32_t t, std::uint32_t g) : sim(s), task(t), gen(g) {}
    ~SimTimer() override { cancel(); }
    void cancel() override { sim.cancel_task(task, gen); }
    Sim& sim;
    std::uint32_t task, gen;
  };
  // The lease keeper of an orchestrator over a shared log: a task of its own
  // strand every `every` ms, until it is destroyed.
  struct SimTicker final : Ticker {
    SimTicker(Sim& s, int o, std::int64_t ms, std::function<void()> f)
        : sim(s), strand(s, o, s.orchs_[static_cast<std::size_t>(o)].inc), every(ms), tick(std::move(f)) {
      arm();
    }
    ~SimTicker() override { sim.cancel_task(task, gen); }
    void arm() {
      std::tie(task, gen) = sim.add_task(sim.now_ + every, &strand, [this] {
        tick();
        arm();
      });
    }
    Sim& sim;
    SimStrand strand;
    std::int64_t every;
    std::function<void()> tick;
    std::uint32_t task = 0, gen = 0;
  };
  struct SimRuntime final : Runtime {
    SimRuntime(Sim& s, int o) : sim(s), orch(o) {}
    std::int64_t now_ms() override { return sim.now_; }
    double monotonic_s() override { return static_cast<double>(sim.now_) / 1000.0; }
    std::unique_ptr<Strand> make_strand() override {
      return std::make_unique<SimStrand>(sim, orch, sim.orchs_[static_cast<std::size_t>(orch)].inc);
    }
    std::unique_ptr<Timer> start_timer(Strand& on, std::int64_t delay_ms, std::function<void()> fire) override {
      auto [task, gen] = sim.add_task(sim.now_ + delay_ms, &static_cast<SimStrand&>(on), std::move(fire));
      return std::make_unique<SimTimer>(sim, task, gen);
    }
    std::unique_ptr<Ticker> every(std::int64_t ms, std::function<void()> tick) override {
      if (sim.orchs_.size() < 2) throw std::logic_error("the simulator's saga log is not shared: there are no leases to keep");
      return std::make_unique<SimTicker>(sim, orch, ms, std::move(tick));
    }
    std::string new_saga_id() override { return sim.next_saga_id(); }
    // The program would exit: here the orchestrator crashes (run_task and
    // finish_write catch this, outside the orchestrator's frames).
    [[noreturn]] void fatal(const std::string& why) override { throw OrchestratorExit(why); }
    Sim& sim;
    int orch;
  };
  struct SimTransport final : Transport {
    SimTransport(Sim& s, int o) : sim(s), orch(o) {}
    void call(StepCall call, CallMeta meta, std::function<void(CallOutcome)> done) override {
      sim.send_call(orch, std::move(call), std::move(meta), std::move(done));
    }
    Sim& sim;
    int orch;
  };
  struct SimCrashPoints final : CrashPoints {
    SimCrashPoints(Sim& s, int o) : sim(s), orch(o) {}
    bool crash(const SagaDefinition&, const CrashSpot& spot) override { return sim.crash_point(orch, spot); }
    Sim& sim;
    int orch;
  };
  // The orchestrator's durable log: each logged saga's events in its slot
  // (and, when the mix asks for it, in the real SQLite log, whose query for
  // unfinished sagas and decoding of events recovery then uses). Writes are
  // durable at once; nothing is lost by a crash. With several orchestrators
  // the log is the shared in-memory one (`shared`, this orchestrator's handle:
  // its leases, its fencing), and what it accepts is kept in the slots too,
  // for the checker.
  struct SimLog final : SagaLog {
    SimLog(Sim& s, int o, MemorySagaLog* sh) : sim(s), orch(o), shared_log(sh) {}
    void append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
                std::int64_t, Done done) override {
      if (sim.mix_.log_delay_ms > 0)
        return sim.start_write(orch, saga_id, seq, std::move(events), std::move(row), std::move(done));
      done(sim.write(orch, saga_id, seq, std::move(events), row));
    }
    void append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                    const std::optional<Row>& row, std::int64_t) override {
      if (shared_log) shared_log->append_now(saga_id, seq, events, row, sim.now_);
      sim.log_append(orch, saga_id, seq, events, row);
    }
    void snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) override {
      if (shared_log) return shared_log->snapshot(saga_id, std::move(done));
      auto events = this->events(saga_id);
      if (events.empty()) return done(std::nullopt);
      SplitMix64 rng(0);
      done(to_json(sim.engine_.replay(events, rng), sim.engine_.definition()));
    }
    void find_by_idem(const std::string& key,
                      std::function<void(std::optional<std::string>, std::exception_ptr)> done) override {
      if (shared_log) return shared_log->find_by_idem(key, std::move(done));
      auto it = sim.idem_.find(key);
      done(it == sim.idem_.end() ? std::nullopt : std::optional<std::string>(it->second), nullptr);
    }
    std::vector<std::string> unfinished() override {
      return shared_log ? shared_log->unfinished() : sim.unfinished();
    }
    std::vector<Event> events(const std::string& saga_id) override {
      if (shared_log) return shared_log->events(saga_id);
      if (sim.sqlite_log_) return sim.sqlite_log_->events(saga_id);
      Slot* s = sim.slot_of(saga_id);
      return s ? s->log : std::vector<Event>{};
    }
    const std::vector<Event>* events_in_memory(const std::string& saga_id) override {
      if (sim.sqlite_log_ || shared_log) return nullptr;  // recovery reads the real log's rows, or the shared log's
      Slot* s = sim.slot_of(saga_id);
      return s ? &s->log : nullptr;
    }
    std::vector<Json> list(const std::string&, int) override { return {}; }
    void reset() override { throw std::logic_error("the simulator's saga log is never reset"); }
    void close() override {}
    void observe_batches(std::function<void(std::size_t)>) override {}
    bool stores_snapshots() const override { return sim.sqlite_log_ != nullptr || shared_log != nullptr; }
    bool shared() const override { return shared_log != nullptr; }
    std::vector<std::string> claim(bool startup) override {
      return shared_log ? shared_log->claim(startup) : SagaLog::claim(startup);
    }
    std::size_t renew(const std::vector<std::string>& driving) override {
      return shared_log ? shared_log->renew(driving) : 0;
    }
    void release(const std::string& saga_id) override {
      if (shared_log) shared_log->release(saga_id);
    }
    Sim& sim;
    int orch;
    MemorySagaLog* shared_log;
  };

  // One orchestrator program: its world (runtime, transport, crash points,
  // log handle), the object while it is up, and its incarnation (a global
  // number: the tasks, calls and writes of an earlier one die with it).
  struct OrchProgram {
    std::unique_ptr<MemorySagaLog> shared_log;  // with several orchestrators
    std::unique_ptr<SimRuntime> runtime;
    std::unique_ptr<SimTransport> transport;
    std::unique_ptr<SimCrashPoints> crashes;
    std::unique_ptr<SimLog> log;
    bool up = true;
    int inc = 0;
    std::int64_t up_since = -1'000'000;
    std::int64_t frozen_until = 0;  // a frozen program (a long pause) runs nothing before then
    std::unique_ptr<Orchestrator> obj;  // last: goes first
  };
  OrchProgram& program(int k) { return orchs_[static_cast<std::size_t>(k)]; }
  // Whether work of orchestrator k's incarnation inc may run now.
  bool runs_now(int k, int inc) { return program(k).inc == inc && answers(k); }
  // Up and not frozen: it runs its work and takes requests.
  bool answers(int k) { return program(k).up && program(k).frozen_until <= now_; }
  bool alive(int k, int inc) {
    const auto& p = orchs_[static_cast<std::size_t>(k)];
    return p.inc == inc && p.up;
  }
  // The orchestrator a client's request reaches (a load balancer's pick
  // among those that answer), or -1 when none does.
  int pick_orchestrator();

  // Continuations of the orchestrator's, in the event queue. A task of a
  // crashed orchestrator never runs.
  struct TaskSlot {
    std::function<void()> fn;
    const SimStrand* strand = nullptr;
    int orch = 0, inc = 0;
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
  std::pair<std::uint32_t, std::uint32_t> add_task(std::int64_t t, const SimStrand* strand, std::function<void()> fn);
  void cancel_task(std::uint32_t i, std::uint32_t gen) {
    if (i < tasks_.size() && tasks_[i].gen == gen) tasks_[i].fn = nullptr;
  }
  void run_inline(const SimStrand* strand, const std::function<void()>& fn);
  void run_task(std::uint32_t i);

  void boot_orchestrator(int k);

  void teardown();

  // ---- the clients ---------------------------------------------------------

  static std::string idem_key_of(int idx);

  void start_saga(int idx);

  // What purchase idx's client asks for: the plan, and now and then an amount
  // of its own (a pure function of the seed, so that the verdict can read it again).
  struct ClientAmount {
    std::optional<double> sent;
    bool wrong = false;
  };
  ClientAmount client_amount_of(int idx, const SagaPlan& plan) const;
  static double price_of(const SagaPlan& plan);
  SagaContext request_of(int idx) const;

  std::string next_saga_id();

  void acknowledged(int idx, int k, const std::string& id, bool existed, std::exception_ptr error);

  static constexpr std::int64_t kClientWaitMs = 30000;
  void waited(int idx, const std::string& id, int k, int inc, std::int64_t since, const std::optional<Json>& snap);

  void check_acknowledged();

  void repeat_request(int idx);

  void check_same_saga(int idx, const std::string& id, bool existed);

  Slot* slot_of(const std::string& id) {
    auto [idx, attempt] = parse_saga_id(id);
    if (idx < 0 || idx >= cfg_.sagas || logged_try_[static_cast<std::size_t>(idx)] != attempt) return nullptr;
    auto it = slots_.find(idx);
    return it == slots_.end() ? nullptr : &it->second;
  }

  void note_fault(const std::string& id, const std::string& svc, FiredFault f);

  static FaultRule replay_rule(const FiredFault& f);

  bool crash_point(int k, const CrashSpot& spot);

  void log_append(int k, const std::string& id, int seq, std::vector<Event> events,
                  const std::optional<SagaLog::Row>& row);

  // A write in flight (log_delay_ms): durable when its LogWrite comes, lost
  // if the orchestrator that made it crashes first.
  struct PendingWrite {
    std::string saga_id;
    int seq = 0;
    std::vector<Event> events;
    std::optional<SagaLog::Row> row;
    std::optional<SagaState> state;  // the row's (its pointer is the orchestrator's, valid only during append)
    SagaLog::Done done;
    int orch = 0, inc = 0;
  };
  void start_write(int k, const std::string& id, int seq, std::vector<Event> events,
                   std::optional<SagaLog::Row> row, SagaLog::Done done);
  void finish_write(std::uint32_t i);

  std::exception_ptr write(int k, const std::string& id, int seq, std::vector<Event> events,
                           const std::optional<SagaLog::Row>& row);

  std::vector<std::string> unfinished();

  void send_stray(int idx, const std::string& saga, int node, Request req, std::int64_t after);
  void send_strays(int idx, const SagaState& s);

  void probe_tombstones(const SagaState& s);

  void send_call(int k, StepCall sc, CallMeta m, std::function<void(CallOutcome)> done);

  void resolve(int call_id, std::optional<Reply>&& a, const char* why);

  void note_refusal(const Call& call, int status);

  void crash_orchestrator(int k);

  void restart_orchestrator(int k);

  // ---- network and services -----------------------------------------------

  void record_drop(int node, const Request& req, int attempt, FaultAction action, const char* name = "network-drop");

  void send_request(int call_id, int node, int attempt, Request req);

  void send_response(int call_id, Reply&& a, int node, std::uint32_t req, int attempt);

  Reply error_reply(const FiredFault& f);

  void receive_request(int call_id, int n, int inc, int attempt, std::uint32_t slot);

  Reply process(Node& node, std::uint32_t slot);

  void record_fired(int node, const FiredFault& f) { note_fault(f.saga_id, node_names_[static_cast<std::size_t>(node)], f); }

  void crash_service(int n);

  void heal();

  // ---- the verdict ----------------------------------------------------------

  struct Effects {
    std::vector<Compra> cs;
    std::vector<Pago> ps;
    std::vector<Reserva> rs;
  };

  Effects take_effects(const std::string& id);

  void check_and_forget(int idx, const SagaSummary& summary);

  void check_request(int idx, const SagaSummary& summary, const Effects& e, const std::vector<ServiceFault>& hits);

  void check_waiter(const SagaSummary& summary, const Slot& slot);

  void check_protocol(int idx, const SagaSummary& summary, Slot& slot);

  void check_unlogged_try(int idx, Slot& slot, int try_no);

  void keep_evidence(int idx, Slot& slot);

  void retire(int idx);

  void finish();

  const SimConfig& cfg_;
  FaultMix mix_;
  std::unique_ptr<SqliteSagaLog> sqlite_log_;  // the real saga log, when the mix asks for it
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
                    kStray = "stray-request", kRepeat = "client-repeat", kFreezeOrchestrator = "freeze-orquestador";
  // With several orchestrators: how long a lease lasts (the program's
  // --lease-ms; it renews every quarter of it).
  static constexpr std::int64_t kLeaseMs = 600;
  const std::vector<std::string> fault_names_ = fault_action_names();
  int next_call_ = 0;
  InvariantChecker checker_;
  SimResult res_;
  // The orchestrators and their world.
  std::unique_ptr<MemoryLogStore> shared_store_;  // with several orchestrators: the log they share
  std::vector<OrchProgram> orchs_;
  int next_inc_ = 0;
  std::vector<TaskSlot> tasks_;
  std::vector<std::uint32_t> free_tasks_;
  std::map<int, int> awaiting_ack_;  // purchases whose client waits for an acknowledgement: from which orchestrator
  int pending_start_ = -1;      // the purchase whose request the orchestrator is taking
  const SimStrand* running_ = nullptr;  // whose task is running
  std::unordered_map<std::string, std::string> idem_;  // idempotency key -> saga id, until retired
};

}  // namespace sagalab::sim_world
