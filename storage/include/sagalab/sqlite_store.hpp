// The durable Store: one SQLite file per service, WAL journal, FULL sync by
// default, so that what a transaction committed survives kill -9. Concurrent
// transactions are group-committed: one fsync for a batch, each acknowledged
// only after it.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "sagalab/async_store.hpp"
#include "sagalab/sqlite.hpp"

namespace sagalab {

class SqliteStore final : public AsyncStore {
 public:
  SqliteStore(const std::string& path, SyncMode sync);
  ~SqliteStore() override;
  void transact(FunctionRef<bool(Tx&)> fn) override;
  // Runs work() inside a group commit (transact() calls within it join that
  // batch), and done(error) once the batch is committed: a request waits on
  // a completion, not on a thread. At low load (no batch in progress, the
  // last one of a single item) the caller leads one at once (work, COMMIT
  // and done before post() returns, no hop to another thread); else work
  // joins the next batch, on the committer thread. work() must not block.
  void post(std::function<void()> work, std::function<void(std::exception_ptr)> done) override;
  // Called with the size of each group commit (for metrics); set before use.
  void observe_batches(std::function<void(std::size_t)> f) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagalab
