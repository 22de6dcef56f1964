// PgStore (see pg_store.hpp).
#include "sagalab/pg_store.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <cctype>
#include <thread>
#include <vector>

#include "sagalab/json_codec.hpp"

namespace sagalab {

namespace {

constexpr int kMaxAttempts = 100;

void prepare(pqxx::connection& c) {
  c.prepare("get", "SELECT value FROM sagalab_docs WHERE service = $1 AND coll = $2 AND key = $3");
  c.prepare("put",
            "INSERT INTO sagalab_docs (service, coll, key, value) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (service, coll, key) DO UPDATE SET value = EXCLUDED.value");
  c.prepare("list", "SELECT key, value FROM sagalab_docs WHERE service = $1 AND coll = $2 ORDER BY key");
  c.prepare("clear", "DELETE FROM sagalab_docs WHERE service = $1");
}

// A service's id counters are PostgreSQL sequences, not a document: every
// transaction that creates a record would otherwise update one shared row,
// and under SERIALIZABLE all of them would conflict on it. nextval() is
// outside any transaction's snapshot (a retried transaction leaves a gap).
std::string sequence_name(const std::string& service, const std::string& counter) {
  std::string out = "sagalab_seq_" + service + "_" + counter;
  for (auto& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return out;
}

class PgTx final : public Tx {
 public:
  PgTx(pqxx::transaction_base& w, const std::string& service, std::function<void(const std::string&)> ensure)
      : w_(w), service_(service), ensure_sequence_(std::move(ensure)) {}
  std::int64_t next_id(const std::string& name) override {
    auto seq = sequence_name(service_, name);
    ensure_sequence_(seq);
    return w_.exec_params1("SELECT nextval($1::regclass)", seq)[0].as<std::int64_t>();
  }
  const Record* find(Table t, const std::string& key) override {
    auto k = std::make_pair(t, key);
    if (auto it = cache_.find(k); it != cache_.end()) return it->second ? &*it->second : nullptr;
    auto r = w_.exec_prepared("get", service_, table_name(t), key);
    std::optional<Record> out;
    if (!r.empty()) out = record_from_json(t, Json::parse(r[0][0].c_str()));
    auto& slot = cache_[k];
    slot = std::move(out);
    return slot ? &*slot : nullptr;
  }
  void put(Table t, const std::string& key, Record value) override {
    w_.exec_prepared("put", service_, table_name(t), key, record_to_json(t, value).dump());
    cache_[std::make_pair(t, key)] = std::move(value);
  }
  void for_each(Table t, FunctionRef<void(const std::string&, const Record&)> fn) override {
    auto r = w_.exec_prepared("list", service_, table_name(t));
    std::vector<std::pair<std::string, Record>> rows;
    for (const auto& row : r) rows.emplace_back(row[0].c_str(), record_from_json(t, Json::parse(row[1].c_str())));
    for (const auto& [k, v] : rows) fn(k, v);
  }
  void clear_all() override {
    w_.exec_prepared("clear", service_);
    // The counters start again at 1, as they do in a store whose documents hold them.
    w_.exec_params("SELECT setval(c.oid::regclass, 1, false) FROM pg_class c WHERE c.relkind = 'S' AND "
                   "starts_with(c.relname::text, $1)",
                   sequence_name(service_, ""));
    cache_.clear();
  }

 private:
  pqxx::transaction_base& w_;
  const std::string& service_;
  std::function<void(const std::string&)> ensure_sequence_;
  std::map<std::pair<Table, std::string>, std::optional<Record>> cache_;
};

}  // namespace

void create_schema(const std::string& url, const std::string& ddl) {
  // Replicas starting together may race on the catalog: a second try sees the tables.
  // A server that is still starting (a compose stack starts everything at once)
  // is waited for, up to 30 s, instead of failing the program's start.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int attempt = 1;; ++attempt) {
    try {
      pqxx::connection c(url);
      pqxx::work w(c);
      w.exec(ddl);
      w.commit();
      return;
    } catch (const pqxx::sql_error&) {
      if (attempt >= 5) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
    } catch (const pqxx::broken_connection&) {
      if (std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

bool is_postgres_url(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

std::string store_url_problem(const std::string& url) {
  return url == "sqlite" || is_postgres_url(url) ? "" : "must be sqlite or a postgresql:// URL";
}

struct PgStore::Impl {
  std::string url, service;
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::unique_ptr<pqxx::connection>> idle;
  std::deque<std::pair<std::function<void()>, std::function<void(std::exception_ptr)>>> queue;
  std::vector<std::thread> threads;
  bool stopping = false;
  std::atomic<std::int64_t> retries{0};
  std::function<void(std::size_t)> on_batch;
  std::set<std::string> sequences;  // created (or found) already; under mutex

  // Creates a counter's sequence the first time this process uses it, on a
  // connection of its own (the caller's transaction stays as it is).
  void ensure_sequence(const std::string& name) {
    {
      std::lock_guard lock(mutex);
      if (sequences.count(name)) return;
    }
    for (int attempt = 1;; ++attempt) {
      try {
        pqxx::connection c(url);
        pqxx::nontransaction n(c);
        n.exec("CREATE SEQUENCE IF NOT EXISTS " + n.quote_name(name));
        break;
      } catch (const pqxx::sql_error&) {
        // Two processes creating it at once: one of them fails; the sequence exists.
        if (attempt >= 3) throw;
      }
    }
    std::lock_guard lock(mutex);
    sequences.insert(name);
  }

  std::unique_ptr<pqxx::connection> connect() {
    auto c = std::make_unique<pqxx::connection>(url);
    prepare(*c);
    return c;
  }
  std::unique_ptr<pqxx::connection> checkout() {
    {
      std::lock_guard lock(mutex);
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    return connect();
  }
  void give_back(std::unique_ptr<pqxx::connection> c) {
    if (!c || !c->is_open()) return;
    std::lock_guard lock(mutex);
    idle.push_back(std::move(c));
  }
  void worker() {
    while (true) {
      std::pair<std::function<void()>, std::function<void(std::exception_ptr)>> job;
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        job = std::move(queue.front());
        queue.pop_front();
      }
      std::exception_ptr error;
      try {
        job.first();
      } catch (...) {
        error = std::current_exception();
      }
      if (on_batch) on_batch(1);
      job.second(error);
    }
  }
};

PgStore::PgStore(const std::string& url, const std::string& service, int threads)
    : impl_(std::make_unique<Impl>()) {
  impl_->url = url;
  impl_->service = service;
  try {
    create_schema(url,
                  "CREATE TABLE IF NOT EXISTS sagalab_docs (service TEXT NOT NULL, coll TEXT NOT NULL, key TEXT NOT "
                  "NULL, value TEXT NOT NULL, PRIMARY KEY (service, coll, key))");
    impl_->give_back(impl_->connect());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot use PostgreSQL at " + url + ": " + e.what());
  }
  for (int i = 0; i < threads; ++i) impl_->threads.emplace_back([this] { impl_->worker(); });
}

PgStore::~PgStore() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

void PgStore::transact(FunctionRef<bool(Tx&)> fn) {
  auto conn = impl_->checkout();
  thread_local std::mt19937 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    try {
      pqxx::transaction<pqxx::isolation_level::serializable> w(*conn);
      PgTx tx(w, impl_->service, [this](const std::string& seq) { impl_->ensure_sequence(seq); });
      if (fn(tx)) {
        w.commit();
      } else {
        w.abort();
      }
      impl_->give_back(std::move(conn));
      return;
    } catch (const pqxx::transaction_rollback&) {
      // A serialization failure or a deadlock: nothing was committed; run fn again on fresh reads.
      ++impl_->retries;
      if (attempt >= kMaxAttempts) throw;
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 200 * attempt)(rng)));
    } catch (const pqxx::broken_connection&) {
      if (attempt >= 3) throw;
      conn = impl_->connect();
    } catch (...) {
      impl_->give_back(std::move(conn));
      throw;
    }
  }
}

void PgStore::post(std::function<void()> work, std::function<void(std::exception_ptr)> done) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->queue.emplace_back(std::move(work), std::move(done));
  }
  impl_->cv.notify_one();
}

void PgStore::observe_batches(std::function<void(std::size_t)> f) { impl_->on_batch = std::move(f); }

std::int64_t PgStore::retries() const { return impl_->retries.load(); }

}  // namespace sagalab
