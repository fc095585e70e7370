#!/usr/bin/env bash
# Local backing services for UserFlow development and integration tests,
# without Docker:
#
#   * PostgreSQL 15 + pg_cron on 127.0.0.1:55432  (data in .local/pg)
#   * Apache Kafka 4.x, one KRaft node (broker+controller, no ZooKeeper)
#     on 127.0.0.1:59092                         (data in .local/kafka)
#
# Usage: scripts/services.sh COMMAND
#
#   up            install what is missing, start both, wait until they answer,
#                 write .local/env (UF_*_DATABASE_URL per role, UF_KAFKA_BOOTSTRAP)
#   down          stop both (data is kept; rm -rf .local/pg .local/kafka to reset)
#   status        print whether each is up (exit 0 only if both are)
#   kafka-start   start the broker only and wait until it answers
#   kafka-stop    graceful broker stop (SIGTERM, SIGKILL after 20 s)
#   kafka-kill    SIGKILL the broker (crash simulation)
#   pg-start      start PostgreSQL only and wait until it answers
#   pg-stop       pg_ctl stop -m fast
#   pg-kill       pg_ctl stop -m immediate (crash simulation; recovery on next start)
#
# Environment overrides:
#   UF_SERVICES_TIMEOUT   readiness timeout in seconds (default 90)
#   KAFKA_HEAP_OPTS       broker heap flags (default "-Xms512m -Xmx1g")
#
# Works from any cwd and from any clone location: every path is derived from
# this script's location.  Runs as root (PostgreSQL then runs as the system
# user "userflow-pg", because postgres refuses to run as root) or as a normal
# user (PostgreSQL runs as that user; sudo is only used for apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$ROOT/.local"
DEPLOY="$ROOT/deploy/local"
READY_TIMEOUT="${UF_SERVICES_TIMEOUT:-90}"
VENV_PYTHON="$ROOT/.venv/bin/python"

# --- PostgreSQL -------------------------------------------------------------
# Port and listen address must match deploy/local/postgresql.conf.extra.
PG_VERSION=15
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_CRON_SO="/usr/lib/postgresql/$PG_VERSION/lib/pg_cron.so"
PG_HOST=127.0.0.1
PG_PORT=55432
PG_HOME="$LOCAL/pg"
PG_DATA="$PG_HOME/data"
PG_LOG="$PG_HOME/postgres.log"
PG_SYSTEM_USER=userflow-pg # only used when running as root
DB_NAME=userflow
# A role's URL; the superuser (postgres) is for bootstrapping and tests only.
db_url() { printf 'postgresql://%s@%s:%s/%s' "$1" "$PG_HOST" "$PG_PORT" "$DB_NAME"; }
DATABASE_URL="$(db_url userflow_reader)"

# --- Kafka ------------------------------------------------------------------
# Port must match deploy/local/kafka/server.properties.
KAFKA_HOME="$LOCAL/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_LOGS="$KAFKA_HOME/logs"
KAFKA_CONF="$KAFKA_HOME/server.properties" # rendered from the template below
KAFKA_CONF_TEMPLATE="$DEPLOY/kafka/server.properties"
KAFKA_LOG4J="$DEPLOY/kafka/log4j2.xml"
KAFKA_PID_FILE="$KAFKA_HOME/kafka.pid"
KAFKA_CLUSTER_ID_FILE="$KAFKA_HOME/cluster.id"
KAFKA_POM="$DEPLOY/pom.xml"
KAFKA_BOOTSTRAP=127.0.0.1:59092
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
KAFKA_STOP_TIMEOUT=20
KAFKA_STARTED_MARKER="Kafka Server started" # logged by kafka.server.KafkaRaftServer

JAVA="" # resolved by ensure_java

# ============================================================================
# Small helpers
# ============================================================================

log() { printf '[services] %s\n' "$*" >&2; }

die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

# Show the end of a log file to explain a failure.
show_log_tail() {
  local file="$1"
  if [[ -s "$file" ]]; then
    printf '[services] ---- last 40 lines of %s ----\n' "$file" >&2
    tail -n 40 "$file" >&2
    printf '[services] ----\n' >&2
  fi
}

# Run a command as root: directly when we are root, else through sudo.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*' (run as root or install sudo)"
  fi
}

# Serialise mutating commands, so two concurrent `up`s (e.g. parallel test
# jobs) do not both run initdb or start two brokers.  fd 9 must be closed in
# the long-lived daemons we launch (see "9>&-" below), or they would inherit
# the lock and hold it forever.
take_lock() {
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/services.lock"
  flock -w 300 9 || die "another scripts/services.sh is still running (lock $LOCAL/services.lock)"
}

# ============================================================================
# Prerequisites (apt packages, Java, Kafka jars)
# ============================================================================

APT_UPDATED=0
apt_install() {
  log "installing apt packages: $*"
  if ((APT_UPDATED == 0)); then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  # Note: installing postgresql-15 on Debian also creates and starts the
  # system cluster "15/main" on port 5432; ours uses 55432 and its own socket
  # directory, so the two do not collide.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
}

# Only touch apt when a file we need is actually missing: a second `up` on a
# provisioned machine must not hit the network.
ensure_pg_packages() {
  local -a missing=()
  [[ -x "$PG_BIN/postgres" && -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] || missing+=("postgresql-$PG_VERSION")
  [[ -x "$PG_BIN/psql" && -x "$PG_BIN/pg_isready" ]] || missing+=("postgresql-client-$PG_VERSION")
  [[ -f "$PG_CRON_SO" ]] || missing+=("postgresql-$PG_VERSION-cron")
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi
}

# Print the Java major version of the given java binary (8 for "1.8").
java_major_version() {
  local spec
  spec="$("$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java\.specification\.version/ {print $2; exit}')"
  spec="${spec#1.}"
  printf '%s\n' "${spec%%.*}"
}

# Kafka 4.x needs Java 17+.  Prefer $JAVA_HOME, then java on PATH, then any
# installed JDK 17; install openjdk-17-jre-headless as the last resort.
ensure_java() {
  local candidate major attempt
  local -a candidates=()
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
  candidate="$(command -v java || true)"
  [[ -n "$candidate" ]] && candidates+=("$candidate")
  for attempt in 1 2; do
    for candidate in "${candidates[@]}" /usr/lib/jvm/java-17-openjdk-*/bin/java; do
      [[ -x "$candidate" ]] || continue
      major="$(java_major_version "$candidate")"
      if [[ "$major" =~ ^[0-9]+$ ]] && ((major >= 17)); then
        JAVA="$candidate"
        return 0
      fi
    done
    ((attempt == 1)) && apt_install openjdk-17-jre-headless
  done
  die "no Java 17+ found even after installing openjdk-17-jre-headless"
}

# The broker jars are fetched once with Maven into .local/kafka/libs and
# reused.  The stamp records which pom they came from, so bumping the Kafka
# version in deploy/local/pom.xml refetches; otherwise mvn is never called.
kafka_fetch_libs() {
  local stamp="$KAFKA_LIBS/.pom.sha256" want tmp
  want="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || apt_install maven
  log "fetching Kafka jars with Maven (one-off) into $KAFKA_LIBS"
  # Download into a temp dir and swap it in, so an interrupted fetch never
  # leaves a half-filled libs/ that would be mistaken for a complete one.
  tmp="$KAFKA_HOME/libs.tmp"
  rm -rf "$tmp"
  mkdir -p "$KAFKA_LOGS"
  if ! mvn -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_LOGS/mvn.log" 2>&1; then
    rm -rf "$tmp"
    show_log_tail "$KAFKA_LOGS/mvn.log"
    die "mvn could not fetch the Kafka jars (full output: $KAFKA_LOGS/mvn.log)"
  fi
  printf '%s\n' "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

# ============================================================================
# PostgreSQL
# ============================================================================

# The OS user that owns (and must run) the cluster: whoever owns an existing
# data directory, else userflow-pg when we are root, else ourselves.
pg_owner() {
  if [[ -d "$PG_DATA" ]]; then
    stat -c %U "$PG_DATA"
  elif ((EUID == 0)); then
    printf '%s\n' "$PG_SYSTEM_USER"
  else
    id -un
  fi
}

# Run a command as the cluster owner.  cd first: the owner may not be allowed
# into our cwd (e.g. /root), and initdb/pg_ctl complain about that.
pg_as_owner() {
  local owner
  owner="$(pg_owner)"
  (
    cd "$PG_HOME" 2>/dev/null || cd /
    if [[ "$owner" == "$(id -un)" ]]; then
      "$@"
    elif ((EUID == 0)); then
      runuser -u "$owner" -- "$@"
    else
      sudo -u "$owner" -- "$@"
    fi
  )
}

# postgres refuses to run as root, so as root we run it as a dedicated
# unprivileged system user.
ensure_pg_system_user() {
  ((EUID == 0)) || return 0
  id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_SYSTEM_USER to run PostgreSQL"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_SYSTEM_USER"
}

# The cluster owner must be able to traverse every directory above
# .local/pg.  A repo under /root (mode 700) is the usual case where it cannot:
# we then add o+x (search only, no listing or reading) to those parents.
# This does widen access to e.g. /root slightly; acceptable on a dev/CI box.
pg_ensure_traversable() {
  ((EUID == 0)) || return 0
  local owner dir
  local -a parents=()
  owner="$(pg_owner)"
  # Top-down, so only the directories that really block get changed.
  dir="$LOCAL"
  while [[ "$dir" != "/" ]]; do
    parents=("$dir" "${parents[@]}")
    dir="$(dirname "$dir")"
  done
  for dir in "${parents[@]}"; do
    if ! runuser -u "$owner" -- test -x "$dir"; then
      log "chmod o+x $dir so $owner can reach $PG_HOME"
      chmod o+x "$dir"
    fi
  done
}

pg_prepare_dirs() {
  ensure_pg_system_user
  mkdir -p "$PG_HOME"
  if ((EUID == 0)); then
    local owner
    owner="$(pg_owner)"
    [[ "$(stat -c %U "$PG_HOME")" == "$owner" ]] || chown -R "$owner:" "$PG_HOME"
  fi
  chmod 700 "$PG_HOME"
  pg_ensure_traversable
}

# Unix sockets paths are limited to ~107 bytes; a deeply nested clone would
# overflow that, so fall back to a per-clone directory under /tmp.
pg_socket_dir() {
  local dir="$PG_HOME/run"
  if ((${#dir} + 16 > 100)); then
    dir="/tmp/userflow-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
  fi
  printf '%s\n' "$dir"
}

pg_initdb() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  # A data dir without PG_VERSION is a half-finished initdb of ours: redo it.
  rm -rf "$PG_DATA"
  log "initialising PostgreSQL cluster in $PG_DATA"
  if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust -U postgres \
    --encoding=UTF8 --locale=C.UTF-8 >"$PG_HOME/initdb.log" 2>&1; then
    show_log_tail "$PG_HOME/initdb.log"
    die "initdb failed"
  fi
  # Our settings live in userflow.conf (regenerated on every start); include
  # it last so it overrides initdb's defaults.
  printf "\n# UserFlow local settings, generated by scripts/services.sh\ninclude = 'userflow.conf'\n" |
    pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

# Regenerate userflow.conf from deploy/local/postgresql.conf.extra so edits
# there apply on the next start, and add the clone-specific socket directory
# (kept out of /var/run/postgresql so we never collide with a system cluster).
pg_write_conf() {
  local socket_dir
  socket_dir="$(pg_socket_dir)"
  pg_as_owner mkdir -p "$socket_dir"
  {
    printf '# GENERATED by scripts/services.sh from deploy/local/postgresql.conf.extra; edit that file instead.\n'
    cat "$DEPLOY/postgresql.conf.extra"
    printf "\nunix_socket_directories = '%s'\n" "$socket_dir"
  } | pg_as_owner tee "$PG_DATA/userflow.conf" >/dev/null
}

pg_is_running() {
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_is_ready() {
  "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -t 2
}

pg_wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until pg_is_ready; do
    if ((SECONDS >= deadline)) || ! pg_is_running; then
      show_log_tail "$PG_LOG"
      die "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT"
    fi
    sleep 0.5
  done
}

psql_admin() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres "$@"
}

# Database, the processes' roles and pg_cron; all idempotent and cheap on an
# existing cluster. The roles come from sql/bootstrap.sql, as in production:
# userflow_migrator owns the database, and each process logs in as its own role
# (trust authentication on loopback: this is a development machine).
# (On the very first start the pg_cron launcher logs 'FATAL: database
# "userflow" does not exist' once and is restarted by the postmaster; it
# settles as soon as the database below exists.)
pg_bootstrap() {
  psql_admin -d postgres <<SQL
SELECT 'CREATE DATABASE $DB_NAME'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
  psql_admin -d "$DB_NAME" -f "$ROOT/sql/bootstrap.sql" 2>&1 |
    { grep -v -e 'already exists, skipping' -e 'is already a member of role' || true; } >&2
}

pg_start() {
  ensure_pg_packages
  pg_prepare_dirs
  pg_initdb
  if pg_is_running; then
    log "PostgreSQL already running"
  elif port_open "$PG_HOST" "$PG_PORT"; then
    die "$PG_HOST:$PG_PORT is in use by another server (another clone's PostgreSQL?); see: ss -ltnp 'sport = $PG_PORT'"
  else
    pg_write_conf
    log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: ${PG_LOG#"$ROOT"/})"
    # -w waits until the server accepts connections.  9>&- keeps the
    # postmaster from inheriting our lock fd.
    if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" -s start 9>&-; then
      show_log_tail "$PG_LOG"
      die "PostgreSQL failed to start"
    fi
  fi
  pg_wait_ready
  pg_bootstrap
}

# mode: fast (clean shutdown) or immediate (no checkpoint: like a crash).
pg_stop() {
  local mode="$1"
  if [[ -d "$PG_DATA" ]] && pg_is_running; then
    log "stopping PostgreSQL (-m $mode)"
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 60 -s stop
  else
    log "PostgreSQL already stopped"
  fi
}

# ============================================================================
# Kafka
# ============================================================================

# java with the broker classpath and our log4j2 config; used for both the
# storage tool and the broker itself.
kafka_java() {
  "$JAVA" -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_LOGS" \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# Render the config with an absolute log.dirs, so the broker does not depend
# on its working directory.  Regenerated each start: template edits apply.
kafka_render_conf() {
  awk -v dir="$KAFKA_DATA" '/^log\.dirs=/ { print "log.dirs=" dir; next } { print }' \
    "$KAFKA_CONF_TEMPLATE" >"$KAFKA_CONF"
}

# KRaft needs formatted storage (meta.properties + bootstrap checkpoint)
# before the first start.  The cluster id is generated once and kept, so the
# data directory and cluster.id always agree.
kafka_format_storage() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local cluster_id
  if [[ ! -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
    # The id is 22 base64url chars; grep keeps stray log lines out of the file.
    kafka_java kafka.tools.StorageTool random-uuid |
      grep -E '^[A-Za-z0-9_-]{22}$' >"$KAFKA_CLUSTER_ID_FILE" ||
      die "could not generate a Kafka cluster id"
  fi
  cluster_id="$(tr -d '[:space:]' <"$KAFKA_CLUSTER_ID_FILE")"
  log "formatting Kafka storage (cluster id $cluster_id)"
  # --standalone: a single-voter dynamic KRaft quorum (Kafka 4.x); it requires
  # controller.quorum.bootstrap.servers rather than controller.quorum.voters.
  if ! kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONF" \
    --standalone >"$KAFKA_LOGS/format.log" 2>&1; then
    show_log_tail "$KAFKA_LOGS/format.log"
    die "kafka-storage format failed"
  fi
}

# True if the pid is a live broker started with this clone's config file.
# Checking the command line (not just the pid) means a stale pid file whose
# pid was reused by another process, or a broker of another clone, is never
# mistaken for ours.  Zombies have an empty cmdline, so they do not match.
is_our_broker() {
  local cmdline="/proc/$1/cmdline"
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  grep -qzFx 'kafka.Kafka' "$cmdline" 2>/dev/null && grep -qzFx "$KAFKA_CONF" "$cmdline" 2>/dev/null
}

# Print the pid of our running broker, or fail.  If the pid file is missing
# or stale but our broker is running anyway (pid file deleted by hand), adopt
# it instead of starting a second broker that could not bind the ports.
kafka_pid() {
  local pid cmdline
  if [[ -f "$KAFKA_PID_FILE" ]]; then
    pid="$(tr -d '[:space:]' <"$KAFKA_PID_FILE")"
    if is_our_broker "$pid"; then
      printf '%s\n' "$pid"
      return 0
    fi
  fi
  # grep -z treats the NUL-separated argv as lines: one pass over all processes.
  while IFS= read -r cmdline; do
    pid="${cmdline#/proc/}"
    pid="${pid%/cmdline}"
    if is_our_broker "$pid"; then
      printf '%s\n' "$pid" >"$KAFKA_PID_FILE"
      printf '%s\n' "$pid"
      return 0
    fi
  done < <(grep -lzFx "$KAFKA_CONF" /proc/[0-9]*/cmdline 2>/dev/null)
  return 1
}

# True if something accepts TCP connections on host:port.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# True while the process exists and is not a zombie.  A killed broker stays a
# zombie until its parent (usually PID 1) reaps it, which some container
# inits do only every few seconds; for us it is already gone.
process_alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

kafka_started_count() {
  grep -c "$KAFKA_STARTED_MARKER" "$KAFKA_LOGS/server.log" 2>/dev/null || true
}

# Readiness = the broker answers a metadata request and lists itself.  With
# the project venv we ask it through confluent_kafka (the client the app
# uses); without it we fall back to "port open + 'Kafka Server started'
# logged since we launched it" (or: this very pid was already seen ready,
# which stays true after server.log has been rolled).
HAVE_CONFLUENT_KAFKA="" # cached answer of "can the venv import confluent_kafka?"
kafka_is_ready() {
  if [[ -z "$HAVE_CONFLUENT_KAFKA" ]]; then
    HAVE_CONFLUENT_KAFKA=no
    if [[ -x "$VENV_PYTHON" ]] && "$VENV_PYTHON" -c 'import confluent_kafka' 2>/dev/null; then
      HAVE_CONFLUENT_KAFKA=yes
    fi
  fi
  if [[ "$HAVE_CONFLUENT_KAFKA" == yes ]]; then
    "$VENV_PYTHON" - "$KAFKA_BOOTSTRAP" 2>/dev/null <<'PY'
import sys
from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "socket.timeout.ms": 2000})
metadata = admin.list_topics(timeout=3)
sys.exit(0 if metadata.brokers else 1)
PY
    return
  fi
  local baseline=0 pid
  port_open "${KAFKA_BOOTSTRAP%:*}" "${KAFKA_BOOTSTRAP##*:}" || return 1
  pid="$(kafka_pid)" || return 1
  [[ -f "$KAFKA_HOME/ready.pid" && "$(cat "$KAFKA_HOME/ready.pid")" == "$pid" ]] && return 0
  [[ -f "$KAFKA_HOME/started.baseline" ]] && baseline="$(cat "$KAFKA_HOME/started.baseline")"
  (($(kafka_started_count) > baseline))
}

kafka_wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  while ! kafka_pid >/dev/null || ! kafka_is_ready; do
    if ! kafka_pid >/dev/null; then
      show_log_tail "$KAFKA_LOGS/server.out"
      show_log_tail "$KAFKA_LOGS/server.log"
      die "Kafka exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$KAFKA_LOGS/server.log"
      die "Kafka did not become ready on $KAFKA_BOOTSTRAP within ${READY_TIMEOUT}s"
    fi
    sleep 1
  done
  kafka_pid >"$KAFKA_HOME/ready.pid"
}

kafka_start() {
  local pid
  if pid="$(kafka_pid)"; then
    log "Kafka already running (pid $pid)"
    kafka_wait_ready
    return 0
  fi
  rm -f "$KAFKA_PID_FILE" # stale, if present
  # Whatever answers on our ports now is not our broker (another clone, a
  # leftover process): starting would only fail to bind, and the readiness
  # check would be fooled by the other broker.
  if port_open 127.0.0.1 59092 || port_open 127.0.0.1 59093; then
    die "127.0.0.1:59092/59093 is in use by a process that is not this clone's broker (see: ss -ltnp 'sport = 59092 or sport = 59093')"
  fi
  ensure_java
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  kafka_fetch_libs
  kafka_render_conf
  kafka_format_storage
  kafka_started_count >"$KAFKA_HOME/started.baseline"

  local -a heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  log "starting Kafka on $KAFKA_BOOTSTRAP (log: ${KAFKA_LOGS#"$ROOT"/}/server.log)"
  # setsid + nohup: the broker must outlive this shell, make, and a CI step's
  # process group.  Inside a non-interactive script the subshell is not a
  # process-group leader, so setsid does not fork and $! is the java pid.
  # 9>&- keeps the broker from inheriting (and holding) our lock.
  (
    cd "$KAFKA_HOME"
    exec setsid nohup "$JAVA" "${heap[@]}" -server \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dkafka.logs.dir="$KAFKA_LOGS" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF"
  ) </dev/null >"$KAFKA_LOGS/server.out" 2>&1 9>&- &
  local pid="$!" i
  printf '%s\n' "$pid" >"$KAFKA_PID_FILE"
  # Give the subshell a moment to exec into java, so kafka_pid (which checks
  # the command line) does not report the fresh broker as dead.
  for ((i = 0; i < 50; i++)); do
    if is_our_broker "$pid" || ! process_alive "$pid"; then break; fi
    sleep 0.1
  done
  kafka_wait_ready
}

# signal: TERM (controlled shutdown, SIGKILL after a timeout) or KILL (crash).
kafka_stop() {
  local signal="$1" pid deadline
  if ! pid="$(kafka_pid)"; then
    log "Kafka already stopped"
    rm -f "$KAFKA_PID_FILE"
    return 0
  fi
  log "stopping Kafka (pid $pid, SIG$signal)"
  kill "-$signal" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while process_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "Kafka still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
    fi
    sleep 0.2
  done
  rm -f "$KAFKA_PID_FILE"
}

# ============================================================================
# Commands
# ============================================================================

write_env_file() {
  cat >"$LOCAL/env" <<EOF
# Generated by scripts/services.sh up.  Use: . .local/env
# Each process logs in as its own role (sql/bootstrap.sql); UF_DATABASE_URL,
# the fallback, is the read-only one.
export UF_DATABASE_URL=$DATABASE_URL
export UF_MIGRATE_DATABASE_URL=$(db_url userflow_migrator)
export UF_INGEST_DATABASE_URL=$(db_url userflow_ingest)
export UF_CONSUMER_DATABASE_URL=$(db_url userflow_consumer)
export UF_OPERATOR_DATABASE_URL=$(db_url userflow_operator)
export UF_READER_DATABASE_URL=$(db_url userflow_reader)
# A superuser, for userflow db bootstrap and the tests' scratch databases.
export UF_ADMIN_DATABASE_URL=$(db_url postgres)
export UF_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP
EOF
}

cmd_up() {
  local started="$EPOCHREALTIME" elapsed
  pg_start
  kafka_start
  write_env_file
  elapsed="$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
  log "up in ${elapsed}s: UF_DATABASE_URL=$DATABASE_URL UF_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP (. .local/env)"
}

cmd_down() {
  # Kafka first: nothing in it depends on PostgreSQL, but app-side consumers
  # writing to PostgreSQL would rather see the broker go away first.
  kafka_stop TERM
  pg_stop fast
}

cmd_status() {
  local rc=0 pid
  if [[ -d "$PG_DATA" ]] && pg_is_running && pg_is_ready; then
    echo "postgresql: up    $DATABASE_URL"
  else
    echo "postgresql: down"
    rc=3
  fi
  if pid="$(kafka_pid)" && kafka_is_ready; then
    echo "kafka:      up    $KAFKA_BOOTSTRAP (pid $pid)"
  elif [[ -n "${pid:-}" ]]; then
    echo "kafka:      starting/unresponsive (pid $pid)"
    rc=3
  else
    echo "kafka:      down"
    rc=3
  fi
  return "$rc"
}

usage() {
  sed -n '/^# Usage:/,/^#   KAFKA_HEAP_OPTS/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    status) cmd_status ;;
    up | down | kafka-start | kafka-stop | kafka-kill | pg-start | pg-stop | pg-kill)
      take_lock
      case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        kafka-start) kafka_start ;;
        kafka-stop) kafka_stop TERM ;;
        kafka-kill) kafka_stop KILL ;;
        pg-start) pg_start ;;
        pg-stop) pg_stop fast ;;
        pg-kill) pg_stop immediate ;;
      esac
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
