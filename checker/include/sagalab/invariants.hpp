// The invariant checker of DESIGN.md, on typed snapshots of the orchestrator
// and the services. `sagactl verify` and the scenario runner read them from
// `/admin/state` (json_codec.hpp); the simulator feeds each saga as it settles,
// so that it can forget the saga's records afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sagalab/records.hpp"
#include "sagalab/saga.hpp"
#include "sagalab/violation.hpp"

namespace sagalab {

struct SagaSummary {
  std::string saga_id;
  Estado estado = Estado::EnCurso;
  std::string estado_text;  // as reported, when it is not a known state
  double monto = 0;
  std::int64_t cantidad = 1;
};

struct StockBalance {
  std::string key;
  std::int64_t inicial = 0, disponible = 0, reservado = 0, held = 0;
};

struct InvariantReport {
  std::vector<Violation> violations;
  std::size_t sagas = 0;
  std::map<std::string, int> by_state;
  std::vector<StockBalance> stock;
  double approved = 0, refunded = 0, completed = 0;
  bool ok() const { return violations.empty(); }
};

// Everything the checker reads: the sagas, every effect record, the stock,
// and the faults that fired (to name those behind a violation).
struct SystemState {
  std::vector<SagaSummary> sagas;
  std::vector<Compra> compras;
  std::vector<Pago> pagos;
  std::vector<Reserva> reservas;
  std::vector<std::pair<std::string, StockLevel>> stock;
  std::vector<ServiceFault> faults;
};

InvariantReport check_invariants(const SystemState& state);

// The same checks fed piece by piece: each saga with its own records, then
// the records that no saga accounts for, then the stock.
class InvariantChecker {
 public:
  void saga(const SagaSummary& s, const std::vector<Compra>& compras, const std::vector<Pago>& pagos,
            const std::vector<Reserva>& reservas, const std::vector<ServiceFault>& faults);
  void orphan(const EffectRecord& r, const std::string& why, const std::vector<ServiceFault>& faults);
  // A violation found elsewhere (the history checker, the simulated clients), reported
  // with the rest; its rule is one of rules() by its canonical name (a contract).
  void add(Violation v);
  InvariantReport finish(const std::vector<std::pair<std::string, StockLevel>>& stock);
  std::size_t violations() const { return rep_.violations.size(); }

 private:
  void account(const Pago& p);
  void account(const Reserva& r);
  void violate(int inv, const std::string& saga, std::string msg, std::vector<EffectRecord> recs,
               const std::vector<ServiceFault>& faults);

  InvariantReport rep_;
  std::map<std::string, std::int64_t> held_;
};

}  // namespace sagalab
