// The real Orchestrator inside the simulator: its strands and timers are
// tasks in the event queue, its transport the simulated network, its saga log
// the slots (and the real SQLite log in part of the runs); a crash destroys
// the object and a restart builds a new one over the same log.
#include "world.hpp"

namespace sagalab::sim_world {

std::pair<std::uint32_t, std::uint32_t> Sim::add_task(std::int64_t t, const SimStrand* strand, std::function<void()> fn) {
  const std::uint32_t i = take_slot(tasks_, free_tasks_);
  tasks_[i].fn = std::move(fn);
  tasks_[i].strand = strand;
  tasks_[i].orch = strand->orch;
  tasks_[i].inc = strand->inc;
  at(std::max(t, now_), Ev::Task, {.slot = i});
  return {i, tasks_[i].gen};
}

// Runs a continuation as the strand's work; a fatal error of the orchestrator's crashes it.
void Sim::run_inline(const SimStrand* strand, const std::function<void()>& fn) {
  running_ = strand;
  try {
    fn();
  } catch (const OrchestratorExit&) {
    crash_orchestrator(strand->orch);
  }
  running_ = nullptr;
}

void Sim::run_task(std::uint32_t i) {
  const SimStrand* strand = tasks_[i].strand;
  const auto& p = program(tasks_[i].orch);
  if (p.frozen_until > now_ && p.inc == tasks_[i].inc && tasks_[i].fn) {
    // Its program is frozen: the task waits (a timer fires late, a reply is read late).
    at(p.frozen_until, Ev::Task, {.slot = i});
    return;
  }
  auto fn = std::move(tasks_[i].fn);
  tasks_[i].fn = nullptr;
  const bool live = alive(tasks_[i].orch, tasks_[i].inc);
  ++tasks_[i].gen;
  free_tasks_.push_back(i);
  if (live && fn) run_inline(strand, fn);
}

// A new incarnation of orchestrator program k (its world is built once).
void Sim::boot_orchestrator(int k) {
  if (orchs_.empty()) {
    const int n = std::max(1, mix_.orchestrators);
    orchs_.resize(static_cast<std::size_t>(n));
    if (n > 1) shared_store_ = std::make_unique<MemoryLogStore>([this] { return now_; });
    for (int j = 0; j < n; ++j) {
      auto& p = program(j);
      if (shared_store_) p.shared_log = std::make_unique<MemorySagaLog>(*shared_store_, "orq-" + std::to_string(j), kLeaseMs);
      p.runtime = std::make_unique<SimRuntime>(*this, j);
      p.transport = std::make_unique<SimTransport>(*this, j);
      p.crashes = std::make_unique<SimCrashPoints>(*this, j);
      p.log = std::make_unique<SimLog>(*this, j, p.shared_log.get());
    }
  }
  auto& p = program(k);
  p.inc = next_inc_++;
  OrchestratorOptions opts;
  opts.seed = cfg_.seed;
  opts.max_in_flight = SIZE_MAX;  // a real client would be told 503; the workload here never backs off
  opts.claim_every_ms = kLeaseMs / 4;  // as the program sets it from --lease-ms
  p.obj = std::make_unique<Orchestrator>(
      engine_.definition(), OrchestratorEnv{*p.runtime, *p.transport, *p.log, p.crashes.get(), nullptr}, opts);
}

// True when the orchestrator crashes at this log boundary (a script's rule,
// or the mix's chance); it is then down until the restart.
bool Sim::crash_point(int k, const CrashSpot& spot) {
  const auto& id = *spot.saga_id;
  auto point_name = [&] { return crash_point_name(engine_.definition(), spot); };
  bool crash = false;
  if (cfg_.scripted) {
    crash = orch_faults_.match({point_name(), id, spot.attempt, now_}).has_value();
  } else if (!healed_ && mix_.crash > 0 &&
             crash_rng_.unit() < mix_.crash / 2 * (spot.compensating ? mix_.crash_compensating : 1.0) &&
             now_ - program(k).up_since >= mix_.min_uptime_ms) {
    crash = true;
  }
  // With several orchestrators, now and then one freezes (a long GC pause, a
  // stopped container) for longer than its leases: another takes its sagas
  // over, and what it writes when it wakes must be refused (fencing).
  if (!crash && orchs_.size() > 1 && !healed_ && !cfg_.scripted && crash_rng_.unit() < mix_.freeze) {
    auto& p = program(k);
    p.frozen_until = now_ + crash_rng_.uniform(kLeaseMs, 4 * kLeaseMs);
    outage_at_ = p.frozen_until;
    res_.faults_by_kind[kFreezeOrchestrator]++;
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
    crash_orchestrator(k);
  }
  return crash;
}

// What the orchestrator appends: kept in the saga's slot (the durable log
// the checker reads), and in the real SQLite log when the mix has one.
void Sim::log_append(int k, const std::string& id, int seq, std::vector<Event> events,
                     const std::optional<SagaLog::Row>& row) {
  auto [idx, attempt] = parse_saga_id(id);
  if (idx < 0 || idx >= cfg_.sagas) throw std::logic_error("the orchestrator appended to a saga it never started: " + id);
  // The real log, written as the orchestrator writes it; a crash after
  // this returns finds it there, one before it does not.
  if (sqlite_log_) sqlite_log_->append_now(id, seq, events, row, now_);
  const bool starts = !events.empty() && events.front().type == Event::Type::Start;
  auto& slot = slots_[idx];
  auto i = static_cast<std::size_t>(idx);
  if (extra_sagas_.count(id)) return;
  if (slot.writer >= 0 && slot.writer != k && logged_try_[i] == attempt) res_.takeovers++;
  slot.writer = k;
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

void Sim::start_write(int k, const std::string& id, int seq, std::vector<Event> events,
                      std::optional<SagaLog::Row> row, SagaLog::Done done) {
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
  w.orch = k;
  w.inc = program(k).inc;
  at(now_ + net_rng_.uniform(0, mix_.log_delay_ms), Ev::LogWrite, {.slot = i});
}

void Sim::finish_write(std::uint32_t i) {
  auto w = std::move(writes_[i]);
  writes_[i] = PendingWrite{};
  free_writes_.push_back(i);
  if (!alive(w.orch, w.inc)) return;  // its orchestrator crashed first: never written
  if (w.row && w.state) w.row->state = &*w.state;
  auto error = write(w.orch, w.saga_id, w.seq, std::move(w.events), w.row);
  try {
    w.done(error);
  } catch (const OrchestratorExit&) {
    crash_orchestrator(w.orch);
  }
}

// An append, as the log reports it: a write the real SQLite log refuses
// (its sequence numbers and idempotency keys are unique) is the
// orchestrator's error, reported to it, and a violation.
std::exception_ptr Sim::write(int k, const std::string& id, int seq, std::vector<Event> events,
                              const std::optional<SagaLog::Row>& row) {
  try {
    // The shared log refuses a writer whose lease has passed on (fencing),
    // or a sequence number or idempotency key another writer took first:
    // the orchestrator's conflict, expected with several, and no violation.
    if (auto* shared = program(k).shared_log.get()) shared->append_now(id, seq, events, row, now_);
  } catch (const SagaLogConflict&) {
    return std::current_exception();
  }
  try {
    log_append(k, id, seq, std::move(events), row);
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
std::vector<std::string> Sim::unfinished() {
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

// A call of the orchestrator's goes out on the simulated network; its
// answer, or its timeout, goes back through done().
void Sim::send_call(int k, StepCall sc, CallMeta m, std::function<void(CallOutcome)> done) {
  auto [idx, try_no] = parse_saga_id(m.saga_id);
  if (idx < 0 || idx >= cfg_.sagas) throw std::logic_error("a call for a saga the simulator never started: " + m.saga_id);
  auto i = static_cast<std::size_t>(idx);
  // With several orchestrators: a call of one whose saga another has written
  // to since (it froze, and its lease passed on) is a zombie's, which its next,
  // fenced write drops. It carries the logged attempt's key, so the service
  // answers it again without a second effect (the invariants check that); the
  // history rules judge the calls of the saga's current writer.
  if (auto& slot = slots_[idx]; slot.writer < 0 || slot.writer == k) {
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
  call.orch = k;
  call.orch_inc = program(k).inc;
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

void Sim::resolve(int call_id, std::optional<Reply>&& a, const char* why) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;  // answered already (or timed out)
  Call call = std::move(it->second);
  calls_.erase(it);
  if (!alive(call.orch, call.orch_inc)) return;  // its orchestrator crashed
  if (a && a->status >= 400 && a->status < 500) note_refusal(call, a->status);
  call.done(CallOutcome{std::move(a), why});
}

void Sim::note_refusal(const Call& call, int status) {
  auto slot = slots_.find(call.saga);
  if (slot == slots_.end()) return;
  FiredFault f;
  f.action = FaultAction::Error;
  f.endpoint = call.endpoint;
  f.attempt = call.attempt;
  f.status = status;
  slot->second.refusals.push_back({call.service, std::move(f)});
}

void Sim::crash_orchestrator(int k) {
  auto& p = program(k);
  p.up = false;
  p.frozen_until = 0;
  outage_at_ = now_;
  p.inc = next_inc_++;
  check_acknowledged();
  // A request the orchestrator never acknowledged: its client asks again.
  std::vector<int> unacknowledged;
  for (const auto& [idx, by] : awaiting_ack_) {
    if (by == k && !client_retrying_.count(idx)) unacknowledged.push_back(idx);
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
  at(now_ + cfg_.restart_delay_ms, Ev::RestartOrchestrator, {.orch = k});
}

void Sim::restart_orchestrator(int k) {
  auto& p = program(k);
  p.obj.reset();
  boot_orchestrator(k);
  p.up = true;
  p.up_since = now_;
  outage_at_ = now_;
  p.obj->recover();
  // Scripted mode: a saga lost with the crash (never logged, and not asked
  // for again) will not end; move on.
  int cur = current_in_sequence_;
  if (cfg_.scripted && cur >= 0 && logged_try_[static_cast<std::size_t>(cur)] == 0 && !client_retrying_.count(cur) &&
      !awaiting_ack_.count(cur))
    at(now_ + 1, Ev::NextInSequence);
}

}  // namespace sagalab::sim_world

namespace sagalab::sim_world {

int Sim::pick_orchestrator() {
  if (orchs_.size() == 1) return orchs_[0].up ? 0 : -1;
  std::vector<int> answering;
  for (int k = 0; k < static_cast<int>(orchs_.size()); ++k) {
    if (answers(k)) answering.push_back(k);
  }
  if (answering.empty()) return -1;
  return answering[static_cast<std::size_t>(net_rng_.uniform(0, static_cast<std::int64_t>(answering.size()) - 1))];
}

}  // namespace sagalab::sim_world
