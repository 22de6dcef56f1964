// The orchestrator's saga runner (see orchestrator.hpp).
#include "sagalab/orchestrator.hpp"

#include <cstdio>
#include <iostream>
#include <random>

#include "sagalab/errors.hpp"
#include "sagalab/purchase.hpp"

namespace sagalab {

struct Orchestrator::Run {
  explicit Run(boost::asio::io_context& io) : strand(boost::asio::make_strand(io)) {}
  std::string id;
  std::string idem;
  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  SagaState state;
  int seq = 0;
  SplitMix64 rng{0};
  std::unique_ptr<boost::asio::steady_timer> timer;
  std::vector<Event> unlogged;  // planted defect no-log-before-call only
  // Guarded by Orchestrator::mutex_:
  Json snap;
  bool settled = false;  // terminal or atascada
  std::condition_variable settled_cv;  // only this saga's waiters wake up
};

Orchestrator::Orchestrator(SagaDefinition def, SagaLog& log, FaultGate& faults, OrchestratorOptions opts)
    : engine_(std::move(def)),
      log_(log),
      faults_(faults),
      opts_(std::move(opts)),
      work_(boost::asio::make_work_guard(io_)),
      calls_(static_cast<std::size_t>(opts_.call_threads)),
      rng_(opts_.seed) {
  for (const auto& step : engine_.definition().steps) {
    auto it = opts_.service_urls.find(step.service);
    if (it == opts_.service_urls.end())
      throw std::invalid_argument("no URL configured for service " + step.service);
    if (!pools_.count(step.service))
      pools_[step.service] = std::make_unique<ClientPool>(it->second, opts_.pool_size);
  }
  for (int i = 0; i < opts_.io_threads; ++i) io_threads_.emplace_back([this] { io_.run(); });
}

Orchestrator::~Orchestrator() { stop(); }

void Orchestrator::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  work_.reset();
  io_.stop();
  for (auto& t : io_threads_) t.join();
  calls_.stop();
  calls_.join();
  std::lock_guard lock(mutex_);
  for (auto& [id, run] : runs_) run->settled_cv.notify_all();
}

std::uint64_t Orchestrator::random() {
  std::lock_guard lock(mutex_);
  return rng_.next();
}

std::size_t Orchestrator::active() const {
  std::lock_guard lock(mutex_);
  return runs_.size();
}

std::size_t Orchestrator::recover() {
  auto ids = log_.unfinished();
  for (const auto& id : ids) {
    auto run = std::make_shared<Run>(io_);
    run->id = id;
    run->rng = SplitMix64(opts_.seed ^ std::hash<std::string>{}(id));
    auto events = log_.events(id);
    run->state = engine_.replay(events, run->rng);
    run->seq = static_cast<int>(events.size());
    {
      std::lock_guard lock(mutex_);
      run->snap = to_json(run->state, engine_.definition());
      runs_[id] = run;
    }
    Event e;
    e.type = Event::Type::Recovered;
    e.now_ms = wall_ms();
    boost::asio::post(run->strand, [this, run, e] { deliver(run, e); });
  }
  return ids.size();
}

std::string Orchestrator::start(SagaContext ctx, const std::string& idem_key, bool& existed) {
  existed = false;
  auto run = std::make_shared<Run>(io_);
  {
    std::lock_guard lock(mutex_);
    if (!idem_key.empty()) {
      if (auto it = idem_.find(idem_key); it != idem_.end()) {
        existed = true;
        return it->second;
      }
    }
  }
  if (!idem_key.empty()) {
    if (auto id = log_.find_by_idem(idem_key)) {
      existed = true;
      return *id;
    }
  }
  static thread_local std::mt19937_64 ids{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "saga_%016llx", static_cast<unsigned long long>(ids()));
  run->id = buf;
  run->idem = idem_key;
  run->rng = SplitMix64(opts_.seed ^ std::hash<std::string>{}(run->id));
  {
    std::lock_guard lock(mutex_);
    if (runs_.size() >= opts_.max_in_flight)
      throw ClientError(503, "too many sagas in flight (" + std::to_string(opts_.max_in_flight) + "); retry later");
    if (!idem_key.empty()) {
      auto [it, inserted] = idem_.emplace(idem_key, run->id);
      if (!inserted) {
        existed = true;
        return it->second;
      }
    }
    runs_[run->id] = run;
  }
  Event e;
  e.type = Event::Type::Start;
  e.now_ms = wall_ms();
  e.saga_id = run->id;
  e.ctx = std::move(ctx);
  // Logged before start() returns, so a saga id given to a client is durable.
  // Nothing else can touch the new run yet, so this need not be on its strand.
  deliver(run, e);
  return run->id;
}

std::optional<Json> Orchestrator::snapshot(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = runs_.find(id); it != runs_.end()) {
      if (!it->second->snap.is_null()) return it->second->snap;
    }
  }
  return log_.snapshot(id);
}

std::optional<Json> Orchestrator::wait(const std::string& id, std::int64_t timeout_ms) {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto it = runs_.find(id);
  if (it != runs_.end()) {
    auto run = it->second;  // keeps the run (and its condition variable) alive
    run->settled_cv.wait_until(lock, deadline, [&] { return stopped_ || run->settled; });
  }
  lock.unlock();
  return snapshot(id);
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

void Orchestrator::deliver(const std::shared_ptr<Run>& run, const Event& e) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
  }
  SagaState next = run->state;
  auto commands = engine_.apply(next, e, run->rng);
  auto snap = to_json(next, engine_.definition());
  std::vector<Event> to_log{e};
  if (engine_.definition().planted_defect == "no-log-before-call" &&
      (e.type == Event::Type::Start || !run->unlogged.empty())) {
    // The planted bug: a new saga's events are logged late, after the calls they lead to.
    run->unlogged.push_back(e);
    run->state = next;
    {
      std::lock_guard lock(mutex_);
      run->snap = snap;
    }
    for (const auto& c : commands) execute(run, c);
    commands.clear();
    if (next.current == 0 && !is_terminal(next.estado)) return;
    to_log = std::move(run->unlogged);
    run->unlogged.clear();
  }
  crash_point(*run, e, "before");
  try {
    for (const auto& ev : to_log) log_.append(run->id, ++run->seq, ev, snap, to_string(next.estado), run->idem, e.now_ms);
  } catch (const std::exception& ex) {
    // Without a durable log the saga must not move on: stop here and let
    // recovery pick it up from what was written.
    std::cerr << Json{{"event", "log-write-failed"}, {"saga_id", run->id}, {"error", ex.what()}}.dump() << std::endl;
    crash_now("saga log write failed");
  }
  crash_point(*run, e, "after");
  run->state = std::move(next);
  bool settled = false;
  {
    std::lock_guard lock(mutex_);
    run->snap = std::move(snap);
    settled = run->settled = is_terminal(run->state.estado) || run->state.estado == Estado::Atascada;
    if (is_terminal(run->state.estado)) {
      runs_.erase(run->id);
      if (!run->idem.empty()) idem_.erase(run->idem);
    }
  }
  if (settled) run->settled_cv.notify_all();
  for (const auto& c : commands) execute(run, c);
}

void Orchestrator::execute(const std::shared_ptr<Run>& run, const Command& c) {
  switch (c.type) {
    case Command::Type::Finish:
      return;
    case Command::Type::Schedule: {
      auto delay = std::max<std::int64_t>(0, c.at_ms - wall_ms());
      run->timer = std::make_unique<boost::asio::steady_timer>(run->strand, std::chrono::milliseconds(delay));
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
      SagaState view = run->state;  // what the answer is read against
      Json body = to_json(call.body, run->id);
      boost::asio::post(calls_, [this, run, c, call = std::move(call), body = std::move(body), view = std::move(view)] {
        httplib::Headers headers{{"X-Saga-Id", run->id},
                                 {"X-Saga-Step", engine_.definition().steps[static_cast<std::size_t>(c.step)].name +
                                                     (c.compensation ? ":compensacion" : "")},
                                 {"X-Saga-Attempt", std::to_string(c.attempt)},
                                 {"Idempotency-Key", c.idempotency_key}};
        auto& pool = *pools_.at(call.service);
        auto r = pool.call(call.method, call.path, body.is_null() ? nullptr : &body, headers, c.timeout_ms);
        std::optional<Answer> answer;
        if (r.answer) answer = reply_from_json(r.answer->status, r.answer->body);
        auto ev = interpret_answer(engine_.definition(), view, c, answer, r.error, wall_ms());
        boost::asio::post(run->strand, [this, run, ev] { deliver(run, ev); });
      });
      return;
    }
  }
}

std::vector<std::string> orchestrator_fault_endpoints(const SagaDefinition& def) {
  std::vector<std::string> out = {"compra"};
  for (const auto& s : def.steps) {
    out.push_back("log:" + s.name + ":before");
    out.push_back("log:" + s.name + ":after");
  }
  return out;
}

}  // namespace sagalab
