// The orchestrator's saga runner (see orchestrator.hpp).
#include "sagalab/orchestrator.hpp"

#include <cstdio>
#include <future>
#include <iostream>
#include <random>

#include "sagalab/errors.hpp"
#include "sagalab/metrics.hpp"
#include "sagalab/purchase.hpp"

namespace sagalab {

namespace asio = boost::asio;

namespace {
// One JSON line, written by one call: lines from several threads (the lease
// keeper, the strands) never interleave.
void log_line(std::ostream& out, const Json& j) { out << (j.dump() + "\n") << std::flush; }
}  // namespace

struct Orchestrator::Run {
  explicit Run(asio::io_context& io) : strand(asio::make_strand(io)) {}
  // Everything below is touched only on the strand.
  asio::strand<asio::io_context::executor_type> strand;
  std::string id;
  std::string idem;
  SagaState state;
  int seq = 0;
  SplitMix64 rng{0};
  std::unique_ptr<asio::steady_timer> timer;
  bool settled = false;  // terminal or atascada
  bool dropped = false;  // another orchestrator drives it now: nothing more happens here
  Started on_start;      // create()'s caller, told once the start is durable
  // Waiters of POST /compra: called once, with the snapshot, when the saga settles.
  std::vector<std::function<void(const Json&)>> waiters;
};

Orchestrator::Orchestrator(SagaDefinition def, SagaLog& log, FaultGate& faults, OrchestratorOptions opts,
                           asio::io_context& io)
    : engine_(std::move(def)), log_(log), faults_(faults), opts_(std::move(opts)), io_(io), rng_(opts_.seed) {
  for (const auto& step : engine_.definition().steps) {
    auto it = opts_.service_urls.find(step.service);
    if (it == opts_.service_urls.end())
      throw std::invalid_argument("no URL configured for service " + step.service);
    if (!pools_.count(step.service))
      pools_[step.service] = std::make_unique<AsyncClientPool>(io_, it->second, opts_.pool_size);
  }
}

Orchestrator::~Orchestrator() { stop(); }

void Orchestrator::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
  if (keeper_.joinable() && keeper_.get_id() != std::this_thread::get_id()) keeper_.join();
}

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
  auto run = std::make_shared<Run>(io_);
  run->id = id;
  run->rng = SplitMix64(opts_.seed ^ std::hash<std::string>{}(id));
  auto events = log_.events(id);
  run->state = engine_.replay(events, run->rng);
  run->seq = static_cast<int>(events.size());
  run->settled = run->state.estado == Estado::Atascada;
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || runs_.count(id)) return false;
    runs_[id] = run;
  }
  if (run->settled) Metrics::get().stuck.Increment();
  Event e;
  e.type = Event::Type::Recovered;
  e.now_ms = wall_ms();
  asio::post(run->strand, [this, run, e] { deliver(run, e); });
  return true;
}

std::size_t Orchestrator::adopt_all(const std::vector<std::string>& ids) {
  std::size_t n = 0;
  for (const auto& id : ids) {
    try {
      n += adopt(id) ? 1 : 0;
    } catch (const std::exception& e) {
      // Held but not driven would be forgotten: give it back for the next claim.
      log_line(std::cerr, {{"event", "adopt-failed"}, {"saga_id", id}, {"error", e.what()}});
      log_.release(id);
    }
  }
  return n;
}

std::size_t Orchestrator::recover() {
  auto n = adopt_all(log_.claim(true));
  if (log_.shared() && !keeper_.joinable()) keeper_ = std::thread([this] { keep_leases(); });
  return n;
}

// With a shared log: renews this orchestrator's leases and takes over the
// sagas of orchestrators that stopped renewing theirs.
void Orchestrator::keep_leases() {
  std::unique_lock lock(mutex_);
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(opts_.claim_every_ms), [this] { return stopped_; })) {
    std::vector<std::string> driving;
    for (const auto& [id, run] : runs_) driving.push_back(id);
    lock.unlock();
    try {
      log_.renew(driving);
      auto n = adopt_all(log_.claim(false));
      if (n > 0)
        log_line(std::cout, {{"ts", wall_ms()}, {"program", "orquestador"}, {"event", "took-over"}, {"sagas", n}});
    } catch (const std::exception& e) {
      // The log is unreachable for now: leases lapse and someone else may take
      // these sagas; their next append here then fails and drops them.
      log_line(std::cerr, {{"event", "lease-renewal-failed"}, {"error", e.what()}});
    }
    lock.lock();
  }
}

void Orchestrator::drop(const std::shared_ptr<Run>& run, SagaLogConflict::Kind kind, const std::string& why) {
  run->dropped = true;
  if (run->timer) run->timer->cancel();
  {
    std::lock_guard lock(mutex_);
    if (auto it = runs_.find(run->id); it != runs_.end() && it->second == run) runs_.erase(it);
    if (auto it = idem_.find(run->idem); !run->idem.empty() && it != idem_.end() && it->second == run->id)
      idem_.erase(it);
  }
  if (run->settled && run->state.estado == Estado::Atascada) Metrics::get().stuck.Decrement();
  log_line(std::cout,
           {{"ts", wall_ms()}, {"program", "orquestador"}, {"event", "saga-dropped"}, {"saga_id", run->id}, {"reason", why}});
  if (kind == SagaLogConflict::Kind::IdemTaken) {
    // A replica started a saga with this key first: that one is the answer.
    log_.find_by_idem(run->idem, [started = std::move(run->on_start), key = run->idem](
                                     std::optional<std::string> id, std::exception_ptr error) {
      if (!started) return;
      if (error) return started("", false, error);
      if (!id) return started("", false, std::make_exception_ptr(ClientError(409, "idempotency key '" + key +
                                                                                   "' is taken; retry the request")));
      started(*id, true, nullptr);
    });
    return;
  }
  log_.release(run->id);  // the next claim, here or elsewhere, replays it from the log
  answer_waiters(*run);
}

void Orchestrator::answer_waiters(Run& run) {
  if (run.waiters.empty()) return;
  auto snap = to_json(run.state, engine_.definition());
  auto waiters = std::move(run.waiters);
  run.waiters.clear();
  for (auto& w : waiters) w(snap);
}

void Orchestrator::start(SagaContext ctx, const std::string& idem_key, Started done) {
  if (!idem_key.empty()) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = idem_.find(idem_key); it != idem_.end()) {
        auto id = it->second;
        done(id, true, nullptr);
        return;
      }
    }
    // A finished saga with this key is in the log only; asked on the log's thread.
    log_.find_by_idem(idem_key, [this, ctx = std::move(ctx), idem_key, done = std::move(done)](
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
  static thread_local std::mt19937_64 ids{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "saga_%016llx", static_cast<unsigned long long>(ids()));
  auto run = std::make_shared<Run>(io_);
  run->id = buf;
  run->idem = idem_key;
  run->rng = SplitMix64(opts_.seed ^ std::hash<std::string>{}(run->id));
  {
    std::lock_guard lock(mutex_);
    if (runs_.size() >= opts_.max_in_flight) {
      auto error = std::make_exception_ptr(ClientError(
          503, "too many sagas in flight (" + std::to_string(opts_.max_in_flight) + "); retry later"));
      return done("", false, error);
    }
    if (!idem_key.empty()) {
      auto [it, inserted] = idem_.emplace(idem_key, run->id);
      if (!inserted) return done(it->second, true, nullptr);
    }
    runs_[run->id] = run;
  }
  Event e;
  e.type = Event::Type::Start;
  e.now_ms = wall_ms();
  e.saga_id = run->id;
  e.ctx = std::move(ctx);
  // The id goes to the client only once the start is durable.
  run->on_start = std::move(done);
  asio::post(run->strand, [this, run, e = std::move(e)]() mutable {
    deliver(run, e, [run] {
      if (auto started = std::exchange(run->on_start, {})) started(run->id, false, nullptr);
    });
  });
}

void Orchestrator::snapshot(const std::string& id, Snapshot done) { wait(id, 0, std::move(done)); }

void Orchestrator::wait(const std::string& id, std::int64_t timeout_ms, Snapshot done) {
  auto run = find(id);
  if (!run) {
    log_.snapshot(id, std::move(done));
    return;
  }
  asio::post(run->strand, [this, run, timeout_ms, done = std::move(done)]() mutable {
    if (run->settled || timeout_ms <= 0) return done(to_json(run->state, engine_.definition()));
    auto timer = std::make_shared<asio::steady_timer>(run->strand, std::chrono::milliseconds(timeout_ms));
    auto once = std::make_shared<bool>(false);
    run->waiters.push_back([timer, once, done](const Json& snap) {
      if (*once) return;
      *once = true;
      timer->cancel();
      done(snap);
    });
    timer->async_wait([this, run, once, done](const boost::system::error_code& ec) {
      if (ec || *once) return;
      *once = true;
      done(to_json(run->state, engine_.definition()));
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
    asio::post(run->strand, [this, run, p] { p->set_value(to_json(run->state, engine_.definition())); });
    if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready) out[run->id] = f.get();
  }
  return out;
}

void Orchestrator::crash_point(const Run& run, const Event& e, const char* when) {
  if (faults_.empty()) return;
  const auto& def = engine_.definition();
  int step = log_step_of(e, run.state);
  FaultContext ctx;
  ctx.endpoint = "log:" + def.steps[static_cast<std::size_t>(step)].name + ":" + when;
  ctx.saga_id = run.id;
  ctx.attempt = run.state.steps.empty() ? 1 : run.state.steps[static_cast<std::size_t>(step)].attempts;
  ctx.now_ms = wall_ms();
  if (auto f = faults_.match(ctx)) {
    if (f->action == FaultAction::CrashBefore || f->action == FaultAction::CrashAfter)
      crash_now("crash at " + ctx.endpoint + " of " + run.id);
  }
}

// On the run's strand: applies the event, and appends it to the log; the
// rest happens in logged(), once it is durable (advance_saga keeps that order).
void Orchestrator::deliver(const std::shared_ptr<Run>& run, const Event& e, std::function<void()> after_log) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || run->dropped) return;
  }
  auto append = [this, run](const Event& ev, Estado before, const SagaState& next, auto durable) {
    crash_point(*run, ev, "before");
    Metrics::get().log_events.Increment();
    log_.append(run->id, run->seq + 1, {ev}, SagaLog::row_of(engine_.definition(), ev, before, next, run->idem),
                ev.now_ms, [this, run, durable = std::move(durable)](std::exception_ptr error) mutable {
                  if (error) {
                    // Without a durable log the saga must not move on: stop here and let
                    // recovery pick it up from what was written.
                    std::string what = "unknown error";
                    try {
                      std::rethrow_exception(error);
                    } catch (const SagaLogConflict& c) {
                      // Another orchestrator drives it: nothing of this event was written.
                      asio::post(run->strand, [this, run, kind = c.kind, why = std::string(c.what())] {
                        drop(run, kind, why);
                      });
                      return;
                    } catch (const std::exception& ex) {
                      what = ex.what();
                    } catch (...) {
                    }
                    log_line(std::cerr, {{"event", "log-write-failed"}, {"saga_id", run->id}, {"error", what}});
                    crash_now("saga log write failed");
                  }
                  asio::post(run->strand, std::move(durable));
                });
  };
  // The run's state stays as it is until the event is durable: live views read it.
  auto next = std::make_shared<SagaState>(run->state);
  advance_saga(engine_, *next, e, run->rng, append,
               [this, run, e, next, after_log = std::move(after_log)](std::vector<Command> commands) {
                 logged(run, e, std::move(*next), std::move(commands));
                 if (after_log) after_log();
               });
}

void Orchestrator::logged(const std::shared_ptr<Run>& run, const Event& e, SagaState next,
                          std::vector<Command> commands) {
  ++run->seq;
  crash_point(*run, e, "after");
  auto& m = Metrics::get();
  const Estado before = run->state.estado;
  if (e.type == Event::Type::Start) m.sagas_started.Increment();
  if (next.estado == Estado::Atascada && before != Estado::Atascada) m.stuck.Increment();
  if (before == Estado::Atascada && next.estado != Estado::Atascada) m.stuck.Decrement();
  if (is_terminal(next.estado) && !is_terminal(before)) {
    m.sagas_finished.Add({{"estado", to_string(next.estado)}}).Increment();
    m.saga_duration.Observe(static_cast<double>(std::max<std::int64_t>(0, e.now_ms - next.started_ms)) / 1000.0);
  }
  run->state = std::move(next);
  const bool terminal = is_terminal(run->state.estado);
  run->settled = terminal || run->state.estado == Estado::Atascada;
  if (terminal) {
    std::lock_guard lock(mutex_);
    runs_.erase(run->id);
    if (!run->idem.empty()) idem_.erase(run->idem);
  }
  if (run->settled) answer_waiters(*run);
  for (const auto& c : commands) execute(run, c);
}

void Orchestrator::execute(const std::shared_ptr<Run>& run, const Command& c) {
  switch (c.type) {
    case Command::Type::Finish:
      return;
    case Command::Type::Schedule: {
      auto delay = std::max<std::int64_t>(0, c.at_ms - wall_ms());
      run->timer = std::make_unique<asio::steady_timer>(run->strand, std::chrono::milliseconds(delay));
      run->timer->async_wait([this, run, c](const boost::system::error_code& ec) {
        if (ec) return;
        Event e;
        e.type = Event::Type::Timer;
        e.now_ms = wall_ms();
        e.step = c.step;
        e.attempt = c.attempt;
        e.compensation = c.compensation;
        deliver(run, e);
      });
      return;
    }
    case Command::Type::Call: {
      const auto& def = engine_.definition();
      StepCall call = build_step_call(def, run->state, c);
      Json body = to_json(call.body, run->id);
      const auto step = def.steps[static_cast<std::size_t>(c.step)].name;
      auto& m = Metrics::get();
      if (c.attempt > 1) m.retries.Add({{"step", step}}).Increment();
      if (c.compensation) m.compensations.Add({{"step", step}}).Increment();
      const auto sent = std::chrono::steady_clock::now();
      AsyncClientPool::Headers headers{
          {"X-Saga-Id", run->id},
          {"X-Saga-Step", def.steps[static_cast<std::size_t>(c.step)].name + (c.compensation ? ":compensacion" : "")},
          {"X-Saga-Attempt", std::to_string(c.attempt)},
          {"Idempotency-Key", c.idempotency_key}};
      if (!run->state.ctx.trace_id.empty())
        headers.emplace_back("traceparent", "00-" + run->state.ctx.trace_id + "-" + new_span_id() + "-01");
      pools_.at(call.service)
          ->call(call.method, call.path, body.is_null() ? std::string() : body.dump(), std::move(headers),
                 c.timeout_ms, [this, run, c, sent, step](HttpResult r) {
                   // Read on the strand, against the state the call was made from:
                   // a saga has one call or timer outstanding at a time.
                   asio::post(run->strand, [this, run, c, sent, step, r = std::move(r)] {
                     std::optional<Answer> answer;
                     if (r.answer) answer = reply_from_json(r.answer->status, r.answer->body);
                     auto ev = interpret_answer(engine_.definition(), run->state, c, answer, r.error, wall_ms());
                     Metrics::get()
                         .step_calls
                         .Add({{"step", c.compensation ? step + ":compensacion" : step}, {"outcome", to_string(ev.outcome)}},
                              latency_buckets())
                         .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
                     deliver(run, ev);
                   });
                 });
      return;
    }
  }
}

}  // namespace sagalab
