// The durable saga log (SQLite): every event a saga consumes is appended
// before the engine's resulting commands are carried out; recovery replays the
// events. The queryable row of a saga (state, idempotency key, snapshot) is
// written only when the saga starts and when its state changes (compensating,
// stuck, finished), so that a saga costs a handful of appended rows, all of
// them inside group commits.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sagalab/json_codec.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/sqlite.hpp"

namespace sagalab {

class SagaLog {
 public:
  SagaLog(const std::string& path, SyncMode sync);
  ~SagaLog();

  // The saga's queryable row, written with an event when its state changed.
  struct Row {
    std::string estado;
    std::string idem_key;
    std::string snapshot;  // JSON text
  };
  // The row to write with event e, which moved a saga from state `before` to
  // `next`: only when the saga starts or its state changes.
  static std::optional<Row> row_of(const SagaDefinition& def, const Event& e, Estado before, const SagaState& next,
                                   const std::string& idem_key);
  using Done = std::function<void(std::exception_ptr)>;
  // Appends events[first..] (seq numbers from `seq` on) and the row, if any,
  // in the next group commit; done(error) runs on the log's committer thread
  // once they are durable.
  void append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
              std::int64_t now_ms, Done done);
  // The same, on the calling thread: returns once they are committed (throws
  // what the write threw). The simulator's log, which has no threads.
  void append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                  const std::optional<Row>& row, std::int64_t now_ms);
  // Asynchronous reads, answered on the committer thread.
  void snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done);
  void find_by_idem(const std::string& key, std::function<void(std::optional<std::string>, std::exception_ptr)> done);
  std::vector<std::string> unfinished();
  // Throws std::invalid_argument when a stored event cannot be read.
  std::vector<Event> events(const std::string& saga_id);
  std::vector<Json> list(const std::string& estado, int limit);
  void reset();
  // Waits for every pending append, then stops the log's committer thread.
  void close();
  // Called with the size of each group commit (for metrics); set before use.
  void observe_batches(std::function<void(std::size_t)> f);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagalab
