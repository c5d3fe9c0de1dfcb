"""Write the append-only audit log. Services call record() for every change they make."""
from datetime import date, datetime

from sqlalchemy import insert

from ..extensions import db
from ..models import AuditEntry
from ..models.base import utcnow


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


def values(actor, action: str, entity, *, before: dict | None = None, after: dict | None = None,
           course_id: int | None = None) -> dict:
    """The columns of one audit row. `entity` must have its id already."""
    course = course_id
    if course is None and actor is not None and actor.course is not None:
        course = actor.course.id
    return {
        "registration_id": actor.registration_id if actor is not None else None,
        "course_id": course,
        "actor_id": actor.person.id if actor is not None else None,
        "actor_role": actor.role if actor is not None else "system",
        "action": action,
        "entity_type": entity.__tablename__,
        "entity_id": entity.id,
        "before": _plain(before) if before is not None else None,
        "after": _plain(after) if after is not None else None,
        "at": utcnow(),
    }


def record_many(rows: list[dict]) -> None:
    """Append many audit rows (from values()) in one statement: bulk writers such as an import."""
    if rows:
        db.session.execute(insert(AuditEntry), rows)


def record(actor, action: str, entity, *, before: dict | None = None, after: dict | None = None,
           course_id: int | None = None) -> AuditEntry:
    """Append one audit row. `actor` is an Actor (or None for the system); `entity` a flushed model."""
    if getattr(entity, "id", None) is None:
        db.session.flush()
    row = AuditEntry(**values(actor, action, entity, before=before, after=after, course_id=course_id))
    db.session.add(row)
    db.session.flush()
    return row
