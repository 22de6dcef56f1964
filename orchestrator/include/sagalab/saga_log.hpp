// The durable saga log (SQLite): every event a saga consumes is appended, with
// a snapshot of the state it leads to, in one transaction, before the engine's
// resulting commands are carried out. Recovery replays the events.
#pragma once

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

  void append(const std::string& saga_id, int seq, const Event& e, const Json& snapshot,
              const std::string& estado, const std::string& idem_key, std::int64_t now_ms);
  std::vector<std::string> unfinished();
  // Throws std::invalid_argument when a stored event cannot be read.
  std::vector<Event> events(const std::string& saga_id);
  std::optional<Json> snapshot(const std::string& saga_id);
  std::optional<std::string> find_by_idem(const std::string& key);
  std::vector<Json> list(const std::string& estado, int limit);
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagalab
