"""Extensions, created unbound and bound in create_app."""
import time

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Named constraints so that Alembic can alter them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

# A pooled connection that was in use within the last few seconds is handed out as it is; an older one is checked
# with SELECT 1 first. (pool_pre_ping checks every time: one more database round trip on every request, about a
# tenth of a launch.) A connection that broke while busy fails one request; SQLAlchemy then replaces the whole pool.
IDLE_PING_SECONDS = 10


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi_connection, record):
    record.info["checked_in_at"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, record, proxy):
    since = record.info.get("checked_in_at")
    if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()  # leave no transaction open behind the pool's back
    except Exception as exc:  # noqa: BLE001 - any failure means: this connection is gone
        raise DisconnectionError("idle connection failed its ping") from exc
