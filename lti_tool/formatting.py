"""How dates and times read for people in the United States: "Nov 30, 2026" and "Nov 30, 2026, 2:30 PM CST",
in the viewer's time zone. Every page, PDF and e-mail formats through here, so one style shows everywhere.

In Spanish the same dates read "30 nov 2026" and "30 nov 2026, 2:30 p. m. CST": the month is a word either way,
so day and month can never be confused (30/11 against 11/30), and the clock stays the US 12-hour one.

Stored times are UTC; a time is shown in the viewer's time zone (services.settings.viewer_time_zone: the one the
LMS sends for the person, else the tenant's `time_zone` setting, else the one the person's browser reported), else
the tool's default. A calendar date (an expiration date, a CE completion date) is shown as it was entered:
it has no time zone.
"""
import functools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_babel import gettext as _
from flask_babel import ngettext

from .i18n import current as current_language

DEFAULT_TIME_ZONE = "America/New_York"


def zone(name: str | None) -> ZoneInfo:
    """A ZoneInfo for an IANA name; the default for an empty or unknown name (never raises on bad data)."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def _parse(value):
    """Dates and datetimes pass through; ISO text (as JSON transcripts carry it) is read; anything else is None."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and value:
        text = value.strip()
        try:
            if "T" in text or " " in text:
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def _local(moment: datetime, tz: ZoneInfo | str | None) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz if isinstance(tz, ZoneInfo) else zone(tz))


def us_date(value, tz: ZoneInfo | str | None = None) -> str:
    """"Nov 30, 2026"; a datetime is first moved into the viewer's zone. Empty for None; unreadable text as given."""
    parsed = _parse(value)
    if parsed is None:
        return value if isinstance(value, str) else ""
    if isinstance(parsed, datetime):
        parsed = _local(parsed, tz).date()
    if current_language() == "es":
        return f"{parsed.day} {SPANISH_MONTHS[parsed.month - 1]} {parsed.year}"
    return f"{parsed:%b} {parsed.day}, {parsed.year}"


# Spanish abbreviations as US Spanish-language style guides write them (lower case, no period).
SPANISH_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")


def us_time(moment: datetime, tz: ZoneInfo | str | None = None) -> str:
    """"2:30 PM CST" (the zone's abbreviation follows daylight saving time)."""
    local = _local(moment, tz)
    hour = local.hour % 12 or 12
    if current_language() == "es":
        return f"{hour}:{local:%M} {'a. m.' if local.hour < 12 else 'p. m.'} {local.tzname()}"
    return f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local.tzname()}"


def us_datetime(value, tz: ZoneInfo | str | None = None) -> str:
    """"Nov 30, 2026, 2:30 PM CST"."""
    parsed = _parse(value)
    if parsed is None:
        return value if isinstance(value, str) else ""
    if not isinstance(parsed, datetime):
        return us_date(parsed)
    return f"{us_date(parsed, tz)}, {us_time(parsed, tz)}"


def _count(unit: str, n: int) -> str:
    return {
        "year": lambda: ngettext("%(num)d year", "%(num)d years", n),
        "month": lambda: ngettext("%(num)d month", "%(num)d months", n),
        "week": lambda: ngettext("%(num)d week", "%(num)d weeks", n),
        "day": lambda: ngettext("%(num)d day", "%(num)d days", n),
        "hour": lambda: ngettext("%(num)d hour", "%(num)d hours", n),
        "minute": lambda: ngettext("%(num)d minute", "%(num)d minutes", n),
    }[unit]()


def _span(seconds: int, units) -> str | None:
    for unit, size in units:
        if seconds >= size:
            return _count(unit, seconds // size)
    return None


_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400), ("hour", 3600),
          ("minute", 60))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """"3 days ago", "in 2 hours", "just now"; empty for None."""
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    text = _span(abs(seconds), _UNITS)
    if text is None:
        return _("just now")
    return _("in %(span)s", span=text) if seconds < 0 else _("%(span)s ago", span=text)


def until(moment: datetime | None, now: datetime | None = None) -> str:
    """"in 3 hours", "in 5 minutes", "now"."""
    seconds = int((moment - (now or datetime.now(UTC))).total_seconds()) if moment else 0
    text = _span(seconds, _UNITS[3:])
    return _("in %(span)s", span=text) if text else _("now")


@functools.cache
def _zone_names() -> frozenset:
    return frozenset(available_timezones())


def known_zone(name) -> str | None:
    """The IANA name when this machine knows it (an LMS or a browser may send anything at all), else None."""
    if isinstance(name, str) and name.strip() in _zone_names():
        return name.strip()
    return None
