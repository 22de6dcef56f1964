// The PostgreSQL store (libpqxx): the same documents as SqliteStore, in one
// table shared by every service and every replica of it (rows keyed by
// service, collection and key). A transaction of the domain logic is one
// SERIALIZABLE PostgreSQL transaction, retried from the start when PostgreSQL
// reports a serialization failure or a deadlock: two replicas that reserve the
// last unit, replay the same idempotency key or race a compensation's
// tombstone cannot both commit what they read. SERIALIZABLE rather than row
// locks because the logic reads before it knows what it will write (a stock
// check scans, an idempotency record may be absent): predicate locks cover
// rows that do not exist yet, FOR UPDATE cannot.
#pragma once

#include <memory>
#include <string>

#include "sagalab/async_store.hpp"

namespace sagalab {

class PgStore final : public AsyncStore {
 public:
  // url: postgresql://user@host:port/db; service: whose documents these are.
  // Creates the table when missing; throws std::runtime_error when PostgreSQL cannot be reached.
  PgStore(const std::string& url, const std::string& service, int threads = 16);
  ~PgStore() override;
  void transact(FunctionRef<bool(Tx&)> fn) override;
  void post(std::function<void()> work, std::function<void(std::exception_ptr)> done) override;
  void observe_batches(std::function<void(std::size_t)> f) override;
  // Transactions retried after a serialization failure since the start (a test reads it).
  std::int64_t retries() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs `ddl` (CREATE ... IF NOT EXISTS statements) on the server at url, tried
// again when another process creating the same objects at once makes it fail,
// and waiting up to 30 s for a server that does not accept connections yet.
void create_schema(const std::string& url, const std::string& ddl);

// True for a store URL that names PostgreSQL (postgresql:// or postgres://).
bool is_postgres_url(const std::string& url);
// What is wrong with a --store value ("" when it is "sqlite" or a PostgreSQL URL).
std::string store_url_problem(const std::string& url);

}  // namespace sagalab
