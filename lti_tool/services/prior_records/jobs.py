"""The import as a background job: a checked file waits in the attachment storage under a "checked" batch; the
administrator's Import queues it; a queue worker ("import_records" in lti_tool.tasks) claims it with a
conditional update and writes it in chunks, committing each with its progress and a heartbeat.

Why committed chunks and not one transaction: progress has to be readable by the page's polls (another
connection sees only what is committed), and a worker that dies after 4,000 of 5,000 rows should not make the
next one start over. The chunks are idempotent: every record carries its natural key, so the next attempt's plan
finds the rows already written "already imported" and writes the rest. Until the last chunk is written the
batch says running (and the page says how far it got); only then does it say applied. An import that stops with
an error removes what it had written (undo) and says why; one whose worker died is claimed again by the sweep,
up to MAX_ATTEMPTS times, like a transcript export.
"""
import logging
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, exists, or_, select, update

from ...extensions import db
from ...models import ImportBatch, ImportedRecord, Membership
from ...models.imports import APPLIED, CHECKED, FAILED, QUEUED, RUNNING, UNDONE
from .. import DomainError, NotFound, attachments
from ..actors import Actor
from .batches import undo
from .importer import Options, Plan, run

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
CHECKED_FILES_KEPT = timedelta(hours=24)


def stage(actor, plan: Plan, data: bytes, options: Options) -> ImportBatch:
    """After a clean dry run: keep the file and what it was checked with, for the Import button."""
    key = attachments.save_in_transaction(data)
    batch = ImportBatch(registration_id=actor.registration_id, course_id=actor.course.id, actor_id=actor.person.id,
                        kind=plan.kind, filename=(plan.filename or "upload")[:255], status=CHECKED,
                        storage_key=key, options=dict(options.__dict__), total=len(plan.to_create), summary={})
    db.session.add(batch)
    db.session.flush()
    return batch


def batch_for(actor, batch_id: int) -> ImportBatch:
    """A batch of the actor's tenant (administrators only); anything else is not found."""
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None or batch.registration_id != actor.registration_id or not actor.is_admin:
        raise NotFound(_("No such import."))
    return batch


def queue(actor, batch_id: int) -> ImportBatch:
    """The Import button: a checked batch of this administrator becomes queued (once: a second press finds it
    queued already). The caller queues the task after the commit."""
    batch = batch_for(actor, batch_id)
    if batch.actor_id != actor.person.id:
        raise DomainError(_("Check the file again before importing it."), code="not_yours")
    if batch.status == CHECKED and (batch.storage_key is None
                                    or not attachments.storage().exists(batch.storage_key)):
        raise DomainError(_("This file has expired; check it again."), status=409, code="expired")
    db.session.execute(update(ImportBatch).where(ImportBatch.id == batch.id, ImportBatch.status == CHECKED)
                       .values(status=QUEUED, created_at=datetime.now(UTC))
                       .execution_options(synchronize_session=False))
    db.session.refresh(batch)
    return batch


def _stale_after() -> timedelta:
    return timedelta(seconds=current_app.config["EXPORT_STALE_SECONDS"])


def progress(batch: ImportBatch, now: datetime | None = None) -> dict:
    """What the progress page and its JSON say."""
    now = now or datetime.now(UTC)
    state = batch.status
    if state == RUNNING and batch.heartbeat_at is not None and now - batch.heartbeat_at > _stale_after():
        state = "resuming"  # its worker stopped; the sweep gives the import to another one
    finished = state not in (QUEUED, RUNNING, "resuming")
    percent = 100 if state == APPLIED else (int(100 * batch.done_count / batch.total) if batch.total else 0)
    return {"id": batch.id, "status": state, "done": batch.done_count, "total": batch.total, "percent": percent,
            "error": batch.error, "finished": finished, "summary": batch.summary or {},
            "finished_at": batch.finished_at.isoformat() if batch.finished_at else None}


def _claimable(now: datetime):
    return (ImportBatch.status == QUEUED) | (
        (ImportBatch.status == RUNNING) & or_(ImportBatch.heartbeat_at.is_(None),
                                              ImportBatch.heartbeat_at < now - _stale_after()))


def claim(batch_id: int, now: datetime | None = None) -> bool:
    """Take the import for this worker (queued, or running with a worker that stopped): one conditional update,
    so of two workers handed the same import one gets it. Committed at once."""
    now = now or datetime.now(UTC)
    claimed = db.session.execute(
        update(ImportBatch).where(ImportBatch.id == batch_id, _claimable(now), ImportBatch.attempts < MAX_ATTEMPTS)
        .values(status=RUNNING, started_at=now, heartbeat_at=now, attempts=ImportBatch.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    return claimed


def unfinished(now: datetime | None = None) -> list[int]:
    """Imports the sweep must queue again: never picked up, or their worker stopped. One that has used up its
    attempts is marked failed (what it wrote stays, and can be undone from the page)."""
    now = now or datetime.now(UTC)
    rows = db.session.execute(select(ImportBatch.id, ImportBatch.attempts).where(_claimable(now))).all()
    gave_up = [batch_id for batch_id, attempts in rows if attempts >= MAX_ATTEMPTS]
    if gave_up:
        db.session.execute(update(ImportBatch).where(ImportBatch.id.in_(gave_up)).values(
            status=FAILED, finished_at=now,
            error="The import stopped several times. Undo what it wrote, then check the file and import it again.")
            .execution_options(synchronize_session=False))
        db.session.flush()
    return [batch_id for batch_id, attempts in rows if attempts < MAX_ATTEMPTS]


def _actor(batch: ImportBatch) -> Actor:
    membership = db.session.scalars(select(Membership).where(Membership.person_id == batch.actor_id,
                                                             Membership.course_id == batch.course_id)).first()
    return Actor(person=batch.actor, course=batch.course, membership=membership)


def apply(batch_id: int) -> bool:
    """The task: write a queued import (or finish one whose worker died). False when another worker has it or
    it is finished."""
    if not claim(batch_id):
        return False
    session = db.session()
    # Each chunk is committed; the plan's people and rows stay usable across commits without being reloaded.
    session.expire_on_commit = False
    try:
        batch = db.session.get(ImportBatch, batch_id)
        key = batch.storage_key
        before = batch.done_count if batch.attempts > 1 else 0

        def heartbeat(done: int, total: int):
            batch.done_count, batch.heartbeat_at = min(before + done, batch.total), datetime.now(UTC)
            db.session.commit()

        try:
            data = _checked_file(key)
            run(_actor(batch), batch.course_id, batch.filename, data, Options(**batch.options), progress=heartbeat,
                batch=batch)
            batch.finished_at, batch.storage_key = datetime.now(UTC), None
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - any failure is reported on the page, never left running
            db.session.rollback()
            _failed(batch_id, exc)
            return True
        _delete_file(key)
        return True
    finally:
        session.expire_on_commit = True


def _checked_file(key: str | None) -> bytes:
    try:
        with attachments.storage().open(key) as fh:
            return fh.read()
    except (OSError, TypeError, ValueError) as exc:
        raise DomainError(_("The checked file is no longer stored; choose it again and check it."),
                          code="file_gone") from exc


def _failed(batch_id: int, exc: Exception) -> None:
    """Record why the import stopped, and remove what it had written (an import is all or nothing for the
    people who read the records)."""
    if isinstance(exc, DomainError):
        reason = exc.message
    else:
        current_app.logger.exception("Import %s failed", batch_id)
        reason = _("The import stopped: %(error)s", error=str(exc)[:500])
    batch = db.session.get(ImportBatch, batch_id)
    batch.status = FAILED
    db.session.flush()
    removed = False
    if db.session.scalar(select(exists().where(ImportedRecord.batch_id == batch_id))):
        try:
            undo(_actor(batch), batch_id)
            removed = True
        except Exception:  # noqa: BLE001 - then what it wrote stays, and the page offers undo
            db.session.rollback()
            batch = db.session.get(ImportBatch, batch_id)
            log.exception("Could not remove what failed import %s wrote", batch_id)
    key = batch.storage_key
    batch.status, batch.finished_at, batch.storage_key = FAILED, datetime.now(UTC), None
    batch.error = reason + (" " + _("What it had written was removed.") if removed else "")
    db.session.commit()
    _delete_file(key)


def _delete_file(key: str | None) -> None:
    if key:
        try:
            attachments.storage().delete(key)
        except OSError:
            log.warning("Could not delete checked import file %s; the purge job tries again", key)


def purge_checked(now: datetime | None = None) -> int:
    """Checked files nobody imported within CHECKED_FILES_KEPT: their files and batches go (the import form's
    token expires after an hour anyway), as do files a finished import left behind. Returns files removed."""
    now = now or datetime.now(UTC)
    old = (ImportBatch.status == CHECKED) & (ImportBatch.created_at < now - CHECKED_FILES_KEPT)
    finished = ImportBatch.status.in_((APPLIED, FAILED, UNDONE))
    rows = db.session.execute(select(ImportBatch.id, ImportBatch.storage_key, ImportBatch.status).where(
        ImportBatch.storage_key.is_not(None), old | finished)).all()
    for row in rows:
        _delete_file(row.storage_key)
    abandoned = [batch_id for batch_id, _, state in rows if state == CHECKED]
    if abandoned:
        db.session.execute(delete(ImportBatch).where(ImportBatch.id.in_(abandoned)))
    left = [batch_id for batch_id, _, state in rows if state != CHECKED]
    if left:
        db.session.execute(update(ImportBatch).where(ImportBatch.id.in_(left)).values(storage_key=None)
                           .execution_options(synchronize_session=False))
    db.session.flush()
    return len(rows)
