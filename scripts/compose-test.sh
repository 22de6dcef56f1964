#!/usr/bin/env bash
# make compose-test: the Docker image and the compose stack on a real Docker
# engine, checked as a user would. Installs docker.io, debootstrap and
# docker-compose when missing; starts its own dockerd (with flags that leave
# the host's network alone) when none answers, and stops exactly that daemon,
# by pid, at the end; makes the Debian base images locally when absent (no
# registry is needed); builds the image (Docker's layer cache makes a rebuild
# of an unchanged tree take seconds); starts the five programs without Traefik
# and checks: every container healthy, `docker run` of each program alone
# healthy, the admin token enforced, a purchase completes, a fault injected
# with `sagactl inject-fault` compensates one, `sagactl verify` passes, a
# crash-after fault kills a container that Docker restarts with nothing lost,
# and `compose down -v` leaves nothing behind. Then the `scale` profile
# (deploy/scale.env): PostgreSQL and two of every program, all healthy, a
# purchase through each orchestrator replica, verify passes, down -v.
#
# Exit 0: passed; 1: a check failed; 77: skipped (no engine can start here;
# the reason is printed). Routing through Traefik is not checked: no Traefik
# image can be had without a registry.
#
#   scripts/compose-test.sh [path/to/sagactl]
#   COMPOSE_IMAGE=prebuilt scripts/compose-test.sh build/bin/sagactl   (what CTest runs)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SAGACTL=${1:-$ROOT/build/bin/sagactl}
WORK=${COMPOSE_TEST_DIR:-$ROOT/build-compose}
PROJECT=sagalab-compose-test
TOKEN=compose-test-token
SKIP=77
mkdir -p "$WORK"
T0=$(date +%s)

say() { echo "compose-test [$(($(date +%s) - T0))s]: $*"; }
skip() { say "SKIPPED: $*"; exit $SKIP; }
fail() { say "FAILED: $*"; exit 1; }

[ -x "$SAGACTL" ] || fail "no sagactl at $SAGACTL (build first: make build)"

# --- packages ---------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || skip "needs ${need[*]}, and only root can install them"
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >"$WORK/apt.log" 2>&1 ||
    skip "cannot install ${need[*]} (see $WORK/apt.log)"
fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
SCALE=("${COMPOSE[@]}" --env-file "$ROOT/deploy/scale.env" -p "$PROJECT" -f "$ROOT/docker-compose.yml")
COMPOSE+=(-p "$PROJECT" -f "$ROOT/docker-compose.yml")

# --- the engine ---------------------------------------------------------------
DOCKERD_PID=""
UP=0
# The containers it ran alone (docker run of each program), by their label.
remove_alone() { docker rm -f $(docker ps -aq --filter "label=sagalab-compose-test") >/dev/null 2>&1 || true; }
cleanup() {
  if [ "$UP" = 1 ]; then
    SAGA_ADMIN_TOKEN=$TOKEN "${SCALE[@]}" down -v >"$WORK/down.log" 2>&1 || true
  fi
  remove_alone
  if [ -n "$DOCKERD_PID" ]; then
    say "stopping the dockerd it started (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  fi
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "no Docker engine answers, and only root can start one"
  say "starting dockerd (no iptables, no NAT, no docker0)"
  dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || skip "dockerd did not start: $(tail -3 "$WORK/dockerd.log" | tr '\n' ' ')"
fi

# --- base images, made locally ----------------------------------------------------
mirror() {
  local m
  m=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$m" ] || m=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}
if ! docker image inspect debian:bookworm >/dev/null 2>&1 || ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "the base images are missing, and only root can debootstrap them"
  ROOTFS=$WORK/rootfs
  rm -rf "$ROOTFS"
  say "debootstrap bookworm from $(mirror) (a few minutes, once)"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 ||
    skip "debootstrap failed (see $WORK/debootstrap.log)"
  # Cleaned as the official image is: no apt lists or caches, its docker-clean settings.
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
  cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
  tar -C "$ROOTFS" -c . | docker import - debian:bookworm >/dev/null || fail "docker import of debian:bookworm failed"
  rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/*
  tar -C "$ROOTFS" -c . | docker import - debian:bookworm-slim >/dev/null || fail "docker import of debian:bookworm-slim failed"
  rm -rf "$ROOTFS"
fi

# --- the image ----------------------------------------------------------------
# COMPOSE_IMAGE=source (the default, as `docker compose build` does it): the
# image compiles the tree in its build stage. COMPOSE_IMAGE=prebuilt (CTest):
# the runtime stage around the binaries beside $SAGACTL, just built on this
# Debian 12 host, so that CI does not compile everything a second time.
if [ "${COMPOSE_IMAGE:-source}" = prebuilt ]; then
  BIN=$(dirname "$(readlink -f "$SAGACTL")")
  CTX="$WORK/context"
  rm -rf "$CTX" && mkdir -p "$CTX/bin" "$CTX/deploy"
  cp deploy/healthcheck.sh deploy/postgres.sh "$CTX/deploy/"
  # The Dockerfile's runtime stage (everything before its build stage), around these binaries.
  { sed '/^FROM debian:bookworm AS build/,$d' deploy/Dockerfile
    printf 'FROM runtime-base AS prebuilt\nCOPY bin/ /usr/local/bin/\nUSER sagalab\n'; } >"$CTX/deploy/Dockerfile"
  grep -q '^FROM debian:bookworm-slim AS runtime-base' "$CTX/deploy/Dockerfile" ||
    fail "deploy/Dockerfile has no runtime-base stage before its build stage"
  for p in orquestador ms-catalogo ms-compras ms-pagos ms-inventario sagactl; do
    [ -x "$BIN/$p" ] || fail "COMPOSE_IMAGE=prebuilt needs $BIN/$p (build first: make build)"
    cp "$BIN/$p" "$CTX/bin/" && strip "$CTX/bin/$p"
  done
  say "docker build of the runtime stage around the binaries of $BIN"
  docker build --network host -f "$CTX/deploy/Dockerfile" -t sagalab:latest "$CTX" \
    >"$WORK/build.log" 2>&1 || fail "docker build failed (see $WORK/build.log)"
  docker build --network host -f "$CTX/deploy/Dockerfile" --target postgres -t sagalab-postgres:latest "$CTX" \
    >>"$WORK/build.log" 2>&1 || fail "docker build of the postgres stage failed (see $WORK/build.log)"
else
  say "docker build (host network; cached layers are reused)"
  docker build --network host -f deploy/Dockerfile -t sagalab:latest . >"$WORK/build.log" 2>&1 ||
    fail "docker build failed (see $WORK/build.log)"
  docker build --network host -f deploy/Dockerfile --target postgres -t sagalab-postgres:latest . >>"$WORK/build.log" 2>&1 ||
    fail "docker build of the postgres stage failed (see $WORK/build.log)"
fi
say "image sagalab:latest, $(docker image inspect -f '{{.Size}}' sagalab:latest | awk '{printf "%.0f MB", $1/1e6}')"

wait_healthy() {  # container, seconds
  local s=""
  for _ in $(seq 1 $(($2 * 2))); do
    s=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null)
    [ "$s" = healthy ] && return 0
    sleep 0.5
  done
  echo "$1 is '${s:-gone}' after $2 s" >&2
  return 1
}

# --- each program alone: the image's own health check -----------------------------------
PROGRAMS=(orquestador ms-catalogo ms-compras ms-pagos ms-inventario)
for p in "${PROGRAMS[@]}"; do
  docker run -d --network none --label sagalab-compose-test --name "$PROJECT-alone-$p" sagalab:latest "$p" >/dev/null ||
    fail "docker run sagalab $p"
done
for p in "${PROGRAMS[@]}"; do
  wait_healthy "$PROJECT-alone-$p" 60 || fail "docker run sagalab $p never became healthy (the image's HEALTHCHECK)"
done
remove_alone
say "ok: each program run alone becomes healthy"

# --- the compose stack, without Traefik -----------------------------------------------
export SAGA_ADMIN_TOKEN=$TOKEN
"${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
UP=1
"${COMPOSE[@]}" up -d --no-build "${PROGRAMS[@]}" >"$WORK/up.log" 2>&1 || fail "compose up failed (see $WORK/up.log)"
container() { "${COMPOSE[@]}" ps -q "$1"; }
for p in "${PROGRAMS[@]}"; do
  wait_healthy "$(container "$p")" 90 || fail "$p never became healthy in the compose stack"
done
say "ok: every container healthy"

# sagactl reaches the containers by URL (their addresses on the compose network).
point_sagactl() {
  local i p ip
  for i in "${!PROGRAMS[@]}"; do  # the compose file's ports: 5000 for the orchestrator, 5001.. for the services
    p=${PROGRAMS[$i]}
    ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container "$p")")
    export "$(echo "$p" | tr 'a-z-' 'A-Z_')_URL=http://$ip:$((5000 + i))"
  done
}
point_sagactl
S=("$SAGACTL" --stack-dir "$WORK/no-local-stack")
"${S[@]}" status >"$WORK/status.txt" 2>&1 || fail "sagactl status: $(cat "$WORK/status.txt")"

out=$(SAGA_ADMIN_TOKEN= "${S[@]}" verify 2>&1) && fail "an admin call without the token was accepted"
echo "$out" | grep -q 401 || fail "without the token, expected a 401: $out"
say "ok: the admin token is enforced"

estado() { "${S[@]}" --json buy --user "$1" --product "$2" 2>/dev/null | jq -r '.respuesta.estado'; }
first=$("${S[@]}" --json buy --user ana --product laptop 2>"$WORK/buy.err")
[ "$(echo "$first" | jq -r '.respuesta.estado')" = completada ] || fail "a purchase did not complete: $first $(cat "$WORK/buy.err")"
first_compra=$(echo "$first" | jq -r '.respuesta.datos.compra_id')
say "ok: a purchase completes ($first_compra)"

"${S[@]}" inject-fault ms-inventario --action error --status 409 --endpoint transaccion --times 1 >/dev/null ||
  fail "sagactl inject-fault failed"
e=$(estado bea mouse)
[ "$e" = compensada ] || fail "a purchase refused by ms-inventario ended '$e', not compensada"
"${S[@]}" verify >"$WORK/verify1.txt" 2>&1 || fail "sagactl verify after a compensation: $(cat "$WORK/verify1.txt")"
say "ok: an injected fault compensates a purchase; verify passes"

compras=$(container ms-compras)
restarts0=$(docker inspect -f '{{.RestartCount}}' "$compras")
"${S[@]}" inject-fault ms-compras --action crash-after --endpoint transaccion --times 1 >/dev/null ||
  fail "sagactl inject-fault crash-after failed"
e=$(estado carla teclado)
for _ in $(seq 1 60); do
  [ "$(docker inspect -f '{{.RestartCount}}' "$compras")" -gt "$restarts0" ] && break
  sleep 0.5
done
[ "$(docker inspect -f '{{.RestartCount}}' "$compras")" -gt "$restarts0" ] || fail "ms-compras was not restarted after crash-after"
wait_healthy "$compras" 60 || fail "ms-compras did not come back healthy"
point_sagactl  # its address may change with the restart
for _ in $(seq 1 60); do "${S[@]}" verify >"$WORK/verify2.txt" 2>&1 && break; sleep 0.5; done
"${S[@]}" verify >"$WORK/verify2.txt" 2>&1 || fail "sagactl verify after the crash: $(cat "$WORK/verify2.txt")"
curl -sf -H "Authorization: Bearer $TOKEN" "$MS_COMPRAS_URL/admin/state" | grep -q "\"$first_compra\"" ||
  fail "the restarted ms-compras lost $first_compra"
say "ok: crash-after killed ms-compras (saga ended '$e'), Docker restarted it, verify passes"

"${COMPOSE[@]}" down -v >"$WORK/down.log" 2>&1 || fail "compose down -v failed (see $WORK/down.log)"
UP=0
left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "compose down -v left: $left"
say "ok: compose down -v removed every container and volume"

# --- the scale profile: PostgreSQL and two of every program ------------------------------
UP=1
"${SCALE[@]}" up -d --no-build postgres "${PROGRAMS[@]}" >"$WORK/scale-up.log" 2>&1 ||
  fail "compose up of the scale profile failed (see $WORK/scale-up.log; $(tail -3 "$WORK/scale-up.log" | tr '\n' ' '))"
ids=$("${SCALE[@]}" ps -q)
[ "$(echo "$ids" | wc -l)" = 11 ] || fail "the scale profile runs $(echo "$ids" | wc -l) containers, not 11 (postgres and 2 x 5)"
for c in $ids; do wait_healthy "$c" 120 || fail "a container of the scale profile never became healthy ($(docker inspect -f '{{.Name}}' "$c"))"; done
say "ok: the scale profile: postgres and two of every program, all healthy"
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
n=0
for c in $("${SCALE[@]}" ps -q orquestador); do
  r=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"usuario_id\":\"u$n\",\"producto\":\"mouse\"}" "http://$(ip_of "$c"):5000/compra")
  [ "$(echo "$r" | jq -r '.estado // .respuesta.estado // empty')" = completada ] || fail "a purchase through orchestrator replica $c: $r"
  n=$((n + 1))
done
[ "$n" = 2 ] || fail "expected two orchestrator replicas, found $n"
for i in "${!PROGRAMS[@]}"; do  # sagactl reads replica 1 of each: the data is shared
  p=${PROGRAMS[$i]}
  export "$(echo "$p" | tr 'a-z-' 'A-Z_')_URL=http://$(ip_of "$("${SCALE[@]}" ps -q "$p" | head -1)"):$((5000 + i))"
done
"${S[@]}" verify >"$WORK/verify3.txt" 2>&1 || fail "sagactl verify on the scale profile: $(cat "$WORK/verify3.txt")"
grep -q "completada" <<<"$("${S[@]}" --json sagas 2>/dev/null)" || fail "the shared saga log does not list the purchases"
say "ok: a purchase through each orchestrator replica; verify passes on the shared data"
"${SCALE[@]}" down -v >"$WORK/down.log" 2>&1 || fail "compose down -v of the scale profile failed (see $WORK/down.log)"
UP=0
say "PASSED in $(($(date +%s) - T0)) s"
