#!/usr/bin/env bash
# sagactl check on a 100,000-exchange recording of the Flask shop's shape (no saga ids:
# every saga joined by value flow and id chains), generated here; prints the wall time.
#   benchmarks/check.sh [build/bin] [exchanges]
set -euo pipefail
bin="${1:-build/bin}"
n="${2:-100000}"
dir=$(mktemp -d)
[[ -n "${KEEP:-}" ]] && echo "recording kept in $dir" || trap 'rm -rf "$dir"' EXIT
python3 - "$dir/rec.jsonl" "$n" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
seq, t = 0, 0
with open(path, "w") as f:
    def ex(up, method, p, req, status, res):
        global seq, t
        seq += 1; t += 10
        f.write(json.dumps({"seq": seq, "t_us": t, "done_us": t + 5, "upstream": up, "method": method, "path": p,
                            "headers": {"content-type": "application/json"}, "request": req, "status": status,
                            "response": res, "forwarded": True, "upstream_status": status,
                            "upstream_response": res, "fault": None}) + "\n")
    k = 0
    while seq < n:
        k += 1
        u, p = "u%d" % k, "p%d" % k
        fail = k % 4 == 0
        start = t
        ex("catalogo", "GET", "/productos/" + p, None, 200, {"producto": p})
        ex("compras", "POST", "/compras", {"usuario_id": u, "producto": p, "monto": 10}, 201, {"compra_id": "C-%d" % k})
        if fail:
            ex("pagos", "POST", "/pagos", {"usuario_id": u, "monto": 2000}, 402, {"error": "no"})
            ex("compras", "POST", "/compras/cancelar", {"compra_id": "C-%d" % k}, 200, {"estado": "cancelada"})
            body, status = {"estado": "compensada"}, 409
        else:
            ex("pagos", "POST", "/pagos", {"usuario_id": u, "monto": 10}, 201, {"pago_id": "P-%d" % k})
            ex("inventario", "POST", "/reservas", {"producto": p, "cantidad": 1}, 201, {"reserva_id": "R-%d" % k})
            ex("compras", "POST", "/compras/confirmar", {"compra_id": "C-%d" % k}, 200, {"estado": "confirmada"})
            body, status = {"estado": "completada"}, 200
        # The client's request: received first, answered last (seq order is arrival order).
        seq += 1
        f.write(json.dumps({"seq": seq, "t_us": start + 1, "done_us": t + 6, "upstream": "tienda", "method": "POST",
                            "path": "/comprar", "headers": {}, "request": {"usuario_id": u, "producto": p,
                            "cantidad": 1, "monto": 2000 if fail else 10}, "status": status, "response": body,
                            "forwarded": True, "upstream_status": status, "upstream_response": body,
                            "fault": None}) + "\n")
PY
lines=$(wc -l < "$dir/rec.jsonl")
start=$(date +%s.%N)
"$bin/sagactl" check "$dir/rec.jsonl" --saga tests/fixtures/shop.saga.yaml
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$lines" 'BEGIN { printf "check: %d exchanges in %.2f s\n", n, e - s }'
