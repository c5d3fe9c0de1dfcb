"""One US date and time style for pages, PDFs and e-mails, in the viewer's time zone."""
from datetime import UTC, date, datetime

import pytest

from lti_tool import formatting


@pytest.mark.parametrize("value, text", [
    (date(2026, 11, 30), "Nov 30, 2026"),
    (date(2026, 1, 5), "Jan 5, 2026"),
    ("2025-07-04", "Jul 4, 2025"),
    (None, ""),
    ("", ""),
    ("not a date", "not a date"),
])
def test_dates_read_the_american_way(value, text):
    assert formatting.us_date(value) == text


def test_times_are_shown_in_the_viewers_zone_with_its_abbreviation():
    moment = datetime(2026, 11, 30, 20, 30, tzinfo=UTC)
    assert formatting.us_datetime(moment, "America/Chicago") == "Nov 30, 2026, 2:30 PM CST"
    assert formatting.us_datetime(moment, "America/Los_Angeles") == "Nov 30, 2026, 12:30 PM PST"
    # Daylight saving time follows the date.
    assert formatting.us_datetime(datetime(2026, 7, 1, 4, 5, tzinfo=UTC), "America/New_York") == \
        "Jul 1, 2026, 12:05 AM EDT"
    # A UTC evening is the next morning... or the same evening: the calendar day is the viewer's.
    assert formatting.us_date(datetime(2026, 12, 1, 3, 0, tzinfo=UTC), "America/Denver") == "Nov 30, 2026"
    assert formatting.us_datetime("2026-11-30T20:30:00Z", "America/Phoenix") == "Nov 30, 2026, 1:30 PM MST"


def test_unknown_zone_falls_back_to_the_default_rather_than_failing():
    moment = datetime(2026, 11, 30, 20, 30, tzinfo=UTC)
    assert formatting.us_datetime(moment, "Mars/Olympus_Mons") == formatting.us_datetime(
        moment, formatting.DEFAULT_TIME_ZONE)


def test_relative_times():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert formatting.ago(datetime(2026, 11, 27, 12, 0, tzinfo=UTC), now) == "3 days ago"
    assert formatting.ago(datetime(2026, 11, 30, 14, 0, tzinfo=UTC), now) == "in 2 hours"
    assert formatting.ago(now, now) == "just now"
    assert formatting.until(datetime(2026, 11, 30, 12, 5, 30, tzinfo=UTC), now) == "in 5 minutes"
