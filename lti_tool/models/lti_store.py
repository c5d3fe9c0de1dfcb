"""Short-lived LTI protocol data (state, nonce, launch data) shared by every server process."""
from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime


class LtiStoreEntry(db.Model):
    __tablename__ = "lti_store"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value = mapped_column(JSON)
    expires_at = mapped_column(UTCDateTime, nullable=False, index=True)
