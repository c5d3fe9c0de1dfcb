"""INSERT ... ON CONFLICT on both databases the tool runs on (PostgreSQL, and SQLite >= 3.35 for RETURNING), with
the statements built once per process: the launch runs them on every request, and building and fingerprinting a
statement costs more CPU than the database needs to run it."""
from sqlalchemy import JSON, bindparam, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import manager_of_class

from ..extensions import db

_built: dict = {}


def insert(model, dialect: str | None = None):
    """The database's own INSERT construct, which has on_conflict_do_update() and .excluded (for the session's
    database unless a dialect name is given)."""
    dialect = dialect or db.engine.dialect.name
    return postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)


def prebuilt(key, build):
    """The statement `build(dialect)` makes, built once per process and database kind and reused (with bind
    parameters) ever after."""
    dialect = db.engine.dialect.name
    stmt = _built.get((dialect, key))
    if stmt is None:
        stmt = _built[(dialect, key)] = build(dialect)
    return stmt


def upsert(model, keys: tuple[str, ...], values: dict, keep: tuple[str, ...] = ()):
    """Insert the row, or update the one with the same `keys`, and return it as an ORM object: one statement,
    and safe when two requests create the same row at once (the second waits for the first, then updates).

    Columns named in `keep` keep their stored value when `values` has None for them (an LMS that stops sending
    a name does not erase the one we have)."""
    table = model.__table__
    columns = tuple(values)

    def build(dialect):
        params = {c: bindparam(c, type_=JSON(none_as_null=True) if c in keep and isinstance(table.c[c].type, JSON)
                               else table.c[c].type) for c in columns}
        stmt = insert(table, dialect).values(params)
        changes = {c: func.coalesce(stmt.excluded[c], table.c[c]) if c in keep else stmt.excluded[c]
                   for c in columns if c not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=changes).returning(*table.c)

    row = db.session.execute(prebuilt(("upsert", table.name, keys, columns, keep), build), values).one()
    return as_loaded(model, row._mapping)


def as_loaded(model, data):
    """An ORM object for a row a Core statement returned, in the session as if a query had loaded it."""
    session = db.session()  # once: each attribute of the scoped session looks the session up again
    manager = manager_of_class(model)
    existing = session.identity_map.get(manager.mapper.identity_key_from_primary_key((data["id"],)))
    if existing is not None:
        for name, value in data.items():
            set_committed_value(existing, name, value)
        return existing
    obj = as_detached(model, data)
    session.add(obj)
    return obj


def as_detached(model, data):
    """An ORM object for a stored row that the request only reads, outside the session: every column readable,
    no session work (the launch of a returning technician). attach() it before writing to it or following one
    of its relationships."""
    # As a query's loader does it: an instance without __init__ (which sets each column through the attribute
    # events), its values in the instance dict as loaded. A third of the cost, for the launch's three rows.
    obj = manager_of_class(model).new_instance()
    obj.__dict__.update(data)
    make_transient_to_detached(obj)
    return obj


def attach(obj):
    """The session's object for `obj`: itself when it is already in the session, else the session's copy of it,
    taken without a query (merge with load=False: as_detached's values are the stored row's)."""
    if obj in db.session:
        return obj
    return db.session.merge(obj, load=False)
