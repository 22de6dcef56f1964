// MemoryStore: writes go to an overlay that is merged on commit, so a
// transaction that returns false (or throws) leaves nothing behind.
#include "sagalab/store.hpp"

namespace sagalab {

std::int64_t Tx::next_id(const std::string& name) {
  auto cur = get("_counters", name);
  std::int64_t n = cur ? cur->get<std::int64_t>() + 1 : 1;
  put("_counters", name, n);
  return n;
}

namespace {

class MemoryTx final : public Tx {
 public:
  explicit MemoryTx(const MemoryStore::Data& base) : base_(base) {}

  std::optional<Json> get(const std::string& coll, const std::string& key) override {
    if (cleared_) {
      return lookup(overlay_, coll, key);
    }
    if (auto v = lookup(overlay_, coll, key)) return v;
    return lookup(base_, coll, key);
  }
  void put(const std::string& coll, const std::string& key, const Json& value) override {
    overlay_[coll][key] = value;
  }
  std::vector<std::pair<std::string, Json>> list(const std::string& coll) override {
    std::map<std::string, Json> merged;
    if (!cleared_) {
      if (auto it = base_.find(coll); it != base_.end()) merged = it->second;
    }
    if (auto it = overlay_.find(coll); it != overlay_.end()) {
      for (const auto& [k, v] : it->second) merged[k] = v;
    }
    return {merged.begin(), merged.end()};
  }
  void clear_all() override {
    cleared_ = true;
    overlay_.clear();
  }
  void apply(MemoryStore::Data& data) {
    if (cleared_) data.clear();
    for (auto& [coll, docs] : overlay_) {
      for (auto& [k, v] : docs) data[coll][k] = std::move(v);
    }
  }

 private:
  static std::optional<Json> lookup(const MemoryStore::Data& d, const std::string& coll,
                                    const std::string& key) {
    auto c = d.find(coll);
    if (c == d.end()) return std::nullopt;
    auto k = c->second.find(key);
    if (k == c->second.end()) return std::nullopt;
    return k->second;
  }

  const MemoryStore::Data& base_;
  MemoryStore::Data overlay_;
  bool cleared_ = false;
};

}  // namespace

void MemoryStore::transact(const std::function<bool(Tx&)>& fn) {
  std::lock_guard lock(mutex_);
  MemoryTx tx(data_);
  if (fn(tx)) tx.apply(data_);
}

MemoryStore::Data MemoryStore::committed() const {
  std::lock_guard lock(mutex_);
  return data_;
}

void MemoryStore::restore(Data data) {
  std::lock_guard lock(mutex_);
  data_ = std::move(data);
}

}  // namespace sagalab
