"""Write the append-only audit log. Services call record() for every change they make."""
from datetime import date, datetime

from ..extensions import db
from ..models import AuditEntry


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def snapshot(obj, fields) -> dict:
    """The named attributes of a model as JSON-safe values, for `before`/`after`."""
    return {f: _plain(getattr(obj, f)) for f in fields}


def record(actor, action: str, entity, *, before: dict | None = None, after: dict | None = None,
           course_id: int | None = None) -> AuditEntry:
    """Append one audit row. `actor` is an Actor (or None for the system); `entity` a flushed model."""
    if getattr(entity, "id", None) is None:
        db.session.flush()
    course = course_id
    if course is None and actor is not None and actor.course is not None:
        course = actor.course.id
    entry = AuditEntry(
        registration_id=actor.registration_id if actor is not None else None,
        course_id=course,
        actor_id=actor.person.id if actor is not None else None,
        actor_role=actor.role if actor is not None else "system",
        action=action,
        entity_type=entity.__tablename__,
        entity_id=entity.id,
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
