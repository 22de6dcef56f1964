// Group commit (see group_commit.hpp).
#include "sagalab/group_commit.hpp"

namespace sagalab {

void GroupCommit::run(const std::function<bool()>& work) {
  Item item{&work, nullptr, false};
  std::unique_lock lock(mutex_);
  queue_.push_back(&item);
  while (!item.done) {
    if (leading_) {
      cv_.wait(lock);
      continue;
    }
    leading_ = true;
    std::deque<Item*> batch;
    batch.swap(queue_);
    lock.unlock();
    lead(batch);
    lock.lock();
    for (Item* i : batch) i->done = true;
    leading_ = false;
    cv_.notify_all();
  }
  lock.unlock();
  if (item.error) std::rethrow_exception(item.error);
}

void GroupCommit::lead(std::deque<Item*>& batch) {
  try {
    db_.exec("BEGIN IMMEDIATE");
  } catch (...) {
    for (Item* i : batch) i->error = std::current_exception();
    return;
  }
  for (Item* i : batch) {
    db_.exec("SAVEPOINT work");
    bool keep = false;
    try {
      keep = (*i->work)();
    } catch (...) {
      i->error = std::current_exception();
    }
    db_.exec(keep ? "RELEASE work" : "ROLLBACK TO work; RELEASE work");
  }
  try {
    db_.exec("COMMIT");
  } catch (...) {
    auto e = std::current_exception();
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
    for (Item* i : batch) {
      if (!i->error) i->error = e;
    }
  }
}

}  // namespace sagalab
