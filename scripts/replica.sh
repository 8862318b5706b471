#!/usr/bin/env bash
# A streaming hot standby of the project-local cluster, for analysts' read-only queries.
#   scripts/replica.sh start | stop | status | dsn [LOGIN] | lag | destroy
# start: the first time, pg_basebackup -R (a consistent copy plus primary_conninfo and
# standby.signal) from the running primary into <cluster base>/replica-<port>/data, then
# starts it as the cluster's OS user, like scripts/pg.sh: Unix socket only, in a 0700
# dir of its own, port REPLICA_PORT (default TRACKER_PG_PORT + 10, e.g. 54339).
# It replays everything the primary writes: roles (personal analyst logins), policies,
# the analytics materialised views after each refresh. Writes are refused there
# (read-only transactions); pg_cron's scheduler stays idle on a standby.
# No replication slot: a standby that is stopped for long may fall behind the WAL the
# primary keeps (max_wal_size); `destroy` and `start` then make a fresh copy.
# Env for tests: PRIMARY_SOCKET + PRIMARY_PORT (another primary), REPLICA_BASE (where).
set -euo pipefail
umask 077
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG="$ROOT/scripts/pg.sh"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGPORT=${TRACKER_PG_PORT:-54329}
PORT=${REPLICA_PORT:-$((PGPORT + 10))}
DBNAME=${TRACKER_DB:-tracker}
TMPBASE=${TMPDIR:-/tmp}

die() { echo "replica.sh: $*" >&2; exit 1; }
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -gt 0 ] && [ "$PORT" -lt 65536 ] || die "REPLICA_PORT must be a port number, not '$PORT'"

if [ "$(id -u)" = 0 ]; then
  SUPER=postgres
  as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
  SUPER=$(id -un)
  as_pg() { "$@"; }
fi

if [ -n "${PRIMARY_SOCKET:-}" ]; then
  PSOCK=$PRIMARY_SOCKET
  PPORT=${PRIMARY_PORT:?PRIMARY_PORT goes with PRIMARY_SOCKET}
  BASE=${REPLICA_BASE:?REPLICA_BASE goes with PRIMARY_SOCKET}
else
  PSOCK=$("$PG" dsn | sed -E 's/.*[?&]host=([^&]*).*/\1/')
  PPORT=$PGPORT
  BASE=${REPLICA_BASE:-$("$PG" base)/replica-$PORT}
fi
DATA="$BASE/data"
SOCK="$BASE/run"
if [ $(( ${#SOCK} + 20 )) -gt 100 ]; then
  SOCK="$TMPBASE/tracker-sock-replica-$(printf '%s' "$BASE" | sha1sum | cut -c1-12)"
fi
LOG="$BASE/postgres.log"

dsn() { printf 'postgresql://%s@/%s?host=%s&port=%s\n' "$1" "$DBNAME" "$SOCK" "$PORT"; }

# a dir of ours, 0700, owned by the cluster's OS user; anything else is refused (see pg.sh)
claim_dir() {
  local d=$1
  [ -e "$d" ] || [ -L "$d" ] || mkdir -p -m 700 "$d"
  [ ! -L "$d" ] || die "refusing $d: a symlink"
  [ -d "$d" ] || die "refusing $d: not a directory"
  local owner; owner=$(stat -c %u "$d")
  if [ "$owner" != "$(id -u "$SUPER")" ]; then
    [ "$owner" = "$(id -u)" ] || die "refusing $d: owned by $(stat -c %U "$d"), not $SUPER"
    chown "$SUPER": "$d"
  fi
  chmod 700 "$d"
}

running() { [ -f "$DATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

create() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  claim_dir "$BASE"
  claim_dir "$SOCK"
  "$PGBIN/pg_isready" -q -h "$PSOCK" -p "$PPORT" || die "the primary is not running on $PSOCK port $PPORT (make start)"
  echo "replica.sh: copying the primary (pg_basebackup) into $DATA" >&2
  as_pg "$PGBIN/pg_basebackup" -h "$PSOCK" -p "$PPORT" -U "$SUPER" -D "$DATA" -R -X stream -c fast \
    -d "application_name=tracker_replica_$PORT" || { rm -rf "$DATA"; die "pg_basebackup failed"; }
  # the copy carries the primary's settings: give the standby its own port and socket
  as_pg bash -c "cat >> '$DATA/postgresql.conf'" <<CONF
# --- read replica (scripts/replica.sh) ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
hot_standby = on
# analysts' long queries: ask the primary to keep the rows they read, instead of cancelling them
hot_standby_feedback = on
max_standby_streaming_delay = 5min
shared_buffers = 256MB
CONF
}

start() {
  create
  claim_dir "$SOCK"
  if ! running; then
    if [ -S "$SOCK/.s.PGSQL.$PORT" ] && "$PGBIN/pg_isready" -q -h "$SOCK" -p "$PORT"; then
      die "port $PORT is taken in $SOCK; set REPLICA_PORT"
    fi
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 120 start >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
  fi
  [ "$("$PGBIN/psql" "$(dsn "$SUPER")" -XAtqc 'select pg_is_in_recovery()')" = t ] \
    || die "the server on port $PORT is not a standby"
}

case "${1:-}" in
  start) start; echo "replica.sh: hot standby running; socket $SOCK, port $PORT (streaming from port $PPORT)" >&2 ;;
  stop) if running; then as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi ;;
  status) if running; then echo running; else echo stopped; exit 3; fi ;;
  dsn) dsn "${2:-$SUPER}" ;;
  lag) "$PGBIN/psql" "$(dsn "$SUPER")" -XAtqc \
         "select coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp())::numeric(10,1)::text || ' s since the last replayed commit', 'nothing replayed yet') || ', replay ' || coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text, '?') || ' bytes behind receipt'" ;;
  destroy) "$0" stop; rm -rf "$BASE"
    if [ "$SOCK" != "$BASE/run" ] && [ -d "$SOCK" ] && [ ! -L "$SOCK" ] && [ "$(stat -c %u "$SOCK")" = "$(id -u "$SUPER")" ]; then rm -rf "$SOCK"; fi ;;
  *) echo "usage: $0 start|stop|status|dsn [LOGIN]|lag|destroy" >&2; exit 2 ;;
esac
