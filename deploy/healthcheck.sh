#!/bin/sh
# The image's health check, whichever of the five programs a container runs:
# the program running as PID 1 is asked about itself with the arguments it was
# started with, so it asks its own port (its default, $PORT, or its --port).
# Exit 0 healthy, 1 not (Docker reserves the other codes).
xargs -0 sh -c '
  case "${0##*/}" in
    orquestador|ms-catalogo|ms-compras|ms-pagos|ms-inventario) exec "$0" "$@" --health-check ;;
    *) echo "healthcheck: PID 1 is ${0##*/}, not a sagalab program" >&2; exit 1 ;;
  esac' </proc/1/cmdline || exit 1
