// The store interface the domain logic runs on: named collections of JSON
// documents, read and written inside one transaction. Two implementations:
// MemoryStore here (simulation, unit tests) and SqliteStore in sagalab_sqlite.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sagalab {

using Json = nlohmann::json;

class Tx {
 public:
  virtual ~Tx() = default;
  virtual std::optional<Json> get(const std::string& coll, const std::string& key) = 0;
  virtual void put(const std::string& coll, const std::string& key, const Json& value) = 0;
  // Every document of a collection, ordered by key.
  virtual std::vector<std::pair<std::string, Json>> list(const std::string& coll) = 0;
  virtual void clear_all() = 0;

  // A counter kept in the store: returns 1, 2, 3, ... per name.
  std::int64_t next_id(const std::string& name);
};

class Store {
 public:
  virtual ~Store() = default;
  // Runs fn in one transaction; its writes become durable only if fn returns
  // true, and only when transact returns. Transactions are serialised.
  virtual void transact(const std::function<bool(Tx&)>& fn) = 0;
};

class MemoryStore final : public Store {
 public:
  void transact(const std::function<bool(Tx&)>& fn) override;

  using Data = std::map<std::string, std::map<std::string, Json>>;
  // A copy of what is committed (used by the simulator to model a crash).
  Data committed() const;
  void restore(Data data);

 private:
  mutable std::mutex mutex_;
  Data data_;
};

}  // namespace sagalab
