// PgSagaLog (see pg_saga_log.hpp).
#include "sagalab/pg_saga_log.hpp"

#include "sagalab/pg_store.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

namespace sagalab {

namespace {

// Time on PostgreSQL's clock, the one every replica shares, in milliseconds.
#define NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define UNFINISHED "estado NOT IN ('completada', 'compensada')"

void prepare(pqxx::connection& c) {
  c.prepare("owner_of", "SELECT owner FROM sagalab_sagas WHERE saga_id = $1");
  c.prepare("ins_event", "INSERT INTO sagalab_events (saga_id, seq, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING");
  c.prepare("start",
            "INSERT INTO sagalab_sagas (saga_id, estado, idem_key, created_ms, updated_ms, snapshot, owner, "
            "lease_until_ms) VALUES ($1, $2, $3, $4, $4, $5, $6, " NOW_MS " + $7) ON CONFLICT DO NOTHING");
  c.prepare("update_row",
            "UPDATE sagalab_sagas SET estado = $2, updated_ms = $3, snapshot = $4 WHERE saga_id = $1 AND owner = $5");
  c.prepare("claim",
            "UPDATE sagalab_sagas SET owner = $1, lease_until_ms = " NOW_MS " + $2 WHERE saga_id IN ("
            "SELECT saga_id FROM sagalab_sagas WHERE " UNFINISHED " AND (lease_until_ms < " NOW_MS
            " OR ($3 AND owner = $1)) FOR UPDATE SKIP LOCKED) RETURNING saga_id, created_ms");
  c.prepare("renew", "UPDATE sagalab_sagas SET lease_until_ms = " NOW_MS " + $2 WHERE owner = $1 AND " UNFINISHED
                     " AND saga_id = ANY(string_to_array($3, ','))");
  c.prepare("release", "UPDATE sagalab_sagas SET owner = '', lease_until_ms = 0 WHERE saga_id = $1 AND owner = $2");
  c.prepare("unfinished", "SELECT saga_id FROM sagalab_sagas WHERE " UNFINISHED " ORDER BY created_ms");
  c.prepare("events", "SELECT body FROM sagalab_events WHERE saga_id = $1 ORDER BY seq");
  c.prepare("snapshot", "SELECT snapshot FROM sagalab_sagas WHERE saga_id = $1");
  c.prepare("by_idem", "SELECT saga_id FROM sagalab_sagas WHERE idem_key = $1 AND idem_key <> ''");
  c.prepare("list_all", "SELECT snapshot FROM sagalab_sagas ORDER BY created_ms, saga_id LIMIT $1");
  c.prepare("list_state",
            "SELECT snapshot FROM sagalab_sagas WHERE estado = $1 ORDER BY created_ms, saga_id LIMIT $2");
}

constexpr std::size_t kMaxBatch = 256;

// One connection and its thread, running queued jobs in batches: a
// transaction per batch, a savepoint per job (a job that throws is undone alone).
struct Lane {
  using Work = std::function<void(pqxx::dbtransaction&)>;
  struct Job {
    Work work;
    SagaLog::Done done;
  };
  std::string url;
  // The writers' lane: its sessions end after this long idle in a transaction
  // (0: never); reads on the other lane are repeated after a lost connection.
  std::int64_t idle_timeout_ms = 0;
  bool reads_only = false;
  std::unique_ptr<pqxx::connection> conn;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Job> queue;
  bool stopping = false;
  std::function<void(std::size_t)> on_batch;
  std::thread thread;

  std::unique_ptr<pqxx::connection> connect() {
    auto c = std::make_unique<pqxx::connection>(url);
    if (idle_timeout_ms > 0) {
      pqxx::nontransaction n(*c);
      n.exec("SET idle_in_transaction_session_timeout = " + std::to_string(idle_timeout_ms));
    }
    prepare(*c);
    return c;
  }
  void start() { thread = std::thread([this] { loop(); }); }
  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }

  void post(Work work, SagaLog::Done done) {
    {
      std::lock_guard lock(mutex);
      if (stopping) throw std::runtime_error("the saga log is closed");
      queue.push_back({std::move(work), std::move(done)});
    }
    cv.notify_one();
  }
  // Runs work in the next batch and waits for its commit (not from the lane's thread).
  void run(Work work) {
    std::promise<void> p;
    auto f = p.get_future();
    post(std::move(work), [&p](std::exception_ptr e) {
      if (e) {
        p.set_exception(e);
      } else {
        p.set_value();
      }
    });
    f.get();
  }

  // A batch whose connection broke before its COMMIT is tried again on a new
  // one (nothing of it was committed). A connection lost during the COMMIT
  // leaves the writes in doubt and fails every job; a batch of reads is
  // simply repeated. Any other failure of the COMMIT fails every job.
  void commit(std::vector<Job>& batch) {
    std::vector<std::exception_ptr> errors(batch.size());
    for (int attempt = 1;; ++attempt) {
      try {
        if (!conn || !conn->is_open()) conn = connect();
        pqxx::work w(*conn);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          errors[i] = nullptr;
          try {
            pqxx::subtransaction s(w, "job");
            batch[i].work(s);
            s.commit();
          } catch (const pqxx::broken_connection&) {
            throw;
          } catch (...) {
            errors[i] = std::current_exception();
          }
        }
        w.commit();
        break;
      } catch (const pqxx::failure& e) {
        const bool lost = dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
                          (reads_only && dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr);
        if (!lost) {
          std::fill(errors.begin(), errors.end(), std::current_exception());
          break;
        }
        conn.reset();
        if (attempt < 3) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
          continue;
        }
        std::fill(errors.begin(), errors.end(), std::current_exception());
        break;
      } catch (...) {
        std::fill(errors.begin(), errors.end(), std::current_exception());
        break;
      }
    }
    if (on_batch) on_batch(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(errors[i]);
  }

  void loop() {
    while (true) {
      std::vector<Job> batch;
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        while (!queue.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      commit(batch);
    }
  }
};

}  // namespace

struct PgSagaLog::Impl {
  std::string owner;
  std::int64_t lease_ms;
  // Appends, claims, renewals and releases: they lock rows. A writer that
  // stops mid-transaction (frozen, partitioned) would keep its rows locked,
  // and claim()'s SKIP LOCKED would pass them over for as long as it stays
  // away: PostgreSQL ends such a session after half a lease. No job of this
  // lane does more than SQL inside its transaction, so a live one is never cut.
  Lane writes;
  // Reads for the HTTP API and for replays: they lock nothing, may parse a lot,
  // and never wait behind a batch of appends.
  Lane reads;

  // The one writer of a saga's events and row, inside a job's savepoint.
  void write(pqxx::dbtransaction& w, const std::string& saga_id, int seq, const std::vector<std::string>& bodies,
             const std::optional<Row>& row, std::int64_t now_ms, bool start) {
    if (start) {
      if (!row) throw std::logic_error("a saga's start is written with its row");
      auto r = w.exec_prepared("start", saga_id, row->estado, row->idem_key, now_ms, row->snapshot, owner, lease_ms);
      if (r.affected_rows() == 0)
        throw SagaLogConflict(SagaLogConflict::Kind::IdemTaken,
                              "idempotency key '" + row->idem_key + "' already belongs to another saga");
    } else {
      auto r = w.exec_prepared("owner_of", saga_id);
      if (r.empty() || r[0][0].as<std::string>() != owner)
        throw SagaLogConflict(SagaLogConflict::Kind::LeaseLost,
                              "saga " + saga_id + " is driven by " + (r.empty() ? "nobody" : r[0][0].as<std::string>()));
    }
    int n = seq;
    for (const auto& body : bodies) {
      if (w.exec_prepared("ins_event", saga_id, n, body).affected_rows() == 0)
        throw SagaLogConflict(SagaLogConflict::Kind::LeaseLost,
                              "saga " + saga_id + ": another orchestrator appended event " + std::to_string(n));
      ++n;
    }
    if (row && !start) {
      if (w.exec_prepared("update_row", saga_id, row->estado, now_ms, row->snapshot, owner).affected_rows() == 0)
        throw SagaLogConflict(SagaLogConflict::Kind::LeaseLost, "saga " + saga_id + " changed hands");
    }
  }
};

PgSagaLog::PgSagaLog(const std::string& url, std::string owner, std::int64_t lease_ms)
    : impl_(std::make_unique<Impl>()) {
  auto& i = *impl_;
  i.owner = std::move(owner);
  i.lease_ms = lease_ms;
  i.writes.url = i.reads.url = url;
  i.writes.idle_timeout_ms = std::max<std::int64_t>(lease_ms / 2, 200);
  i.reads.reads_only = true;
  try {
    create_schema(url,
                  "CREATE TABLE IF NOT EXISTS sagalab_events (saga_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                  "body TEXT NOT NULL, PRIMARY KEY (saga_id, seq));"
                  "CREATE TABLE IF NOT EXISTS sagalab_sagas (saga_id TEXT PRIMARY KEY, estado TEXT NOT NULL, "
                  "idem_key TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, snapshot TEXT NOT NULL, "
                  "owner TEXT NOT NULL, lease_until_ms BIGINT NOT NULL);"
                  "CREATE UNIQUE INDEX IF NOT EXISTS sagalab_sagas_idem ON sagalab_sagas(idem_key) WHERE idem_key <> '';"
                  "CREATE INDEX IF NOT EXISTS sagalab_sagas_estado ON sagalab_sagas(estado, created_ms);"
                  "CREATE INDEX IF NOT EXISTS sagalab_sagas_owner ON sagalab_sagas(owner) WHERE " UNFINISHED ";");
    i.writes.conn = i.writes.connect();
    i.reads.conn = i.reads.connect();
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot use PostgreSQL at " + url + " for the saga log: " + e.what());
  }
  i.writes.start();
  i.reads.start();
}

PgSagaLog::~PgSagaLog() { close(); }

void PgSagaLog::close() {
  impl_->writes.stop();
  impl_->reads.stop();
}

namespace {
bool starts(const std::vector<Event>& events) { return !events.empty() && events.front().type == Event::Type::Start; }
}  // namespace

void PgSagaLog::append(const std::string& saga_id, int seq, std::vector<Event> events, std::optional<Row> row,
                       std::int64_t now_ms, Done done) {
  auto& i = *impl_;
  i.writes.post([&i, saga_id, seq, start = starts(events), bodies = encode(events), row = std::move(row),
                 now_ms](pqxx::dbtransaction& w) { i.write(w, saga_id, seq, bodies, row, now_ms, start); },
                std::move(done));
}

void PgSagaLog::append_now(const std::string& saga_id, int seq, const std::vector<Event>& events,
                           const std::optional<Row>& row, std::int64_t now_ms) {
  auto bodies = encode(events);
  impl_->writes.run([&](pqxx::dbtransaction& w) { impl_->write(w, saga_id, seq, bodies, row, now_ms, starts(events)); });
}

namespace {
// One text column of at most one row, read in the reads lane's next batch.
void read_one(Lane& lane, const char* stmt, const std::string& key,
              std::function<void(std::optional<std::string>, std::exception_ptr)> done) {
  auto out = std::make_shared<std::optional<std::string>>();
  lane.post(
      [stmt, key, out](pqxx::dbtransaction& w) {
        auto r = w.exec_prepared(stmt, key);
        if (!r.empty()) *out = r[0][0].as<std::string>();
      },
      [out, done = std::move(done)](std::exception_ptr e) { done(std::move(*out), e); });
}

// Every row's first column, as text (parsed by the caller, outside the transaction).
std::vector<std::string> read_column(Lane& lane, const std::function<pqxx::result(pqxx::dbtransaction&)>& query) {
  std::vector<std::string> out;
  lane.run([&](pqxx::dbtransaction& w) {
    out.clear();
    for (const auto& row : query(w)) out.push_back(row[0].as<std::string>());
  });
  return out;
}
}  // namespace

void PgSagaLog::snapshot(const std::string& saga_id, std::function<void(std::optional<Json>)> done) {
  read_one(impl_->reads, "snapshot", saga_id,
           [done = std::move(done)](std::optional<std::string> text, std::exception_ptr) {
             if (!text) return done(std::nullopt);
             done(Json::parse(*text, nullptr, false));
           });
}

void PgSagaLog::find_by_idem(const std::string& key,
                             std::function<void(std::optional<std::string>, std::exception_ptr)> done) {
  read_one(impl_->reads, "by_idem", key, std::move(done));
}

std::vector<std::string> PgSagaLog::unfinished() {
  return read_column(impl_->reads, [](pqxx::dbtransaction& w) { return w.exec_prepared("unfinished"); });
}

std::vector<Event> PgSagaLog::events(const std::string& saga_id) {
  std::vector<Event> out;
  for (const auto& body :
       read_column(impl_->reads, [&](pqxx::dbtransaction& w) { return w.exec_prepared("events", saga_id); })) {
    auto j = Json::parse(body, nullptr, false);
    if (j.is_discarded()) throw std::invalid_argument("saga " + saga_id + ": unreadable event in the log");
    out.push_back(event_from_json(j));
  }
  return out;
}

std::vector<Json> PgSagaLog::list(const std::string& estado, int limit) {
  std::vector<Json> out;
  for (const auto& snap : read_column(impl_->reads, [&](pqxx::dbtransaction& w) {
         return estado.empty() ? w.exec_prepared("list_all", limit) : w.exec_prepared("list_state", estado, limit);
       }))
    out.push_back(Json::parse(snap));
  return out;
}

void PgSagaLog::reset() {
  impl_->writes.run([](pqxx::dbtransaction& w) { w.exec("DELETE FROM sagalab_events; DELETE FROM sagalab_sagas;"); });
}

void PgSagaLog::observe_batches(std::function<void(std::size_t)> f) { impl_->writes.on_batch = std::move(f); }

std::vector<std::string> PgSagaLog::claim(bool startup) {
  std::vector<std::pair<std::int64_t, std::string>> got;
  impl_->writes.run([&](pqxx::dbtransaction& w) {
    got.clear();
    for (const auto& row : w.exec_prepared("claim", impl_->owner, impl_->lease_ms, startup))
      got.emplace_back(row[1].as<std::int64_t>(), row[0].as<std::string>());
  });
  std::sort(got.begin(), got.end());
  std::vector<std::string> out;
  for (auto& [created, id] : got) out.push_back(std::move(id));
  return out;
}

std::size_t PgSagaLog::renew(const std::vector<std::string>& driving) {
  // Ids are the orchestrator's own (saga_<hex>); joined for string_to_array.
  std::string ids;
  for (const auto& id : driving) {
    if (!ids.empty()) ids += ',';
    ids += id;
  }
  std::size_t n = 0;
  impl_->writes.run([&](pqxx::dbtransaction& w) {
    n = static_cast<std::size_t>(w.exec_prepared("renew", impl_->owner, impl_->lease_ms, ids).affected_rows());
  });
  return n;
}

void PgSagaLog::release(const std::string& saga_id) {
  auto& i = *impl_;
  i.writes.post([&i, saga_id](pqxx::dbtransaction& w) { w.exec_prepared("release", saga_id, i.owner); },
                [](std::exception_ptr) {});  // at worst the lease expires instead
}

}  // namespace sagalab
