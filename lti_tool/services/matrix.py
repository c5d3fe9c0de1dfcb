"""The manager's team views: the team matrix (technicians x competencies), a technician's detail, one review
request with its history.

The matrix is paged in SQL and runs a fixed number of queries whatever the size of the team: the tree, one count
(with "not launched yet" and the page's position), the page's people, and the page's cells from the stored status
(status.compute, one query). A status or "expiring within N days" filter is a where-clause on the stored status
(status.current_is, the same rule status.at applies to the cells), so filter and cells cannot disagree. The
matrix of a moment in the past (`as_of`) judges the history of every candidate instead: correct, and slower.
Pages: `after` (the last person of the previous page) is keyset pagination for "Next"; `page` jumps.
A name search (`q`) is one more where-clause on the same select, so it pages the same way; chosen competencies
narrow the columns like an area or a department does.
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import case, exists, false, func, select, tuple_
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..ids import id_or_none
from ..lti.roles import TECHNICIAN
from ..models import (
    Competency,
    Evidence,
    Membership,
    Person,
    ReviewRequest,
    SignOff,
    StoredStatus,
)
from ..models.people import name_order
from ..models.reviews import OPEN
from . import DomainError, Forbidden, NotFound, preceptors, scope, status
from .placements import DEPARTMENT_LABELS

PER_PAGE = 50
EXPORT_BATCH = 500  # technicians per query when "Export this view" walks every page of a filter
EXPIRING_CHOICES = (30, 60, 90)
SEARCH_MAX = 100  # characters of a name search; longer is refused
# Short labels for the matrix cells, each also the cell's class (lower case); the legend spells them out once,
# so color is never the only signal and a page of 50 x 100+ cells stays small.
ABBREVIATIONS = {
    status.NOT_STARTED: "NS",
    status.IN_PROGRESS: "IP",
    status.AWAITING_REVIEW: "AR",
    status.NEEDS_REASSESSMENT: "RA",
    status.ACHIEVED: "ACH",
    status.DUE_FOR_REVALIDATION: "DUE",
    status.EXPIRED: "EXP",
}
# A required competency not held after its date: a mark beside the status code (OVD), spelled out in the legend.
OVERDUE_MARK = "OVD"


def _managed_course(actor, course_id: int):
    course = scope.course(actor, course_id)
    if not scope.manages(actor.person.id, course.id):
        if scope.is_member(actor.person.id, course.id):
            raise Forbidden(_("Only the course's managers can see the team's progress."))
        raise NotFound(_("No such course."))
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

    def area_label(self, area) -> str:
        """An area's full name for a select: the title, led by its code unless the title already says it."""
        return area.title if not area.code or area.title.startswith(area.code) else f"{area.code} {area.title}"

    def leaves_by_area(self) -> list[tuple]:
        """[(top-level area or None, [leaf])] in framework order, for the competency chooser and the legend."""
        groups: dict = {}
        for leaf in self.leaves:
            area = self.area_of(leaf)
            groups.setdefault(area.id if area else None, (area, []))[1].append(leaf)
        return list(groups.values())

    def departments(self) -> list[tuple[str, str]]:
        tags = {d for c in self.leaves for d in (c.departments or [])}
        return [(key, _(label)) for key, label in DEPARTMENT_LABELS.items() if key in tags]


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
    after: int | None = None  # keyset: the page after this person (the last row of the previous page)
    per_page: int = PER_PAGE
    search: str = ""  # part of a technician's name or e-mail, any case
    competency_ids: tuple = ()  # chosen columns (none chosen: every column of the area and department)

    @property
    def by_status(self) -> bool:
        return bool(self.status or self.expiring_days)

    def query(self) -> dict:
        """The filters as query parameters (without the page), for links and the export of this view."""
        return {"department": self.department or None, "area": self.area_id, "status": self.status or None,
                "expiring": self.expiring_days, "inactive": "1" if self.include_inactive else None,
                "q": self.search or None, "competency": list(self.competency_ids) or None}


def parse_filters(args) -> MatrixFilters:
    """Filters from a query string; anything unknown is refused with a message per field."""
    errors = {}

    def number(name, default=None):
        raw = (args.get(name) or "").strip()
        if not raw:
            return default
        if id_or_none(raw) is None:
            errors[name] = "Not a number."
            return default
        return id_or_none(raw)

    search = " ".join((args.get("q") or "").split())
    if len(search) > SEARCH_MAX:
        errors["q"] = _("Type at most %(n)d characters of a name.", n=SEARCH_MAX)
        search = ""
    chosen = []
    for raw in args.getlist("competency") if hasattr(args, "getlist") else []:
        if (raw or "").strip():
            if id_or_none(raw.strip()) is None:
                errors["competency"] = _("Not a competency of this course.")
            else:
                chosen.append(id_or_none(raw.strip()))
    wanted = MatrixFilters(
        search=search, competency_ids=tuple(dict.fromkeys(chosen)),
        department=(args.get("department") or None),
        area_id=number("area"),
        status=(args.get("status") or None),
        expiring_days=number("expiring"),
        include_inactive=args.get("inactive") in ("1", "on", "true"),
        page=max(1, number("page", 1) or 1),
        after=number("after"),
    )
    if wanted.department and wanted.department not in DEPARTMENT_LABELS:
        errors["department"] = "Not a known department."
    if wanted.status and wanted.status not in status.STATUSES + status.REQUIREMENT_FILTERS:
        errors["status"] = "Not a known status."
    if wanted.expiring_days is not None and wanted.expiring_days not in EXPIRING_CHOICES:
        errors["expiring"] = "Choose 30, 60 or 90 days."
    if errors:
        raise DomainError(_("Some filters are not valid."), code="invalid_filter", fields=errors)
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
    next_after: int | None = None  # the keyset of the next page, if there is one

    @property
    def first(self) -> int:
        return (self.page - 1) * self.filters.per_page + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * self.filters.per_page, self.total)


def _columns(tree: Tree, filters: MatrixFilters) -> list:
    columns = tree.leaves
    if filters.area_id is not None:
        if filters.area_id not in {a.id for a, _depth in tree.areas}:
            raise DomainError(_("Some filters are not valid."), code="invalid_filter",
                              fields={"area": "Not an area of this course's frameworks."})
        columns = tree.under(filters.area_id)
    if filters.department:
        columns = [c for c in columns if filters.department in (c.departments or [])]
    if filters.competency_ids:
        if not set(filters.competency_ids) <= {c.id for c in tree.leaves}:
            raise DomainError("Some filters are not valid.", code="invalid_filter",
                              fields={"competency": _("Not a competency of this course.")})
        chosen = set(filters.competency_ids)
        columns = [c for c in columns if c.id in chosen]
    return columns


def name_matches(search: str):
    """Where-clause on Person: the search is part of the name, given and family name or e-mail, any case (in
    SQL, so it pages with the rest; % and _ typed are literal)."""
    text = func.coalesce(Person.name, "")
    for part in (Person.given_name, Person.family_name, Person.email):
        text = text + " " + func.coalesce(part, "")
    return func.lower(text).contains(search.lower(), autoescape=True)


def _candidates(course, include_inactive: bool):
    """A select of the course's technicians: (Person.id, Membership.active), unordered."""
    query = (
        select(Person.id, Membership.active)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.course_id == course.id, Membership.role == TECHNICIAN,
               Person.registration_id == course.registration_id)
    )
    if not include_inactive:
        query = query.where(Membership.active.is_(True))
    return query


def cell_matches(cell, filters: MatrixFilters, as_of: datetime) -> bool:
    """Does one cell satisfy the status filters (both, when both are given)?"""
    if filters.status == status.OVERDUE:
        if not cell.overdue:
            return False
    elif filters.status == status.REQUIRED:
        if cell.required_by is None:
            return False
    elif filters.status and cell.status != filters.status:
        return False
    if filters.expiring_days:
        if not (cell.held and cell.expires_at is not None):
            return False
        if not as_of < cell.expires_at <= as_of + timedelta(days=filters.expiring_days):
            return False
    return True


def _stored_filter(column_ids, filters: MatrixFilters, now: datetime, warning: timedelta, today):
    """Where-clause on Person: a technician with at least one column matching the status filters now."""
    table = StoredStatus
    mine = (table.person_id == Person.id) & table.competency_id.in_(column_ids)
    if filters.status == status.NOT_STARTED and not filters.expiring_days:
        # Not started is also the absence of a row: fewer started rows than columns.
        started = select(func.count()).where(mine, table.state != status.NOT_STARTED).scalar_subquery()
        return started < len(column_ids)
    return exists().where(mine, status.current_is(filters.status, now, warning, filters.expiring_days, today))


def _past_filter(course, people, column_ids, filters: MatrixFilters, as_of: datetime):
    """Where-clause on Person for a matrix in the past: every candidate's history judged (slow, and rare)."""
    ids = list(db.session.scalars(people.with_only_columns(Person.id, maintain_column_froms=True)))
    judged = status.compute(course.registration, ids, column_ids, as_of)
    return Person.id.in_([p for p in ids if any(cell_matches(cell, filters, as_of) for cell in judged[p].values())])


def team_matrix(actor, course_id: int, filters: MatrixFilters | None = None, as_of=None) -> MatrixPage:
    """One page of the team matrix, now or (`as_of`) at a moment in the past. Managers of the course only."""
    filters = filters or MatrixFilters()
    moment = status._aware(as_of)
    course = _managed_course(actor, course_id)
    tree = course_tree(course)
    columns = _columns(tree, filters)
    column_ids = [c.id for c in columns]
    people = _candidates(course, filters.include_inactive)
    if filters.search:
        people = people.where(name_matches(filters.search))
    if filters.by_status:
        if not column_ids:
            people = people.where(false())
        elif as_of is None:
            people = people.where(_stored_filter(column_ids, filters, moment,
                                                 status.warning_window(course.registration),
                                                 status.local_today(course.registration, moment)))
        else:
            people = people.where(_past_filter(course, people, column_ids, filters, moment))
    key = name_order()  # a keyset: never NULL, ends with the id

    def only(*columns):
        return people.with_only_columns(*columns, maintain_column_froms=True)

    after = None
    if filters.after is not None:
        after = db.session.execute(only(*key).where(Person.id == filters.after)).first()
    counted = [func.count(), func.coalesce(func.sum(case((Person.last_launch_at.is_(None), 1), else_=0)), 0)]
    if after is not None:
        counted.append(func.coalesce(func.sum(case((tuple_(*key) <= tuple(after), 1), else_=0)), 0))
    total, not_launched, *before = db.session.execute(only(*counted)).one()
    pages = max(1, -(-total // filters.per_page))
    if after is not None:
        page = min(before[0] // filters.per_page + 1, pages)
        chosen = people.where(tuple_(*key) > tuple(after))
    else:
        page = min(filters.page, pages)
        chosen = people.offset((page - 1) * filters.per_page)
    chosen = db.session.execute(chosen.add_columns(Person).order_by(*key).limit(filters.per_page)).all()
    ids = [row.id for row in chosen]
    computed = status.compute(course.registration, ids, column_ids, as_of) if ids else {}
    rows = []
    for row in chosen:
        standing = computed[row.id]  # once per row: a Row's attribute by name costs 0.5 us, 127 times a row
        cells = [standing[c] for c in column_ids]
        hits = {cell.competency_id for cell in cells if cell_matches(cell, filters, moment)} \
            if filters.by_status else set()
        rows.append(MatrixRow(person=row.Person, active=bool(row.active), cells=cells, matches=hits))
    return MatrixPage(course=course, tree=tree, columns=columns, rows=rows, filters=filters, total=total,
                      page=page, pages=pages, not_launched=int(not_launched), as_of=moment,
                      next_after=ids[-1] if ids and page < pages else None)


def row_notes(row: MatrixRow) -> list[str]:
    """The tags a row carries on the page (and in its export)."""
    notes = []
    if row.never_launched:
        notes.append(_("Not launched yet"))
    if not row.active:
        notes.append(_("Left the course"))
    return notes


def export_view(actor, course_id: int, filters: MatrixFilters) -> tuple[list, list]:
    """"Export this view": (header, rows) of every page of the filters shown, the same columns and cells, each
    status in words. Pages of EXPORT_BATCH technicians follow each other by keyset, so a large team costs a few
    queries per batch, never one per technician."""
    batch = replace(filters, page=1, after=None, per_page=EXPORT_BATCH)
    header, rows = None, []
    while True:
        page = team_matrix(actor, course_id, batch)
        if header is None:
            header = [_("Technician"), _("Notes"), _("Held")] + [f"{c.code} {c.title}" for c in page.columns]
        for row in page.rows:
            rows.append([row.person.display_name, "; ".join(row_notes(row)), f"{row.held}/{len(row.cells)}"]
                        + [status.LABELS[cell.status] + (" ✱" if cell.competency_id in row.matches else "")
                           for cell in row.cells])
        if page.next_after is None:
            return header, rows
        batch = replace(batch, after=page.next_after)


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
        raise NotFound(_("No such technician in this course."))
    tree = course_tree(course)
    statuses = status.compute(course.registration, [person.id], [c.id for c in tree.leaves], as_of)[person.id]
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
    if as_of is None:  # the stored status does not list request ids: this course's open requests are at hand
        for competency_id in statuses:
            ids = tuple(sorted(r.id for rows in requests.values() for r in rows if r.competency_id == competency_id))
            statuses[competency_id] = replace(statuses[competency_id], open_request_ids=ids)
    groups: dict = {}
    for comp in tree.leaves:
        area = tree.area_of(comp)
        groups.setdefault(area.id if area else None, (area, []))[1].append((comp, statuses[comp.id]))
    return TechnicianDetail(person=person, membership=membership, tree=tree, statuses=statuses,
                            by_area=list(groups.values()), evidence=evidence, sign_offs=sign_offs,
                            open_requests=requests, counts=status.summary(statuses))


def course_technicians(actor, course_id: int) -> list[Person]:
    """Active technicians of the course by name (for pickers)."""
    course = _managed_course(actor, course_id)
    return list(db.session.scalars(
        select(Person).join(Membership, Membership.person_id == Person.id)
        .where(Membership.course_id == course.id, Membership.role == TECHNICIAN, Membership.active.is_(True))
        .order_by(*name_order())))


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
        raise NotFound(_("No such review request."))
    if precepted is not None and not preceptors.may_review(actor, row):
        raise NotFound(_("No such review request."))
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
        raise DomainError(_("Choose at least one review request."), code="nothing_selected")
    rows = {r.id: r for r in db.session.scalars(
        select(ReviewRequest).where(ReviewRequest.id.in_(ids), ReviewRequest.course_id == course.id)
        .options(joinedload(ReviewRequest.evidence), joinedload(ReviewRequest.person),
                 joinedload(ReviewRequest.competency)))}
    if len(rows) != len(ids):
        raise NotFound(_("No such review request."))
    return [rows[i] for i in ids]


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
        raise NotFound(_("No such sign-off."))
    return row


def correction_of(sign_off_id: int) -> SignOff | None:
    return db.session.scalar(select(SignOff).where(SignOff.corrects_id == sign_off_id))
