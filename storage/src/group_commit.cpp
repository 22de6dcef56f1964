// Group commit (see group_commit.hpp).
#include "sagalab/group_commit.hpp"

namespace sagalab {

namespace {
// The group commit whose batch this thread is running work of, if any.
thread_local const GroupCommit* tl_leading = nullptr;
}  // namespace

GroupCommit::~GroupCommit() { shutdown(); }

void GroupCommit::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

void GroupCommit::lead_next(std::unique_lock<std::mutex>& lock) {
  leading_ = true;
  std::deque<Item*> batch;
  batch.swap(queue_);
  lock.unlock();
  lead(batch);
  // Completions first (posted items are owned here, and deleted), then the
  // blocked callers.
  std::deque<Item*> blocked;
  for (Item* i : batch) {
    if (i->done) {
      i->done(i->error);
      delete i;
    } else {
      blocked.push_back(i);
    }
  }
  lock.lock();
  for (Item* i : blocked) i->finished = true;
  leading_ = false;
  cv_.notify_all();
}

void GroupCommit::run(const std::function<bool()>& work) {
  if (tl_leading == this) {
    db_.exec("SAVEPOINT nested");
    bool keep = false;
    try {
      keep = work();
    } catch (...) {
      db_.exec("ROLLBACK TO nested; RELEASE nested");
      throw;
    }
    db_.exec(keep ? "RELEASE nested" : "ROLLBACK TO nested; RELEASE nested");
    return;
  }
  Item item;
  item.work = &work;
  std::unique_lock lock(mutex_);
  queue_.push_back(&item);
  cv_.notify_all();
  while (!item.finished) {
    if (leading_) {
      cv_.wait(lock);
      continue;
    }
    lead_next(lock);
  }
  lock.unlock();
  if (item.error) std::rethrow_exception(item.error);
}

void GroupCommit::post(std::function<bool()> work, Done done) {
  auto* item = new Item;
  item->owned = std::move(work);
  item->work = &item->owned;
  item->done = std::move(done);
  std::lock_guard lock(mutex_);
  if (!committer_.joinable()) committer_ = std::thread([this] { commit_loop(); });
  queue_.push_back(item);
  cv_.notify_all();
}

void GroupCommit::commit_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return (!queue_.empty() && !leading_) || (stopping_ && queue_.empty()); });
    if (queue_.empty()) return;  // stopping, nothing left
    lead_next(lock);
  }
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
    tl_leading = this;
    try {
      keep = (*i->work)();
    } catch (...) {
      i->error = std::current_exception();
    }
    tl_leading = nullptr;
    db_.exec(keep ? "RELEASE work" : "ROLLBACK TO work; RELEASE work");
  }
  if (on_batch) on_batch(batch.size());
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
