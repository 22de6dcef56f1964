// The event loop: arrivals, the items of virtual time in their one order,
// scripted runs (one saga at a time), the liveness check, the end of a run.
#include "world.hpp"

namespace sagalab::sim_world {

SimResult Sim::run() {
  if (mix_.sqlite_log) sqlite_log_ = std::make_unique<SqliteSagaLog>(":memory:", SyncMode::Normal);
  setup_nodes();
  for (int k = 0; k < std::max(1, mix_.orchestrators); ++k) boot_orchestrator(k);
  // Over a shared log each starts its lease keeper (and finds nothing to recover).
  if (orchs_.size() > 1)
    for (auto& p : orchs_) p.obj->recover();
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

void Sim::dispatch(const Item& it) {
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
    case Ev::RestartOrchestrator: restart_orchestrator(on.orch); return;
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

// Arrivals are generated one at a time, so the queue never holds the whole workload.
void Sim::schedule_arrival(int i, std::int64_t prev) {
  std::int64_t t = prev + 1 + work_rng_.uniform(0, 2 * mix_.arrival_gap_ms);
  at(t, Ev::Arrival, {.saga = i});
}

// Scripted mode: the next saga starts when the previous one has ended.
void Sim::start_next_in_sequence() {
  if (next_in_sequence_ >= sequence_.size()) return;
  current_in_sequence_ = sequence_[next_in_sequence_++];
  start_saga(current_in_sequence_);
  // Nothing heals in a script (each fault fires once): a saga not ended
  // within the liveness bound of its start is stuck, and the run ends there.
  at(now_ + cfg_.liveness_bound_ms, Ev::ScriptDeadline, {.saga = current_in_sequence_});
}

void Sim::script_deadline(int idx) {
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
std::int64_t Sim::quiet_bound() const {
  const auto& def = engine_.definition();
  const std::int64_t trip = 2 * (mix_.net_delay_ms + mix_.log_delay_ms);
  std::int64_t all = cfg_.restart_delay_ms + mix_.min_uptime_ms;
  if (orchs_.size() > 1) all += 2 * kLeaseMs;  // a crashed owner's lease runs out before another claims
  for (const auto& st : def.steps) {
    all += st.retry.timeout_ms + st.retry.backoff_max_ms + trip;
    if (st.kind == StepKind::Compensatable)
      all += def.compensation.timeout_ms + def.compensation.backoff_max_ms + trip;
  }
  return std::min(cfg_.liveness_bound_ms, 4 * all);
}

void Sim::check_liveness() {
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

// Objects that may still hold tasks, calls or the orchestrator go in an
// order that never touches what is already gone.
void Sim::teardown() {
  auto tasks = std::move(tasks_);
  tasks_.clear();
  calls_.clear();
  writes_.clear();
  for (auto& p : orchs_) p.obj.reset();
}

}  // namespace sagalab::sim_world

namespace sagalab {

SimResult run_simulation(const SimConfig& cfg) { return sim_world::Sim(cfg).run(); }

}  // namespace sagalab
