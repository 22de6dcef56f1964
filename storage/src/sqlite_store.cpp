// SqliteStore: the documents of every collection in one table; a transaction
// is BEGIN IMMEDIATE ... COMMIT, and transact returns only after the commit.
#include "sagalab/sqlite_store.hpp"

#include <map>

#include "sagalab/group_commit.hpp"
#include "sagalab/json_codec.hpp"

namespace sagalab {

struct SqliteStore::Impl {
  Db db;
  Stmt get, put, list, clear;
  GroupCommit group{db};
  Impl(const std::string& path, SyncMode sync)
      : db(path, sync),
        get((db.exec("CREATE TABLE IF NOT EXISTS docs (coll TEXT NOT NULL, key TEXT NOT NULL, "
                     "value TEXT NOT NULL, PRIMARY KEY (coll, key)) WITHOUT ROWID"),
             db.handle()),
            "SELECT value FROM docs WHERE coll = ?1 AND key = ?2"),
        put(db.handle(), "INSERT OR REPLACE INTO docs (coll, key, value) VALUES (?1, ?2, ?3)"),
        list(db.handle(), "SELECT key, value FROM docs WHERE coll = ?1 ORDER BY key"),
        clear(db.handle(), "DELETE FROM docs") {}
};

namespace {

// Records are decoded once per transaction and kept, so a pointer that find()
// returns stays valid and a record read twice is parsed once.
class SqliteTx final : public Tx {
 public:
  explicit SqliteTx(SqliteStore::Impl& impl) : impl_(impl) {}
  const Record* find(Table t, const std::string& key) override {
    auto k = std::make_pair(t, key);
    if (auto it = cache_.find(k); it != cache_.end()) return it->second ? &*it->second : nullptr;
    auto& s = impl_.get;
    s.reset();
    s.bind(1, table_name(t)).bind(2, key);
    std::optional<Record> out;
    if (s.step()) out = record_from_json(t, Json::parse(s.text(0)));
    s.reset();
    auto& slot = cache_[k];
    slot = std::move(out);
    return slot ? &*slot : nullptr;
  }
  void put(Table t, const std::string& key, Record value) override {
    auto& s = impl_.put;
    s.reset();
    s.bind(1, table_name(t)).bind(2, key).bind(3, record_to_json(t, value).dump());
    s.step();
    s.reset();
    cache_[std::make_pair(t, key)] = std::move(value);
  }
  void for_each(Table t, FunctionRef<void(const std::string&, const Record&)> fn) override {
    auto& s = impl_.list;
    s.reset();
    s.bind(1, table_name(t));
    std::vector<std::pair<std::string, Record>> rows;
    while (s.step()) rows.emplace_back(s.text(0), record_from_json(t, Json::parse(s.text(1))));
    s.reset();
    for (const auto& [k, v] : rows) fn(k, v);
  }
  void clear_all() override {
    impl_.clear.reset();
    impl_.clear.step();
    impl_.clear.reset();
    cache_.clear();
  }

 private:
  SqliteStore::Impl& impl_;
  std::map<std::pair<Table, std::string>, std::optional<Record>> cache_;
};

}  // namespace

SqliteStore::SqliteStore(const std::string& path, SyncMode sync) : impl_(std::make_unique<Impl>(path, sync)) {}

SqliteStore::~SqliteStore() = default;

void SqliteStore::post(std::function<void()> work, std::function<void(std::exception_ptr)> done) {
  impl_->group.post(
      [work = std::move(work)] {
        work();
        return true;
      },
      std::move(done));
}

void SqliteStore::observe_batches(std::function<void(std::size_t)> f) { impl_->group.on_batch = std::move(f); }

void SqliteStore::transact(FunctionRef<bool(Tx&)> fn) {
  SqliteTx tx(*impl_);
  impl_->group.run([&] { return fn(tx); });
}

}  // namespace sagalab
