"""Column helpers shared by every model."""
import json
import re
from datetime import UTC, datetime

import orjson
from sqlalchemy import BigInteger, DateTime, TypeDecorator, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def result_processor(self, dialect, coltype):
        # PostgreSQL's timestamptz arrives aware already: no call per value (3,000 on a team matrix page).
        return None if dialect.name == "postgresql" else super().result_processor(dialect, coltype)


# 19 digits in a row: maybe an integer beyond 64 bits, which orjson would read as a float (10**30 -> 1e+30).
_LONG_DIGITS, _LONG_DIGITS_BYTES = re.compile(r"\d{19}"), re.compile(rb"\d{19}")


def json_loads(text):
    """Every JSON column's reader (the engine's json_deserializer): orjson, which decoded a course's 154
    competencies (four JSON columns each) in a third of the standard library's time. What orjson refuses or
    would read differently and Python's json writes (NaN, integers beyond 64 bits) is read by the standard
    library, so no stored value becomes unreadable or changes."""
    if not isinstance(text, str | bytes):
        text = bytes(text)
    if (_LONG_DIGITS if isinstance(text, str) else _LONG_DIGITS_BYTES).search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def among(column, ids, dialect: str):
    """`column IN ids` for a long list of integer ids: on PostgreSQL one array parameter (= ANY), so the
    statement stays short however many ids there are (the driver parses every placeholder of an expanded
    IN-list, which cost more than running the query for a course of thousands); elsewhere an IN-list."""
    if dialect == "postgresql":
        return column == any_(literal(list(ids), ARRAY(BigInteger)))
    return column.in_(list(ids))
