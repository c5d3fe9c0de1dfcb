"""Competency status per technician: not started, in progress, awaiting review, needs re-assessment, achieved,
due for revalidation, expired.

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
  request gives "awaiting_review"; a proficient sign-off that no longer counts because it was revoked or
  corrected gives "needs_reassessment" (never "not started", never held); draft or returned evidence, or a
  non-proficient rating, gives "in_progress".
- Status belongs to the person, not the course: a sign-off earned through one course of the tenant counts in
  another course that uses the same competency. The course chooses which competencies are listed.

Time travel: every function takes `as_of` (aware UTC datetime, default now). Sign-offs, revocations and
corrections are judged exactly as they stood at `as_of`. Requests are open at `as_of` if requested by then and
resolved after (or never); evidence counts as being drafted at `as_of` if created by then and, today, a draft,
returned, or first submitted after `as_of` (a resubmission moves submitted_at, so the past of evidence that
went back and forth is approximate).

The computation runs a fixed number of queries whatever the number of people and competencies.

Requirements (issue 15): `required_by` is the earliest date an active requirement wants the competency by
(services/requirements.py, stored on the row). The clock's part adds two flags: "overdue" (required, not held,
and the date has passed in the tenant's time zone) and "required and due" (required, not held, due within the
warning window). They are not statuses of their own: an overdue competency is still "in progress" or "expired";
the matrix filters "overdue" and "required" and the legend's OVD read the flags.

Two sources, one rule: `compute(..., as_of=None)` reads the stored current status (services/status_store.py,
maintained in the transaction of every change: one query), `compute(..., as_of=<moment>)` judges the history
(three queries). Both go through `standing()` (what the history says, independent of the clock) and `at()`
(the clock's part: held, due or expired), so they cannot disagree.
"""
import calendar
import functools
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import load_only

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
    StoredStatus,
)
from ..models.evidence import DRAFT, RETURNED
from ..models.reviews import OPEN
from . import Forbidden, NotFound, frameworks, requirements, scope, settings

NOT_STARTED = "not_started"
IN_PROGRESS = "in_progress"
AWAITING_REVIEW = "awaiting_review"
NEEDS_REASSESSMENT = "needs_reassessment"
ACHIEVED = "achieved"
DUE_FOR_REVALIDATION = "due_for_revalidation"
EXPIRED = "expired"
STATUSES = (NOT_STARTED, IN_PROGRESS, AWAITING_REVIEW, NEEDS_REASSESSMENT, ACHIEVED, DUE_FOR_REVALIDATION,
            EXPIRED)
# Lazy: each page reads them in its viewer's language.
LABELS = {
    NOT_STARTED: _l("Not started"),
    IN_PROGRESS: _l("In progress"),
    AWAITING_REVIEW: _l("Awaiting review"),
    NEEDS_REASSESSMENT: _l("Needs re-assessment"),
    ACHIEVED: _l("Achieved"),
    DUE_FOR_REVALIDATION: _l("Due for revalidation"),
    EXPIRED: _l("Expired"),
}
# Statuses in which the technician currently holds the competency.
HELD = frozenset({ACHIEVED, DUE_FOR_REVALIDATION})
# Requirement filters (flags beside the status, see the module's docstring).
OVERDUE = "overdue"
REQUIRED = "required"
REQUIREMENT_FILTERS = (OVERDUE, REQUIRED)
FILTER_LABELS = {**LABELS, OVERDUE: _l("Overdue (required, not held)"), REQUIRED: _l("Required")}


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
    signer_name: str | None = None
    signer_role: str | None = None
    awaiting_review: bool = False
    in_progress: bool = False
    open_request_ids: tuple = field(default_factory=tuple)
    # The newest sign-off of any kind, and whether it was revoked / is a correction: what a page says about
    # the latest decision ("revoked Nov 30, 2026") even when the competency is no longer held.
    last_sign_off_id: int | None = None
    revoked: bool = False
    corrected: bool = False
    # Requirements: the earliest date required by, the requirement that sets it; the clock's flags (at()).
    required_by: date | None = None
    requirement_id: int | None = None
    overdue: bool = False
    required_due: bool = False

    @property
    def label(self) -> str:
        return str(LABELS[self.status])

    @property
    def held(self) -> bool:
        return self.status in HELD


# Field values of a CompetencyStatus nobody set: its defaults.
_DEFAULTS = {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(CompetencyStatus)
             if f.default is not MISSING or f.default_factory is not MISSING}
# _made() shares these values between objects and skips __init__: both are safe only while every default is
# immutable and nothing runs in __post_init__. Fail at import, not with statuses sharing a list.
if hasattr(CompetencyStatus, "__post_init__") or not all(
        isinstance(value, (type(None), bool, int, str, tuple)) for value in _DEFAULTS.values()):
    raise TypeError("CompetencyStatus: _made() needs immutable defaults and no __post_init__")


def _made(values, base: CompetencyStatus | None = None) -> CompetencyStatus:
    """CompetencyStatus(**values), or replace(base, **values), without the dataclass's __init__ (`values`: a
    dict or (name, value) pairs): a frozen dataclass sets each of its 19 fields through object.__setattr__
    (5.6 us, replace() 10.6 us) and a matrix page of 50 people makes 2,000 from stored rows. The same object,
    field for field, in under 1 us (test_status checks it equals the constructor's)."""
    entry = object.__new__(CompetencyStatus)
    attributes = entry.__dict__
    attributes.update(_DEFAULTS if base is None else base.__dict__)
    attributes.update(values)
    return entry


def _of_course(query, course: Course):
    return query.join(Framework, Framework.id == Competency.framework_id).where(
        Competency.framework_id.in_(frameworks.used_framework_ids(course)),
        # A course can only use frameworks its tenant can see; belt and braces against a bad link row.
        (Framework.registration_id.is_(None)) | (Framework.registration_id == course.registration_id),
    )


def course_competencies(course: Course, competency_ids=None) -> list[Competency]:
    """The competencies of the frameworks a course uses (one query), in framework order."""
    values = {"course_id": course.id, "registration_id": course.registration_id}
    if competency_ids is not None:
        values["competency_ids"] = list(competency_ids)
    return list(db.session.scalars(_course_competencies_statement(competency_ids is not None), values))


@functools.cache
def _course_competencies_statement(some: bool):
    """Built once per process, with the course as bound parameters: building it and working out its cache key
    (the framework rule's union and aliases) took as long as running it, on every page that reads a course's
    competencies."""
    registration_id = bindparam("registration_id")
    query = (
        select(Competency)
        .join(Framework, Framework.id == Competency.framework_id)
        .where(
            Competency.framework_id.in_(frameworks.used_framework_ids_of_course(bindparam("course_id"),
                                                                               registration_id)),
            # A course can only use frameworks its tenant can see; belt and braces against a bad link row.
            (Framework.registration_id.is_(None)) | (Framework.registration_id == registration_id),
        )
        .order_by(Competency.framework_id, Competency.position, Competency.id)
    )
    if some:
        query = query.where(Competency.id.in_(bindparam("competency_ids", expanding=True)))
    return query


def course_competency_ids(course: Course):
    """A select of the ids of course_competencies(course): a where-clause's subquery, no round trip of its own."""
    return _of_course(select(Competency.id), course)


def standing(competency_id, sign_offs, open_requests, drafting, as_of=None) -> CompetencyStatus:
    """What the history says, apart from the clock: ACHIEVED (with the sign-off that holds it and its
    expiry, which at() compares with a moment), NEEDS_REASSESSMENT, AWAITING_REVIEW, IN_PROGRESS or
    NOT_STARTED. `sign_offs`: [(sign_off, revocation or None)] signed by `as_of`; `as_of` None counts every
    revocation recorded (the stored status)."""
    superseded = {s.corrects_id for s, _ in sign_offs if s.corrects_id is not None}

    def revoked(revocation):
        return revocation is not None and (as_of is None or revocation.revoked_at <= as_of)

    effective = [s for s, revocation in sign_offs if s.id not in superseded and not revoked(revocation)]
    proficient = [s for s in effective if s.proficient]
    in_progress = drafting or any(not s.proficient for s in effective)
    awaiting = bool(open_requests)
    common = {"awaiting_review": awaiting, "in_progress": in_progress,
              "open_request_ids": tuple(sorted(open_requests))}
    if sign_offs:
        last, last_revocation = max(sign_offs, key=lambda pair: (pair[0].signed_at, pair[0].id))
        common.update(last_sign_off_id=last.id, revoked=revoked(last_revocation),
                      corrected=last.corrects_id is not None)
    if proficient:
        # The attestation valid longest wins; never-expiring beats any date; ties go to the newest.
        best = max(proficient, key=lambda s: (s.expires_at is None, s.expires_at or s.signed_at, s.signed_at))
        return CompetencyStatus(competency_id, ACHIEVED, sign_off_id=best.id, achieved_at=best.signed_at,
                                expires_at=best.expires_at, signer_name=best.signer_name,
                                signer_role=best.signer_role, **common)
    if awaiting:
        return CompetencyStatus(competency_id, AWAITING_REVIEW, **common)
    if any(s.proficient for s, _ in sign_offs):
        # A proficient attestation once stood and no longer does (revoked, or corrected away).
        return CompetencyStatus(competency_id, NEEDS_REASSESSMENT, **common)
    if in_progress:
        return CompetencyStatus(competency_id, IN_PROGRESS, **common)
    return CompetencyStatus(competency_id, NOT_STARTED, **common)


def at(entry: CompetencyStatus, as_of: datetime, warning: timedelta, today: date | None = None) -> CompetencyStatus:
    """The clock's part: a held competency is achieved, due for revalidation within `warning` of its
    expiry, or expired from it; a required one not held is overdue after its date (`today`: the tenant's
    local date at `as_of`) or due within `warning` of it. (current_is() says the same in SQL.)"""
    if entry.status == ACHIEVED and entry.expires_at is not None and as_of >= entry.expires_at - warning:
        entry = _made({"status": DUE_FOR_REVALIDATION if as_of < entry.expires_at else EXPIRED}, entry)
    if entry.required_by is None or entry.held:
        return entry
    today = today or as_of.date()
    return _made({"overdue": entry.required_by < today, "required_due": today <= entry.required_by <= today + warning},
                 entry)


def with_requirement(entry: CompetencyStatus, required) -> CompetencyStatus:
    """`entry` with its (date, requirement id) from requirements.required_by(), if any."""
    if required is None:
        return entry
    return _made({"required_by": required[0], "requirement_id": required[1]}, entry)


def open_at(as_of: datetime | None):
    """Where-clause: a review request that was open at `as_of` (None: open now, whatever its dates)."""
    if as_of is None:
        return ReviewRequest.status == OPEN
    still_open = (ReviewRequest.status == OPEN) | (ReviewRequest.resolved_at > as_of)
    return (ReviewRequest.requested_at <= as_of) & still_open


def open_requests_at(people, competency_ids, as_of: datetime | None) -> dict:
    """{(person_id, competency_id): [request ids]} open at `as_of`. `people`: ids, or a select of ids."""
    found: dict = {}
    for request_id, person_id, competency_id in db.session.execute(
        select(ReviewRequest.id, ReviewRequest.person_id, ReviewRequest.competency_id).where(
            ReviewRequest.person_id.in_(people), ReviewRequest.competency_id.in_(competency_ids), open_at(as_of))
    ):
        found.setdefault((person_id, competency_id), []).append(request_id)
    return found


def drafting_at(people, competency_ids, as_of: datetime | None) -> set:
    """{(person_id, competency_id)} with evidence being drafted or revised at `as_of` (None: now, whatever
    its dates)."""
    being_drafted = Evidence.status.in_((DRAFT, RETURNED)) | Evidence.submitted_at.is_(None)
    if as_of is not None:
        being_drafted = (Evidence.created_at <= as_of) & (being_drafted | (Evidence.submitted_at > as_of))
    return {tuple(row) for row in db.session.execute(
        select(Evidence.person_id, EvidenceCompetency.competency_id)
        .join(EvidenceCompetency, EvidenceCompetency.evidence_id == Evidence.id)
        .where(Evidence.person_id.in_(people), EvidenceCompetency.competency_id.in_(competency_ids),
               being_drafted)
        .distinct()
    )}


def history(person_ids, competency_ids, as_of: datetime | None) -> dict:
    """{person_id: {competency_id: standing()}} judged from the history in four queries: every sign-off
    (and correction) signed by `as_of` with its revocation, the requests open and the evidence being drafted
    at `as_of`, and the requirements in effect then. `as_of` None: everything recorded (what the stored status
    holds)."""
    person_ids, competency_ids = list(person_ids), list(competency_ids)
    if not person_ids or not competency_ids:
        return {p: {} for p in person_ids}
    # Only what standing() reads: a sign-off's evidence snapshot is the largest value in the table and the
    # stored status judges thousands of sign-offs in one go during an import.
    query = (select(SignOff, SignOffRevocation)
             .options(load_only(SignOff.person_id, SignOff.competency_id, SignOff.corrects_id, SignOff.proficient,
                                SignOff.signed_at, SignOff.expires_at, SignOff.signer_name, SignOff.signer_role))
             .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
             .where(SignOff.person_id.in_(person_ids), SignOff.competency_id.in_(competency_ids)))
    if as_of is not None:
        query = query.where(SignOff.signed_at <= as_of)
    sign_offs: dict = {}
    for sign_off, revocation in db.session.execute(query):
        sign_offs.setdefault((sign_off.person_id, sign_off.competency_id), []).append((sign_off, revocation))
    open_requests = open_requests_at(person_ids, competency_ids, as_of)
    drafting = drafting_at(person_ids, competency_ids, as_of)
    required = requirements.required_by(person_ids, competency_ids, as_of)
    return {p: {c: with_requirement(standing(c, sign_offs.get((p, c), []), open_requests.get((p, c), []),
                                             (p, c) in drafting, as_of), required.get((p, c)))
                for c in competency_ids}
            for p in person_ids}


# --- The stored status (kept by services/status_store.py) ---------------------------------------------------

# The CompetencyStatus fields a stored row keeps in columns of the same name (besides the pair; `state` holds the
# status; the clock's flags and open requests are not stored).
STORED_FIELDS = ("sign_off_id", "achieved_at", "expires_at", "signer_name", "signer_role", "awaiting_review",
                 "in_progress", "last_sign_off_id", "revoked", "corrected", "required_by", "requirement_id")


_FROM_ROW = ("competency_id", "status", *STORED_FIELDS)


def stored_columns() -> list:
    """The stored table's columns in the order from_row() reads them: the pair's competency, its state, the
    STORED_FIELDS, then the person."""
    table = StoredStatus.__table__
    return [table.c.competency_id, table.c.state, *(table.c[name] for name in STORED_FIELDS), table.c.person_id]


def from_row(row) -> CompetencyStatus:
    """A row of stored_columns() as the standing it records. By position: a Row's attributes by name cost 0.5 us
    each, and a matrix page reads 2,000 rows of 14."""
    return _made(zip(_FROM_ROW, row, strict=False))  # stops before the person


def stored(person_ids, competency_ids, now: datetime, warning: timedelta, today: date | None = None) -> dict:
    """{person_id: {competency_id: CompetencyStatus}} from the stored rows, judged at `now` (one query).
    `competency_ids` None: every competency with a row (anything else is not started)."""
    person_ids = list(person_ids)
    result = {p: {} for p in person_ids}
    query = select(*stored_columns()).where(StoredStatus.person_id.in_(person_ids))
    if competency_ids is not None:
        competency_ids = list(competency_ids)
        query = query.where(StoredStatus.competency_id.in_(competency_ids))
    if person_ids and competency_ids != []:
        # Plain rows, not entities: the store rewrites rows with Core statements, which an identity map
        # would not see.
        for row in db.session.execute(query):
            result[row[-1]][row[0]] = at(from_row(row), now, warning, today)
    missing = {c: _made({"competency_id": c, "status": NOT_STARTED}) for c in competency_ids or ()}
    return {p: {**missing, **row} for p, row in result.items()}


def current_is(wanted: str, now: datetime, warning: timedelta, expiring_days: int | None = None,
               today: date | None = None):
    """Where-clause on StoredStatus: the row's status at `now` is `wanted` (what at() says, in SQL; OVERDUE and
    REQUIRED are the requirement flags), and, with `expiring_days`, the competency is held and expires within
    that many days. NOT_STARTED is the absence of a row too, which a where-clause on rows cannot say: callers
    handle it (matrix._stored_filter). `today`: the tenant's local date at `now`."""
    table = StoredStatus
    held = table.state == ACHIEVED
    held_now = and_(held, or_(table.expires_at.is_(None), table.expires_at > now))
    by_status = {
        ACHIEVED: and_(held, or_(table.expires_at.is_(None), table.expires_at > now + warning)),
        DUE_FOR_REVALIDATION: and_(held, table.expires_at > now, table.expires_at <= now + warning),
        EXPIRED: and_(held, table.expires_at <= now),
        OVERDUE: and_(table.required_by < (today or now.date()), ~held_now),
        REQUIRED: table.required_by.is_not(None),
    }
    clauses = []
    if wanted:
        clauses.append(by_status.get(wanted, table.state == wanted))
    if expiring_days:
        clauses.append(and_(held, table.expires_at > now, table.expires_at <= now + timedelta(days=expiring_days)))
    return and_(*clauses)


def local_today(registration: Registration, moment: datetime | None = None) -> date:
    """The tenant's calendar date at `moment` (now): what "overdue" compares required_by with."""
    return _aware(moment).astimezone(settings.time_zone(registration)).date()


def warning_window(registration: Registration) -> timedelta:
    """How long before expiry a held competency is due for revalidation (a tenant setting)."""
    return timedelta(days=settings.get(registration, "revalidation_warning_days"))


def current(registration: Registration, person_ids, competency_ids, now: datetime | None = None) -> dict:
    """{person_id: {competency_id: CompetencyStatus}} from the stored status (one query), its clock's part judged
    at `now` (default the present): what pages show, and what reminders planned at `now` say. Only the clock
    moves: the standing is everything recorded (compute(as_of=...) judges the history of a past moment)."""
    moment = _aware(now)
    return stored(person_ids, competency_ids, moment, warning_window(registration),
                  local_today(registration, moment))


def compute(registration: Registration, person_ids, competency_ids, as_of=None) -> dict:
    """{person_id: {competency_id: CompetencyStatus}}. Now (`as_of` None): from the stored status, one query
    (`competency_ids` None: every competency the person has a row for). At a moment in the past: from the
    history, three queries. Callers have already scoped `person_ids` and
    `competency_ids` to the tenant; this function adds no access checks."""
    if as_of is None:
        return current(registration, person_ids, competency_ids)
    warning = warning_window(registration)
    moment = _aware(as_of)
    today = local_today(registration, moment)
    person_ids, competency_ids = list(person_ids), list(competency_ids)
    judged = history(person_ids, competency_ids, moment)
    return {p: {c: at(entry, moment, warning, today) for c, entry in row.items()} if row
            else {c: CompetencyStatus(c, NOT_STARTED) for c in competency_ids}
            for p, row in judged.items()}


def statuses_for(person, course: Course, competency_ids=None, as_of=None) -> dict:
    """{competency_id: CompetencyStatus} for one technician over the competencies `course` uses.

    No access check beyond the tenant: callers pass a person they already obtained through scope (the acting
    technician, or scope.person + scope.can_view_person). Use team_statuses() from anything driven by input.
    """
    if person.registration_id != course.registration_id:
        raise NotFound(_("No such person."))
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
            raise NotFound(_("No such course."))
        if person_ids is None or set(person_ids) != {actor.person.id}:
            raise Forbidden(_("Only the course's managers can see the team's progress."))
    members = select(Membership.person_id).where(Membership.course_id == course.id, Membership.active.is_(True))
    if person_ids is None:
        person_ids = list(db.session.scalars(members.where(Membership.role == TECHNICIAN)
                                             .order_by(Membership.person_id)))
    else:
        person_ids = list(dict.fromkeys(person_ids))
        found = set(db.session.scalars(members.where(Membership.person_id.in_(person_ids))))
        if found != set(person_ids):
            raise NotFound(_("No such technician in this course."))
    competencies = course_competencies(course, competency_ids)
    return compute(course.registration, person_ids, [c.id for c in competencies], as_of)


def summary(statuses: dict) -> dict:
    """Counts per status for one person's {competency_id: CompetencyStatus}, with the requirement flags."""
    counts = dict.fromkeys(STATUSES + REQUIREMENT_FILTERS, 0)
    for entry in statuses.values():
        counts[entry.status] += 1
        counts[OVERDUE] += entry.overdue
        counts[REQUIRED] += entry.required_by is not None
    return counts
