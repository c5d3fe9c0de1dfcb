"""INSERT ... ON CONFLICT on both databases the tool runs on (PostgreSQL, and SQLite >= 3.35 for RETURNING)."""
from sqlalchemy import func, null
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db


def insert(model, dialect: str | None = None):
    """The database's own INSERT construct, which has on_conflict_do_update() and .excluded (for the session's
    database unless a dialect name is given)."""
    dialect = dialect or db.session.get_bind().dialect.name
    return postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)


def upsert(model, keys: tuple[str, ...], values: dict, keep: tuple[str, ...] = ()):
    """Insert the row, or update the one with the same `keys`, and return it as an ORM object: one statement,
    and safe when two requests create the same row at once (the second waits for the first, then updates).

    Columns named in `keep` keep their stored value when `values` has None for them (an LMS that stops sending
    a name does not erase the one we have)."""
    values = {k: (null() if v is None and k in keep else v) for k, v in values.items()}
    stmt = insert(model).values(**values)
    table = model.__table__
    changes = {c: func.coalesce(stmt.excluded[c], table.c[c]) if c in keep else stmt.excluded[c]
               for c in values if c not in keys}
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=changes).returning(model)
    return db.session.scalars(stmt, execution_options={"populate_existing": True}).one()
