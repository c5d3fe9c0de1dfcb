"""A key/value store in the database for used nonces, held launches and launch data.

Every server process sees the same rows, so a launch served by one gunicorn worker and the page or check that
follows it, served by another, agree; nothing large goes into a cookie. Each operation is one statement.
"""
from datetime import timedelta

from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.session import SessionService
from sqlalchemy import JSON, bindparam, delete, func, literal, select

from ..extensions import db
from ..models import LtiStoreEntry, driver
from ..models.base import utcnow
from ..models.upsert import insert, prebuilt


def autocommit() -> None:
    """Run this request's statements without a transaction, each committed on its own: for the login, whose one
    statement is a read, and for the launch, whose one statement claims its nonce (and reads its rows). One round
    trip instead of BEGIN, the statement and COMMIT. Must come before the request's first query; `transaction()`
    ends it before writes that belong together."""
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    db.session.info["autocommit"] = True


def transaction() -> None:
    """Leave autocommit() before writes that must commit together (a first launch's person, course, membership and
    the stored status they change): what ran so far stays committed, the next statement opens a transaction that
    the request's end commits or rolls back as usual. Nothing happens when the request is in a transaction."""
    if db.session.info.pop("autocommit", False):
        db.session.commit()  # returns the connection; the pool resets its isolation level


def _extras(dialect, also, relaxed_commit):
    extras = [also] if also is not None else []
    if relaxed_commit and dialect == "postgresql":
        extras.append(func.set_config("synchronous_commit", "off", True))
    return extras


def put(key: str, value, ttl_seconds: int, *, also=None, relaxed_commit=False):
    """Store (or replace) a value. `also`: a scalar SQL expression read in the same statement, and returned; it
    must be built once and reused (it keys the statement cache), like tool_conf.stamp().

    `relaxed_commit`: on PostgreSQL the same statement lets this transaction commit without waiting for the disk
    (set_config('synchronous_commit', 'off', true) is SET LOCAL as a function). A login or launch loses nothing
    that matters if the server crashes in the next fraction of a second, and the wait for fdatasync was most of
    its time; anything committed after it (a sign-off, evidence) is flushed together with it, durably."""

    def build(dialect):
        stmt = insert(LtiStoreEntry.__table__, dialect).values(
            key=bindparam("key"), value=bindparam("value", type_=JSON), expires_at=bindparam("expires_at"))
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
            "value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at})
        extras = _extras(dialect, also, relaxed_commit)
        return stmt.returning(*extras) if extras else stmt

    params = {"key": key, "value": value, "expires_at": utcnow() + timedelta(seconds=ttl_seconds)}
    cache_key = ("store-put", id(also) if also is not None else None, relaxed_commit)
    result = db.session.execute(prebuilt(cache_key, build), params)
    return None if also is None else result.first()[0]


def claim(key: str, ttl_seconds: int, *, also, relaxed_commit=False, read=None):
    """Create a key that must be new (a nonce): (True, also's value, read's row as a mapping) for the one call that
    created it, (False, None, None) for every other, however many race (INSERT ... ON CONFLICT DO NOTHING). `also`
    as in put. The row only has to outlive the state that carries the nonce; the worker purges it after that.
    Run it in autocommit() (or, on PostgreSQL, where driver.usable(), it commits at once on its own connection).

    `read`: (cache key, build(dialect) -> SELECT, params), a read the caller needs next; on PostgreSQL it runs in
    the same statement (the INSERT as a data-modifying CTE, straight on the driver: models/driver.py), elsewhere
    as a second statement."""
    params = {"key": key, "expires_at": utcnow() + timedelta(seconds=ttl_seconds)}
    table = LtiStoreEntry.__table__

    def insert_for(dialect):
        return (insert(table, dialect).values(key=bindparam("key"), expires_at=bindparam("expires_at"))
                .on_conflict_do_nothing(index_elements=["key"]))

    if read is not None and db.engine.dialect.name == "postgresql":
        read_key, build_read, read_params = read

        def build(dialect):
            claimed = insert_for(dialect).returning(literal(1).label("one")).cte("claimed")
            extras = _extras(dialect, also, relaxed_commit)
            return build_read(dialect).add_columns(
                select(func.count()).select_from(claimed).scalar_subquery().label("claimed_now"),
                *(e.label(f"extra_{i}") for i, e in enumerate(extras)))

        stmt_key, values = ("store-claim-read", read_key, id(also), relaxed_commit), {**params, **read_params}
        if driver.usable():  # on a connection of its own, committed at once
            row = driver.run_one(stmt_key, build, values)
        else:
            row = db.session.execute(prebuilt(stmt_key, build), values).one()._mapping
        return (True, row["extra_0"], row) if row["claimed_now"] else (False, None, None)

    def build(dialect):
        return insert_for(dialect).returning(*_extras(dialect, also, relaxed_commit))

    row = db.session.execute(prebuilt(("store-claim", id(also), relaxed_commit), build), params).first()
    if row is None:
        return False, None, None
    if read is None:
        return True, row[0], None
    read_key, build_read, read_params = read
    return True, row[0], db.session.execute(prebuilt(read_key, build_read), read_params).one()._mapping


def get(key: str):
    entry = db.session.scalars(
        select(LtiStoreEntry).where(LtiStoreEntry.key == key, LtiStoreEntry.expires_at > utcnow())
    ).first()
    return None if entry is None else entry.value


def take(key: str, *, also=None, relaxed_commit=False):
    """Read and delete in one statement (DELETE ... RETURNING): of two racing requests only one gets the value.

    Returns the value (None when unknown or expired), or (value, also's value) when `also` is given (see put)."""
    table = LtiStoreEntry.__table__

    def build(dialect):
        return (delete(table).where(table.c.key == bindparam("key"), table.c.expires_at > bindparam("now"))
                .returning(table.c.value, *_extras(dialect, also, relaxed_commit)))

    cache_key = ("store-take", id(also) if also is not None else None, relaxed_commit)
    row = db.session.execute(prebuilt(cache_key, build), {"key": key, "now": utcnow()}).first()
    if also is None:
        return None if row is None else row[0]
    return (None, None) if row is None else (row[0], row[1])


def purge_expired() -> int:
    return db.session.execute(delete(LtiStoreEntry).where(LtiStoreEntry.expires_at <= utcnow())).rowcount


class DbLaunchDataStorage(LaunchDataStorage):
    """pylti1p3's storage interface over the lti_store table; no session-id cookie is needed."""

    _session_cookie_name = None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key):
        return get(self._prepare_key(key))

    def set_value(self, key, value, exp=None):
        put(self._prepare_key(key), value, exp or 86400)

    def check_value(self, key) -> bool:
        return get(self._prepare_key(key)) is not None


class DbSessionService(SessionService):
    """Launch data goes to the shared table. Nonces live in the state entry and are consumed with it."""

    def __init__(self, request, lifetime: int):
        super().__init__(request)
        self.set_data_storage(DbLaunchDataStorage())
        self._launch_data_lifetime = lifetime
