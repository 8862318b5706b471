#!/usr/bin/env bash
# Project-local PostgreSQL 15 cluster for development and tests.
#   scripts/pg.sh start | stop | status | dsn | app-dsn | base | createdb NAME
# The cluster lives in <repo>/.pg (git-ignored). When the postgres user cannot
# reach the repo (a clone under /root, say) it lives in $TMPDIR keyed by the
# repo path instead. Unix socket only (no TCP), trust auth on that socket.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${TRACKER_PG_PORT:-54329}
DBNAME=${TRACKER_DB:-tracker}
TMPBASE=${TMPDIR:-/tmp}
KEY=$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)

if [ "$(id -u)" = 0 ]; then
  SUPER=postgres
  as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
  SUPER=$(id -un)
  as_pg() { "$@"; }
fi

# Where the data dir goes: inside the repo when the postgres user can reach it.
if as_pg test -x "$ROOT" 2>/dev/null && as_pg test -r "$ROOT" 2>/dev/null; then
  BASE="$ROOT/.pg"
else
  BASE="$TMPBASE/tracker-pg-$KEY"
fi
DATA="$BASE/data"
SOCK="$BASE/run"
# Unix socket paths are limited to ~100 bytes.
if [ $(( ${#SOCK} + 20 )) -gt 100 ]; then SOCK="$TMPBASE/tracker-sock-$KEY"; fi
LOG="$BASE/postgres.log"

dsn() { printf 'postgresql://%s@/%s?host=%s&port=%s\n' "$1" "$2" "$SOCK" "$PORT"; }

ensure_dirs() {
  mkdir -p "$BASE" "$SOCK"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$BASE" "$SOCK"; chmod 700 "$BASE"; chmod 755 "$SOCK"; fi
}

init() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  ensure_dirs
  echo "pg.sh: initialising a new cluster in $DATA" >&2
  as_pg "$PGBIN/initdb" -D "$DATA" -U "$SUPER" --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$DATA/postgresql.conf" <<CONF
# --- sample tracker (scripts/pg.sh) ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$DBNAME'
shared_buffers = 1GB
work_mem = 32MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
max_connections = 200
# data lives in RAM / on SSD: index lookups are cheap
random_page_cost = 1.1
effective_cache_size = 8GB
log_min_messages = warning
CONF
}

is_running() { as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  init
  ensure_dirs
  if ! is_running; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
  fi
  if ! "$PGBIN/psql" "$(dsn "$SUPER" postgres)" -Atqc "select 1 from pg_database where datname = '$DBNAME'" | grep -q 1; then
    "$PGBIN/psql" "$(dsn "$SUPER" postgres)" -qc "create database \"$DBNAME\"" >/dev/null
  fi
}

case "${1:-}" in
  start) start; echo "pg.sh: cluster running; socket $SOCK, port $PORT" >&2 ;;
  stop) if [ -f "$DATA/PG_VERSION" ] && is_running; then as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi ;;
  status) if [ -f "$DATA/PG_VERSION" ] && is_running; then echo running; else echo stopped; exit 3; fi ;;
  dsn) dsn "$SUPER" "$DBNAME" ;;
  app-dsn) dsn authenticator "$DBNAME" ;;
  base) echo "$BASE" ;;
  drop-db)
    "$PGBIN/psql" "$(dsn "$SUPER" postgres)" -Xqc "select pg_terminate_backend(pid) from pg_stat_activity where datname = '$DBNAME' and pid <> pg_backend_pid()" >/dev/null
    "$PGBIN/psql" "$(dsn "$SUPER" postgres)" -Xqc "drop database if exists \"$DBNAME\"" -c "create database \"$DBNAME\"" ;;
  destroy) "$0" stop; rm -rf "$BASE" ;;
  *) echo "usage: $0 start|stop|status|dsn|app-dsn|base|drop-db|destroy" >&2; exit 2 ;;
esac
