#!/usr/bin/env bash
# Backups of the tracker database (issue 16): make backup / make restore FILE=...
#   scripts/backup.sh backup [FILE]   pg_dump custom format (FILE, default backups/tracker-<UTC time>.dump)
#                                     plus the roles it needs beside it (FILE minus .dump + .roles.sql)
#   scripts/backup.sh restore FILE    into the database DATABASE_URL names (default: the embedded
#                                     cluster's), which must not exist yet: roles first, then the dump,
#                                     then the audit chain is verified
# DATABASE_URL points both at another server (production: see docs/operations.md, which also
# covers point-in-time recovery with WAL archiving). Both print how long they took.
set -euo pipefail
umask 077
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

die() { echo "backup.sh: $*" >&2; exit 1; }
url() { if [ -n "${DATABASE_URL:-}" ]; then echo "$DATABASE_URL"; else "$ROOT/scripts/pg.sh" dsn; fi; }
# conninfo helpers (libpq URIs and key=value strings alike, through psycopg)
with_db() { "$PY" -c 'import sys; from psycopg.conninfo import conninfo_to_dict as d, make_conninfo as m; p = d(sys.argv[1]); p["dbname"] = sys.argv[2]; print(m(**p))' "$1" "$2"; }
db_of() { "$PY" -c 'import sys; from psycopg.conninfo import conninfo_to_dict as d; print(d(sys.argv[1]).get("dbname") or "")' "$1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

backup() {
  local src file roles t0 me
  src=$(url)
  file=${1:-$ROOT/backups/tracker-$(date -u +%Y%m%dT%H%M%SZ).dump}
  case "$file" in *.dump) ;; *) die "the backup file name must end in .dump: $file" ;; esac
  roles="${file%.dump}.roles.sql"
  mkdir -p "$(dirname "$file")"
  t0=$(now)
  # written under a temporary name and renamed at the end: a failed backup never looks complete
  "$PGBIN/pg_dump" --format=custom --compress=6 --file="$file.partial" --dbname="$src"
  me=$("$PGBIN/psql" -Atqd "$src" -c "select current_user")
  # every role but the bootstrap superuser we connect as; CREATE ROLE made idempotent so the
  # file also applies to a cluster that has some of them (the twelve group roles, say)
  "$PGBIN/pg_dumpall" --roles-only --dbname="$src" \
    | grep -vE "^(CREATE|ALTER) ROLE \"?$me\"?[ ;]" \
    | sed -E 's/^CREATE ROLE ([^;]+);$/DO $do$ BEGIN CREATE ROLE \1; EXCEPTION WHEN duplicate_object THEN NULL; END $do$;/' \
    > "$roles.partial"
  mv "$roles.partial" "$roles"
  mv "$file.partial" "$file"
  echo "backup: $file ($(du -h "$file" | cut -f1)) and $roles in $(since "$t0") s"
}

restore() {
  local file=${1:-} roles target db maint t0
  [ -n "$file" ] || die "which backup? make restore FILE=backups/tracker-....dump"
  [ -f "$file" ] || die "no such file: $file"
  roles="${file%.dump}.roles.sql"
  [ -f "$roles" ] || die "the roles file $roles is missing (it is written beside every backup)"
  "$PGBIN/pg_restore" --list "$file" >/dev/null 2>&1 || die "$file is not a pg_dump custom-format archive (truncated?)"
  target=$(url)
  db=$(db_of "$target")
  [ -n "$db" ] || die "DATABASE_URL names no database"
  maint=$(with_db "$target" postgres)
  local exists
  exists=$("$PGBIN/psql" -Atqd "$maint" -v db="$db" <<<"select count(*) from pg_database where datname = :'db'")
  # an existing database is used only when it is empty (scripts/pg.sh drop-db leaves one so)
  if [ "$exists" != 0 ] && [ "$("$PGBIN/psql" -Atqd "$target" -c "select count(*) from pg_namespace where nspname in ('app', 'audit')")" != 0 ]; then
    die "database $db already exists on that server and holds the tracker; restore into an empty one (drop it first, or point DATABASE_URL at a new name)"
  fi
  t0=$(now)
  "$PGBIN/psql" -qd "$maint" -v ON_ERROR_STOP=1 -f "$roles" >/dev/null
  if [ "$exists" = 0 ]; then
    "$PGBIN/psql" -qd "$maint" -v ON_ERROR_STOP=1 -c "create database \"$db\" template template0 encoding 'UTF8'"
  fi
  "$PGBIN/pg_restore" --exit-on-error --jobs="${RESTORE_JOBS:-2}" --dbname="$target" "$file"
  "$PGBIN/psql" -qd "$target" -v ON_ERROR_STOP=1 -c "analyze" >/dev/null
  echo "restore: $file into $db in $(since "$t0") s"
  DATABASE_URL="$target" "$PY" -m tracker.cli verify-audit
}

cd "$ROOT"
case "${1:-}" in
  backup) shift; backup "$@" ;;
  restore) shift; restore "$@" ;;
  *) die "usage: scripts/backup.sh backup [FILE.dump] | restore FILE.dump" ;;
esac
