"""Count the SQL statements an engine sends (every cursor execution: SELECT, INSERT, UPDATE, DELETE)."""
from contextlib import contextmanager

from sqlalchemy import event


@contextmanager
def recorded_statements(engine):
    """Yields the list that fills with each statement's SQL while the block runs (from any thread)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
