"""Local days for reports: the tenant's time zone (the `time_zone` setting), where a day such as "as of Nov 30,
2026" begins and ends, and today's date there. How dates read is lti_tool.formatting's job (re-exported here
for the reports' convenience)."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..formatting import us_date, us_datetime
from .settings import time_zone as zone  # the tenant's zone: one rule, in services.settings

__all__ = ["end_of", "start_of", "today", "us_date", "us_datetime", "zone"]


def start_of(day: date, tz: ZoneInfo) -> datetime:
    """The UTC moment a local calendar day begins."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def end_of(day: date, tz: ZoneInfo) -> datetime:
    """The last moment of a local calendar day (as_of for "as of Nov 30, 2026" means the end of that day)."""
    return start_of(day + timedelta(days=1), tz) - timedelta(microseconds=1)


def today(tz: ZoneInfo) -> date:
    return datetime.now(tz).date()
