"""A key/value store in the database for state, nonces and launch data.

Every server process sees the same rows, so a login served by one gunicorn worker and the launch
served by another agree; nothing large goes into a cookie.
"""
from datetime import timedelta

from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.session import SessionService
from sqlalchemy import delete, select

from ..extensions import db
from ..models import LtiStoreEntry
from ..models.base import utcnow


def put(key: str, value, ttl_seconds: int) -> None:
    entry = db.session.get(LtiStoreEntry, key)
    expires = utcnow() + timedelta(seconds=ttl_seconds)
    if entry is None:
        db.session.add(LtiStoreEntry(key=key, value=value, expires_at=expires))
    else:
        entry.value, entry.expires_at = value, expires
    db.session.flush()


def get(key: str):
    entry = db.session.scalars(
        select(LtiStoreEntry).where(LtiStoreEntry.key == key, LtiStoreEntry.expires_at > utcnow())
    ).first()
    return None if entry is None else entry.value


def take(key: str):
    """Read and delete in one step; of two racing requests only one gets the value (single use)."""
    value = get(key)
    if value is None:
        return None
    result = db.session.execute(delete(LtiStoreEntry).where(LtiStoreEntry.key == key))
    if result.rowcount != 1:
        return None
    return value


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
    """Nonces are consumed on first use, atomically, so a replayed id_token is refused."""

    def __init__(self, request, lifetime: int):
        super().__init__(request)
        self.set_data_storage(DbLaunchDataStorage())
        self._launch_data_lifetime = lifetime

    def check_nonce(self, nonce: str) -> bool:
        key = self.data_storage._prepare_key(self._get_key("nonce", nonce))
        return take(key) is not None
