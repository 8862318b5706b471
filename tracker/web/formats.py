"""How values read on a page: one date format, times in one configured time zone
(TZ setting, Europe/London by default), money, exchange rates and durations.
SQL decides the values; these only format them."""
import os
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from markupsafe import Markup, escape

DEFAULT_TZ = "Europe/London"
DAY = "%d %b %Y"


def display_tz() -> ZoneInfo:
    """The time zone people read times in: app.config['TZ'], else $TZ, else Europe/London."""
    name = (current_app.config.get("TZ") if current_app else None) or os.environ.get("TZ") or DEFAULT_TZ
    try:
        return ZoneInfo(name.lstrip(":"))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def local(ts: datetime) -> datetime:
    return ts.astimezone(display_tz()) if ts.tzinfo else ts


def day(v) -> str:
    """A date as '03 Mar 2026' (a timestamp: its date in the display time zone)."""
    if v is None:
        return ""
    if isinstance(v, datetime):
        v = local(v)
    return v.strftime(DAY) if isinstance(v, date) else str(v)


def moment(ts) -> str:
    """A timestamp as '03 Mar 2026 14:05 GMT' in the display time zone."""
    if ts is None:
        return ""
    t = local(ts)
    return t.strftime(DAY + " %H:%M ") + (t.tzname() or "")


def when(v) -> Markup:
    """A <time> element that never wraps, with the machine-readable value."""
    if v is None:
        return Markup("")
    text = moment(v) if isinstance(v, datetime) else day(v)
    return Markup(f'<time class="date" datetime="{escape(v.isoformat())}">{escape(text)}</time>')


def days(n) -> str:
    if n is None:
        return ""
    return "today" if n <= 0 else ("1 day" if n == 1 else f"{n} days")


def duration(td) -> str:
    """An interval from the database in words, in the largest unit (days, hours, minutes)
    that divides it; the rules themselves live in SQL."""
    seconds = int(td.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "day" and seconds == 86400):
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


def money(v, symbol="£") -> str:
    return "" if v is None else f"{symbol}{v:,.2f}"


def rate(r) -> str:
    """0.850000 -> '0.85'; 0.009500 -> '0.0095' (no trailing zeros, at least two places)."""
    if r is None:
        return ""
    text = format(Decimal(r).normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def register(bp):
    for fn in (day, moment, when, days, duration, money, rate):
        bp.add_app_template_filter(fn)
    bp.add_app_template_global(display_tz)
