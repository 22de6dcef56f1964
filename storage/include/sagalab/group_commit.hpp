// Group commit: concurrent transactions on one SQLite connection share a
// single COMMIT (one fsync). Each caller's work runs in its own SAVEPOINT, so
// a failing one is undone alone; nobody learns of its work before the COMMIT
// that made it durable.
//
// Two ways in: run() blocks the calling thread until then (the first waiting
// caller leads the next batch); post() returns at once and calls its
// completion from the committer thread after the COMMIT, so that an
// asynchronous caller (the orchestrator's sagas) waits on a handler, never on
// a thread. Completions must be short: they post work elsewhere.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "sagalab/sqlite.hpp"

namespace sagalab {

class GroupCommit {
 public:
  using Done = std::function<void(std::exception_ptr)>;
  explicit GroupCommit(Db& db);
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Runs work() inside a shared transaction: its changes are kept when it
  // returns true, undone when it returns false or throws (the exception is
  // rethrown here). Returns once they are committed. Called from inside a
  // posted item's work (on the thread leading its batch), it runs at once in
  // a nested savepoint of that item, which commits with it.
  void run(const std::function<bool()>& work);
  // The same, without blocking: done(error) is called on the committer thread
  // once the batch holding work() is committed (error: what work() threw, or
  // why the COMMIT failed).
  void post(std::function<bool()> work, Done done);
  // Waits for every posted item, then stops the committer thread.
  void shutdown();
  // Called with the size of each committed batch (set before first use).
  std::function<void(std::size_t)> on_batch;

 private:
  struct Item {
    std::function<bool()> owned;          // post()
    const std::function<bool()>* work;    // run(): the caller's
    Done done;                            // post() only
    std::exception_ptr error;
    bool finished = false;
  };
  void lead(std::deque<Item*>& batch);
  void commit_loop();
  // Leads one batch; called with the lock held, returns with it held.
  void lead_next(std::unique_lock<std::mutex>& lock);

  // The transaction statements, prepared once (by the first leader) rather
  // than parsed at every batch: BEGIN, COMMIT, ROLLBACK and the savepoints.
  struct Statements;
  Statements& sql();

  Db& db_;
  std::unique_ptr<Statements> sql_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item*> queue_;
  bool leading_ = false;
  bool stopping_ = false;
  std::thread committer_;  // started by the first post()
};

}  // namespace sagalab
