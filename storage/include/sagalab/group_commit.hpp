// Group commit: concurrent transactions on one SQLite connection share a
// single COMMIT (one fsync). Each caller's work runs in its own SAVEPOINT, so
// a failing one is undone alone; nobody learns of its work before the COMMIT
// that made it durable.
//
// Two ways in: run() blocks the calling thread until then (the first waiting
// caller leads the next batch); post() never waits for another batch: when no
// batch is being committed and the last one held a single item (low load),
// the caller leads one itself, at once, and its completion runs before post()
// returns (no hop to another thread); otherwise the item joins the next batch,
// which the committer thread leads (waking it lets more items join: fewer
// fsyncs under load), and its completion runs there. So an asynchronous
// caller (the orchestrator's sagas, a service's requests) waits on a
// handler, never on a thread. Completions must be short: they post work
// elsewhere. They run outside any batch, and may post again.
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
  // The same, without waiting for another batch: done(error) is called once
  // the batch holding work() is committed (error: what work() threw, or why
  // the COMMIT failed), on this thread before post() returns when it led that
  // batch, else on the committer thread.
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
  // Leads one batch, then calls its completions; called with the lock held,
  // returns with it held.
  void lead_next(std::unique_lock<std::mutex>& lock);
  // Items are queued and nobody leads: the committer thread takes them
  // (started on first need). Called with the lock held.
  void hand_on();

  // The transaction statements, prepared once (by the first leader) rather
  // than parsed at every batch: BEGIN, COMMIT, ROLLBACK and the savepoints.
  struct Statements;
  Statements& sql();

  Db& db_;
  std::unique_ptr<Statements> sql_;
  std::mutex mutex_;
  std::condition_variable cv_;            // run()'s callers wait here
  std::condition_variable committer_cv_;  // the committer thread waits here
  std::deque<Item*> queue_;
  bool leading_ = false;
  std::size_t last_batch_ = 0;  // items in the last committed batch
  bool stopping_ = false;
  std::thread committer_;  // started the first time a batch is handed on
};

}  // namespace sagalab
