// A saga log in memory that several orchestrators share, with the lease and
// fencing contract of PgSagaLog: each unfinished saga is leased to one writer,
// an append by any other is refused (SagaLogConflict::LeaseLost), a sequence
// number is written once, an idempotency key starts one saga, an expired
// lease passes to the next claim(). No thread, file or clock of its own: the
// clock is passed in (the simulator's virtual one), and an append is durable
// when it returns (done runs on the calling thread). For the simulator's
// several orchestrators, and tested by the same saga-log suite as both real logs.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sagalab/saga_log.hpp"

namespace sagalab {

// What the writers share: the sagas, their events and leases.
class MemoryLogStore {
 public:
  explicit MemoryLogStore(std::function<std::int64_t()> now_ms) : now_ms_(std::move(now_ms)) {}

 private:
  friend class MemorySagaLog;
  struct Saga {
    std::string estado, idem_key, snapshot;
    std::int64_t created_ms = 0;
    std::uint64_t order = 0;  // creation order among equal created_ms
    std::string owner;
    std::int64_t lease_until_ms = 0;
    std::vector<Event> events;
  };
  std::function<std::int64_t()> now_ms_;
  std::mutex mutex_;
  std::unordered_map<std::string, Saga> sagas_;
  std::unordered_map<std::string, std::string> by_idem_;
  std::unordered_set<std::string> open_;  // the unfinished sagas: what claim() and unfinished() look at
  std::uint64_t created_ = 0;
};

// One writer's handle on the shared store (one per orchestrator).
class MemorySagaLog final : public SagaLog {
 public:
  MemorySagaLog(MemoryLogStore& store, std::string owner, std::int64_t lease_ms)
      : store_(store), owner_(std::move(owner)), lease_ms_(lease_ms) {}
  void append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
              std::int64_t now_ms, Done done) override;
  void append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                  const std::optional<Row>& row, std::int64_t now_ms) override;
  void snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) override;
  void find_by_idem(const std::string& key,
                    std::function<void(std::optional<std::string>, std::exception_ptr)> done) override;
  std::vector<std::string> unfinished() override;
  std::vector<Event> events(const std::string& saga_id) override;
  std::vector<Json> list(const std::string& estado, int limit) override;
  void reset() override;
  void close() override {}
  void observe_batches(std::function<void(std::size_t)>) override {}
  bool shared() const override { return true; }
  std::vector<std::string> claim(bool startup) override;
  std::size_t renew(const std::vector<std::string>& driving) override;
  void release(const std::string& saga_id) override;

 private:
  // Checks everything first and then writes, so that a refused append leaves nothing.
  void write(const std::string& saga_id, int seq, std::vector<Event> events, const std::optional<Row>& row,
             std::int64_t now_ms);
  MemoryLogStore& store_;
  std::string owner_;
  std::int64_t lease_ms_;
};

}  // namespace sagalab
