"""Inspection reports of a course, for any "as of" date: the competency roster, the compliance summary with its
12-month trend, and one technician's complete file.

Every status comes from services.status (compute, with `as_of`), the one rule the matrix and the technician's
pages use, so a report can never disagree with them. A report of a past date shows each sign-off as it stood
then: one that later expired or was revoked shows as current if it was current on that date.

"Current" means the technician holds the competency (achieved, or due for revalidation within the tenant's
warning window); "due" is the latter; "expired" held it once and it lapsed; "not qualified" never held it (with
the finer status: not started, in progress, awaiting review). "Overdue" is counted beside the standings: a
requirement wanted the competency by a date that has passed and it is not held (status.at's flag); its label says
so after the standing.
"""
from collections import Counter, namedtuple
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import Competency, Course, Evidence, Membership, Person, SignOff, SignOffRevocation
from ..models.people import name_order
from . import DomainError, NotFound, audit_log, localtime, requirements, scope, settings, status
from .placements import DEPARTMENT_LABELS
from .status import add_months

CURRENT, DUE, EXPIRED, NOT_QUALIFIED = "current", "due", "expired", "not_qualified"
OVERDUE = "overdue"  # not a standing: counted beside them (an overdue row is expired or not qualified)
STANDING_LABELS = {CURRENT: "Current", DUE: "Due for revalidation", EXPIRED: "Expired",
                   NOT_QUALIFIED: "Not qualified", OVERDUE: "Overdue (required)"}
_STANDING = {status.ACHIEVED: CURRENT, status.DUE_FOR_REVALIDATION: DUE, status.EXPIRED: EXPIRED}
TREND_MONTHS = 12


def standing(entry: status.CompetencyStatus) -> str:
    return _STANDING.get(entry.status, NOT_QUALIFIED)


def standing_label(entry: status.CompetencyStatus) -> str:
    """"Current", "Expired", or "Not qualified (awaiting review)"."""
    key = standing(entry)
    label = STANDING_LABELS[key]
    if key == NOT_QUALIFIED and entry.status != status.NOT_STARTED:
        label = f"{label} ({entry.label.lower()})"
    if entry.overdue:
        label += "; " + requirements.note(entry)
    return label


# --- Scope --------------------------------------------------------------------------------------------------

def report_course(actor, course_id: int) -> Course:
    """The course a report is about: a manager-side member of it, or the tenant's administrator."""
    course = scope.course(actor, course_id)
    if not (actor.is_admin or scope.manages(actor.person.id, course.id)):
        raise NotFound(_("No such course."))
    return course


def as_of_moment(course: Course, day: date | None) -> tuple[date, datetime]:
    """(the local day, the moment the report judges): the end of that day in the tenant's time zone; today
    means now."""
    tz = localtime.zone(course.registration)
    today = localtime.today(tz)
    if day is None or day >= today:
        return today, datetime.now(UTC)
    return day, localtime.end_of(day, tz)


def parse_as_of(raw: str | None) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise DomainError(_("Give the date as YYYY-MM-DD, e.g. 2026-11-30."), code="invalid_filter",
                          fields={"as_of": "Give a date like 2026-11-30."}) from None
    if day.year < 1990:
        raise DomainError(_("Choose a date after 1990."), code="invalid_filter", fields={"as_of": "Too early."})
    return day


def technicians(course: Course) -> list[Person]:
    return list(db.session.scalars(
        select(Person).join(Membership, Membership.person_id == Person.id)
        .where(Membership.course_id == course.id, Membership.role == TECHNICIAN, Membership.active.is_(True))
        .order_by(*name_order())))


# --- Competency sets ----------------------------------------------------------------------------------------

@dataclass
class CompetencySet:
    key: str  # "c:12" one competency, "area:5" a framework area, "dept:iv_room" a department
    label: str
    competencies: list


def competency_sets(course: Course) -> list[CompetencySet]:
    """The sets a report can cover: each framework area (e.g. the USP <797>/<800>/<795> assessments), each
    department, each competency. Leaves only: areas are headings, not things people are signed off on."""
    comps = status.course_competencies(course)
    by_id = {c.id: c for c in comps}
    parents = {c.parent_id for c in comps if c.parent_id is not None}
    leaves = [c for c in comps if c.id not in parents]

    def ancestors(c):
        node = c
        while node.parent_id is not None and node.parent_id in by_id:
            node = by_id[node.parent_id]
            yield node

    areas: dict = {}
    for leaf in leaves:
        for area in ancestors(leaf):
            areas.setdefault(area.id, []).append(leaf)
    sets = [CompetencySet(f"area:{c.id}", f"{c.code} {c.title}", areas[c.id]) for c in comps if c.id in areas]
    for key, label in DEPARTMENT_LABELS.items():
        tagged = [c for c in leaves if key in (c.departments or [])]
        if tagged:
            sets.append(CompetencySet(f"dept:{key}", f"Department: {label}", tagged))
    sets += [CompetencySet(f"c:{c.id}", f"{c.code} {c.title}", [c]) for c in leaves]
    return sets


def find_set(course: Course, key: str | None) -> CompetencySet:
    sets = competency_sets(course)
    if not sets:
        raise DomainError(_("This course uses no framework yet, so there is nothing to report."), code="no_frameworks")
    if not key:
        return next((s for s in sets if s.key.startswith("area:")), sets[0])
    for s in sets:
        if s.key == key:
            return s
    raise DomainError(_("Choose a competency or set from the list."), code="invalid_filter",
                      fields={"set": "Not a competency or set of this course."})


# --- (1) Competency roster ----------------------------------------------------------------------------------

@dataclass
class RosterRow:
    person: Person
    competency: Competency
    status: status.CompetencyStatus
    standing: str
    standing_label: str
    last_assessed: datetime | None = None
    assessor: str = ""
    assessor_role: str = ""
    method: str = ""
    next_due: datetime | None = None
    sign_off_id: int | None = None
    evidence_id: int | None = None


@dataclass
class Roster:
    course: Course
    chosen: CompetencySet
    day: date
    as_of: datetime
    rows: list
    counts: dict
    tz: object
    technicians: int = 0

    def page(self, number: int, per_page: int = 50) -> tuple[list, int, int]:
        """(rows of the page's technicians, the page number, pages): the page lists `per_page` technicians
        with all their rows; the PDF and CSV list everyone."""
        width = len(self.chosen.competencies) or 1
        pages = max(1, -(-self.technicians // per_page))
        number = min(max(1, number), pages)
        start = (number - 1) * per_page * width
        return self.rows[start:start + per_page * width], number, pages


def roster(actor, course_id: int, set_key: str | None = None, day: date | None = None) -> Roster:
    """Everyone in scope x the chosen competencies, as of `day`: standing, last assessed, by whom in what role,
    next due, and the sign-off and evidence behind it. Five queries whatever the number of technicians."""
    course = report_course(actor, course_id)
    chosen = find_set(course, set_key)
    day, moment = as_of_moment(course, day)
    people = technicians(course)
    comps = chosen.competencies
    statuses = status.compute(course.registration, [p.id for p in people], [c.id for c in comps], moment)
    held = {e.sign_off_id for per in statuses.values() for e in per.values() if e.sign_off_id}
    details = {row.id: row for row in db.session.execute(
        select(SignOff.id, SignOff.signer_name, SignOff.signer_role, SignOff.method, SignOff.evidence_id,
               SignOff.signed_at, SignOff.corrects_id).where(SignOff.id.in_(held)))} if held else {}
    rows, counts = [], dict.fromkeys(STANDING_LABELS, 0)
    for person in people:
        for comp in comps:
            entry = statuses[person.id][comp.id]
            key = standing(entry)
            counts[key] += 1
            counts[OVERDUE] += entry.overdue
            row = RosterRow(person=person, competency=comp, status=entry, standing=key,
                            standing_label=standing_label(entry), next_due=entry.expires_at,
                            sign_off_id=entry.sign_off_id)
            detail = details.get(entry.sign_off_id)
            if detail is not None:
                row.last_assessed, row.assessor = detail.signed_at, detail.signer_name
                row.assessor_role, row.method = audit_log.role_label(detail.signer_role), detail.method
                row.evidence_id = detail.evidence_id
            rows.append(row)
    return Roster(course=course, chosen=chosen, day=day, as_of=moment, rows=rows, counts=counts,
                  tz=localtime.zone(course.registration), technicians=len(people))


ROSTER_HEADER = ["Technician", "Email", "Competency code", "Competency", "Standing", "Status", "Last assessed",
                 "Assessor", "Assessor role", "Method", "Next due", "Sign-off id", "Evidence id"]


def roster_csv_rows(report: Roster):
    for r in report.rows:
        yield [r.person.display_name, r.person.email or "", r.competency.code, r.competency.title,
               STANDING_LABELS[r.standing], r.status.label, localtime.us_date(r.last_assessed, report.tz),
               r.assessor, r.assessor_role, r.method.replace("_", " "), localtime.us_date(r.next_due, report.tz),
               r.sign_off_id or "", r.evidence_id or ""]


# --- (2) Compliance summary ---------------------------------------------------------------------------------

@dataclass
class SummaryGroup:
    key: str
    label: str
    total: int = 0
    current: int = 0
    due: int = 0
    expired: int = 0
    # [(month-end day, percent current or None when nothing to count)] oldest first, ending at the as-of day
    trend: list = field(default_factory=list)

    @property
    def percent(self) -> float | None:
        return round(100 * self.current / self.total, 1) if self.total else None


@dataclass
class Summary:
    course: Course
    day: date
    as_of: datetime
    technicians: int
    overall: SummaryGroup
    departments: list
    areas: list
    points: list  # the days of the trend, oldest first


def trend_days(day: date, months: int = TREND_MONTHS) -> list[date]:
    """The last day of each of the `months` months before `day`'s month, then `day` itself."""
    out = []
    for back in range(months, 0, -1):
        first_of_next = add_months(datetime(day.year, day.month, 1, tzinfo=UTC), -back + 1).date()
        out.append(date.fromordinal(first_of_next.toordinal() - 1))
    return [*out, day]


_LeanSignOff = namedtuple("_LeanSignOff", "id corrects_id proficient signed_at expires_at signer_name signer_role")
_LeanRevocation = namedtuple("_LeanRevocation", "revoked_at")


def _sign_off_history(course: Course, leaves, moment: datetime) -> dict:
    """{(person_id, competency_id): [(sign-off, revocation or None)]} of the course's active technicians,
    signed by `moment`, as plain tuples (one query; no ORM objects, no evidence snapshots)."""
    people = select(Membership.person_id).where(Membership.course_id == course.id, Membership.role == TECHNICIAN,
                                                Membership.active.is_(True))
    rows = db.session.execute(
        select(SignOff.person_id, SignOff.competency_id, SignOff.id, SignOff.corrects_id, SignOff.proficient,
               SignOff.signed_at, SignOff.expires_at, SignOff.signer_name, SignOff.signer_role,
               SignOffRevocation.revoked_at)
        .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
        .where(SignOff.person_id.in_(people), SignOff.competency_id.in_(leaves), SignOff.signed_at <= moment))
    history: dict = {}
    for person_id, comp_id, ident, corrects_id, proficient, signed_at, expires_at, name, role, revoked_at in rows:
        history.setdefault((person_id, comp_id), []).append((
            _LeanSignOff(ident, corrects_id, proficient, _utc(signed_at), _utc(expires_at), name, role),
            _LeanRevocation(_utc(revoked_at)) if revoked_at is not None else None))
    return history


def _utc(moment: datetime | None) -> datetime | None:
    """Plain column reads skip the UTC type's conversion on SQLite (naive values): make them aware."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def summary(actor, course_id: int, day: date | None = None) -> Summary:
    """Percentage current (pairs of technician x competency held, over all pairs) for the course, by department
    and by framework area, on the as-of day and at each of the 12 month-ends before it.

    Held-ness depends on sign-offs only (requests and drafts never make a competency current), so the sign-off
    history is read once and each (technician, competency) pair that has any is judged at each date by
    status.standing and status.at, the rules status.compute applies; pairs without a sign-off are never current."""
    course = report_course(actor, course_id)
    day, moment = as_of_moment(course, day)
    tz = localtime.zone(course.registration)
    people = technicians(course)
    sets = competency_sets(course)
    leaves = sorted({c.id for s in sets if s.key.startswith("c:") for c in s.competencies})
    groups = [SummaryGroup("all", "All competencies")]
    members = {"all": leaves}
    for s in sets:
        if s.key.startswith(("dept:", "area:")):
            groups.append(SummaryGroup(s.key, s.label.removeprefix("Department: ")))
            members[s.key] = [c.id for c in s.competencies]
    history = _sign_off_history(course, leaves, moment)
    warning = timedelta(days=settings.get(course.registration, "revalidation_warning_days"))
    days = trend_days(day)
    moments = [moment if point == day else localtime.end_of(point, tz) for point in days]
    standings = [Counter() for _day in days]  # per date: (competency_id, standing) -> pairs
    for (_person, comp_id), signed in history.items():
        # status.standing and status.at compare `at` only with these moments (each as "moment <= at"), so
        # between two of them their answer cannot change: judge once per stretch between them, not per date.
        edges = sorted({t for s, r in signed for t in (s.signed_at, r and r.revoked_at, s.expires_at,
                                                         s.expires_at and s.expires_at - warning) if t})
        passed, judged_at, key = 0, -1, None
        for i, at in enumerate(moments):
            while passed < len(edges) and edges[passed] <= at:
                passed += 1
            if passed != judged_at:
                held = [pair for pair in signed if pair[0].signed_at <= at]  # as status.compute reads them
                key = None
                if held:
                    key = standing(status.at(status.standing(comp_id, held, (), False, at), at, warning))
                judged_at = passed
            if key is not None:
                standings[i][comp_id, key] += 1
    for point, counts in zip(days, standings, strict=True):
        for group in groups:
            total = len(people) * len(members[group.key])
            tally = {k: sum(counts[c, k] for c in members[group.key]) for k in (CURRENT, DUE, EXPIRED)}
            current = tally[CURRENT] + tally[DUE]
            group.trend.append((point, round(100 * current / total, 1) if total else None))
            if point == day:
                group.total, group.current, group.due, group.expired = total, current, tally[DUE], tally[EXPIRED]
    return Summary(course=course, day=day, as_of=moment, technicians=len(people), overall=groups[0],
                   departments=[g for g in groups if g.key.startswith("dept:")],
                   areas=[g for g in groups if g.key.startswith("area:")], points=days)


SUMMARY_HEADER = ["Group", "Kind", "Pairs", "Current", "Due for revalidation", "Expired", "Percent current"]


def summary_csv_rows(report: Summary):
    for kind, groups in (("Overall", [report.overall]), ("Department", report.departments),
                         ("Framework area", report.areas)):
        for g in groups:
            yield [g.label, kind, g.total, g.current, g.due, g.expired, "" if g.percent is None else g.percent]
    yield []
    yield ["Trend (percent current)", "", *[localtime.us_date(d) for d in report.points]]
    for g in [report.overall, *report.departments, *report.areas]:
        yield [g.label, "", *["" if v is None else v for _day, v in g.trend]]


# --- (3) Person file ----------------------------------------------------------------------------------------

@dataclass
class PersonFile:
    course: Course
    person: Person
    membership: Membership | None
    day: date
    as_of: datetime
    statuses: list  # [(competency, CompetencyStatus)]
    sign_offs: list
    evidence: list
    trail: list  # audit_log.Line, oldest first
    tz: object


def person_file(actor, course_id: int, person_id: int, day: date | None = None) -> PersonFile:
    """One technician's complete record for HR or a surveyor: standing on every competency of the course as
    of `day`, every sign-off (revoked and corrected ones too, with why), every evidence item, and the audit
    trail of all of it."""
    course = report_course(actor, course_id)
    person = scope.person(actor, person_id)
    membership = db.session.scalar(select(Membership).where(Membership.person_id == person.id,
                                                            Membership.course_id == course.id))
    if membership is None:
        raise NotFound(_("No such technician in this course."))
    day, moment = as_of_moment(course, day)
    comps = [c for s in competency_sets(course) if s.key.startswith("c:") for c in s.competencies]
    statuses = status.compute(course.registration, [person.id], [c.id for c in comps], moment)[person.id]
    sign_offs = list(db.session.scalars(
        select(SignOff).where(SignOff.person_id == person.id)
        .options(joinedload(SignOff.revocation), joinedload(SignOff.competency))
        .order_by(SignOff.signed_at.desc(), SignOff.id.desc())
        .execution_options(populate_existing=True)).unique())
    evidence = list(db.session.scalars(
        select(Evidence).where(Evidence.person_id == person.id)
        .options(selectinload(Evidence.competency_links), selectinload(Evidence.attachments))
        .order_by(Evidence.created_at.desc(), Evidence.id.desc())))
    trail = audit_log.trail(actor, person.id, course.id if not actor.is_admin else None)
    return PersonFile(course=course, person=person, membership=membership, day=day, as_of=moment,
                      statuses=[(c, statuses[c.id]) for c in comps], sign_offs=sign_offs, evidence=evidence,
                      trail=trail, tz=localtime.zone(course.registration))


PERSON_HEADER = ["Section", "Code", "Title", "Standing or state", "Date", "By", "Role", "Details"]


def person_csv_rows(report: PersonFile):
    tz = report.tz
    for comp, entry in report.statuses:
        yield ["Competency", comp.code, comp.title, standing_label(entry),
               localtime.us_date(entry.achieved_at, tz), "", "", f"Next due {localtime.us_date(entry.expires_at, tz)}"
               if entry.expires_at else ""]
    for s in report.sign_offs:
        state = "Revoked" if s.revocation else "Signed off"
        yield ["Sign-off", s.competency.code, s.competency.title, state, localtime.us_date(s.signed_at, tz),
               s.signer_name, audit_log.role_label(s.signer_role),
               f"{s.rating_label}; {s.method.replace('_', ' ')}"
               + (f"; revoked {localtime.us_date(s.revocation.revoked_at, tz)}: {s.revocation.reason}"
                  if s.revocation else "")
               + (f"; corrects sign-off {s.corrects_id}: {s.correction_reason}" if s.corrects_id else "")]
    for e in report.evidence:
        yield ["Evidence", e.kind, e.title, e.status.replace("_", " "), localtime.us_date(e.created_at, tz), "", "",
               f"revision {e.revision}"]
    for line in report.trail:
        yield ["Audit", line.entry.action, line.what, "", localtime.us_datetime(line.entry.at, tz),
               line.actor_name, line.actor_role, line.competency.code if line.competency else ""]
