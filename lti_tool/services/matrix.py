"""The manager's team views: the team matrix (technicians x competencies), a technician's detail, one review
request with its history.

The matrix runs a fixed number of queries whatever the number of technicians on the page or in the course:
the ordered candidate list is one query of plain tuples, the page's people one more, and the page's statuses
come from status.compute (three queries). Filtering by status or by "expiring within N days" needs every
candidate's statuses before paginating; that pass reads plain columns (no ORM objects, no evidence snapshots)
in three more queries and judges each (technician, competency) pair with status._judge, the very rule that
status.compute applies, so the filter and the cells can never disagree.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import aliased, joinedload, selectinload

from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import (
    Competency,
    Evidence,
    Membership,
    Person,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
)
from ..models.reviews import OPEN
from . import DomainError, Forbidden, NotFound, preceptors, scope, settings, status
from .placements import DEPARTMENT_LABELS

PER_PAGE = 50
EXPIRING_CHOICES = (30, 60, 90)
# Short labels for the matrix cells; the legend spells them out and every cell carries the full label for
# screen readers, so colour is never the only signal.
ABBREVIATIONS = {
    status.NOT_STARTED: "NS",
    status.IN_PROGRESS: "IP",
    status.AWAITING_REVIEW: "AR",
    status.ACHIEVED: "ACH",
    status.DUE_FOR_REVALIDATION: "DUE",
    status.EXPIRED: "EXP",
}


def _managed_course(actor, course_id: int):
    course = scope.course(actor, course_id)
    if not scope.manages(actor.person.id, course.id):
        if scope.is_member(actor.person.id, course.id):
            raise Forbidden("Only the course's managers can see the team's progress.")
        raise NotFound("No such course.")
    return course


# --- The course's competency tree -------------------------------------------------------------------------

@dataclass
class Tree:
    """The course's competencies: leaves (what people are signed off on) and areas (their ancestors)."""

    competencies: list
    by_id: dict
    leaves: list
    areas: list  # [(competency, depth)] in framework order

    def area_of(self, competency) -> Competency | None:
        """The top-level area a competency sits in (None for a top-level leaf)."""
        node, top = competency, None
        while node.parent_id is not None and node.parent_id in self.by_id:
            node = self.by_id[node.parent_id]
            top = node
        return top

    def under(self, area_id: int) -> list:
        def inside(c):
            node = c
            while node.parent_id is not None and node.parent_id in self.by_id:
                if node.parent_id == area_id:
                    return True
                node = self.by_id[node.parent_id]
            return False

        return [c for c in self.leaves if inside(c)]

    def departments(self) -> list[tuple[str, str]]:
        tags = {d for c in self.leaves for d in (c.departments or [])}
        return [(key, label) for key, label in DEPARTMENT_LABELS.items() if key in tags]


def course_tree(course) -> Tree:
    """One query (status.course_competencies), then wired up in memory."""
    comps = status.course_competencies(course)
    by_id = {c.id: c for c in comps}
    parents = {c.parent_id for c in comps if c.parent_id is not None}
    leaves = [c for c in comps if c.id not in parents]

    def depth(c):
        n, node = 0, c
        while node.parent_id is not None and node.parent_id in by_id:
            n, node = n + 1, by_id[node.parent_id]
        return n

    # Framework order is by position within siblings; walk the tree so children follow their parent.
    kids: dict = {}
    for c in comps:
        kids.setdefault(c.parent_id if c.parent_id in by_id else None, []).append(c)
    ordered: list = []

    def walk(parent_id):
        for c in kids.get(parent_id, []):
            ordered.append(c)
            walk(c.id)

    walk(None)
    leaf_ids = {c.id for c in leaves}
    return Tree(competencies=ordered, by_id=by_id, leaves=[c for c in ordered if c.id in leaf_ids],
                areas=[(c, depth(c)) for c in ordered if c.id in parents])


# --- The team matrix ---------------------------------------------------------------------------------------

@dataclass
class MatrixFilters:
    department: str | None = None
    area_id: int | None = None
    status: str | None = None
    expiring_days: int | None = None
    include_inactive: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    @property
    def by_status(self) -> bool:
        return bool(self.status or self.expiring_days)


def parse_filters(args) -> MatrixFilters:
    """Filters from a query string; anything unknown is refused with a message per field."""
    errors = {}

    def number(name, default=None):
        raw = (args.get(name) or "").strip()
        if not raw:
            return default
        if not raw.isdigit():
            errors[name] = "Not a number."
            return default
        return int(raw)

    wanted = MatrixFilters(
        department=(args.get("department") or None),
        area_id=number("area"),
        status=(args.get("status") or None),
        expiring_days=number("expiring"),
        include_inactive=args.get("inactive") in ("1", "on", "true"),
        page=max(1, number("page", 1) or 1),
    )
    if wanted.department and wanted.department not in DEPARTMENT_LABELS:
        errors["department"] = "Not a known department."
    if wanted.status and wanted.status not in status.STATUSES:
        errors["status"] = "Not a known status."
    if wanted.expiring_days is not None and wanted.expiring_days not in EXPIRING_CHOICES:
        errors["expiring"] = "Choose 30, 60 or 90 days."
    if errors:
        raise DomainError("Some filters are not valid.", code="invalid_filter", fields=errors)
    return wanted


@dataclass
class MatrixRow:
    person: Person
    active: bool
    cells: list  # CompetencyStatus per column, in column order
    matches: set = field(default_factory=set)  # column ids that match the status filters

    @property
    def never_launched(self) -> bool:
        return self.person.last_launch_at is None

    @property
    def held(self) -> int:
        return sum(1 for cell in self.cells if cell.held)


@dataclass
class MatrixPage:
    course: object
    tree: Tree
    columns: list
    rows: list
    filters: MatrixFilters
    total: int  # technicians matching the filters
    page: int
    pages: int
    not_launched: int  # among the technicians matching the filters
    as_of: datetime

    @property
    def first(self) -> int:
        return (self.page - 1) * self.filters.per_page + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * self.filters.per_page, self.total)


def _columns(tree: Tree, filters: MatrixFilters) -> list:
    columns = tree.leaves
    if filters.area_id is not None:
        if filters.area_id not in {a.id for a, _ in tree.areas}:
            raise DomainError("Some filters are not valid.", code="invalid_filter",
                              fields={"area": "Not an area of this course's frameworks."})
        columns = tree.under(filters.area_id)
    if filters.department:
        columns = [c for c in columns if filters.department in (c.departments or [])]
    return columns


def _candidates(course, include_inactive: bool):
    """The course's technicians as (person_id, active, never_launched), ordered by family name, then name."""
    sort_name = func.lower(func.coalesce(Person.family_name, Person.name, Person.email, Person.sub))
    query = (
        select(Person.id, Membership.active, Person.last_launch_at.is_(None))
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.course_id == course.id, Membership.role == TECHNICIAN,
               Person.registration_id == course.registration_id)
        .order_by(sort_name, func.lower(func.coalesce(Person.given_name, "")), Person.id)
    )
    if not include_inactive:
        query = query.where(Membership.active.is_(True))
    return db.session.execute(query).all()


HELD_FILTERS = frozenset({status.ACHIEVED, status.DUE_FOR_REVALIDATION, status.EXPIRED})


def lean_statuses(course, competency_ids, include_inactive: bool = False, as_of=None, *, held_only: bool = False,
                  expires_by: datetime | None = None, requested_only: bool = False) -> dict:
    """{person_id: {competency_id: CompetencyStatus}} for every technician of the course, only for the pairs
    with any history (a missing pair is "not started"). At most three queries of plain columns; the same rule
    as status.compute (status._judge).

    `held_only`: the caller asks only about achieved / due / expired, which depend on sign-offs alone, so open
    requests and drafts are not read and non-proficient sign-offs that correct nothing are skipped (the
    statuses' awaiting/in-progress flags are then left false). `expires_by`: only pairs with a proficient
    sign-off expiring by then can be due, expired or expiring, so only those are read. `requested_only`: only
    pairs with a review request open at `as_of` can be awaiting review, so only those are judged (drafts, which
    never change that answer, are not read).
    """
    as_of = status._aware(as_of)
    competency_ids = list(competency_ids)
    if not competency_ids:
        return {}
    warning = timedelta(days=settings.get(course.registration, "revalidation_warning_days"))
    members = select(Membership.person_id).where(Membership.course_id == course.id,
                                                 Membership.role == TECHNICIAN)
    if not include_inactive:
        members = members.where(Membership.active.is_(True))
    query = (
        select(SignOff.id, SignOff.person_id, SignOff.competency_id, SignOff.proficient, SignOff.expires_at,
               SignOff.signed_at, SignOff.corrects_id, SignOffRevocation.revoked_at)
        .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
        .where(SignOff.person_id.in_(members), SignOff.competency_id.in_(competency_ids),
               SignOff.signed_at <= as_of)
    )
    open_at = select(ReviewRequest.person_id, ReviewRequest.competency_id).where(
        ReviewRequest.person_id.in_(members), ReviewRequest.competency_id.in_(competency_ids),
        status.open_at(as_of))
    if held_only:
        query = query.where(SignOff.proficient.is_(True) | SignOff.corrects_id.is_not(None))
    if requested_only:
        query = query.where(tuple_(SignOff.person_id, SignOff.competency_id).in_(open_at))
    if expires_by is not None:
        soon = aliased(SignOff)
        query = query.where(tuple_(SignOff.person_id, SignOff.competency_id).in_(
            select(soon.person_id, soon.competency_id).where(
                soon.person_id.in_(members), soon.competency_id.in_(competency_ids), soon.proficient.is_(True),
                soon.signed_at <= as_of, soon.expires_at <= expires_by)))
    # Rows stand in for the SignOff and SignOffRevocation objects status._judge reads (same attribute names).
    sign_offs: dict = {}
    for row in db.session.execute(query):
        sign_offs.setdefault((row.person_id, row.competency_id), []).append(
            (row, row if row.revoked_at is not None else None))
    open_requests = {} if held_only else status.open_requests_at(members, competency_ids, as_of)
    drafting = set() if held_only or requested_only else status.drafting_at(members, competency_ids, as_of)
    result: dict = {}
    for pair in set(sign_offs) | set(open_requests) | drafting:
        person_id, competency_id = pair
        result.setdefault(person_id, {})[competency_id] = status._judge(
            competency_id, sign_offs.get(pair, []), open_requests.get(pair, []), pair in drafting, as_of, warning)
    return result


def cell_matches(cell, filters: MatrixFilters, as_of: datetime) -> bool:
    """Does one cell satisfy the status filters (both, when both are given)?"""
    if filters.status and cell.status != filters.status:
        return False
    if filters.expiring_days:
        if not (cell.held and cell.expires_at is not None):
            return False
        if not as_of < cell.expires_at <= as_of + timedelta(days=filters.expiring_days):
            return False
    return True


def _narrowing(course, filters: MatrixFilters, as_of: datetime) -> dict:
    """How far the status pass can narrow what it reads for these filters (see lean_statuses)."""
    if filters.status == status.AWAITING_REVIEW and not filters.expiring_days:
        return {"requested_only": True}
    if filters.status not in (None, *HELD_FILTERS):
        return {}
    deadline = None
    if filters.expiring_days:
        deadline = as_of + timedelta(days=filters.expiring_days)
    if filters.status == status.EXPIRED:
        deadline = as_of if deadline is None else min(deadline, as_of)
    elif filters.status == status.DUE_FOR_REVALIDATION:
        warning = as_of + timedelta(days=settings.get(course.registration, "revalidation_warning_days"))
        deadline = warning if deadline is None else min(deadline, warning)
    return {"held_only": True, "expires_by": deadline}


def team_matrix(actor, course_id: int, filters: MatrixFilters | None = None, as_of=None) -> MatrixPage:
    """One page of the team matrix. Managers (manager-side members) of the course only."""
    filters = filters or MatrixFilters()
    as_of = status._aware(as_of)
    course = _managed_course(actor, course_id)
    tree = course_tree(course)
    columns = _columns(tree, filters)
    column_ids = [c.id for c in columns]
    candidates = _candidates(course, filters.include_inactive)
    matching = {}
    if filters.by_status:
        known = lean_statuses(course, column_ids, filters.include_inactive, as_of,
                              **_narrowing(course, filters, as_of))
        kept = []
        if filters.status == status.NOT_STARTED:
            # The one status a pair without history has: test every column.
            for row in candidates:
                mine = known.get(row[0], {})
                hits = {c for c in column_ids if c not in mine or cell_matches(mine[c], filters, as_of)}
                if hits:
                    matching[row[0]] = hits
                    kept.append(row)
        else:
            wanted = set(column_ids)
            for row in candidates:
                hits = {c for c, cell in known.get(row[0], {}).items()
                        if c in wanted and cell_matches(cell, filters, as_of)}
                if hits:
                    matching[row[0]] = hits
                    kept.append(row)
        candidates = kept
    total = len(candidates)
    pages = max(1, -(-total // filters.per_page))
    page = min(filters.page, pages)
    chosen = candidates[(page - 1) * filters.per_page: page * filters.per_page]
    ids = [row[0] for row in chosen]
    people = {p.id: p for p in db.session.scalars(select(Person).where(Person.id.in_(ids)))} if ids else {}
    computed = status.compute(course.registration, ids, column_ids, as_of) if ids else {}
    rows = [
        MatrixRow(person=people[pid], active=bool(active),
                  cells=[computed[pid][c] for c in column_ids], matches=matching.get(pid, set()))
        for pid, active, _never in chosen
    ]
    return MatrixPage(course=course, tree=tree, columns=columns, rows=rows, filters=filters, total=total,
                      page=page, pages=pages, not_launched=sum(1 for row in candidates if row[2]), as_of=as_of)


# --- One technician, for their manager ---------------------------------------------------------------------

@dataclass
class TechnicianDetail:
    person: Person
    membership: Membership
    tree: Tree
    statuses: dict  # competency_id -> CompetencyStatus
    by_area: list  # [(area or None, [(competency, CompetencyStatus)])]
    evidence: list
    sign_offs: list
    open_requests: dict  # evidence_id -> [ReviewRequest]
    counts: dict


def technician_detail(actor, course_id: int, person_id: int, as_of=None) -> TechnicianDetail:
    """A technician of the course: statuses by area, evidence, sign-offs. Managers of the course only."""
    course = _managed_course(actor, course_id)
    person = scope.person(actor, person_id)
    membership = db.session.scalar(select(Membership).where(Membership.person_id == person.id,
                                                            Membership.course_id == course.id))
    if membership is None or membership.role != TECHNICIAN:
        raise NotFound("No such technician in this course.")
    tree = course_tree(course)
    statuses = status.compute(course.registration, [person.id], [c.id for c in tree.leaves], as_of)[person.id]
    groups: dict = {}
    for comp in tree.leaves:
        area = tree.area_of(comp)
        groups.setdefault(area.id if area else None, (area, []))[1].append((comp, statuses[comp.id]))
    evidence = list(db.session.scalars(
        select(Evidence).where(Evidence.person_id == person.id, Evidence.course_id == course.id)
        .options(selectinload(Evidence.competency_links), selectinload(Evidence.attachments))
        .order_by(Evidence.created_at.desc(), Evidence.id.desc())))
    sign_offs = list(db.session.scalars(
        select(SignOff).where(SignOff.person_id == person.id, SignOff.course_id == course.id)
        .options(joinedload(SignOff.revocation), joinedload(SignOff.competency))
        .order_by(SignOff.signed_at.desc(), SignOff.id.desc())).unique())
    requests: dict = {}
    for row in db.session.scalars(select(ReviewRequest).where(
            ReviewRequest.person_id == person.id, ReviewRequest.course_id == course.id,
            ReviewRequest.status == OPEN).order_by(ReviewRequest.requested_at)):
        requests.setdefault(row.evidence_id, []).append(row)
    return TechnicianDetail(person=person, membership=membership, tree=tree, statuses=statuses,
                            by_area=list(groups.values()), evidence=evidence, sign_offs=sign_offs,
                            open_requests=requests, counts=status.summary(statuses))


def course_technicians(actor, course_id: int) -> list[Person]:
    """Active technicians of the course by name (for pickers)."""
    course = _managed_course(actor, course_id)
    sort_name = func.lower(func.coalesce(Person.family_name, Person.name, Person.email, Person.sub))
    return list(db.session.scalars(
        select(Person).join(Membership, Membership.person_id == Person.id)
        .where(Membership.course_id == course.id, Membership.role == TECHNICIAN, Membership.active.is_(True))
        .order_by(sort_name, Person.id)))


# --- Review requests ---------------------------------------------------------------------------------------

@dataclass
class ReviewContext:
    request: ReviewRequest
    evidence: Evidence
    competency: Competency
    history: list  # other requests on the same evidence, oldest first
    sign_offs: list  # sign-offs on this evidence (any revision), newest first
    own: bool  # the actor's own evidence: they cannot sign it off


def review_request(actor, course_id: int, request_id: int) -> ReviewContext:
    """One review request of the course with its evidence and history, for a manager of the course or a
    preceptor of its competency (others' cross-training only)."""
    course, precepted = preceptors.reviewer_scope(actor, course_id)
    row = db.session.get(ReviewRequest, request_id)
    if row is None or row.course_id != course.id:
        raise NotFound("No such review request.")
    if precepted is not None and not preceptors.may_review(actor, row):
        raise NotFound("No such review request.")
    evidence = row.evidence
    history = list(db.session.scalars(
        select(ReviewRequest).where(ReviewRequest.evidence_id == evidence.id, ReviewRequest.id != row.id)
        .options(joinedload(ReviewRequest.competency), joinedload(ReviewRequest.resolved_by))
        .order_by(ReviewRequest.requested_at, ReviewRequest.id)))
    sign_offs = list(db.session.scalars(
        select(SignOff).where(SignOff.evidence_id == evidence.id)
        .options(joinedload(SignOff.revocation), joinedload(SignOff.competency))
        .order_by(SignOff.signed_at.desc(), SignOff.id.desc())).unique())
    return ReviewContext(request=row, evidence=evidence, competency=row.competency, history=history,
                         sign_offs=sign_offs, own=row.person_id == actor.person.id)


def selected_requests(actor, course_id: int, request_ids) -> list[ReviewRequest]:
    """The open requests chosen for a bulk sign-off, in the order given; unknown ids are NotFound."""
    course = _managed_course(actor, course_id)
    ids = list(dict.fromkeys(request_ids))
    if not ids:
        raise DomainError("Choose at least one review request.", code="nothing_selected")
    rows = {r.id: r for r in db.session.scalars(
        select(ReviewRequest).where(ReviewRequest.id.in_(ids), ReviewRequest.course_id == course.id)
        .options(joinedload(ReviewRequest.evidence), joinedload(ReviewRequest.person),
                 joinedload(ReviewRequest.competency)))}
    if len(rows) != len(ids):
        raise NotFound("No such review request.")
    return [rows[i] for i in ids]


def queue_options(actor, course_id: int) -> dict:
    """What the queue can be filtered by: competencies and technicians with open requests (with counts)."""
    course, precepted = preceptors.reviewer_scope(actor, course_id)
    base = (select(ReviewRequest.competency_id, ReviewRequest.person_id)
            .join(Membership, (Membership.person_id == ReviewRequest.person_id)
                  & (Membership.course_id == ReviewRequest.course_id) & Membership.active.is_(True))
            .where(ReviewRequest.course_id == course.id, ReviewRequest.status == OPEN,
                   ReviewRequest.person_id != actor.person.id))
    if precepted is not None:
        base = base.join(Evidence, Evidence.id == ReviewRequest.evidence_id).where(
            ReviewRequest.competency_id.in_(precepted), Evidence.kind == preceptors.CROSS_TRAINING)
    base = base.subquery()
    competencies = db.session.execute(
        select(Competency, func.count()).join(base, base.c.competency_id == Competency.id)
        .group_by(Competency.id).order_by(Competency.code)).all()
    people = db.session.execute(
        select(Person, func.count()).join(base, base.c.person_id == Person.id)
        .group_by(Person.id).order_by(func.lower(func.coalesce(Person.family_name, Person.name, Person.sub)),
                                      Person.id)).all()
    tree_departments = course_tree(course).departments()
    return {"competencies": competencies, "people": people, "departments": tree_departments}


def sign_offs_by_id(actor, course_id: int, sign_off_ids) -> list[SignOff]:
    """Sign-offs of the course (for the bulk result page), in the order given."""
    course = _managed_course(actor, course_id)
    ids = list(dict.fromkeys(sign_off_ids))
    rows = {s.id: s for s in db.session.scalars(
        select(SignOff).where(SignOff.id.in_(ids), SignOff.course_id == course.id)
        .options(joinedload(SignOff.person), joinedload(SignOff.competency)))} if ids else {}
    return [rows[i] for i in ids if i in rows]


def sign_off(actor, course_id: int, sign_off_id: int) -> SignOff:
    """One sign-off of the course, with what corrected it (if anything)."""
    course = _managed_course(actor, course_id)
    row = db.session.get(SignOff, sign_off_id)
    if row is None or row.course_id != course.id:
        raise NotFound("No such sign-off.")
    return row


def correction_of(sign_off_id: int) -> SignOff | None:
    return db.session.scalar(select(SignOff).where(SignOff.corrects_id == sign_off_id))
