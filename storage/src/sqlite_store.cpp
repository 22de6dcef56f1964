// SqliteStore: the documents of every collection in one table; a transaction
// is BEGIN IMMEDIATE ... COMMIT, and transact returns only after the commit.
#include "sagalab/sqlite_store.hpp"

#include "sagalab/group_commit.hpp"

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

class SqliteTx final : public Tx {
 public:
  explicit SqliteTx(SqliteStore::Impl& impl) : impl_(impl) {}
  std::optional<Json> get(const std::string& coll, const std::string& key) override {
    auto& s = impl_.get;
    s.reset();
    s.bind(1, coll).bind(2, key);
    std::optional<Json> out;
    if (s.step()) out = Json::parse(s.text(0));
    s.reset();
    return out;
  }
  void put(const std::string& coll, const std::string& key, const Json& value) override {
    auto& s = impl_.put;
    s.reset();
    s.bind(1, coll).bind(2, key).bind(3, value.dump());
    s.step();
    s.reset();
  }
  std::vector<std::pair<std::string, Json>> list(const std::string& coll) override {
    auto& s = impl_.list;
    s.reset();
    s.bind(1, coll);
    std::vector<std::pair<std::string, Json>> out;
    while (s.step()) out.emplace_back(s.text(0), Json::parse(s.text(1)));
    s.reset();
    return out;
  }
  void clear_all() override {
    impl_.clear.reset();
    impl_.clear.step();
    impl_.clear.reset();
  }

 private:
  SqliteStore::Impl& impl_;
};

}  // namespace

SqliteStore::SqliteStore(const std::string& path, SyncMode sync) : impl_(std::make_unique<Impl>(path, sync)) {}

SqliteStore::~SqliteStore() = default;

void SqliteStore::transact(const std::function<bool(Tx&)>& fn) {
  SqliteTx tx(*impl_);
  impl_->group.run([&] { return fn(tx); });
}

}  // namespace sagalab
