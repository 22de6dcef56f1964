// Group commit: concurrent transactions on one SQLite connection share a
// single COMMIT (one fsync). Each caller's work runs in its own SAVEPOINT, so
// a failing one is undone alone; every caller returns only after the COMMIT
// that made its work durable. The first waiting caller leads the next batch.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>

#include "sagalab/sqlite.hpp"

namespace sagalab {

class GroupCommit {
 public:
  explicit GroupCommit(Db& db) : db_(db) {}
  // Runs work() inside a shared transaction: its changes are kept when it
  // returns true, undone when it returns false or throws (the exception is
  // rethrown here). Returns once they are committed.
  void run(const std::function<bool()>& work);

 private:
  struct Item {
    const std::function<bool()>* work;
    std::exception_ptr error;
    bool done = false;
  };
  void lead(std::deque<Item*>& batch);

  Db& db_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item*> queue_;
  bool leading_ = false;
};

}  // namespace sagalab
