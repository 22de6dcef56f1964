// The store interface the domain logic runs on: typed tables of records, read
// and written inside one transaction. Two implementations: MemoryStore here
// (simulation, unit tests) and SqliteStore in sagalab_sqlite, which serialises
// the records at its edge.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "sagalab/records.hpp"

namespace sagalab {

// A non-owning reference to a callable: what transact() and for_each() take,
// so that a lambda with a few captures costs no allocation (std::function
// would allocate for each transaction).
template <typename Sig>
class FunctionRef;
template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit, like std::function
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, Args... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...); }) {}
  R operator()(Args... a) const { return call_(obj_, std::forward<Args>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

enum class Table : std::uint8_t { Compras, Pagos, Reservas, Stock, Idempotency, Tombstones, Counters, Meta };
inline constexpr std::size_t kTables = 8;
const char* table_name(Table t);  // "compras", ..., "_counters", "_meta"

using Record = std::variant<Compra, Pago, Reserva, StockLevel, Receipt, Tombstone, std::int64_t>;
// The saga a record belongs to ("" when none).
const std::string& saga_of(const Record& r);

class Tx {
 public:
  virtual ~Tx() = default;
  // The record under key, or null; the pointer is valid until the next write.
  virtual const Record* find(Table t, const std::string& key) = 0;
  virtual void put(Table t, const std::string& key, Record value) = 0;
  // Every record of a table, ordered by key.
  virtual void for_each(Table t, FunctionRef<void(const std::string&, const Record&)> fn) = 0;
  virtual void clear_all() = 0;

  template <typename T>
  const T* get(Table t, const std::string& key) {
    const Record* r = find(t, key);
    return r ? std::get_if<T>(r) : nullptr;
  }
  // A counter kept in the store: returns 1, 2, 3, ... per name (a store may
  // skip numbers after a transaction it retried: PostgreSQL's sequences).
  virtual std::int64_t next_id(const std::string& name);
};

class Store {
 public:
  virtual ~Store() = default;
  // Runs fn in one transaction; its writes become durable only if fn returns
  // true, and only when transact returns. Transactions are serialised.
  virtual void transact(FunctionRef<bool(Tx&)> fn) = 0;
};

// In memory: writes go straight to the tables with an undo log, so a
// transaction that returns false (or throws) leaves nothing behind and a
// committed one costs no copy.
class MemoryStore final : public Store {
 public:
  void transact(FunctionRef<bool(Tx&)> fn) override;

  using Tables = std::array<std::unordered_map<std::string, Record>, kTables>;
  // A copy of what is committed, and back to it (the simulator's crash model).
  Tables committed() const;
  void restore(Tables data);
  // Removes every record of one saga, each handed to `take` as it leaves (the
  // simulator releases a settled saga's records once it has checked them).
  void extract_saga(const std::string& saga_id, FunctionRef<void(Record&&)> take);
  // The sagas that still have records here, in order.
  std::vector<std::string> saga_ids() const;

 private:
  class MemTx;
  void reindex();
  mutable std::mutex mutex_;
  Tables data_;
  struct Undo {
    Table t;
    const std::string* key;  // the node's own key: valid while the node lives
    std::optional<Record> old;
    bool indexed;
  };
  std::vector<Undo> undo_;  // the open transaction's, kept to reuse its memory
  // Saga id -> its records' keys (pointers into the tables' nodes, which stay put).
  std::unordered_map<std::string, std::vector<std::pair<Table, const std::string*>>> by_saga_;
};

}  // namespace sagalab
