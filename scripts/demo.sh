#!/usr/bin/env bash
# `make demo`: the whole pipeline on this machine, then a summary from SQL.
# Services, venv and migrations are made by the Makefile before this runs.
# Idempotent: a second run reuses the demo tenant and the running processes
# and adds another 50,000 events.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEMO="$ROOT/.local/demo"
UF="$ROOT/.venv/bin/userflow"
PORT="${UF_DEMO_PORT:-8080}"
API_PORT="${UF_DEMO_API_PORT:-8000}"
EVENTS="${UF_DEMO_EVENTS:-50000}"
mkdir -p "$DEMO"
# shellcheck source=/dev/null
. "$ROOT/.local/env"

running() { [ -f "$DEMO/$1.pid" ] && kill -0 "$(cat "$DEMO/$1.pid")" 2>/dev/null; }

start() { # name, then the userflow arguments
    local name=$1
    shift
    if running "$name"; then
        echo "demo: $name already running (pid $(cat "$DEMO/$name.pid"))"
        return
    fi
    setsid "$UF" "$@" >"$DEMO/$name.log" 2>&1 &
    echo $! >"$DEMO/$name.pid"
    echo "demo: started $name (pid $!, log .local/demo/$name.log)"
}

# As the tenant's reader: the tenant schema shows the company of this read key only
# (bound for the session by userflow_bind_read_key; the key goes as a psql variable).
# psql_q 'SQL' runs one statement (scripts/summary.sql binds the key itself).
BIND="SELECT userflow_bind_read_key(:'read_key', true) \\g /dev/null"
psql_q() { printf '%s\n%s;\n' "$BIND" "$1" | psql "$UF_DATABASE_URL" -XAtq -v read_key="$READ_KEY"; }

# The demo tenant is made once; its keys are kept beside the demo's logs.
READ_KEY=$([ -f "$DEMO/tenant.json" ] && jq -r .read_key "$DEMO/tenant.json" || true)
if [ -n "$READ_KEY" ] && psql_q "SELECT 1 FROM tenant.company" | grep -q 1; then
    echo "demo: reusing tenant $(jq -r .slug "$DEMO/tenant.json")"
else
    "$UF" tenant create --name "Demo Shop $(date +%s)" --tier pro >"$DEMO/tenant.json"
    echo "demo: created tenant $(jq -r .slug "$DEMO/tenant.json")"
fi
KEY=$(jq -r .write_key "$DEMO/tenant.json")
READ_KEY=$(jq -r .read_key "$DEMO/tenant.json")

start ingest ingest --port "$PORT" --workers 2
start consumer consume --processes 1
start api api --port "$API_PORT" --workers 1
for _ in $(seq 60); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || {
    echo "demo: the ingest did not become ready; see .local/demo/ingest.log" >&2
    exit 1
}

before=$(psql_q "SELECT count(*) FROM tenant.events")
"$UF" simulate --url "http://127.0.0.1:$PORT" --key "$KEY" --events "$EVENTS" \
    --seed "$before" --truth "$DEMO/truth.json"

want=$((before + EVENTS))
printf 'demo: waiting for %d rows in PostgreSQL' "$want"
for _ in $(seq 300); do
    have=$(psql_q "SELECT count(*) FROM tenant.events")
    [ "$have" -ge "$want" ] && break
    printf '.'
    sleep 1
done
echo " $have"
[ "$have" -eq "$want" ] || { echo "demo: expected $want rows, found $have" >&2; exit 1; }

# pg_cron refreshes the rollups every minute; the demo does not wait for it.
psql "$UF_MIGRATE_DATABASE_URL" -XAtq -c "SELECT userflow_refresh_rollups()" >/dev/null
psql "$UF_DATABASE_URL" -X -v read_key="$READ_KEY" -f "$ROOT/scripts/summary.sql"

for _ in $(seq 30); do
    curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break
    sleep 1
done
echo "The query API: GET /v1/analytics/sessions?from=$(date -u -d '-7 days' +%F) (read key)"
curl -fsS -H "Authorization: Bearer $READ_KEY" \
    "http://127.0.0.1:$API_PORT/v1/analytics/sessions?from=$(date -u -d '-7 days' +%F)" | jq .
cat <<MSG

The stack is still running:
  ingest    http://127.0.0.1:$PORT  (write key in .local/demo/tenant.json)
  query API http://127.0.0.1:$API_PORT/docs  (read key in .local/demo/tenant.json)
  consumer  log in .local/demo/consumer.log
  psql      . .local/env && psql "\$UF_DATABASE_URL", then SELECT userflow_bind_read_key('<read key>', true);
Stop it with:  make stop            (ingest, consumer and query API)
               make services-down   (PostgreSQL and Kafka)
MSG
