// The shared in-memory saga log with leases (see memory_saga_log.hpp).
#include "sagalab/memory_saga_log.hpp"

#include <algorithm>

namespace sagalab {

namespace {
bool finished(const std::string& estado) { return estado == "completada" || estado == "compensada"; }

// Saga ids keyed by when they started (created_ms, then creation order): oldest first.
using ByAge = std::vector<std::pair<std::pair<std::int64_t, std::uint64_t>, std::string>>;
std::vector<std::string> oldest_first(ByAge found) {
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (auto& [age, id] : found) out.push_back(std::move(id));
  return out;
}
}  // namespace

void MemorySagaLog::write(const std::string& saga_id, int seq, std::vector<Event> events,
                          const std::optional<Row>& row, std::int64_t now_ms) {
  auto& st = store_;
  std::lock_guard lock(st.mutex_);
  const bool start = !events.empty() && events.front().type == Event::Type::Start;
  auto it = st.sagas_.find(saga_id);
  if (start) {
    if (!row) throw std::logic_error("a saga's start is written with its row");
    if (it != st.sagas_.end() || (!row->idem_key.empty() && st.by_idem_.count(row->idem_key)))
      throw SagaLogConflict(SagaLogConflict::Kind::IdemTaken,
                            "idempotency key '" + row->idem_key + "' already belongs to another saga");
  } else if (it == st.sagas_.end() || it->second.owner != owner_) {
    throw SagaLogConflict(SagaLogConflict::Kind::LeaseLost,
                          "saga " + saga_id + " is driven by " +
                              (it == st.sagas_.end() ? std::string("nobody") : it->second.owner));
  }
  const std::size_t have = it == st.sagas_.end() ? 0 : it->second.events.size();
  if (seq <= static_cast<int>(have))
    throw SagaLogConflict(SagaLogConflict::Kind::LeaseLost,
                          "saga " + saga_id + ": another orchestrator appended event " + std::to_string(seq));
  if (seq != static_cast<int>(have) + 1)
    throw std::logic_error("saga " + saga_id + ": event " + std::to_string(seq) + " after " + std::to_string(have));
  if (start) {
    auto& s = st.sagas_[saga_id];
    s.created_ms = now_ms;
    s.order = st.created_++;
    s.idem_key = row->idem_key;
    s.owner = owner_;
    s.lease_until_ms = st.now_ms_() + lease_ms_;
    if (!s.idem_key.empty()) st.by_idem_[s.idem_key] = saga_id;
    st.open_.insert(saga_id);
    it = st.sagas_.find(saga_id);
  }
  auto& s = it->second;
  for (auto& e : events) s.events.push_back(std::move(e));
  if (row) {
    s.estado = row->estado;
    s.snapshot = row->snapshot;
    if (finished(s.estado)) st.open_.erase(saga_id);
  }
}

void MemorySagaLog::append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
                           std::int64_t now_ms, Done done) {
  std::exception_ptr error;
  try {
    write(saga_id, seq, std::move(events), row, now_ms);
  } catch (...) {
    error = std::current_exception();
  }
  done(error);
}

void MemorySagaLog::append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                               const std::optional<Row>& row, std::int64_t now_ms) {
  write(saga_id, seq, events, row, now_ms);
}

void MemorySagaLog::snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) {
  std::optional<Json> out;
  {
    std::lock_guard lock(store_.mutex_);
    auto it = store_.sagas_.find(saga_id);
    if (it != store_.sagas_.end() && !it->second.snapshot.empty()) out = Json::parse(it->second.snapshot, nullptr, false);
  }
  done(std::move(out));
}

void MemorySagaLog::find_by_idem(const std::string& key,
                                 std::function<void(std::optional<std::string>, std::exception_ptr)> done) {
  std::optional<std::string> out;
  {
    std::lock_guard lock(store_.mutex_);
    if (auto it = store_.by_idem_.find(key); !key.empty() && it != store_.by_idem_.end()) out = it->second;
  }
  done(std::move(out), nullptr);
}

std::vector<std::string> MemorySagaLog::unfinished() {
  std::lock_guard lock(store_.mutex_);
  ByAge found;
  for (const auto& id : store_.open_) {
    const auto& s = store_.sagas_.at(id);
    found.push_back({{s.created_ms, s.order}, id});
  }
  return oldest_first(std::move(found));
}

std::vector<Event> MemorySagaLog::events(const std::string& saga_id) {
  std::lock_guard lock(store_.mutex_);
  auto it = store_.sagas_.find(saga_id);
  return it == store_.sagas_.end() ? std::vector<Event>{} : it->second.events;
}

std::vector<Json> MemorySagaLog::list(const std::string& estado, int limit) {
  std::lock_guard lock(store_.mutex_);
  std::vector<std::pair<std::pair<std::int64_t, std::uint64_t>, const MemoryLogStore::Saga*>> found;
  for (const auto& [id, s] : store_.sagas_)
    if (estado.empty() || s.estado == estado) found.push_back({{s.created_ms, s.order}, &s});
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Json> out;
  for (const auto& [k, s] : found) {
    if (static_cast<int>(out.size()) >= limit) break;
    if (!s->snapshot.empty()) out.push_back(Json::parse(s->snapshot, nullptr, false));
  }
  return out;
}

void MemorySagaLog::reset() {
  std::lock_guard lock(store_.mutex_);
  store_.sagas_.clear();
  store_.by_idem_.clear();
  store_.open_.clear();
}

std::vector<std::string> MemorySagaLog::claim(bool startup) {
  std::lock_guard lock(store_.mutex_);
  const auto now = store_.now_ms_();
  ByAge got;
  for (const auto& id : store_.open_) {
    auto& s = store_.sagas_.at(id);
    if (s.lease_until_ms < now || (startup && s.owner == owner_)) {
      s.owner = owner_;
      s.lease_until_ms = now + lease_ms_;
      got.push_back({{s.created_ms, s.order}, id});
    }
  }
  return oldest_first(std::move(got));
}

std::size_t MemorySagaLog::renew(const std::vector<std::string>& driving) {
  std::lock_guard lock(store_.mutex_);
  const auto now = store_.now_ms_();
  std::size_t n = 0;
  for (const auto& id : driving) {
    auto it = store_.sagas_.find(id);
    if (it == store_.sagas_.end() || it->second.owner != owner_ || finished(it->second.estado)) continue;
    it->second.lease_until_ms = now + lease_ms_;
    ++n;
  }
  return n;
}

void MemorySagaLog::release(const std::string& saga_id) {
  std::lock_guard lock(store_.mutex_);
  auto it = store_.sagas_.find(saga_id);
  if (it == store_.sagas_.end() || it->second.owner != owner_) return;
  it->second.owner.clear();
  it->second.lease_until_ms = 0;
}

}  // namespace sagalab
