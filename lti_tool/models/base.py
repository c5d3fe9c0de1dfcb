"""Column helpers shared by every model."""
from datetime import UTC, datetime

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


def among(column, ids, dialect: str):
    """`column IN ids` for a long list of integer ids: on PostgreSQL one array parameter (= ANY), so the
    statement stays short however many ids there are (the driver parses every placeholder of an expanded
    IN-list, which cost more than running the query for a course of thousands); elsewhere an IN-list."""
    if dialect == "postgresql":
        return column == any_(literal(list(ids), ARRAY(BigInteger)))
    return column.in_(list(ids))
