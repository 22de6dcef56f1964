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
  std::pair<std::uint32_t, std::uint32_t> add_task(std::int64_t t, const SimStrand* strand, std::function<void()> fn);
  void cancel_task(std::uint32_t i, std::uint32_t gen) {
    if (i < tasks_.size() && tasks_[i].gen == gen) tasks_[i].fn = nullptr;
  }
  void run_inline(const SimStrand* strand, const std::function<void()>& fn);
  void run_task(std::uint32_t i);

  void boot_orchestrator();

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

  void acknowledged(int idx, const std::string& id, bool existed, std::exception_ptr error);

  static constexpr std::int64_t kClientWaitMs = 30000;
  void waited(int idx, const std::string& id, int inc, std::int64_t since, const std::optional<Json>& snap);

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

  bool crash_point(const CrashSpot& spot);

  void log_append(const std::string& id, int seq, std::vector<Event> events, const std::optional<SagaLog::Row>& row);

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
                   SagaLog::Done done);
  void finish_write(std::uint32_t i);

  std::exception_ptr write(const std::string& id, int seq, std::vector<Event> events,
                           const std::optional<SagaLog::Row>& row);

  std::vector<std::string> unfinished();

  void send_stray(int idx, const std::string& saga, int node, Request req, std::int64_t after);
  void send_strays(int idx, const SagaState& s);

  void probe_tombstones(const SagaState& s);

  void send_call(StepCall sc, CallMeta m, std::function<void(CallOutcome)> done);

  void resolve(int call_id, std::optional<Reply>&& a, const char* why);

  void note_refusal(const Call& call, int status);

  void crash_orchestrator();

  void restart_orchestrator();

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

}  // namespace sagalab::sim_world
