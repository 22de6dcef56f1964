#!/usr/bin/env python3
"""Writes tests/mutants/*.patch: each a realistic saga bug of a few lines,
as a unified diff against the tree. Run from the repository root after the
code they touch changes (`python3 tests/mutants/make_patches.py`); a mutant
whose text is no longer found is reported and skipped, so it can be updated.
The patches are applied to a copy of the tree by scripts/mutants.sh; nothing
here touches the real sources."""
import difflib, os, sys

# (name, class, what the bug is, file, old text, new text)
MUTANTS = [
  ("engine-unknown-not-compensated", "engine",
   "a step abandoned with an unknown outcome is not compensated",
   "core/src/saga_engine.cpp",
   "const bool called = st == StepStatus::Ok || st == StepStatus::Incierto || st == StepStatus::Fallido;",
   "const bool called = st == StepStatus::Ok || st == StepStatus::Fallido;"),
  ("engine-refused-not-compensated", "engine",
   "a step its service refused is not compensated (a late copy of its request then takes effect)",
   "core/src/saga_engine.cpp",
   "const bool called = st == StepStatus::Ok || st == StepStatus::Incierto || st == StepStatus::Fallido;",
   "const bool called = st == StepStatus::Ok || st == StepStatus::Incierto;"),
  ("engine-5xx-is-failure", "engine",
   "a 5xx answer is read as a definite failure (no retry, no compensation of what it committed)",
   "core/src/purchase.cpp",
   "if (answer->status >= 500 || answer->status == 408 || answer->status == 429 || answer->status < 200) {",
   "if (answer->status == 408 || answer->status == 429 || answer->status < 200) {"),
  ("engine-pivot-counts-as-after", "engine",
   "a failure at the pivot is retried forever instead of compensated",
   "core/src/saga_engine.cpp",
   "const bool after_pivot = s.current > def_.pivot();",
   "const bool after_pivot = s.current >= def_.pivot();"),
  ("engine-new-key-per-attempt", "idempotency",
   "each attempt of a step carries a new idempotency key",
   "core/src/saga_engine.cpp",
   "c.idempotency_key = comp ? c.forward_key + \":compensacion\" : c.forward_key;",
   "c.idempotency_key = comp ? c.forward_key + \":compensacion\" : c.forward_key + \"#\" + std::to_string(n);"),
  ("engine-compensation-skips-pivot", "engine",
   "the pivot, abandoned with an unknown outcome, is never refunded",
   "core/src/saga_engine.cpp",
   "return k == StepKind::Compensatable || k == StepKind::Pivot;",
   "return k == StepKind::Compensatable;"),
  ("engine-compensation-upwards", "engine",
   "after one compensation the engine moves to the next step up instead of down",
   "core/src/saga_engine.cpp",
   "      if (s.estado == Estado::Atascada) s.estado = Estado::Compensando;\n      --s.current;",
   "      if (s.estado == Estado::Atascada) s.estado = Estado::Compensando;\n      if (s.current > 1) s.current -= 2; else --s.current;"),
  ("recovery-in-flight-is-ok", "recovery",
   "after a restart, the call in flight is taken as answered ok (its outputs are lost)",
   "core/src/saga_engine.cpp",
   "    r.outcome = Outcome::Unknown;\n    r.detail = \"interrumpido por un reinicio del orquestador\";",
   "    r.outcome = Outcome::Ok;\n    r.detail = \"interrumpido por un reinicio del orquestador\";"),
  ("recovery-drops-pending-retry", "recovery",
   "after a restart, a saga waiting to retry is left waiting forever",
   "core/src/saga_engine.cpp",
   "  if (s.awaiting_timer) {\n    s.awaiting_timer = false;\n    return call(s, s.current, s.compensating, e.now_ms);\n  }",
   "  if (s.awaiting_timer && !s.compensating) {\n    s.awaiting_timer = false;\n    return call(s, s.current, s.compensating, e.now_ms);\n  }"),
  ("saga-log-loses-reserva-id", "saga-log",
   "the saga log does not keep the reservation id a step returned",
   "core/src/codec/saga_json.cpp",
   "  if (!o.reserva_id.empty()) j[\"reserva_id\"] = o.reserva_id;\n",
   ""),
  ("saga-log-recovers-only-en-curso", "saga-log",
   "recovery reloads only sagas en_curso, not those compensando or atascada",
   "storage/src/saga_log.cpp",
   "WHERE estado NOT IN ('completada', 'compensada')",
   "WHERE estado = 'en_curso'"),
  ("saga-log-write-after-call", "saga-log",
   "a step's calls are issued before its event is durable (the orchestrator's and the simulator's shared order)",
   "core/include/sagalab/saga.hpp",
   "  append(e, before, static_cast<const SagaState&>(next),\n"
   "         [commands = std::move(commands), act = std::move(act)]() mutable { act(std::move(commands)); });",
   "  act(commands);\n  append(e, before, static_cast<const SagaState&>(next), [] {});"),
  ("compras-compensation-keeps-purchase", "service",
   "ms-compras answers a compensation but leaves the purchase pendiente",
   "core/src/domain.cpp",
   "CompensationSpec<CompraEstado>{Table::Compras, IdField::Compra, CompraEstado::Pendiente,\n                                                  CompraEstado::Cancelada}",
   "CompensationSpec<CompraEstado>{Table::Compras, IdField::Compra, CompraEstado::Cancelada,\n                                                  CompraEstado::Cancelada}"),
  ("pagos-compensation-no-refund", "service",
   "ms-pagos answers a compensation but does not refund",
   "core/src/domain.cpp",
   "CompensationSpec<PagoEstado>{Table::Pagos, IdField::Pago, PagoEstado::Aprobado, PagoEstado::Reembolsado}",
   "CompensationSpec<PagoEstado>{Table::Pagos, IdField::Pago, PagoEstado::Reembolsado, PagoEstado::Reembolsado}"),
  ("inventario-release-keeps-stock", "service",
   "ms-inventario releases a reservation without giving its units back",
   "core/src/domain.cpp",
   "            s.stock += r.cantidad;\n",
   ""),
  ("compensation-repeats-effect", "idempotency",
   "a repeated compensation undoes again (a reservation released twice)",
   "core/src/domain.cpp",
   "    if (record->estado == spec.active) {",
   "    if (record->estado == spec.active || (comp_key.empty() && record->estado == spec.undone)) {"),
  ("compras-forward-not-idempotent", "idempotency",
   "ms-compras creates a purchase again for a repeated key",
   "core/src/domain.cpp",
   "    auto key = forward_key(req);\n    return idempotent(tx, key, [&] {\n      auto id = padded(\"compra_\"",
   "    auto key = forward_key(req);\n    return idempotent(tx, std::string(), [&] {\n      auto id = padded(\"compra_\""),
  ("pagos-forward-not-idempotent", "idempotency",
   "ms-pagos charges again for a repeated key",
   "core/src/domain.cpp",
   "    auto key = forward_key(req);\n    return idempotent(tx, key, [&] {\n      auto id = padded(\"pago_\"",
   "    auto key = forward_key(req);\n    return idempotent(tx, std::string(), [&] {\n      auto id = padded(\"pago_\""),
  ("inventario-forward-not-idempotent", "idempotency",
   "ms-inventario reserves again for a repeated key",
   "core/src/domain.cpp",
   "return idempotent(tx, fkey, [&] {",
   "return idempotent(tx, std::string(), [&] {"),
  ("tombstone-ignored", "tombstone",
   "a forward call that arrives after its compensation is not refused",
   "core/src/domain.cpp",
   "  if (tx.find(Table::Tombstones, key))\n    throw conflict(",
   "  if (false && tx.find(Table::Tombstones, key))\n    throw conflict("),
  ("tombstone-not-written", "tombstone",
   "a compensation of something that never happened leaves no tombstone",
   "core/src/domain.cpp",
   "  if (!fwd.empty()) tx.put(Table::Tombstones, fwd, Tombstone{req.now_ms, req.saga_id});",
   "  if (!fwd.empty() && record) tx.put(Table::Tombstones, fwd, Tombstone{req.now_ms, req.saga_id});"),
  ("stock-check-off-by-one", "contention",
   "the stock check lets one unit more go than there is",
   "core/src/domain.cpp",
   "      if (s.stock < b.cantidad)",
   "      if (s.stock + 1 < b.cantidad)"),
  ("stock-check-counts-reserved", "contention",
   "the stock check counts reserved units as available",
   "core/src/domain.cpp",
   "      if (s.stock < b.cantidad)",
   "      if (s.stock + s.reservado < b.cantidad)"),
  ("confirm-cancelled-purchase", "service",
   "ms-compras confirms a purchase that was cancelled",
   "core/src/domain.cpp",
   "      if (found->estado == CompraEstado::Cancelada)\n        throw conflict(",
   "      if (found->estado == CompraEstado::Cancelada && false)\n        throw conflict("),
  ("inventario-release-wrong-product", "service",
   "ms-inventario gives released units back to the first product of the inventory",
   "core/src/domain.cpp",
   "            StockLevel s = *tx.get<StockLevel>(Table::Stock, r.producto);",
   "            r.producto = \"AURICULARES\";\n            StockLevel s = *tx.get<StockLevel>(Table::Stock, r.producto);"),
  ("compensation-forgets-forward-key", "tombstone",
   "a compensation by id tombstones nothing when the caller sent no forward key",
   "core/src/domain.cpp",
   "    if (fwd.empty()) fwd = record->idempotency_key;",
   "    (void)0;"),
  ("engine-completes-early", "engine",
   "the saga counts itself completed one step early (the confirmation is never sent)",
   "core/src/saga_engine.cpp",
   "    if (s.current == static_cast<int>(def_.steps.size())) {",
   "    if (s.current == static_cast<int>(def_.steps.size()) - 1) {"),
]

def main():
    root = os.getcwd()
    out_dir = os.path.join(root, "tests", "mutants")
    for f in os.listdir(out_dir):
        if f.endswith(".patch"):
            os.remove(os.path.join(out_dir, f))
    bad = 0
    for i, (name, cls, what, path, old, new) in enumerate(MUTANTS, 1):
        text = open(os.path.join(root, path)).read()
        if text.count(old) != 1:
            print(f"skip {name}: its text occurs {text.count(old)} times in {path}", file=sys.stderr)
            bad += 1
            continue
        mutated = text.replace(old, new)
        diff = difflib.unified_diff(text.splitlines(True), mutated.splitlines(True), "a/" + path, "b/" + path)
        with open(os.path.join(out_dir, f"{i:02d}-{name}.patch"), "w") as fh:
            fh.write(f"Mutant: {name}\nClass: {cls}\nBug: {what}\n\n")
            fh.writelines(diff)
    print(f"{len(MUTANTS) - bad} mutants written to tests/mutants/")
    return 1 if bad else 0

sys.exit(main())
