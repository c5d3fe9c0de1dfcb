"""Undoing an import as a whole, and the list of imports: an import can be undone until something builds on its
records (a revocation or correction of an imported sign-off, a review request on or an edit of imported evidence,
a launch or other records of a person it added); then its records are removed and the undo is audited."""
from datetime import UTC, datetime

from flask_babel import gettext as _
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import (
    Evidence,
    EvidenceCompetency,
    ImportBatch,
    ImportedRecord,
    Membership,
    Person,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
    StoredStatus,
)
from ...models.imports import APPLIED, CHECKED, FAILED, UNDONE
from ...models.people import IMPORTED_SUB_PREFIX
from .. import DomainError, Forbidden, NotFound, audit, grades, status_store


def record_ids(batch_id: int, entity: str):
    return select(ImportedRecord.entity_id).where(ImportedRecord.batch_id == batch_id,
                                                  ImportedRecord.entity_type == entity)


def blockers(batch: ImportBatch) -> list[str]:
    """What builds on a batch's records (so it can no longer be undone), in plain words."""
    sign_offs, evidence, people = (record_ids(batch.id, name) for name in ("sign_offs", "evidence", "people"))
    checks = [
        (exists().where(SignOffRevocation.sign_off_id.in_(sign_offs)), "an imported sign-off was revoked"),
        (exists().where(SignOff.corrects_id.in_(sign_offs)), "an imported sign-off was corrected"),
        (exists().where(ReviewRequest.evidence_id.in_(evidence)), "imported evidence was sent for review"),
        (exists().where(Evidence.id.in_(evidence), Evidence.revision > 1), "imported evidence was edited"),
        (exists().where(Person.id.in_(people), Person.last_launch_at.is_not(None)),
         "a person the import added has since opened the tool"),
        (exists().where(Evidence.person_id.in_(people), Evidence.id.not_in(evidence)),
         "a person the import added has other records"),
        (exists().where(SignOff.person_id.in_(people), SignOff.id.not_in(sign_offs)),
         "a person the import added has other sign-offs"),
    ]
    return [text for clause, text in checks if db.session.scalar(select(clause))]


def undo(actor, batch_id: int, now: datetime | None = None) -> ImportBatch:
    """Remove everything a batch created (sign-offs, evidence, memberships, people), if nothing builds on it."""
    if not actor.is_admin:
        raise Forbidden(_("Undoing an import is for the LMS administrator."))
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None or batch.registration_id != actor.registration_id:
        raise NotFound(_("No such import."))
    if batch.status == UNDONE:
        raise DomainError(_("This import was already undone."), status=409, code="already_undone")
    if batch.status not in (APPLIED, FAILED):
        raise DomainError(_("This import is still running; undo it once it has finished."), status=409,
                          code="import_running")
    reasons = blockers(batch)
    if reasons:
        raise DomainError("This import can no longer be undone: " + "; ".join(reasons) + ".", status=409,
                          code="import_in_use")
    # The stored status of every pair the import touched is dropped now and judged again at the next flush
    # (status_store): the deletes below bypass the unit of work its events watch.
    signed_pairs = set(db.session.execute(select(SignOff.person_id, SignOff.competency_id)
                                          .where(SignOff.id.in_(record_ids(batch.id, "sign_offs")))).all())
    pairs = set(signed_pairs)
    pairs |= set(db.session.execute(select(Evidence.person_id, EvidenceCompetency.competency_id)
                                    .join(EvidenceCompetency, EvidenceCompetency.evidence_id == Evidence.id)
                                    .where(Evidence.id.in_(record_ids(batch.id, "evidence")))).all())
    created_people = set(db.session.scalars(record_ids(batch.id, "people")))
    for person_id, competency_id in pairs:
        db.session.execute(delete(StoredStatus).where(StoredStatus.person_id == person_id,
                                                      StoredStatus.competency_id == competency_id))
    db.session.execute(delete(StoredStatus).where(StoredStatus.person_id.in_(created_people)))
    counts = {}
    for entity, model in (("sign_offs", SignOff), ("evidence", Evidence), ("memberships", Membership),
                          ("people", Person)):
        ids = list(db.session.scalars(record_ids(batch.id, entity)))
        if entity == "evidence":
            db.session.execute(delete(EvidenceCompetency).where(EvidenceCompetency.evidence_id.in_(ids)))
        for start in range(0, len(ids), 900):
            db.session.execute(delete(model).where(model.id.in_(ids[start:start + 900]))
                               .execution_options(synchronize_session=False))
        counts[entity] = len(ids)
    db.session.execute(delete(ImportedRecord).where(ImportedRecord.batch_id == batch.id))
    for person_id, competency_id in pairs - {p for p in pairs if p[0] in created_people}:
        status_store.touch(person_id, [competency_id])
    scored = batch.status == APPLIED
    batch.status, batch.undone_at = UNDONE, now or datetime.now(UTC)
    db.session.flush()  # the stored status of the pairs is settled here, before the gradebook reads it
    if scored:  # a failed import never reached the gradebook (its scores are queued with its last chunk)
        grades.on_import_undone(batch.course, signed_pairs - {p for p in signed_pairs if p[0] in created_people},
                                f"Import of {batch.filename} undone: the prior record no longer counts.")
    audit.record(actor, "import.undone", batch, after={"removed": counts, "filename": batch.filename},
                 course_id=batch.course_id)
    db.session.expire_all()
    return batch


def recent(actor, limit: int = 50) -> list[ImportBatch]:
    if not actor.is_admin:
        raise Forbidden(_("Importing prior records is for the LMS administrator."))
    return list(db.session.scalars(select(ImportBatch).where(ImportBatch.registration_id == actor.registration_id,
                                                             ImportBatch.status != CHECKED)
                                   .order_by(ImportBatch.created_at.desc(), ImportBatch.id.desc()).limit(limit)))


def unmatched_people(actor, limit: int = 50) -> list[tuple[Person, int]]:
    """People an import created "not launched yet" whose e-mail someone has since launched with, without the
    first launch claiming them (it matched more than one imported person, so nothing was merged): (imported
    person, how many launched people share the e-mail), for the administrator to sort out."""
    if not actor.is_admin:
        raise Forbidden("Importing prior records is for the LMS administrator.")
    launched = aliased(Person)
    shared = (select(func.count(launched.id)).where(
        launched.registration_id == Person.registration_id, launched.last_launch_at.is_not(None),
        func.lower(launched.email) == func.lower(Person.email)).scalar_subquery())
    rows = db.session.execute(select(Person, shared).where(
        Person.registration_id == actor.registration_id, Person.sub.startswith(IMPORTED_SUB_PREFIX),
        Person.last_launch_at.is_(None), shared > 0).order_by(Person.email, Person.id).limit(limit)).all()
    return [(person, count) for person, count in rows]
