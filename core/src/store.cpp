// MemoryStore: writes go straight to the tables and an undo log remembers what
// they replaced, so a rolled-back transaction restores it and a committed one
// costs nothing more. An index by saga lets the simulator release the records
// of a saga it has finished checking.
#include "sagalab/store.hpp"

#include <algorithm>

namespace sagalab {

const char* table_name(Table t) {
  switch (t) {
    case Table::Compras: return "compras";
    case Table::Pagos: return "pagos";
    case Table::Reservas: return "reservas";
    case Table::Stock: return "stock";
    case Table::Idempotency: return "idempotency";
    case Table::Tombstones: return "tombstones";
    case Table::Counters: return "_counters";
    case Table::Meta: return "_meta";
  }
  return "?";
}

const std::string& saga_of(const Record& r) {
  static const std::string none;
  return std::visit(
      [](const auto& v) -> const std::string& {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, StockLevel> || std::is_same_v<T, std::int64_t>) {
          return none;
        } else {
          return v.saga_id;
        }
      },
      r);
}

std::int64_t Tx::next_id(const std::string& name) {
  const auto* cur = get<std::int64_t>(Table::Counters, name);
  std::int64_t n = cur ? *cur + 1 : 1;
  put(Table::Counters, name, n);
  return n;
}

class MemoryStore::MemTx final : public Tx {
 public:
  explicit MemTx(MemoryStore& s) : s_(s), undo_(s.undo_) { undo_.clear(); }

  const Record* find(Table t, const std::string& key) override {
    auto& m = s_.data_[static_cast<std::size_t>(t)];
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  void put(Table t, const std::string& key, Record value) override {
    auto& m = s_.data_[static_cast<std::size_t>(t)];
    auto [it, inserted] = m.try_emplace(key, std::move(value));
    if (inserted) {
      const std::string& saga = saga_of(it->second);
      bool indexed = !saga.empty();
      if (indexed) {
        auto& keys = s_.by_saga_[saga];
        if (keys.empty()) keys.reserve(8);  // a saga's records in one service: a few, and their receipts
        keys.emplace_back(t, &it->first);
      }
      undo_.push_back({t, &it->first, std::nullopt, indexed});
    } else {
      undo_.push_back({t, &it->first, std::move(it->second), false});
      it->second = std::move(value);
    }
  }
  void for_each(Table t, FunctionRef<void(const std::string&, const Record&)> fn) override {
    const auto& m = s_.data_[static_cast<std::size_t>(t)];
    std::vector<const std::pair<const std::string, Record>*> rows;
    rows.reserve(m.size());
    for (const auto& kv : m) rows.push_back(&kv);
    std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* kv : rows) fn(kv->first, kv->second);
  }
  void clear_all() override {
    if (!saved_) saved_ = std::make_unique<Tables>(s_.data_);
    for (auto& m : s_.data_) m.clear();
    s_.by_saga_.clear();
    undo_.clear();
  }
  void rollback() {
    if (saved_) {
      s_.data_ = std::move(*saved_);
      s_.reindex();
      return;
    }
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      auto& m = s_.data_[static_cast<std::size_t>(it->t)];
      auto rec = m.find(*it->key);
      if (it->old) {
        rec->second = std::move(*it->old);
        continue;
      }
      if (it->indexed) {
        // Entries are appended in order, so this insert's is the last of its saga.
        auto idx = s_.by_saga_.find(saga_of(rec->second));
        idx->second.pop_back();
        if (idx->second.empty()) s_.by_saga_.erase(idx);
      }
      m.erase(rec);
    }
  }

 private:
  MemoryStore& s_;
  std::vector<Undo>& undo_;
  std::unique_ptr<Tables> saved_;
};

void MemoryStore::transact(FunctionRef<bool(Tx&)> fn) {
  std::lock_guard lock(mutex_);
  MemTx tx(*this);
  bool commit = false;
  try {
    commit = fn(tx);
  } catch (...) {
    tx.rollback();
    throw;
  }
  if (!commit) tx.rollback();
  undo_.clear();
}

MemoryStore::Tables MemoryStore::committed() const {
  std::lock_guard lock(mutex_);
  return data_;
}

void MemoryStore::restore(Tables data) {
  std::lock_guard lock(mutex_);
  data_ = std::move(data);
  reindex();
}

void MemoryStore::reindex() {
  by_saga_.clear();
  for (std::size_t t = 0; t < kTables; ++t) {
    for (const auto& [k, v] : data_[t]) {
      const auto& saga = saga_of(v);
      if (!saga.empty()) by_saga_[saga].emplace_back(static_cast<Table>(t), &k);
    }
  }
}

std::vector<std::string> MemoryStore::saga_ids() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [id, keys] : by_saga_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

void MemoryStore::extract_saga(const std::string& saga_id, FunctionRef<void(Record&&)> take) {
  std::lock_guard lock(mutex_);
  auto it = by_saga_.find(saga_id);
  if (it == by_saga_.end()) return;
  for (const auto& [t, key] : it->second) {
    auto& m = data_[static_cast<std::size_t>(t)];
    auto rec = m.find(*key);
    take(std::move(rec->second));
    m.erase(rec);
  }
  by_saga_.erase(it);
}

}  // namespace sagalab
