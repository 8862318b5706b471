"""Structured logs (issue 16): one JSON object per line on stderr, which log shippers
(journald, Docker, Fluent Bit, Vector, Loki's promtail) read as they are.

  {"ts": ..., "level": "info", "event": "request", "method": "POST", "path": "/samples/1001/act/receive",
   "status": 303, "duration_ms": 12.4, "staff_id": 8, "request_id": "9f0c..."}

One `request` line per request; one `refusal` line per database refusal shown to a person
(the SQLSTATE and the sentence, e.g. TR001 for a lifecycle action not possible now); one
`startup_refused` line when the app will not start. The request id comes from a sane
X-Request-Id header (a proxy's) or is made here, and is sent back in X-Request-Id."""
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import g, has_request_context, request

LOGGER = "tracker.events"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "event": getattr(record, "event", None) or record.getMessage()}
        out.update(getattr(record, "fields", {}))
        if record.exc_info and record.levelno >= logging.ERROR:
            out["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out, default=str, ensure_ascii=False)


def logger() -> logging.Logger:
    log = logging.getLogger(LOGGER)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(os.environ.get("TRACKER_LOG_LEVEL", "INFO").upper())  # make soak: warning
        log.propagate = False
    return log


def event(name: str, level: int = logging.INFO, **fields) -> None:
    """Write one structured line (with the request id and staff id when in a request)."""
    if has_request_context():
        fields.setdefault("request_id", getattr(g, "request_id", None))
        user = getattr(g, "user", None)
        fields.setdefault("staff_id", user["id"] if user else None)
    logger().log(level, name, extra={"event": name, "fields": fields})


def refusal(exc) -> None:
    """A database refusal shown to a person: which code, what it said, on which page."""
    event("refusal", logging.INFO, sqlstate=exc.sqlstate, message=exc.diag.message_primary,
          method=request.method if has_request_context() else None,
          path=request.path if has_request_context() else None)


def init_app(app) -> None:
    logger()

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def log_request(response):
        started = getattr(g, "request_started", None)
        event("request", method=request.method, path=request.path, status=response.status_code,
              duration_ms=round((time.perf_counter() - started) * 1000, 1) if started else None)
        if getattr(g, "request_id", None):
            response.headers["X-Request-Id"] = g.request_id
        return response
