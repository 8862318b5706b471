"""The public API as the fuzzer and the soak see it: every entry point listed in
tests/api_allowlist.yml (new ones are picked up from there), who may call it, its
parameter names and types from the catalogue, and the rule for what a caller may get
back when a call fails."""
from pathlib import Path

import yaml

from tracker.roles import ROLES

ALLOWLIST = Path(__file__).resolve().parent.parent / "api_allowlist.yml"


def norm(sig: str) -> str:
    return sig.replace(", ", ",").strip()


def entry_points() -> list[tuple[str, tuple[str, ...]]]:
    """(signature, the logins allowed to call it), every signature once, in file order.
    A login is a staff role name or 'authenticator'."""
    allow = yaml.safe_load(ALLOWLIST.read_text())
    who: dict[str, list[str]] = {}
    for sig in allow.get("staff", []):
        who.setdefault(norm(sig), []).extend(ROLES)
    for role, sigs in (allow.get("by_role") or {}).items():
        for sig in sigs:
            who.setdefault(norm(sig), []).append(role)
    for sig in allow.get("authenticator", []):
        who.setdefault(norm(sig), []).append("authenticator")
    return [(sig, tuple(dict.fromkeys(roles))) for sig, roles in who.items()]


def describe(conn, sig: str) -> tuple[str, list[tuple[str, str]]]:
    """(qualified name, [(parameter name, type)]) of an input-only signature, from the catalogue."""
    name, argnames, argtypes = conn.execute(
        """select format('%%I.%%I', n.nspname, p.proname), coalesce(p.proargnames, '{}'),
                  array(select format_type(t, null) from unnest(p.proargtypes) t)
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where p.oid = %s::regprocedure""", (sig,)).fetchone()
    return name, [(argnames[i] if i < len(argnames) else f"arg{i}", t) for i, t in enumerate(argtypes)]


def call_sql(name: str, params: list[tuple[str, str]]) -> str:
    casts = ", ".join(f"%s::{t}" for _, t in params)
    return f"select * from {name}({casts})"


# What a failing call may raise: our own SQLSTATEs, PostgreSQL's permission error (a
# role calling what it is not granted, a column it may not write), and, under
# concurrency only, serialisation failures and deadlocks (retried by the caller).
CLEAN = ("42501",)
RETRYABLE = ("40001", "40P01")


def is_clean(sqlstate: str | None, concurrent: bool = False) -> bool:
    """True for a refusal a person can be shown; False for an internal error: XX000,
    a 22xxx/23xxx the function did not validate first (it leaks a constraint name),
    54xxx (a program limit), P0001 (a raise without our code), a timeout, anything else."""
    code = sqlstate or ""
    if code.startswith("TR") or code in CLEAN:
        return True
    return concurrent and code in RETRYABLE
