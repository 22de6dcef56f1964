#!/bin/sh
# The `scale` compose profile's PostgreSQL (Debian's postgresql package in the
# runtime image): creates the cluster on first start (user sagalab, database
# sagalab; trust authentication, for the compose network of a local lab only),
# then runs the server as the postgres user in the foreground, listening on
# every interface of the container.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=/var/lib/postgresql/data
mkdir -p "$DATA" && chown postgres "$DATA" && chmod 700 "$DATA"
if [ ! -s "$DATA/PG_VERSION" ]; then
  runuser -u postgres -- "$BIN/initdb" -D "$DATA" -U sagalab --auth=trust -E UTF8 >/dev/null
  echo "host all all 0.0.0.0/0 trust" >>"$DATA/pg_hba.conf"
  runuser -u postgres -- "$BIN/postgres" --single -D "$DATA" postgres <<'SQL' >/dev/null
CREATE DATABASE sagalab;
SQL
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$DATA" -c listen_addresses='*' -c max_connections=300
