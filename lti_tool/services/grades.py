"""Scores to the LMS gradebook (LTI Assignment and Grade Services) through an outbox.

Score rows are written in the transaction of the change that caused them; `deliver_due` posts them later with
retries and exponential back-off. Timestamps only ever increase per line item and person (Moodle answers 409
otherwise), and scores for one person and line item are delivered in order.
"""
import logging
from datetime import timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..lti.advantage import DbServiceConnector, PlatformError, post_score
from ..models import (
    AuditEntry,
    Competency,
    Course,
    Person,
    Registration,
    ResourceLink,
    ScoreOutbox,
    SignOff,
    SignOffRevocation,
    StoredStatus,
)
from ..models.advantage import FAILED, PENDING, SENT
from ..models.base import utcnow
from .status import ACHIEVED

log = logging.getLogger(__name__)
Correction = aliased(SignOff)  # another sign-off: a correction, or a renewal
MAX_ATTEMPTS = 12
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)


def course_graded_links(course_id: int) -> list[ResourceLink]:
    """The course's links with a gradebook column (AGS line item)."""
    return list(db.session.scalars(select(ResourceLink).where(
        ResourceLink.course_id == course_id, ResourceLink.lineitem_url.is_not(None)).order_by(ResourceLink.id)))


def counts_toward(link: ResourceLink, competency) -> bool:
    target = link.target or {}
    kind, value = target.get("type"), target.get("id")
    return (kind == "competency" and value == competency.id) or (
        kind == "department" and value in (competency.departments or []))


def graded_links(course_id: int, competency) -> list[ResourceLink]:
    """Links with a gradebook column that this competency counts toward."""
    return [link for link in course_graded_links(course_id) if counts_toward(link, competency)]


def _timestamp_after(lineitem_url: str, person_id: int, now):
    """Millisecond precision (what goes on the wire), strictly after the last score for this person and column."""
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    last = db.session.scalar(select(func.max(ScoreOutbox.score_timestamp)).where(
        ScoreOutbox.lineitem_url == lineitem_url, ScoreOutbox.person_id == person_id))
    if last is not None and last >= now:
        return last + timedelta(milliseconds=1)
    return now


def queue_score(course, person, link: ResourceLink, *, activity: str, grading: str, score_given=None,
                score_maximum=None, comment: str | None = None, now=None) -> ScoreOutbox:
    now = now or utcnow()
    ts = _timestamp_after(link.lineitem_url, person.id, now)
    payload = {"userId": person.sub, "activityProgress": activity, "gradingProgress": grading,
               "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    if score_given is not None:
        payload["scoreGiven"] = score_given
        payload["scoreMaximum"] = score_maximum
    if comment:
        payload["comment"] = comment
    row = ScoreOutbox(registration_id=course.registration_id, course_id=course.id, person_id=person.id,
                      lineitem_url=link.lineitem_url, payload=payload, score_timestamp=ts, next_attempt_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def deliver_due(now=None, limit: int = 100) -> dict:
    """Post due scores, one row per transaction (locked with SKIP LOCKED so several workers never send the same
    row twice). Returns counts {sent, retried, failed, waiting}."""
    now = now or utcnow()
    counts = {"sent": 0, "retried": 0, "failed": 0, "waiting": 0}
    skipped: set[int] = set()
    connectors = {}
    for _ in range(limit):
        query = select(ScoreOutbox).where(ScoreOutbox.status == PENDING, ScoreOutbox.next_attempt_at <= now)
        if skipped:
            query = query.where(ScoreOutbox.id.not_in(skipped))
        row = db.session.scalars(query.order_by(ScoreOutbox.id).limit(1).with_for_update(skip_locked=True)).first()
        if row is None:
            break
        earlier = db.session.scalar(select(func.count()).select_from(ScoreOutbox).where(
            ScoreOutbox.lineitem_url == row.lineitem_url, ScoreOutbox.person_id == row.person_id,
            ScoreOutbox.status == PENDING, ScoreOutbox.id < row.id))
        if earlier:
            # An older score for the same person and column is still waiting: keep the order.
            skipped.add(row.id)
            counts["waiting"] += 1
            db.session.commit()
            continue
        if row.registration_id not in connectors:
            connectors[row.registration_id] = DbServiceConnector(db.session.get(Registration, row.registration_id))
        row.attempts += 1
        try:
            post_score(connectors[row.registration_id], row.lineitem_url, row.payload)
        except PlatformError as exc:
            if exc.status == 409:
                # The LMS already holds a newer score for this person: nothing left to deliver.
                row.status, row.sent_at, row.last_error = SENT, now, "superseded (409)"
                counts["sent"] += 1
            elif row.attempts >= MAX_ATTEMPTS or (exc.status and 400 <= exc.status < 500 and exc.status != 429):
                row.status, row.last_error = FAILED, exc.message
                counts["failed"] += 1
            else:
                row.last_error = exc.message
                row.next_attempt_at = now + min(BASE_DELAY * (2 ** (row.attempts - 1)), MAX_DELAY)
                counts["retried"] += 1
                log.warning("Score %s not delivered (attempt %s): %s", row.id, row.attempts, exc.message)
            skipped.add(row.id)
        else:
            row.status, row.sent_at, row.last_error = SENT, now, None
            counts["sent"] += 1
        db.session.commit()
    return counts


# -- what the workflow sends ---------------------------------------------------------------------------------------
def _level_score(framework, rating_code):
    levels = [lvl.get("code") for lvl in framework.scale or []]
    if rating_code in levels:
        return levels.index(rating_code) + 1, len(levels)
    return None, len(levels) or 1


def on_review_requested(review_request, now=None) -> list[ScoreOutbox]:
    """A technician asked for review: Submitted / PendingManual on every graded link for the competency."""
    course, person = review_request.course, review_request.person
    return [queue_score(course, person, link, activity="Submitted", grading="PendingManual", now=now)
            for link in graded_links(course.id, review_request.competency)]


def on_signed_off(sign_off, now=None) -> list[ScoreOutbox]:
    """Completed / FullyGraded, the rating's position on the scale as the score, a comment naming the signer."""
    course = sign_off.review_request.course if sign_off.review_request else None
    course = course or db.session.get(Course, sign_off.course_id)
    person = db.session.get(Person, sign_off.person_id)
    return [_completed(course, person, sign_off, link, now) for link in graded_links(course.id, sign_off.competency)]


def _completed(course, person, sign_off, link, now=None) -> ScoreOutbox:
    given, maximum = _level_score(sign_off.competency.framework, sign_off.rating_code)
    comment = f"{sign_off.rating_label}. Signed off by {sign_off.signer_name} ({sign_off.signer_role})"
    if sign_off.expires_at:
        comment += f"; due for revalidation by {sign_off.expires_at.date().isoformat()}"
    return queue_score(course, person, link, activity="Completed", grading="FullyGraded", score_given=given,
                       score_maximum=maximum, comment=comment + ".", now=now)


def _latest_per_column(course, sign_offs, links) -> dict:
    """{(person_id, link): the latest of `sign_offs` (rows with id, person_id, competency_id, signed_at) that
    counts toward the link's column}: what the column would show after signing them off one by one."""
    competencies = {c.id: c for c in db.session.scalars(select(Competency).where(
        Competency.id.in_({row.competency_id for row in sign_offs})))}
    latest: dict = {}
    for row in sign_offs:
        for link in links:
            if counts_toward(link, competencies[row.competency_id]):
                key = (row.person_id, link)
                if key not in latest or (row.signed_at, row.id) > (latest[key].signed_at, latest[key].id):
                    latest[key] = row
    return latest


def on_imported(course, sign_off_ids, now=None) -> list[ScoreOutbox]:
    """Imported prior sign-offs, scored like any sign-off but once per (person, line item): the latest one that
    counts toward the column. Only people who have launched the tool are scored (the LMS knows them by that
    sub; someone imported "not launched yet" is scored when their first launch claims the record, see
    launches.claim_imported). A latest sign-off that has already expired is left to queue_expiries, which
    notes it and sends the column back to pending. `sign_off_ids`: ids or a select of them."""
    links = course_graded_links(course.id)
    if not links:
        return []
    now = now or utcnow()
    rows = db.session.execute(select(SignOff.id, SignOff.person_id, SignOff.competency_id, SignOff.signed_at)
                              .join(Person, Person.id == SignOff.person_id)
                              .where(SignOff.id.in_(sign_off_ids), Person.last_launch_at.is_not(None))).all()
    queued = []
    for (person_id, link), row in sorted(_latest_per_column(course, rows, links).items(),
                                         key=lambda item: (item[0][0], item[0][1].id)):
        sign_off = db.session.get(SignOff, row.id)
        if sign_off.expires_at is not None and sign_off.expires_at <= now:
            continue
        queued.append(_completed(course, db.session.get(Person, person_id), sign_off, link, now))
    return queued


def on_import_undone(course, pairs, reason: str, now=None) -> list[ScoreOutbox]:
    """An import was undone: for each (person, line item) its sign-offs counted toward, the column shows what
    the person still holds (their current sign-off sent again), or goes back to pending with `reason`, as a
    revocation does. `pairs`: (person_id, competency_id) of the removed sign-offs, read from the stored status
    once it is settled; people who never launched were never scored and are skipped."""
    links = course_graded_links(course.id)
    if not links or not pairs:
        return []
    people = {p.id: p for p in db.session.scalars(select(Person).where(
        Person.id.in_({p for p, _ in pairs}), Person.last_launch_at.is_not(None)))}
    competencies = {c.id: c for c in db.session.scalars(select(Competency).where(
        Competency.id.in_({c for _, c in pairs})))}
    now = now or utcnow()
    held = {}
    if people:
        for person_id, competency_id, sign_off_id in db.session.execute(select(
                StoredStatus.person_id, StoredStatus.competency_id, StoredStatus.sign_off_id).where(
                StoredStatus.person_id.in_(list(people)), StoredStatus.competency_id.in_(list(competencies)),
                StoredStatus.state == ACHIEVED, StoredStatus.sign_off_id.is_not(None),
                (StoredStatus.expires_at.is_(None)) | (StoredStatus.expires_at > now))):
            held[(person_id, competency_id)] = sign_off_id
    columns: dict = {}  # (person_id, link id) -> [link, competency, sign-off still held or None]
    for person_id, competency_id in sorted(pairs):
        if person_id not in people:
            continue
        for link in links:
            if counts_toward(link, competencies[competency_id]):
                column = columns.setdefault((person_id, link.id), [link, competencies[competency_id], None])
                column[2] = column[2] or held.get((person_id, competency_id))
    queued = []
    for (person_id, _), (link, competency, sign_off_id) in sorted(columns.items(), key=lambda item: item[0]):
        person = people[person_id]
        if sign_off_id is not None:
            queued.append(_completed(course, person, db.session.get(SignOff, sign_off_id), link, now))
        else:
            queued.append(queue_score(course, person, link, activity="InProgress", grading="Pending", score_given=0,
                                      score_maximum=_level_score(competency.framework, None)[1], comment=reason,
                                      now=now))
    return queued


def on_lapsed(sign_off, reason: str, now=None) -> list[ScoreOutbox]:
    """A sign-off was revoked or expired: the column goes back to pending, with the reason."""
    course = db.session.get(Course, sign_off.course_id)
    person = db.session.get(Person, sign_off.person_id)
    return [queue_score(course, person, link, activity="InProgress", grading="Pending", score_given=0,
                        score_maximum=_level_score(sign_off.competency.framework, None)[1], comment=reason, now=now)
            for link in graded_links(course.id, sign_off.competency)]


def queue_expiries(now=None) -> int:
    """Find sign-offs that expired since the last run: note each in the audit log and, unless a newer sign-off
    renewed the competency, send the gradebook back to pending. Returns how many expiries were noted."""
    now = now or utcnow()
    already = select(AuditEntry.id).where(AuditEntry.action == "sign_off.expired",
                                          AuditEntry.entity_type == "sign_offs", AuditEntry.entity_id == SignOff.id)
    revoked = select(SignOffRevocation.id).where(SignOffRevocation.sign_off_id == SignOff.id)
    corrected = select(Correction.id).where(Correction.corrects_id == SignOff.id)
    expired = db.session.scalars(select(SignOff).where(
        SignOff.expires_at.is_not(None), SignOff.expires_at <= now, SignOff.proficient.is_(True),
        ~exists(already), ~exists(revoked), ~exists(corrected)).order_by(SignOff.id)).all()
    for row in expired:
        renewed = db.session.scalar(select(exists().where(
            Correction.person_id == row.person_id, Correction.competency_id == row.competency_id,
            Correction.signed_at > row.signed_at)))
        db.session.add(AuditEntry(registration_id=row.person.registration_id, course_id=row.course_id,
                                  actor_role="system", action="sign_off.expired", entity_type="sign_offs",
                                  entity_id=row.id, after={"expires_at": row.expires_at.isoformat(),
                                                           "renewed": bool(renewed)}))
        if not renewed:
            on_lapsed(row, f"Expired on {row.expires_at.date().isoformat()}: revalidation is due.", now)
    db.session.flush()
    return len(expired)
