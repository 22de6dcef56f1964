// The saga log on PostgreSQL (libpqxx): tables sagalab_events (append-only)
// and sagalab_sagas (one row per saga, as in SQLite, plus its lease), shared
// by any number of orchestrators. Each unfinished saga is leased to one of
// them (owner, lease_until_ms on PostgreSQL's clock): the owner renews its
// leases while it lives; when it dies they expire and claim() hands the sagas
// to a survivor, which replays their events and drives them on.
//
// Two fences keep a saga driven by one orchestrator at a time, even when a
// paused owner wakes after its lease passed on: an append checks that its
// writer still owns the saga, and the events' primary key (saga, seq) lets
// one writer only append each sequence number. The loser gets
// SagaLogConflict(LeaseLost) and must drop the saga without acting.
//
// Appends are group-committed: one committer thread, one connection, a batch
// of appends per READ COMMITTED transaction, each in its own savepoint so a
// conflicting one is undone alone. Reads have a thread and connection of their
// own, so that a long read neither waits behind appends nor holds them up. READ COMMITTED suffices here: every write
// is an insert of a new key or an update of one row guarded by its WHERE
// clause, which PostgreSQL re-checks against the newest version of the row.
#pragma once

#include <memory>
#include <string>

#include "sagalab/saga_log.hpp"

namespace sagalab {

class PgSagaLog final : public SagaLog {
 public:
  // url: postgresql://...; owner: this orchestrator's id (unique among the
  // replicas, stable across its restarts if it should take its own sagas back
  // at once); lease_ms: how long a lease lasts unrenewed.
  // Throws std::runtime_error when PostgreSQL cannot be reached.
  PgSagaLog(const std::string& url, std::string owner, std::int64_t lease_ms);
  ~PgSagaLog() override;
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
  bool shared() const override { return true; }
  std::vector<std::string> claim(bool startup) override;
  std::size_t renew(const std::vector<std::string>& driving) override;
  void release(const std::string& saga_id) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagalab
