"""Mail settings from the environment. Defaults point at the local capture server
(`python -m alerts capture`, started by `make run`)."""
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # none | starttls | tls
    user: str | None
    password: str | None
    sender: str
    timeout: float


def smtp_settings() -> SmtpSettings:
    security = os.environ.get("SMTP_SECURITY", "none").strip().lower()
    if security not in ("none", "starttls", "tls"):
        raise SystemExit(f"SMTP_SECURITY must be none, starttls or tls, not {security!r}")
    return SmtpSettings(
        host=os.environ.get("SMTP_HOST", "127.0.0.1"),
        port=int(os.environ.get("SMTP_PORT", "8025")),
        security=security,
        user=os.environ.get("SMTP_USER") or None,
        password=os.environ.get("SMTP_PASSWORD") or None,
        sender=os.environ.get("MAIL_FROM", "Sample tracker <tracker@localhost>"),
        timeout=float(os.environ.get("SMTP_TIMEOUT", "30")),
    )


def public_url() -> str:
    return os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
