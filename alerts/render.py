"""One outbox row -> one EmailMessage (plain text + HTML, a PDF attached for digests).
Templates: templates/alerts/<kind>.txt and <kind>.html."""
import os
from datetime import date, datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import pdf, settings
from .recipient import as_recipient
from .welcome import GUIDE, ROLE_NAMES

ENV = Environment(loader=FileSystemLoader(str(pdf.TEMPLATES)), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters["d"] = pdf.ENV.filters["d"]


def local_time(value: str) -> str:
    """An ISO timestamp from a payload as people read it: '26 Nov 14:05' in $TZ (Europe/London)."""
    try:
        tz = ZoneInfo(os.environ.get("TZ") or "Europe/London")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("Europe/London")
    return datetime.fromisoformat(value).astimezone(tz).strftime("%d %b %H:%M")


ENV.filters["at"] = local_time


def message_id(row: dict) -> str:
    """Stable per outbox row, so a receiving system can tell a resend from a new mail."""
    return f"<outbox-{row['id']}-{row['dedupe_key'].replace(':', '.')}@sample-tracker>"


def build(row: dict, sender: str, admin_url: str | None = None) -> EmailMessage:
    kind = row["kind"]
    ctx = {"row": row, "p": row["payload"], "base": settings.public_url(), "day": row["day"]}
    attachment = None
    if kind == "welcome":
        role = row["payload"]["role"]
        sees, can, steps = GUIDE[role]
        ctx.update(role=ROLE_NAMES[role], sees=sees, can=can, steps=steps,
                   expires=date.fromisoformat(row["payload"]["expires_at"][:10]),
                   link=f"{ctx['base']}/auth/invite/{row['payload']['token']}")
    elif kind in ("digest", "my_overdue"):
        # rendered as the recipient: the PDF holds only what they may see
        with as_recipient(admin_url, row["staff_id"]) as conn:
            if kind == "digest":
                attachment = (f"digest-{row['day']}.pdf", pdf.digest_pdf(conn, row["day"]))
            else:
                attachment = (f"overdue-{row['day']}.pdf", pdf.my_overdue_pdf(conn, row["day"]))
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row["to_email"]
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = message_id(row)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(ENV.get_template(f"alerts/{kind}.txt").render(**ctx))
    msg.add_alternative(ENV.get_template(f"alerts/{kind}.html").render(**ctx), subtype="html")
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg

