"""A key/value store in the database for state, nonces and launch data.

Every server process sees the same rows, so a login served by one gunicorn worker and the launch
served by another agree; nothing large goes into a cookie. Each operation is one statement.
"""
from datetime import timedelta

from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.session import SessionService
from sqlalchemy import delete, select

from ..extensions import db
from ..models import LtiStoreEntry
from ..models.base import utcnow
from ..models.upsert import insert


def autocommit() -> None:
    """Run this request's statements without a transaction. For the login, whose one write is its state row: one
    round trip instead of BEGIN, INSERT and COMMIT. Must come before the request's first query."""
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def put(key: str, value, ttl_seconds: int, *, also=None):
    """Store (or replace) a value. `also`: a scalar SQL expression read in the same statement, and returned."""
    stmt = insert(LtiStoreEntry).values(key=key, value=value, expires_at=utcnow() + timedelta(seconds=ttl_seconds))
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
        "value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at})
    if also is None:
        db.session.execute(stmt)
        return None
    return db.session.execute(stmt.returning(also)).scalar_one()


def get(key: str):
    entry = db.session.scalars(
        select(LtiStoreEntry).where(LtiStoreEntry.key == key, LtiStoreEntry.expires_at > utcnow())
    ).first()
    return None if entry is None else entry.value


def take(key: str, *, also=None):
    """Read and delete in one statement (DELETE ... RETURNING): of two racing requests only one gets the value.

    Returns the value (None when unknown or expired), or (value, also's value) when `also` is given."""
    stmt = (delete(LtiStoreEntry).where(LtiStoreEntry.key == key, LtiStoreEntry.expires_at > utcnow())
            .returning(LtiStoreEntry.value, *([also] if also is not None else []))
            .execution_options(synchronize_session=False))
    row = db.session.execute(stmt).first()
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
