"""Where the database is. DATABASE_URL wins; otherwise the project-local cluster."""
import os
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"


def database_url() -> str:
    """Admin (migration) connection string."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    out = subprocess.run([str(ROOT / "scripts" / "pg.sh"), "dsn"], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def app_database_url(admin_url: str | None = None) -> str:
    """The web app's connection: the same server and database, as authenticator."""
    url = os.environ.get("APP_DATABASE_URL")
    if url:
        return url
    params = conninfo_to_dict(admin_url or database_url())
    params["user"] = "authenticator"
    params.pop("password", None)
    if os.environ.get("AUTHENTICATOR_PASSWORD"):
        params["password"] = os.environ["AUTHENTICATOR_PASSWORD"]
    return make_conninfo(**params)


def app_database_pooled() -> bool:
    """APP_DATABASE_POOLED=1: APP_DATABASE_URL goes through a transaction-pooling PgBouncer
    (make serve POOLER=1 sets it). The web app then never uses server-side prepared
    statements (PgBouncer before 1.21 cannot route them) and its realtime relay LISTENs
    on a direct connection (REALTIME_DATABASE_URL, else the server as authenticator)."""
    return os.environ.get("APP_DATABASE_POOLED", "").strip().lower() in ("1", "true", "yes", "on")


def realtime_database_url(app_url: str) -> str:
    """The relay's direct connection (LISTEN is session state: never through a pooler):
    REALTIME_DATABASE_URL, else the app's login and database on the server itself (the
    host and port of DATABASE_URL, or of the project-local cluster)."""
    url = os.environ.get("REALTIME_DATABASE_URL")
    if url:
        return url
    params = conninfo_to_dict(app_url)
    server = conninfo_to_dict(database_url())
    for key in ("host", "hostaddr", "port"):
        params.pop(key, None)
        if key in server:
            params[key] = server[key]
    return make_conninfo(**params)


def with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)
