#!/usr/bin/env bash
# sagactl explore's speed: experiments per second and the number of experiments for one and two
# faults, on the trip fixture (tests/fixtures/trip_saga.cpp, fixed variant) and on our own stack
# (its five programs, the orchestrator pointed at a proxy in front of the four services).
#   benchmarks/explore.sh [build/bin]
set -euo pipefail
bin="$(cd "${1:-build/bin}" && pwd)"
src="$(cd "$(dirname "$0")/.." && pwd)"
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
[[ -n "${KEEP:-}" ]] && trap - EXIT && echo "kept: $dir"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port_file() { for _ in $(seq 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; echo "no port file $1" >&2; exit 1; }
summary() {  # label, explore --json output
  python3 -c '
import json, sys
d = json.load(open(sys.argv[2]))
ex = d["experiments"]
by = {}
for e in ex: by.setdefault(len(e["faults"]), []).append(e["seconds"])
parts = ", ".join("%d with %d fault(s)" % (len(v), k) for k, v in sorted(by.items()))
print("%-44s %4d experiments (%s) in %6.1f s: %5.2f/s, %d violating" % (sys.argv[1], d["runs"], parts, d["seconds"], d["experiments_per_second"], d["violating"]))
' "$1" "$2"
}

# --- The trip fixture, fixed variant.
for n in flights hotels payments; do
  "$bin/trip_saga" service --name "$n" --port 0 --port-file "$dir/$n.port" >"$dir/$n.log" 2>&1 & pids+=($!)
done
for n in flights hotels payments; do wait_port_file "$dir/$n.port"; done
lf=$(port); lh=$(port); lp=$(port); lt=$(port); ot=$(port)
cat >"$dir/trips-proxy.yaml" <<YAML
upstreams:
  - {name: flights, listen: '127.0.0.1:$lf', url: 'http://127.0.0.1:$(cat "$dir/flights.port")'}
  - {name: hotels, listen: '127.0.0.1:$lh', url: 'http://127.0.0.1:$(cat "$dir/hotels.port")'}
  - {name: payments, listen: '127.0.0.1:$lp', url: 'http://127.0.0.1:$(cat "$dir/payments.port")'}
  - {name: trips, listen: '127.0.0.1:$lt', url: 'http://127.0.0.1:$ot'}
YAML
"$bin/trip_saga" orchestrator --flights "http://127.0.0.1:$lf" --hotels "http://127.0.0.1:$lh" \
  --payments "http://127.0.0.1:$lp" --port "$ot" --port-file "$dir/trips.port" --variant fixed >"$dir/trips.log" 2>&1 & pids+=($!)
wait_port_file "$dir/trips.port"
printf 'upstream: trips\nrequest: POST /trips\nbody: {traveller: "t{n}"}\nsettle_ms: 50\n' >"$dir/trips-workload.yaml"
fast=error-5xx,error-4xx,commit-then-error,commit-then-drop,reset
trip() { "$bin/sagactl" --json explore --config "$dir/trips-proxy.yaml" --saga "$src/tests/fixtures/trip.saga.yaml" \
           --workload "$dir/trips-workload.yaml" "$@"; }
[[ -n "${SKIP_TRIP:-}" ]] || trip --max-faults 1 --latency-ms 1200 --partition-ms 300 >"$dir/t1.json" || true
[[ -n "${SKIP_TRIP:-}" ]] || summary "trip, 1 fault, all 7 actions" "$dir/t1.json"
[[ -n "${SKIP_TRIP:-}" ]] || trip --max-faults 1 --actions "$fast" >"$dir/t1f.json" || true
[[ -n "${SKIP_TRIP:-}" ]] || summary "trip, 1 fault, 5 actions without hold time" "$dir/t1f.json"
[[ -n "${SKIP_TRIP:-}" ]] || trip --max-faults 2 --actions "$fast" >"$dir/t2f.json" || true
[[ -n "${SKIP_TRIP:-}" ]] || summary "trip, 2 faults, 5 actions without hold time" "$dir/t2f.json"

# --- Our own stack: the orchestrator reaches the services through the proxy.
base=$(port)
lc=$(port); lco=$(port); lpa=$(port); li=$(port); lo=$(port)
cat >"$dir/our-proxy.yaml" <<YAML
upstream_timeout_ms: 10000
upstreams:
  - {name: catalogo, listen: '127.0.0.1:$lc', url: 'http://127.0.0.1:$((base + 1))'}
  - {name: compras, listen: '127.0.0.1:$lco', url: 'http://127.0.0.1:$((base + 2))'}
  - {name: pagos, listen: '127.0.0.1:$lpa', url: 'http://127.0.0.1:$((base + 3))'}
  - {name: inventario, listen: '127.0.0.1:$li', url: 'http://127.0.0.1:$((base + 4))'}
  - {name: orquestador, listen: '127.0.0.1:$lo', url: 'http://127.0.0.1:$base'}
YAML
# The proxy first (the orchestrator waits for its services' health through it), then the stack.
"$bin/sagactl" proxy --config "$dir/our-proxy.yaml" --record "$dir/our.jsonl" --port 0 --port-file "$dir/proxy.port" --quiet \
  >"$dir/proxy.log" 2>&1 & pids+=($!)
wait_port_file "$dir/proxy.port"
echo '{"LAPTOP":1000000,"MOUSE":1000000,"TECLADO":1000000,"AURICULARES":1000000,"MONITOR":1000000}' >"$dir/stock.json"
i=1
for p in ms-catalogo ms-compras ms-pagos ms-inventario; do
  extra=(); [[ $p == ms-inventario ]] && extra=(--stock "$dir/stock.json")
  "$bin/$p" --port $((base + i)) --data-dir "$dir/data-$p" --quiet --port-file "$dir/$p.port" "${extra[@]}" \
    >"$dir/$p.log" 2>&1 & pids+=($!)
  i=$((i + 1))
done
for p in ms-catalogo ms-compras ms-pagos ms-inventario; do wait_port_file "$dir/$p.port"; done
"$bin/orquestador" --port "$base" --data-dir "$dir/data-orq" --quiet --catalogo-url "http://127.0.0.1:$lc" \
  --compras-url "http://127.0.0.1:$lco" --pagos-url "http://127.0.0.1:$lpa" --inventario-url "http://127.0.0.1:$li" \
  --port-file "$dir/orq.port" >"$dir/orq.log" 2>&1 & pids+=($!)
wait_port_file "$dir/orq.port"
printf 'upstream: orquestador\nrequest: POST /compra\nbody: {usuario_id: "u{n}", producto: "Laptop Gamer", monto: 1500, cantidad: 1}\nsettle_ms: 100\n' >"$dir/our-workload.yaml"
ours() { "$bin/sagactl" --proxy "http://127.0.0.1:$(cat "$dir/proxy.port")" --json explore --saga "$src/deploy/saga/sagalab.yaml" \
           --workload "$dir/our-workload.yaml" "$@"; }
ours --max-faults 1 --actions "$fast" >"$dir/o1f.json" || true
summary "our stack, 1 fault, 5 actions without hold time" "$dir/o1f.json"
ours --max-faults 2 --actions "$fast" --budget 400 >"$dir/o2f.json" || true
summary "our stack, 2 faults (budget 400), 5 actions" "$dir/o2f.json"

# --- Our own stack natively (no proxy): the services' fault rules and the orchestrator's crash points.
[[ -n "${SKIP_NATIVE:-}" ]] && exit 0
cd "$dir"
"$bin/sagactl" --json explore --max-faults 1 >"$dir/n1.json" || true
summary "our stack natively, 1 fault, all 9 actions" "$dir/n1.json"
"$bin/sagactl" --json explore --max-faults 2 >"$dir/n2.json" || true
summary "our stack natively, 2 faults, all 9 actions" "$dir/n2.json"
