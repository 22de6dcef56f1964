// A store the HTTP edge can hand a whole domain call to: post() runs work()
// (which calls transact()) and done(error) once what it committed is durable,
// without the caller waiting on another request's commit. SqliteStore
// group-commits (on the caller's thread at low load, else on its committer
// thread); PgStore runs on a pool of connections.
#pragma once

#include <exception>
#include <functional>

#include "sagalab/store.hpp"

namespace sagalab {

class AsyncStore : public Store {
 public:
  virtual void post(std::function<void()> work, std::function<void(std::exception_ptr)> done) = 0;
  // Called with the size of each commit batch (for metrics); set before use. 1 where nothing is batched.
  virtual void observe_batches(std::function<void(std::size_t)> f) = 0;
};

}  // namespace sagalab
