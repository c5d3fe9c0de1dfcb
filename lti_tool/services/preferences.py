"""Each person's e-mail choices, and the signed unsubscribe links that change them without logging in."""
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from ..extensions import db
from ..models import NotificationPreference, Person
from ..models.notifications import CATEGORIES, DIGEST, DIGEST_CHOICES
from . import DomainError, NotFound

ALL = "all"


def get(person_id: int) -> NotificationPreference:
    """The stored choices, or the defaults (not added to the session)."""
    row = db.session.get(NotificationPreference, person_id)
    return row or NotificationPreference(person_id=person_id, reminders=True, review_updates=True, digest="weekly")


def for_people(person_ids) -> dict:
    """{person_id: NotificationPreference} for those who changed anything (one query). `person_ids`: ids or a
    select of ids."""
    ids = person_ids if hasattr(person_ids, "subquery") else list(person_ids)
    return {p.person_id: p for p in db.session.scalars(
        select(NotificationPreference).where(NotificationPreference.person_id.in_(ids)))}


def wants(pref: NotificationPreference | None, category: str) -> bool:
    if pref is None:
        return True
    if category == DIGEST:
        return pref.digest != "off"
    return bool(getattr(pref, category))


def _row(person_id: int) -> NotificationPreference:
    row = db.session.get(NotificationPreference, person_id)
    if row is None:
        row = NotificationPreference(person_id=person_id, reminders=True, review_updates=True, digest="weekly")
        db.session.add(row)
    return row


def update(person, *, reminders: bool, review_updates: bool, digest: str) -> NotificationPreference:
    if digest not in DIGEST_CHOICES:
        raise DomainError(_("Choose daily, weekly or off."), fields={"digest": "Choose daily, weekly or off."})
    row = _row(person.id)
    row.reminders, row.review_updates, row.digest = bool(reminders), bool(review_updates), digest
    db.session.flush()
    return row


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="unsubscribe-v1")


def unsubscribe_token(person_id: int, category: str) -> str:
    return _serializer().dumps({"p": person_id, "c": category})


def read_token(token: str) -> tuple[Person, str]:
    """(person, category) of a valid unsubscribe link; anything else is not found."""
    try:
        data = _serializer().loads(token)
        person = db.session.get(Person, int(data["p"]))
        category = data["c"]
    except (BadSignature, KeyError, TypeError, ValueError):
        raise NotFound(_("This unsubscribe link is not valid.")) from None
    if person is None or category not in (*CATEGORIES, ALL):
        raise NotFound(_("This unsubscribe link is not valid."))
    return person, category


def unsubscribe(person_id: int, category: str) -> NotificationPreference:
    row = _row(person_id)
    if category in (DIGEST, ALL):
        row.digest = "off"
    if category != DIGEST:
        for name in (CATEGORIES[:2] if category == ALL else (category,)):
            setattr(row, name, False)
    db.session.flush()
    return row
