// Group commit (see group_commit.hpp).
#include "sagalab/group_commit.hpp"

namespace sagalab {

namespace {
// The group commit whose batch this thread is running work of, if any.
thread_local const GroupCommit* tl_leading = nullptr;
}  // namespace

struct GroupCommit::Statements {
  Stmt begin, commit, rollback, save, release, undo, save_nested, release_nested, undo_nested;
  explicit Statements(sqlite3* db)
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        rollback(db, "ROLLBACK"),
        save(db, "SAVEPOINT work"),
        release(db, "RELEASE work"),
        undo(db, "ROLLBACK TO work"),
        save_nested(db, "SAVEPOINT nested"),
        release_nested(db, "RELEASE nested"),
        undo_nested(db, "ROLLBACK TO nested") {}
};

namespace {
void exec(Stmt& s) {
  s.step();
  s.reset();
}
}  // namespace

// Only the thread leading a batch uses them, one at a time.
GroupCommit::Statements& GroupCommit::sql() {
  if (!sql_) sql_ = std::make_unique<Statements>(db_.handle());
  return *sql_;
}

GroupCommit::GroupCommit(Db& db) : db_(db) {}
GroupCommit::~GroupCommit() { shutdown(); }

void GroupCommit::shutdown() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  // What is queued or being committed finishes first (the committer thread,
  // or a poster leading a batch of its own).
  committer_cv_.notify_all();
  cv_.wait(lock, [&] { return queue_.empty() && !leading_; });
  lock.unlock();
  if (committer_.joinable()) committer_.join();
}

void GroupCommit::lead_next(std::unique_lock<std::mutex>& lock) {
  leading_ = true;
  std::deque<Item*> batch;
  batch.swap(queue_);
  lock.unlock();
  lead(batch);
  lock.lock();
  last_batch_ = batch.size();
  // The batch is committed: the blocked callers learn it, the next batch may
  // start, and the posted items' completions run (outside the lock: they may
  // post again).
  std::deque<Item*> posted;
  for (Item* i : batch) {
    if (i->done) {
      posted.push_back(i);
    } else {
      i->finished = true;
    }
  }
  leading_ = false;
  cv_.notify_all();
  if (!queue_.empty()) hand_on();
  lock.unlock();
  for (Item* i : posted) {
    i->done(i->error);
    delete i;
  }
  lock.lock();
}

void GroupCommit::hand_on() {
  if (!committer_.joinable()) committer_ = std::thread([this] { commit_loop(); });
  committer_cv_.notify_one();
}

void GroupCommit::run(const std::function<bool()>& work) {
  if (tl_leading == this) {
    auto& q = sql();
    exec(q.save_nested);
    bool keep = false;
    try {
      keep = work();
    } catch (...) {
      exec(q.undo_nested);
      exec(q.release_nested);
      throw;
    }
    if (!keep) exec(q.undo_nested);
    exec(q.release_nested);
    return;
  }
  Item item;
  item.work = &work;
  std::unique_lock lock(mutex_);
  queue_.push_back(&item);
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
  std::unique_lock lock(mutex_);
  queue_.push_back(item);
  // A batch is being committed: this item joins the next one, which the
  // leader hands on to the committer thread when it ends.
  if (leading_) return;
  // Under load (the last batch held more than one item) the committer
  // thread leads: the moment it takes to wake lets the next items join this
  // batch, and one COMMIT (one fsync) serves them all. Otherwise nobody else
  // is coming: lead this batch here rather than wake a thread.
  if (last_batch_ > 1) return hand_on();
  lead_next(lock);
}

void GroupCommit::commit_loop() {
  std::unique_lock lock(mutex_);
  auto waiting = [&] { return !queue_.empty() && !leading_; };  // items nobody leads
  for (;;) {
    committer_cv_.wait(lock, [&] { return waiting() || stopping_; });
    if (waiting()) {
      lead_next(lock);
      continue;
    }
    if (queue_.empty() && !leading_) return;  // stopping, nothing left
    // Stopping while another thread leads: that leader hands on what is left.
    cv_.wait(lock);
  }
}

void GroupCommit::lead(std::deque<Item*>& batch) {
  Statements* q = nullptr;
  try {
    q = &sql();
    exec(q->begin);
  } catch (...) {
    for (Item* i : batch) i->error = std::current_exception();
    return;
  }
  for (Item* i : batch) {
    exec(q->save);
    bool keep = false;
    tl_leading = this;
    try {
      keep = (*i->work)();
    } catch (...) {
      i->error = std::current_exception();
    }
    tl_leading = nullptr;
    if (!keep) exec(q->undo);
    exec(q->release);
  }
  if (on_batch) on_batch(batch.size());
  try {
    exec(q->commit);
  } catch (...) {
    auto e = std::current_exception();
    try {
      exec(q->rollback);
    } catch (...) {
    }
    for (Item* i : batch) {
      if (!i->error) i->error = e;
    }
  }
}

}  // namespace sagalab
