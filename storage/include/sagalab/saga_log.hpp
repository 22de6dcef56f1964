// The durable saga log: every event a saga consumes is appended
// before the engine's resulting commands are carried out; recovery replays the
// events. The queryable row of a saga (state, idempotency key, snapshot) is
// written only when the saga starts and when its state changes (compensating,
// stuck, finished), so that a saga costs a handful of appended rows, all of
// them inside group commits.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sagalab/json_codec.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/sqlite.hpp"

namespace sagalab {

// What a write to the log could not do because another writer got there
// first: the saga's idempotency key belongs to another saga (a replica started
// it), or the saga is no longer this writer's (its lease passed to another
// orchestrator, or that one appended the same sequence number). Nothing of the
// append was written.
class SagaLogConflict : public std::runtime_error {
 public:
  enum class Kind { IdemTaken, LeaseLost };
  SagaLogConflict(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
  Kind kind;
};

// The saga log's interface: SQLite (one orchestrator, the default) or
// PostgreSQL (any number of orchestrators sharing it, each saga leased to one).
class SagaLog {
 public:
  virtual ~SagaLog() = default;

  // The saga's queryable row, written with an event when its state changed.
  struct Row {
    std::string estado;
    std::string idem_key;
    std::string snapshot;  // JSON text (empty for a log that stores none)
    // The state it describes, valid during the append only (for a log that
    // keeps states in memory, as the simulator's does).
    const SagaState* state = nullptr;
  };
  // The row to write with event e, which moved a saga from state `before` to
  // `next`: only when the saga starts or its state changes. Its snapshot only
  // for a log that stores them.
  std::optional<Row> row_of(const SagaDefinition& def, const Event& e, Estado before, const SagaState& next,
                            const std::string& idem_key) const;
  // False for a log that keeps no snapshot in its rows (the simulator's
  // in-memory log, which answers from the events).
  virtual bool stores_snapshots() const { return true; }
  using Done = std::function<void(std::exception_ptr)>;
  // Appends events[first..] (seq numbers from `seq` on) and the row, if any,
  // in the next group commit; done(error) runs on the log's committer thread
  // once they are durable (error: a SagaLogConflict when another writer got
  // there first).
  virtual void append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
                      std::int64_t now_ms, Done done) = 0;
  // The same, on the calling thread: returns once they are committed (throws
  // what the write threw). The simulator's log, which has no threads.
  virtual void append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                          const std::optional<Row>& row, std::int64_t now_ms) = 0;
  // Asynchronous reads, answered on the log's own thread.
  virtual void snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) = 0;
  virtual void find_by_idem(const std::string& key,
                            std::function<void(std::optional<std::string>, std::exception_ptr)> done) = 0;
  // Every unfinished saga, oldest first.
  virtual std::vector<std::string> unfinished() = 0;
  // Throws std::invalid_argument when a stored event cannot be read.
  virtual std::vector<Event> events(const std::string& saga_id) = 0;
  // The events without a copy, for a log that holds them in memory (valid
  // until the next append); nullptr: use events().
  virtual const std::vector<Event>* events_in_memory(const std::string& saga_id) {
    (void)saga_id;
    return nullptr;
  }
  virtual std::vector<Json> list(const std::string& estado, int limit) = 0;
  virtual void reset() = 0;
  // Waits for every pending append, then stops the log's committer thread.
  virtual void close() = 0;
  // Called with the size of each group commit (for metrics); set before use.
  virtual void observe_batches(std::function<void(std::size_t)> f) = 0;

  // Leases: which orchestrator drives which unfinished saga.
  // True when other orchestrators may write this log (claim() then matters).
  virtual bool shared() const { return false; }
  // Takes the unfinished sagas that no live orchestrator holds and returns
  // them (oldest first): at start-up (`startup`) also those this writer's id
  // held before it restarted. A log of one orchestrator returns every
  // unfinished saga at start-up and nothing afterwards.
  virtual std::vector<std::string> claim(bool startup) { return startup ? unfinished() : std::vector<std::string>{}; }
  // Extends this writer's leases on the sagas it drives (`driving`); a saga it
  // holds but does not drive (a claim whose answer was lost) lapses and passes
  // on. Returns how many leases it extended.
  virtual std::size_t renew(const std::vector<std::string>& driving) {
    (void)driving;
    return 0;
  }
  // Gives a saga up at once, so that the next claim() (anyone's) takes it;
  // does not wait for the write.
  virtual void release(const std::string& saga_id) { (void)saga_id; }
 protected:
  // The events as every log stores them: one JSON text each.
  static std::vector<std::string> encode(const std::vector<Event>& events);
};

// The saga log on SQLite: a file (or ":memory:") of one orchestrator.
class SqliteSagaLog final : public SagaLog {
 public:
  SqliteSagaLog(const std::string& path, SyncMode sync);
  ~SqliteSagaLog() override;
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
  void close() override;
  void observe_batches(std::function<void(std::size_t)> f) override;
  // Removes a finished saga's events and row, durably (retention: the
  // simulator forgets each saga once it has checked it, so that the log's
  // size, and the cost of its writes, stay flat over a long run).
  void forget(const std::string& saga_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagalab
