#!/usr/bin/env bash
# dashboards/ is the one source of the Grafana dashboards; the chart ships a copy
# (deploy/helm/userflow/files/dashboards/: Helm reads only files inside the chart).
# This makes the copy equal the source, byte for byte, and removes dashboards that
# are no longer in dashboards/. tests/k8s/test_dashboards.py fails until it is run.
# Usage: bash scripts/sync-dashboards.sh   (or: make dashboards)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/dashboards"
DST="$ROOT/deploy/helm/userflow/files/dashboards"
mkdir -p "$DST"
for copy in "$DST"/*.json; do
  [ -e "$copy" ] || continue
  [ -e "$SRC/$(basename "$copy")" ] || { rm -- "$copy"; echo "removed ${copy#"$ROOT"/}"; }
done
for source in "$SRC"/*.json; do
  copy="$DST/$(basename "$source")"
  cmp -s "$source" "$copy" || { cp -- "$source" "$copy"; echo "copied ${source#"$ROOT"/} -> ${copy#"$ROOT"/}"; }
done
