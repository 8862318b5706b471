"""Database refusals as sentences for the person who caused them: our own SQLSTATEs (TRxxx)
carry a human message and hint; a permission error, a malformed value and anything else get
a fixed sentence. Every blueprint catches psycopg.Error and flashes friendly(exc)."""
import psycopg
from flask import current_app

from .. import logging as structured_log


def friendly(exc: psycopg.Error) -> str:
    """A database refusal as a sentence for the person who caused it."""
    code = exc.sqlstate or ""
    if code.startswith("TR") or code == "42501":
        structured_log.refusal(exc)
    if code.startswith("TR"):
        msg = exc.diag.message_primary or "That did not work."
        msg = msg[0].upper() + msg[1:]
        end = "" if msg.endswith(("?", "!", ".")) else "."
        return f"{msg}{end} {exc.diag.message_hint}" if exc.diag.message_hint else f"{msg}{end}"
    if code == "42501":
        return "You are not allowed to do that."
    if code in ("22P02", "22007", "22008", "22003"):
        return "One of the values is not valid (check numbers and dates)."
    current_app.logger.exception("unexpected database error")
    return "Something went wrong; nothing was changed."
