#!/usr/bin/env bash
# Project-local PostgreSQL 15 cluster for development and tests.
#   scripts/pg.sh start | stop | status | dsn | app-dsn | base | drop-db | destroy
# The cluster lives in <repo>/.pg (git-ignored). When the postgres user cannot
# reach the repo (a clone under /root, say) it lives in $TMPDIR keyed by the
# repo path instead. Unix socket only (no TCP); when <repo>/.pg/run would pass the
# ~100-byte socket path limit the socket goes to $TMPDIR/tracker-sock-<key>.
#
# Security (issue 9, finding 3). Local connections use trust auth, so whoever can
# reach the socket is the superuser (and can run COPY ... TO PROGRAM as the server's
# OS user). The socket is therefore reachable only by the OS user that runs the
# server: postgres when this script runs as root, the invoking user otherwise.
#   * the base dir, the data dir and the socket dir - wherever they fall back to -
#     are 0700 and owned by that user, whatever the umask (umask 077 below);
#     `start` tightens dirs an older pg.sh left open;
#   * a dir that already exists and belongs to anyone else (or is a symlink planted
#     by anyone else, say a pre-created /tmp/tracker-sock-<key>) is refused with one
#     line, never adopted: the key is predictable, so another user could plant it;
#   * unix_socket_permissions = 0700 on the socket file itself (new clusters, and
#     appended on `start` for older ones; takes effect at the next server start);
#   * initdb --auth-host=reject: should someone enable TCP, nothing gets in by trust.
# root still connects (it bypasses file permissions), which is how `make run`,
# `make test` and `make psql` reach a postgres-owned cluster when run as root.
# Why not peer auth: as root the tools connect as postgres, authenticator and the
# personal analyst logins, so a pg_ident map would need root -> every role, which
# PostgreSQL 15 cannot express without listing each role; with the socket private
# to its owner, peer would add nothing that trust lacks.
set -euo pipefail
umask 077
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${TRACKER_PG_PORT:-54329}
DBNAME=${TRACKER_DB:-tracker}
TMPBASE=${TMPDIR:-/tmp}
KEY=$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)

MYUID=$(id -u)
if [ "$MYUID" = 0 ]; then
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
SUPER_UID=$(id -u "$SUPER")

dsn() { printf 'postgresql://%s@/%s?host=%s&port=%s\n' "$1" "$2" "$SOCK" "$PORT"; }

die() { echo "pg.sh: $*" >&2; exit 1; }

# claim_dir DIR: make DIR a directory with mode 0700 owned by $SUPER (creating it
# if missing), or refuse when it, or a symlink standing in its place, belongs to
# anyone else. Only a dir of our own (root's, when root hands it to postgres) is adopted.
claim_dir() {
  local d=$1 owner
  [ -e "$d" ] || [ -L "$d" ] || mkdir -m 700 "$d" 2>/dev/null || true
  if [ -L "$d" ]; then
    owner=$(stat -c %u "$d")
    [ "$owner" = "$MYUID" ] || [ "$owner" = "$SUPER_UID" ] \
      || die "refusing $d: a symlink owned by $(stat -c %U "$d"), not $SUPER (remove it)"
  fi
  [ -d "$d" ] || die "refusing $d: not a directory"
  owner=$(stat -L -c %u "$d")
  if [ "$owner" != "$SUPER_UID" ]; then
    [ "$owner" = "$MYUID" ] || die "refusing $d: owned by $(stat -L -c %U "$d"), not $SUPER (remove it or change its owner)"
    chown "$SUPER": "$d"
  fi
  chmod 700 "$d"
}

ensure_dirs() {
  claim_dir "$BASE"
  if [ -e "$DATA" ] || [ -L "$DATA" ]; then claim_dir "$DATA"; fi
  claim_dir "$SOCK"
}

init() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  ensure_dirs
  echo "pg.sh: initialising a new cluster in $DATA" >&2
  as_pg "$PGBIN/initdb" -D "$DATA" -U "$SUPER" --auth-local=trust --auth-host=reject -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$DATA/postgresql.conf" <<CONF
# --- sample tracker (scripts/pg.sh) ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
shared_preload_libraries = 'pg_cron'
cron.database_name = '$DBNAME'
cron.use_background_workers = on
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
  # clusters made by an older pg.sh: applied at the next server start
  grep -q '^unix_socket_permissions' "$DATA/postgresql.conf" \
    || echo 'unix_socket_permissions = 0700  # scripts/pg.sh' >> "$DATA/postgresql.conf"
  # pg_cron runs jobs in background workers: its default, a libpq connection to
  # localhost, finds no TCP listener here (issue 12; takes effect at the next start)
  grep -q '^cron.use_background_workers' "$DATA/postgresql.conf" \
    || echo 'cron.use_background_workers = on  # scripts/pg.sh' >> "$DATA/postgresql.conf"
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
    "$PGBIN/psql" "$(dsn "$SUPER" postgres)" -Xqc "drop database if exists \"$DBNAME\" with (force)" -c "create database \"$DBNAME\"" ;;
  destroy)
    "$0" stop; rm -rf "$BASE"
    # the socket fallback outside $BASE, only if it is ours (never follow a planted symlink)
    if [ -d "$SOCK" ] && [ ! -L "$SOCK" ] && [ "$(stat -c %u "$SOCK")" = "$SUPER_UID" ]; then rm -rf "$SOCK"; fi ;;
  *) echo "usage: $0 start|stop|status|dsn|app-dsn|base|drop-db|destroy" >&2; exit 2 ;;
esac
