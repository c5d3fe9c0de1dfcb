"""Competency status per technician: not started, in progress, awaiting review, achieved, due for revalidation,
expired.

Rules (issue 3, item 6):
- Only proficient, unrevoked, uncorrected sign-offs achieve. A correction (a new SignOff with `corrects_id`)
  supersedes the one it corrects from the moment it is signed, whatever its own rating; a revocation removes a
  sign-off from the moment it is revoked. Corrections that are later revoked do not reinstate the original (a
  correction says the original was wrong): the competency then needs a new sign-off.
- An achieved sign-off is valid until its `expires_at` (signed_at + the competency's revalidation_months, stored
  at signing so that later edits to the framework do not rewrite history). A newer sign-off renews it. Within
  the tenant's `revalidation_warning_days` before expiry the status is "due_for_revalidation".
- Competence comes first: a technician whose sign-off expired is "expired" even while a renewal awaits review
  (the `awaiting_review` and `in_progress` flags say so). Without any proficient sign-off ever: an open review
  request gives "awaiting_review"; draft or returned evidence, or a non-proficient rating, gives "in_progress".
- Status belongs to the person, not the course: a sign-off earned through one course of the tenant counts in
  another course that uses the same competency. The course chooses which competencies are listed.

Time travel: every function takes `as_of` (aware UTC datetime, default now). Sign-offs, revocations and
corrections are judged exactly as they stood at `as_of`. Requests are open at `as_of` if requested by then and
resolved after (or never); evidence counts as being drafted at `as_of` if created by then and, today, a draft,
returned, or first submitted after `as_of` (a resubmission moves submitted_at, so the past of evidence that
went back and forth is approximate).

The computation runs a fixed number of queries whatever the number of people and competencies.
"""
import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import (
    Competency,
    Course,
    Evidence,
    EvidenceCompetency,
    Framework,
    Membership,
    Registration,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
)
from ..models.evidence import DRAFT, RETURNED
from ..models.reviews import OPEN
from . import Forbidden, NotFound, frameworks, scope, settings

NOT_STARTED = "not_started"
IN_PROGRESS = "in_progress"
AWAITING_REVIEW = "awaiting_review"
ACHIEVED = "achieved"
DUE_FOR_REVALIDATION = "due_for_revalidation"
EXPIRED = "expired"
STATUSES = (NOT_STARTED, IN_PROGRESS, AWAITING_REVIEW, ACHIEVED, DUE_FOR_REVALIDATION, EXPIRED)
LABELS = {
    NOT_STARTED: "Not started",
    IN_PROGRESS: "In progress",
    AWAITING_REVIEW: "Awaiting review",
    ACHIEVED: "Achieved",
    DUE_FOR_REVALIDATION: "Due for revalidation",
    EXPIRED: "Expired",
}
# Statuses in which the technician currently holds the competency.
HELD = frozenset({ACHIEVED, DUE_FOR_REVALIDATION})


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return now_utc()
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
    return moment


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb), like
    dateutil's relativedelta, without the dependency."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def expiry_for(competency: Competency, assessed_at: datetime, proficient: bool = True) -> datetime | None:
    """When an attestation of `competency` made at `assessed_at` stops counting (None: never)."""
    if not proficient or not competency.revalidation_months:
        return None
    return add_months(assessed_at, competency.revalidation_months)


@dataclass(frozen=True)
class CompetencyStatus:
    competency_id: int
    status: str
    # The sign-off that makes the competency achieved / due / expired (the one valid longest).
    sign_off_id: int | None = None
    achieved_at: datetime | None = None
    expires_at: datetime | None = None
    awaiting_review: bool = False
    in_progress: bool = False
    open_request_ids: tuple = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return LABELS[self.status]

    @property
    def held(self) -> bool:
        return self.status in HELD


def course_competencies(course: Course, competency_ids=None) -> list[Competency]:
    """The competencies of the frameworks a course uses (one query), in framework order."""
    query = (
        select(Competency)
        .join(Framework, Framework.id == Competency.framework_id)
        .where(
            Competency.framework_id.in_(frameworks.used_framework_ids(course)),
            # A course can only use frameworks its tenant can see; belt and braces against a bad link row.
            (Framework.registration_id.is_(None)) | (Framework.registration_id == course.registration_id),
        )
        .order_by(Competency.framework_id, Competency.position, Competency.id)
    )
    if competency_ids is not None:
        query = query.where(Competency.id.in_(list(competency_ids)))
    return list(db.session.scalars(query))


def _judge(competency_id, sign_offs, open_requests, drafting, as_of, warning) -> CompetencyStatus:
    superseded = {s.corrects_id for s, _ in sign_offs if s.corrects_id is not None}
    effective = [
        s for s, revocation in sign_offs
        if s.id not in superseded and (revocation is None or revocation.revoked_at > as_of)
    ]
    proficient = [s for s in effective if s.proficient]
    in_progress = drafting or any(not s.proficient for s in effective)
    awaiting = bool(open_requests)
    common = {"awaiting_review": awaiting, "in_progress": in_progress,
              "open_request_ids": tuple(sorted(open_requests))}
    if proficient:
        # The attestation valid longest wins; never-expiring beats any date; ties go to the newest.
        best = max(proficient, key=lambda s: (s.expires_at is None, s.expires_at or s.signed_at, s.signed_at))
        held = {"sign_off_id": best.id, "achieved_at": best.signed_at, "expires_at": best.expires_at}
        if best.expires_at is None or as_of < best.expires_at - warning:
            return CompetencyStatus(competency_id, ACHIEVED, **held, **common)
        if as_of < best.expires_at:
            return CompetencyStatus(competency_id, DUE_FOR_REVALIDATION, **held, **common)
        return CompetencyStatus(competency_id, EXPIRED, **held, **common)
    if awaiting:
        return CompetencyStatus(competency_id, AWAITING_REVIEW, **common)
    if in_progress:
        return CompetencyStatus(competency_id, IN_PROGRESS, **common)
    return CompetencyStatus(competency_id, NOT_STARTED, **common)


def open_at(as_of: datetime):
    """Where-clause: a review request that was open at `as_of`."""
    still_open = (ReviewRequest.status == OPEN) | (ReviewRequest.resolved_at > as_of)
    return (ReviewRequest.requested_at <= as_of) & still_open


def open_requests_at(people, competency_ids, as_of: datetime) -> dict:
    """{(person_id, competency_id): [request ids]} open at `as_of`. `people`: ids, or a select of ids."""
    found: dict = {}
    for request_id, person_id, competency_id in db.session.execute(
        select(ReviewRequest.id, ReviewRequest.person_id, ReviewRequest.competency_id).where(
            ReviewRequest.person_id.in_(people), ReviewRequest.competency_id.in_(competency_ids), open_at(as_of))
    ):
        found.setdefault((person_id, competency_id), []).append(request_id)
    return found


def drafting_at(people, competency_ids, as_of: datetime) -> set:
    """{(person_id, competency_id)} with evidence being drafted or revised at `as_of`."""
    return {tuple(row) for row in db.session.execute(
        select(Evidence.person_id, EvidenceCompetency.competency_id)
        .join(EvidenceCompetency, EvidenceCompetency.evidence_id == Evidence.id)
        .where(Evidence.person_id.in_(people), EvidenceCompetency.competency_id.in_(competency_ids),
               Evidence.created_at <= as_of,
               Evidence.status.in_((DRAFT, RETURNED)) | Evidence.submitted_at.is_(None)
               | (Evidence.submitted_at > as_of))
        .distinct()
    )}


def compute(registration: Registration, person_ids, competency_ids, as_of=None) -> dict:
    """{person_id: {competency_id: CompetencyStatus}} in three queries. Callers have already scoped
    `person_ids` and `competency_ids` to the tenant; this function adds no access checks."""
    as_of = _aware(as_of)
    person_ids, competency_ids = list(person_ids), list(competency_ids)
    warning = timedelta(days=settings.get(registration, "revalidation_warning_days"))
    result = {p: {} for p in person_ids}
    if not person_ids or not competency_ids:
        for p in person_ids:
            result[p] = {c: CompetencyStatus(c, NOT_STARTED) for c in competency_ids}
        return result

    # 1. Every sign-off (and correction) of these people for these competencies signed by as_of, with its
    #    revocation, in one query.
    sign_offs = {}
    rows = db.session.execute(
        select(SignOff, SignOffRevocation)
        .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
        .where(SignOff.person_id.in_(person_ids), SignOff.competency_id.in_(competency_ids),
               SignOff.signed_at <= as_of)
    )
    for sign_off, revocation in rows:
        sign_offs.setdefault((sign_off.person_id, sign_off.competency_id), []).append((sign_off, revocation))

    # 2. Review requests open at as_of; 3. evidence being drafted or revised at as_of.
    open_requests = open_requests_at(person_ids, competency_ids, as_of)
    drafting = drafting_at(person_ids, competency_ids, as_of)

    for p in person_ids:
        result[p] = {
            c: _judge(c, sign_offs.get((p, c), []), open_requests.get((p, c), []), (p, c) in drafting,
                      as_of, warning)
            for c in competency_ids
        }
    return result


def statuses_for(person, course: Course, competency_ids=None, as_of=None) -> dict:
    """{competency_id: CompetencyStatus} for one technician over the competencies `course` uses.

    No access check beyond the tenant: callers pass a person they already obtained through scope (the acting
    technician, or scope.person + scope.can_view_person). Use team_statuses() from anything driven by input.
    """
    if person.registration_id != course.registration_id:
        raise NotFound("No such person.")
    competencies = course_competencies(course, competency_ids)
    return compute(course.registration, [person.id], [c.id for c in competencies], as_of)[person.id]


def team_statuses(actor, course, person_ids=None, competency_ids=None, as_of=None) -> dict:
    """{person_id: {competency_id: CompetencyStatus}} for technicians of one course.

    Managers (manager-side members of the course) see any active member; a technician may ask only about
    themselves. People who are not active members of the course are reported as not found. `person_ids`
    None means every active technician of the course; `competency_ids` None every competency it uses.
    """
    course = scope.course(actor, course if isinstance(course, int) else course.id)
    manager = scope.manages(actor.person.id, course.id)
    if not manager:
        if not scope.is_member(actor.person.id, course.id):
            raise NotFound("No such course.")
        if person_ids is None or set(person_ids) != {actor.person.id}:
            raise Forbidden("Only the course's managers can see the team's progress.")
    members = select(Membership.person_id).where(Membership.course_id == course.id, Membership.active.is_(True))
    if person_ids is None:
        person_ids = list(db.session.scalars(members.where(Membership.role == TECHNICIAN)
                                             .order_by(Membership.person_id)))
    else:
        person_ids = list(dict.fromkeys(person_ids))
        found = set(db.session.scalars(members.where(Membership.person_id.in_(person_ids))))
        if found != set(person_ids):
            raise NotFound("No such technician in this course.")
    competencies = course_competencies(course, competency_ids)
    return compute(course.registration, person_ids, [c.id for c in competencies], as_of)


def summary(statuses: dict) -> dict:
    """Counts per status for one person's {competency_id: CompetencyStatus}."""
    counts = dict.fromkeys(STATUSES, 0)
    for entry in statuses.values():
        counts[entry.status] += 1
    return counts
