"""A prebuilt statement run straight on the PostgreSQL driver (psycopg), outside the ORM session.

For the launch's one statement only: SQLAlchemy's work around a single execution (the session and its connection,
the execution context, result metadata for the launch's 55 columns) cost three times the CPU the driver needs for
the same statement (0.46 against 0.13 ms per launch, the most expensive step of a returning technician's launch).
The statement is still built by SQLAlchemy, once per process (models/upsert.prebuilt), and compiled once; its bind
and result processors are SQLAlchemy's own, so values come back exactly as the ORM would load them.

While anything listens to the engine's statements (the tests and benchmarks that count them), usable() is False
and the caller runs the same statement through the session, where they see it.
"""
from typing import NamedTuple

from ..extensions import db
from .upsert import prebuilt


class _Compiled(NamedTuple):
    sql: str
    defaults: dict
    bind_processors: dict
    names: tuple
    result_processors: tuple


_compiled: dict = {}


def _compile(key, build) -> _Compiled:
    dialect = db.engine.dialect
    found = _compiled.get(key)
    if found is None:
        stmt = prebuilt(key, build)
        compiled = stmt.compile(dialect=dialect)
        columns = list(stmt.selected_columns)
        found = _compiled[key] = _Compiled(
            compiled.string, dict(compiled.params), dict(compiled._bind_processors),
            tuple(column.key for column in columns),
            tuple(column.type._cached_result_processor(dialect, None) for column in columns))
    return found


def usable() -> bool:
    """PostgreSQL, and nothing counts or times the engine's statements (it must see every one)."""
    engine = db.engine
    return engine.dialect.name == "postgresql" and not (
        engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute)


def run_one(key, build, params: dict) -> dict:
    """The first row of the prebuilt statement, committed on its own (autocommit: one round trip, no BEGIN or
    COMMIT), as a dict of column key -> value ({} when it returned no row), on a pooled connection of its own.
    Only where usable()."""
    compiled = _compile(key, build)
    values = {**compiled.defaults, **params}
    for name, process in compiled.bind_processors.items():
        if name in values:
            values[name] = process(values[name])
    pooled = db.engine.raw_connection()
    connection = pooled.driver_connection
    threshold = connection.prepare_threshold
    try:
        connection.autocommit = True
        # Prepared on the server, unlike the session's statements (create_app): its generic plan is as good as
        # one made for each launch's parameters, and planning it every time cost the database twice the CPU.
        connection.prepare_threshold = 0
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, values, prepare=True)
            row = cursor.fetchone()
    except BaseException:
        if connection.broken:
            # As SQLAlchemy does on a disconnect: this connection is thrown away, and so are the pool's others
            # (the server that dropped one, restarting or failing over, dropped them all).
            pooled.invalidate()
            db.engine.dispose()
        raise
    finally:
        connection.prepare_threshold = threshold
        if not connection.broken:
            connection.autocommit = False  # as the pool hands connections out
        pooled.close()
    if row is None:
        return {}
    return {name: process(value) if process else value
            for name, value, process in zip(compiled.names, row, compiled.result_processors, strict=True)}
