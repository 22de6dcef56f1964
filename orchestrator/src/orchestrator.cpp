// The orchestrator's saga runner (see orchestrator.hpp).
#include "sagalab/orchestrator.hpp"

#include <algorithm>
#include <future>

#include "sagalab/errors.hpp"
#include "sagalab/purchase.hpp"

namespace sagalab {

std::string crash_point_name(const SagaDefinition& def, const CrashSpot& spot) {
  return "log:" + def.steps[static_cast<std::size_t>(spot.step)].name + ":" + spot.when;
}

struct Orchestrator::Run {
  Run(Orchestrator& o, Runtime& rt) : owner(o), strand(rt.make_strand()) {}
  Orchestrator& owner;
  // Everything below is touched only on the strand (but `answer`, below).
  std::unique_ptr<Strand> strand;
  std::string id;
  std::string idem;
  SagaState state;
  int seq = 0;
  SplitMix64 rng{0};
  std::unique_ptr<Timer> timer;
  bool settled = false;  // terminal or atascada
  bool dropped = false;  // another orchestrator drives it now: nothing more happens here
  // An event is applied to `state` but not yet durable: reads of the state
  // wait in `reads` until it is (a view must not show what the log could still lose).
  bool writing = false;
  std::vector<Snapshot> reads;
  std::function<void()> durable;  // what follows once the event being written is durable
  // The one call outstanding: its command, when it was sent, and its outcome,
  // written by the transport's completion just before it posts to the strand.
  Command call;
  double call_sent = 0;
  CallOutcome answer;
  Started on_start;      // create()'s caller, told once the start is durable
  std::vector<Started> repeats;  // requests repeated with its key before the start was durable: told then too
  // Waiters of POST /compra: called once, with the snapshot, when the saga settles.
  std::vector<std::function<void(const Json&)>> waiters;
  std::int64_t wait_until = 0;  // when the last of them times out (runtime ms)
};

namespace {
bool settled_snapshot(const std::optional<Json>& snap) {
  if (!snap || !snap->is_object()) return false;
  const auto estado = snap->value("estado", "");
  return estado == "completada" || estado == "compensada" || estado == "atascada";
}
}  // namespace

Orchestrator::Orchestrator(SagaDefinition def, OrchestratorEnv env, OrchestratorOptions opts)
    : engine_(std::move(def)),
      env_(env),
      observer_(env.observer ? *env.observer : none_),
      opts_(std::move(opts)),
      rng_(opts_.seed) {}

Orchestrator::~Orchestrator() {
  stop();
  // A run's pending continuation holds the run (a write that will never
  // complete: the orchestrator crashed or stopped): break those cycles.
  for (auto& [id, run] : runs_) {
    run->durable = nullptr;
    run->repeats.clear();
    run->on_start = nullptr;
    run->waiters.clear();
    run->reads.clear();
  }
  for (auto& [id, run] : followed_) {
    run->timer.reset();
    run->waiters.clear();
  }
}

void Orchestrator::stop() {
  std::unique_ptr<Ticker> keeper;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    keeper = std::move(keeper_);
  }
  keeper.reset();  // outside the lock: the keeper's last round may be taking it
}

bool Orchestrator::stopped() const {
  std::lock_guard lock(mutex_);
  return stopped_;
}

void Orchestrator::log_line(const Json& line, bool error) { observer_.log(line, error); }

std::uint64_t Orchestrator::random() {
  std::lock_guard lock(mutex_);
  return rng_.next();
}

std::size_t Orchestrator::active() const {
  std::lock_guard lock(mutex_);
  return runs_.size();
}

std::shared_ptr<Orchestrator::Run> Orchestrator::find(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : it->second;
}

bool Orchestrator::adopt(const std::string& id) {
  if (find(id)) return false;
  auto run = std::make_shared<Run>(*this, env_.runtime);
  run->id = id;
  run->rng = SplitMix64(opts_.seed ^ std::hash<std::string>{}(id));
  std::vector<Event> read;
  const auto* events = env_.log.events_in_memory(id);
  if (!events) {
    read = env_.log.events(id);
    events = &read;
  }
  run->state = engine_.replay(*events, run->rng);
  run->seq = static_cast<int>(events->size());
  run->settled = run->state.estado == Estado::Atascada;
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || runs_.count(id)) return false;
    runs_[id] = run;
  }
  if (run->settled) observer_.stuck_held(+1);
  Event e;
  e.type = Event::Type::Recovered;
  e.now_ms = env_.runtime.now_ms();
  run->strand->post([this, run, e = std::move(e)]() mutable { deliver(run, std::move(e)); });
  return true;
}

std::size_t Orchestrator::adopt_all(const std::vector<std::string>& ids) {
  std::size_t n = 0;
  for (const auto& id : ids) {
    try {
      n += adopt(id) ? 1 : 0;
    } catch (const std::exception& e) {
      // Held but not driven would be forgotten: give it back for the next claim.
      log_line({{"event", "adopt-failed"}, {"saga_id", id}, {"error", e.what()}}, true);
      env_.log.release(id);
    }
  }
  return n;
}

std::size_t Orchestrator::recover() {
  auto n = adopt_all(env_.log.claim(true));
  std::lock_guard lock(mutex_);
  if (env_.log.shared() && !keeper_ && !stopped_)
    keeper_ = env_.runtime.every(opts_.claim_every_ms, [this] { keep_leases(); });
  return n;
}

// With a shared log: renews this orchestrator's leases and takes over the
// sagas of orchestrators that stopped renewing theirs.
void Orchestrator::keep_leases() {
  std::vector<std::string> driving;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    for (const auto& [id, run] : runs_) driving.push_back(id);
  }
  try {
    env_.log.renew(driving);
    auto n = adopt_all(env_.log.claim(false));
    if (n > 0)
      log_line({{"ts", env_.runtime.now_ms()}, {"program", "orquestador"}, {"event", "took-over"}, {"sagas", n}});
  } catch (const std::exception& e) {
    // The log is unreachable for now: leases lapse and someone else may take
    // these sagas; their next append here then fails and drops them.
    log_line({{"event", "lease-renewal-failed"}, {"error", e.what()}}, true);
  }
}

void Orchestrator::drop(const std::shared_ptr<Run>& run, SagaLogConflict::Kind kind, const std::string& why) {
  run->dropped = true;
  run->durable = nullptr;  // the write was refused: what would have followed never will
  if (run->timer) run->timer->cancel();
  {
    std::lock_guard lock(mutex_);
    if (auto it = runs_.find(run->id); it != runs_.end() && it->second == run) runs_.erase(it);
    if (auto it = idem_.find(run->idem); !run->idem.empty() && it != idem_.end() && it->second == run->id)
      idem_.erase(it);
  }
  if (run->settled && run->state.estado == Estado::Atascada) observer_.stuck_held(-1);
  log_line({{"ts", env_.runtime.now_ms()},
            {"program", "orquestador"},
            {"event", "saga-dropped"},
            {"saga_id", run->id},
            {"reason", why}});
  // Reads that waited for a write that will not happen: the log has what is durable.
  for (auto& r : std::exchange(run->reads, {})) env_.log.snapshot(run->id, std::move(r));
  if (kind == SagaLogConflict::Kind::IdemTaken) {
    // A replica started a saga with this key first: that one is the answer.
    auto waiting = std::exchange(run->repeats, {});
    if (run->on_start) waiting.insert(waiting.begin(), std::exchange(run->on_start, {}));
    env_.log.find_by_idem(run->idem, [waiting = std::move(waiting), key = run->idem](
                                         std::optional<std::string> id, std::exception_ptr error) {
      for (const auto& started : waiting) {
        if (error) {
          started("", false, error);
        } else if (!id) {
          started("", false,
                  std::make_exception_ptr(ClientError(409, "idempotency key '" + key + "' is taken; retry the request")));
        } else {
          started(*id, true, nullptr);
        }
      }
    });
    return;
  }
  env_.log.release(run->id);  // the next claim, here or elsewhere, replays it from the log
  // Its waiters are not answered with what this orchestrator last knew (the
  // saga runs on elsewhere): they follow the log until it settles there.
  if (!run->waiters.empty()) follow(run);
}

void Orchestrator::follow(const std::shared_ptr<Run>& dropped) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    followed_[dropped->id] = dropped;
  }
  std::weak_ptr<Run> weak = dropped;
  dropped->timer = env_.runtime.start_timer(*dropped->strand, opts_.claim_every_ms, [this, weak] {
    auto due = weak.lock();
    if (!due) return;
    env_.log.snapshot(due->id, [this, weak](std::optional<Json> snap) {
      auto read_back = weak.lock();
      if (!read_back) return;
      read_back->strand->post([this, weak, snap = std::move(snap)] {
        auto run = weak.lock();
        if (!run) return;
        const bool done = settled_snapshot(snap) || env_.runtime.now_ms() >= run->wait_until;
        if (!done) return follow(run);
        if (snap) {
          for (auto& w : std::exchange(run->waiters, {})) w(*snap);
        }
        run->waiters.clear();  // timed out: each waiter's own timer answers it from the log
        std::lock_guard lock(mutex_);
        if (auto it = followed_.find(run->id); it != followed_.end() && it->second == run) followed_.erase(it);
      });
    });
  });
}

// A request repeated with the key of a saga starting here: answered with its
// id once its start is durable, never before (a crash could still lose it).
void Orchestrator::repeat_of(const std::shared_ptr<Run>& run, Started done) {
  run->strand->post([run, done = std::move(done)]() mutable {
    if (run->seq > 0) return done(run->id, true, nullptr);
    run->repeats.push_back(std::move(done));
  });
}

void Orchestrator::start(SagaContext ctx, const std::string& idem_key, Started done) {
  if (!idem_key.empty()) {
    std::shared_ptr<Run> running;
    {
      std::lock_guard lock(mutex_);
      if (auto it = idem_.find(idem_key); it != idem_.end()) {
        if (auto r = runs_.find(it->second); r != runs_.end()) running = r->second;
      }
    }
    if (running) return repeat_of(running, std::move(done));
    // A finished (or adopted) saga with this key is in the log only; asked on the log's thread.
    env_.log.find_by_idem(idem_key, [this, ctx = std::move(ctx), idem_key, done = std::move(done)](
                                        std::optional<std::string> id, std::exception_ptr error) mutable {
      if (error) return done("", false, error);
      if (id) return done(*id, true, nullptr);
      create(std::move(ctx), idem_key, std::move(done));
    });
    return;
  }
  create(std::move(ctx), idem_key, std::move(done));
}

void Orchestrator::create(SagaContext ctx, const std::string& idem_key, Started done) {
  auto run = std::make_shared<Run>(*this, env_.runtime);
  run->id = env_.runtime.new_saga_id();
  run->idem = idem_key;
  run->rng = SplitMix64(opts_.seed ^ std::hash<std::string>{}(run->id));
  {
    std::unique_lock lock(mutex_);
    if (stopped_) return;  // down: the client is never told, and retries
    if (runs_.size() >= opts_.max_in_flight) {
      auto error = std::make_exception_ptr(ClientError(
          503, "too many sagas in flight (" + std::to_string(opts_.max_in_flight) + "); retry later"));
      return done("", false, error);
    }
    if (!idem_key.empty()) {
      auto [it, inserted] = idem_.emplace(idem_key, run->id);
      if (!inserted) {
        if (auto r = runs_.find(it->second); r != runs_.end()) {
          auto first = r->second;
          lock.unlock();
          return repeat_of(first, std::move(done));
        }
        return done(it->second, true, nullptr);
      }
    }
    runs_[run->id] = run;
  }
  Event e;
  e.type = Event::Type::Start;
  e.now_ms = env_.runtime.now_ms();
  e.saga_id = run->id;
  e.ctx = std::make_shared<const SagaContext>(std::move(ctx));
  // The id goes to the client only once the start is durable.
  run->on_start = std::move(done);
  run->strand->post([this, run, e = std::move(e)]() mutable {
    deliver(run, std::move(e), [run] {
      if (auto started = std::exchange(run->on_start, {})) started(run->id, false, nullptr);
      for (auto& repeat : std::exchange(run->repeats, {})) repeat(run->id, true, nullptr);
    });
  });
}

void Orchestrator::snapshot(const std::string& id, Snapshot done) { wait(id, 0, std::move(done)); }

void Orchestrator::wait(const std::string& id, std::int64_t timeout_ms, Snapshot done) {
  auto run = find(id);
  if (!run) {
    env_.log.snapshot(id, std::move(done));
    return;
  }
  run->strand->post([this, run, timeout_ms, done = std::move(done)]() mutable {
    if (run->settled || timeout_ms <= 0) return read(*run, std::move(done));
    struct Waiting {
      bool answered = false;
      std::unique_ptr<Timer> timer;
    };
    auto w = std::make_shared<Waiting>();
    run->wait_until = std::max(run->wait_until, env_.runtime.now_ms() + timeout_ms);
    run->waiters.push_back([w, done](const Json& snap) {
      if (std::exchange(w->answered, true)) return;
      w->timer.reset();
      done(snap);
    });
    w->timer = env_.runtime.start_timer(*run->strand, timeout_ms, [this, run, w, done] {
      if (std::exchange(w->answered, true)) return;
      if (run->dropped) return env_.log.snapshot(run->id, done);  // driven elsewhere: the log knows
      read(*run, done);
    });
  });
}

std::map<std::string, Json> Orchestrator::live_snapshots() {
  std::vector<std::shared_ptr<Run>> runs;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, run] : runs_) runs.push_back(run);
  }
  std::map<std::string, Json> out;
  for (const auto& run : runs) {
    auto p = std::make_shared<std::promise<Json>>();
    auto f = p->get_future();
    run->strand->post([this, run, p] {
      read(*run, [p](std::optional<Json> snap) { p->set_value(snap ? std::move(*snap) : Json()); });
    });
    if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready) {
      auto snap = f.get();
      if (!snap.is_null()) out[run->id] = std::move(snap);
    }
  }
  return out;
}

void Orchestrator::read(Run& run, Snapshot done) {
  if (run.writing) return run.reads.push_back(std::move(done));
  done(to_json(run.state, engine_.definition()));
}

CrashSpot Orchestrator::spot_of(const Run& run, const Event& e) {
  CrashSpot spot;
  spot.step = log_step_of(e, run.state);
  spot.saga_id = &run.id;
  spot.attempt = run.state.steps.empty() ? 1 : std::max(run.state.steps[static_cast<std::size_t>(spot.step)].attempts, 1);
  spot.compensating = run.state.compensating;
  return spot;
}

bool Orchestrator::crash_point(CrashSpot spot, const char* when) {
  if (!env_.crashes) return false;
  spot.when = when;
  if (!env_.crashes->crash(engine_.definition(), spot)) return false;
  stop();
  return true;
}

// On the run's strand: applies the event to the run's state, and appends it
// to the log; the rest happens in logged(), once it is durable (advance_saga
// keeps that order). Until then reads of the state wait.
void Orchestrator::deliver(const std::shared_ptr<Run>& run, Event&& event, std::function<void()> after_log) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || run->dropped) return;
  }
  // The event goes to the log as it is (moved, not copied): `e` reads it until the append.
  std::vector<Event> batch;
  batch.push_back(std::move(event));
  const Event& e = batch.front();
  // The crash points of this event's write, read from the state before it.
  const CrashSpot spot = spot_of(*run, e);
  const Estado before = run->state.estado;
  const bool start = e.type == Event::Type::Start;
  const std::int64_t now = e.now_ms;
  auto append = [this, run, spot, &batch](const Event& ev, Estado was, const SagaState& next, auto durable) {
    if (crash_point(spot, "before")) return;
    observer_.log_appended();
    run->durable = std::move(durable);
    auto row = env_.log.row_of(engine_.definition(), ev, was, next, run->idem);
    const auto at = ev.now_ms;
    env_.log.append(run->id, run->seq + 1, std::move(batch), std::move(row), at,
                    [run](std::exception_ptr error) { run->owner.appended(run, error); });
  };
  run->writing = true;
  advance_saga(engine_, run->state, e, run->rng, append,
               [this, run, spot, before, start, now, after_log = std::move(after_log)](std::vector<Command> commands) {
                 logged(run, spot, before, start, now, std::move(commands));
                 if (after_log && !stopped()) after_log();
               });
}

// On the log's thread (or the strand): the event's write ended.
void Orchestrator::appended(const std::shared_ptr<Run>& run, std::exception_ptr error) {
  if (error) {
    // Without a durable log the saga must not move on: stop here and let
    // recovery pick it up from what was written.
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const SagaLogConflict& c) {
      // Another orchestrator drives it: nothing of this event was written.
      run->strand->post([this, run, kind = c.kind, why = std::string(c.what())] { drop(run, kind, why); });
      return;
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    log_line({{"event", "log-write-failed"}, {"saga_id", run->id}, {"error", what}}, true);
    env_.runtime.fatal("saga log write failed");
  }
  run->strand->dispatch(std::exchange(run->durable, {}));
}

void Orchestrator::logged(const std::shared_ptr<Run>& run, const CrashSpot& spot, Estado before, bool start,
                          std::int64_t now_ms, std::vector<Command> commands) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || run->dropped) return;
  }
  ++run->seq;
  if (crash_point(spot, "after")) return;
  run->writing = false;
  const Estado after = run->state.estado;
  if (start) observer_.saga_started();
  if (after != before) observer_.state_changed(before, after, std::max<std::int64_t>(0, now_ms - run->state.started_ms));
  const bool terminal = is_terminal(after);
  run->settled = terminal || after == Estado::Atascada;
  if (terminal) {
    std::lock_guard lock(mutex_);
    runs_.erase(run->id);
    if (!run->idem.empty()) idem_.erase(run->idem);
  }
  if (!run->reads.empty() || (run->settled && !run->waiters.empty())) {
    const auto snap = to_json(run->state, engine_.definition());
    for (auto& r : std::exchange(run->reads, {})) r(snap);
    if (run->settled) {
      for (auto& w : std::exchange(run->waiters, {})) w(snap);
    }
  }
  for (const auto& c : commands) execute(run, c);
}

void Orchestrator::execute(const std::shared_ptr<Run>& run, const Command& c) {
  switch (c.type) {
    case Command::Type::Finish:
      return;
    case Command::Type::Schedule: {
      auto delay = std::max<std::int64_t>(0, c.at_ms - env_.runtime.now_ms());
      run->timer = env_.runtime.start_timer(*run->strand, delay,
                                            [this, run, step = c.step, attempt = c.attempt, comp = c.compensation] {
        Event e;
        e.type = Event::Type::Timer;
        e.now_ms = env_.runtime.now_ms();
        e.step = step;
        e.attempt = attempt;
        e.compensation = comp;
        deliver(run, std::move(e));
      });
      return;
    }
    case Command::Type::Call: {
      const auto& def = engine_.definition();
      StepCall call = build_step_call(def, run->state, c);
      const auto& step = def.steps[static_cast<std::size_t>(c.step)].name;
      observer_.call_sent(step, c.attempt, c.compensation);
      CallMeta meta;
      meta.saga_id = run->id;
      meta.step = c.step;
      meta.step_name = &step;
      meta.compensation = c.compensation;
      meta.attempt = c.attempt;
      meta.idempotency_key = c.idempotency_key;
      meta.trace_id = run->state.ctx.trace_id;
      meta.timeout_ms = c.timeout_ms;
      // A saga has one call or timer outstanding at a time: the call's
      // command and its outcome wait in the run.
      run->call = c;
      run->call_sent = env_.runtime.monotonic_s();
      env_.transport.call(std::move(call), std::move(meta), [run](CallOutcome&& r) {  // (by reference: std::function passes its argument on as an rvalue)
        run->answer = std::move(r);  // the strand reads it only once the post below runs
        run->strand->post([run] { run->owner.answered(run); });
      });
      return;
    }
  }
}

void Orchestrator::answered(const std::shared_ptr<Run>& run) {
  // Read against the state the call was made from, where the transport left
  // it (not moved out: an answer's strings are most of what a move copies).
  const Command& c = run->call;
  auto ev = interpret_answer(engine_.definition(), run->state, c, run->answer.answer, run->answer.error,
                             env_.runtime.now_ms());
  run->answer.answer.reset();
  observer_.call_answered(engine_.definition().steps[static_cast<std::size_t>(c.step)].name, c.compensation,
                          ev.outcome, env_.runtime.monotonic_s() - run->call_sent);
  deliver(run, std::move(ev));
}

}  // namespace sagalab
