# Sample tracker. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := postgresql-15 postgresql-15-cron postgresql-15-pgtap libpq-dev poppler-utils chromium libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core pgbouncer
# DATABASE_URL (if set) points everything at an existing server instead of the embedded cluster.
EMBEDDED := $(if $(DATABASE_URL),,1)
DSN = $(if $(DATABASE_URL),$(DATABASE_URL),$$(scripts/pg.sh dsn))

.PHONY: help deps db start migrate demo run serve alerts test dsn psql stop db-reset docs analyst verify-audit seal-audit refresh-analytics data bench bench-quick bench-realtime clean
.PHONY: soak backup restore lint-migrations
.PHONY: pooler pooler-stop replica replica-stop replica-destroy growth bench-pooler
SAMPLES ?= 1000000

help: ## list every target with what it does
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

deps: $(VENV)/.installed ## install what is missing: Debian packages (as root) and the Python venv
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run as root or: sudo apt-get install$$missing)" >&2; exit 1; fi; fi

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

start: deps ## start the project-local PostgreSQL cluster (no-op with DATABASE_URL)
	@$(if $(EMBEDDED),scripts/pg.sh start,true)

migrate: start ## apply migrations, then functions, policies and views (idempotent)
	@$(PY) -m tracker.cli migrate

demo: migrate ## load the deterministic demo data (skipped when present)
	@$(PY) -m tracker.cli demo

db: demo ## start + migrate + demo data, and leave the database running

run: db ## serve the app with demo data on http://127.0.0.1:5000 (PORT= to change) with Flask's development server, mail captured locally
	@$(PY) -m alerts run-local & alerts=$$!; trap 'kill $$alerts 2>/dev/null' EXIT; $(PY) app.py

alerts: start ## send the mail outbox over SMTP (SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_USER, SMTP_PASSWORD, MAIL_FROM); ARGS=--dry-run prints instead
	@$(PY) -m alerts $(ARGS)

# make serve: gunicorn, threaded workers (each websocket holds a thread), one realtime relay per worker
SERVE_WORKERS ?= 2
SERVE_THREADS ?= 150
SERVE_ARGS := --worker-class gthread --workers $(SERVE_WORKERS) --threads $(SERVE_THREADS) --graceful-timeout 5 --keep-alive 5
# POOLER=1: through a local PgBouncer (transaction pooling), started here and stopped when serve ends;
# the app's pool goes through it (no prepared statements), each worker's realtime relay LISTENs directly
POOLER ?=
serve: db ## serve like production: gunicorn, SERVE_WORKERS x SERVE_THREADS, websockets, on 127.0.0.1:$(PORT) (5000); POOLER=1 through PgBouncer
	@$(PY) -c 'from tracker.demo import print_logins; print_logins()'
ifneq ($(POOLER),)
	@test -z "$(DATABASE_URL)" || { echo "POOLER=1 runs a PgBouncer for the embedded cluster; with DATABASE_URL run your own and set APP_DATABASE_URL to it and APP_DATABASE_POOLED=1 (docs/deploy.md)" >&2; exit 2; }
	@scripts/pooler.sh start; trap 'scripts/pooler.sh stop' EXIT; \
	  APP_DATABASE_URL="$$(scripts/pooler.sh app-dsn)" APP_DATABASE_POOLED=1 REALTIME_DATABASE_URL="$$(scripts/pg.sh app-dsn)" \
	  $(VENV)/bin/gunicorn $(SERVE_ARGS) --bind 127.0.0.1:$${PORT:-5000} 'tracker.web:create_app()'
else
	@$(VENV)/bin/gunicorn $(SERVE_ARGS) --bind 127.0.0.1:$${PORT:-5000} 'tracker.web:create_app()'
endif

pooler: start ## start PgBouncer (transaction pooling) in front of the embedded cluster; POOLER_PORT (cluster port + 10000); prints the app's DSN
	@scripts/pooler.sh start && scripts/pooler.sh app-dsn

pooler-stop: ## stop the PgBouncer that make pooler started
	@scripts/pooler.sh stop

replica: start ## streaming hot standby of the embedded cluster for analysts (pg_basebackup -R; REPLICA_PORT, cluster port + 10)
	@$(if $(EMBEDDED),,echo "make replica copies the embedded cluster; for DATABASE_URL use your provider's read replica (docs/deploy.md)" >&2; exit 2)
	@scripts/replica.sh start && echo "analysts: psql \"$$(scripts/replica.sh dsn LOGIN)\" (LOGIN from make analyst); lag: scripts/replica.sh lag"

replica-stop: ## stop the hot standby (make replica starts it again and catches up)
	@scripts/replica.sh stop

replica-destroy: ## stop the hot standby and delete its copy
	@scripts/replica.sh destroy

test: start ## run every test (pytest against the real cluster)
	@$(PY) -m pytest $(PYTEST_ARGS)

soak: start ## long reliability run by hand: 60 s soak, 10k+ fuzzed SQL calls, 3k web requests, 3 crash rounds
	@SOAK_SECONDS=60 FUZZ_EXAMPLES=300 WEB_FUZZ_EXAMPLES=3000 CRASH_ROUNDS=3 FUZZ_RANDOM=1 TRACKER_LOG_LEVEL=warning \
	  $(PY) -m pytest -s -p no:cacheprovider tests/soak tests/test_fuzz_sql.py tests/test_fuzz_web.py tests/test_crash.py

backup: start ## pg_dump (custom format) + the roles it needs into backups/ (FILE=x.dump to choose)
	@scripts/backup.sh backup $(FILE)

restore: ## restore FILE=backups/x.dump into an empty database (DATABASE_URL's, else the embedded one)
	@$(if $(EMBEDDED),scripts/pg.sh start &&) scripts/backup.sh restore "$(FILE)"

# the migrations on main when the linter came (issue 16) are not held to it; every later one is
# V0008 (realtime) was written before the linter arrived and merged with it, on an empty table
SQUAWK_EXCLUDED := V0001 V0002 V0003 V0004 V0005 V0006 V0007 V0008 V0009 V0010 V0012 V0013 V0014
SQUAWK_RULES_OFF := prefer-robust-stmts,prefer-bigint-over-int,prefer-bigint-over-smallint
SQUAWK_FILES = $(filter-out $(foreach v,$(SQUAWK_EXCLUDED),sql/migrations/$(v)__%),$(sort $(wildcard sql/migrations/V*.sql)))
lint-migrations: deps ## check new migrations with squawk (lock timeouts, concurrent indexes, safe column changes)
	@$(if $(strip $(SQUAWK_FILES)),$(VENV)/bin/squawk --pg-version 15 --assume-in-transaction \
	  --exclude $(SQUAWK_RULES_OFF) $(SQUAWK_FILES),echo "no new migrations to lint")

dsn: ## print an admin libpq URI for the running database
	@echo $(DSN)

psql: start ## open psql on the database as the admin
	@psql "$(DSN)"

docs: migrate ## regenerate docs/permissions.md from the catalogue
	@$(PY) -m tracker.cli docs

analyst: migrate ## personal login: make analyst EMAIL=a@x.com LOGIN=alice [ROLE=finance TEAM=WW NAME="A B"]
	@$(PY) -m tracker.cli analyst --email "$(EMAIL)" --login "$(LOGIN)" $(if $(ROLE),--role "$(ROLE)") $(if $(TEAM),--team "$(TEAM)") $(if $(NAME),--name "$(NAME)") $(if $(PASSWORD_ENV),--password-env "$(PASSWORD_ENV)")

verify-audit: start ## verify the audit log's hash chain and show the unsealed window (exit 1: broken); ARGS="--max-unsealed 30" exits 2 when the sealer is behind
	@$(PY) -m tracker.cli verify-audit $(ARGS)

seal-audit: start ## link committed audit rows into the hash chain now (what the pg_cron job does); ARGS="--every 2 --quiet" keeps going, for a window under 10 s on pg_cron 1.4
	@$(PY) -m tracker.cli seal-audit $(ARGS)

refresh-analytics: start ## refresh the spend analytics now (what the nightly pg_cron job does)
	@psql "$(DSN)" -Xqtc "select 'analytics data as of ' || app_private.refresh_analytics('manual')"

data: start ## generate the benchmark data set: make data SAMPLES=1000000 (database tracker_bench)
	@$(PY) -m bench.generate --samples $(SAMPLES)

bench: start ## run every benchmark at 1M samples (generated if missing); writes bench/RESULTS.md
	@$(PY) -m bench.run

bench-quick: start ## the benchmarks at 50k samples with short runs (what CI runs)
	@$(PY) -m bench.run --quick

bench-realtime: start ## realtime under load: 200 websocket clients, 20 transitions/s for 60 s, against make serve (50k samples)
	@$(PY) -m bench.run --only realtime --samples 50000 --db tracker_bench_quick

bench-pooler: start ## 500 concurrent web clients against make serve, direct and through PgBouncer (50k samples; ~5 min)
	@$(PY) -m bench.run --only pooler --samples 50000 --db tracker_bench_quick

growth: start ## the growth curve: generate and measure 100k, 1M, 3M samples (SIZES=a,b,c); needs ~7 GiB free, drops its database after
	@$(PY) -m bench.growth $(if $(SIZES),--sizes $(SIZES))

stop: ## stop the embedded cluster
	@$(if $(EMBEDDED),scripts/pg.sh stop,echo "DATABASE_URL is set; nothing to stop")

db-reset: ## drop and recreate the embedded database with fresh demo data
	@test -z "$(DATABASE_URL)" || { echo "refusing to reset a DATABASE_URL database" >&2; exit 1; }
	@scripts/pg.sh start && scripts/pg.sh drop-db && scripts/pg.sh stop  # restart: pg_cron's scheduler ends with the dropped db
	@$(MAKE) --no-print-directory db

clean: stop ## stop the cluster and delete its data and the venv
	@scripts/pg.sh destroy; rm -rf $(VENV)
