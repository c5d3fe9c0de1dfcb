"""The review queue: a course's open review requests, oldest first, for the managers and named preceptors who
review them, paged by keyset in SQL so a page costs the same for a team of 60 or of 2,000.

Managers see every active technician's requests but their own; a preceptor sees other technicians'
cross-training for the competencies they precept (preceptors.reviewer_scope is that rule). The partial index
ix_review_requests_open_queue (course_id, requested_at, id WHERE status = 'open') serves the order.
"""
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import distinct, func, select, tuple_
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Competency, Evidence, Membership, Person, ReviewRequest
from ..models.reviews import OPEN
from .matrix import course_tree, name_matches
from .preceptors import CROSS_TRAINING, reviewer_scope
from .status import course_competencies

PER_PAGE = 50


class CompetencyOption(NamedTuple):
    id: int
    code: str
    title: str


@dataclass(frozen=True)
class QueueFilters:
    competency_id: int | None = None
    department: str | None = None
    person_id: int | None = None  # one technician (links from elsewhere carry the id)
    search: str = ""  # part of a technician's name or e-mail, any case

    @property
    def chosen(self) -> bool:
        return bool(self.competency_id or self.department or self.person_id or self.search)


@dataclass
class QueuePage:
    rows: list  # ReviewRequest, at most PER_PAGE, evidence, person and competency loaded
    total: int  # open requests matching the filters, every page of them
    technicians: int  # distinct technicians among them
    competencies: list  # [(CompetencyOption, open requests)] of the whole queue, by code
    departments: list  # [(key, label)] the course's competencies are tagged with
    filters: QueueFilters = field(default_factory=QueueFilters)
    next_after: int | None = None  # the last row's id when another page follows
    paged: bool = False  # a page after the first


def _open_requests(actor, course, precepted, filters: QueueFilters, tagged=None):
    """The select of the open requests the actor reviews that match the filters (unordered, no paging)."""
    query = (
        select(ReviewRequest)
        .join(Membership, (Membership.person_id == ReviewRequest.person_id)
              & (Membership.course_id == ReviewRequest.course_id) & Membership.active.is_(True))
        .where(ReviewRequest.course_id == course.id, ReviewRequest.status == OPEN,
               ReviewRequest.person_id != actor.person.id)
    )
    if precepted is not None:
        # Only a preceptor's scope needs the evidence's kind: a manager's queue never reads the evidence table
        # (every request has its evidence; joining 60,000 rows to learn that cost more than the page).
        query = query.join(Evidence, Evidence.id == ReviewRequest.evidence_id).where(
            ReviewRequest.competency_id.in_(precepted), Evidence.kind == CROSS_TRAINING)
    if filters.competency_id is not None:
        query = query.where(ReviewRequest.competency_id == filters.competency_id)
    if filters.person_id is not None:
        query = query.where(ReviewRequest.person_id == filters.person_id)
    if filters.search:
        query = query.where(ReviewRequest.person_id.in_(
            select(Person.id).where(Person.registration_id == course.registration_id, name_matches(filters.search))))
    if filters.department:
        if tagged is None:
            tagged = [c.id for c in course_competencies(course) if filters.department in (c.departments or [])]
        query = query.where(ReviewRequest.competency_id.in_(tagged))
    return query


def _rows(course, query, limit: int | None, after: int | None) -> list:
    if after is not None:
        mark = db.session.scalar(select(ReviewRequest.requested_at).where(ReviewRequest.id == after,
                                                                         ReviewRequest.course_id == course.id))
        if mark is not None:
            # A row comparison, which PostgreSQL reads as a range of the index: page 90 starts where page 89
            # ended instead of stepping over the 4,450 requests before it.
            query = query.where(tuple_(ReviewRequest.requested_at, ReviewRequest.id) > tuple_(mark, after))
    # Inner joins: every request has its evidence, technician and competency (NOT NULL foreign keys), and an
    # inner join leaves the planner free to walk the index in order and stop at the limit.
    query = query.options(joinedload(ReviewRequest.evidence, innerjoin=True),
                          joinedload(ReviewRequest.person, innerjoin=True),
                          joinedload(ReviewRequest.competency, innerjoin=True)
                          ).order_by(ReviewRequest.requested_at, ReviewRequest.id)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query).unique())


def review_queue(actor, course_id: int, competency_id: int | None = None, department: str | None = None,
                 person_id: int | None = None, limit: int | None = None, after: int | None = None,
                 count: bool = False, search: str = ""):
    """Open review requests of a course, oldest first, with evidence, technician and competency loaded in the
    same query (no N+1). `department` matches the competency's department tags. Paged by keyset: `after` (a
    request id) gives the requests after it in that order, `limit` at most that many. `count`: the number of
    requests matching the filters instead of the rows."""
    course, precepted = reviewer_scope(actor, course_id)
    query = _open_requests(actor, course, precepted, QueueFilters(competency_id, department, person_id, search))
    if count:
        return db.session.scalar(query.with_only_columns(func.count(ReviewRequest.id), maintain_column_froms=True))
    return _rows(course, query, limit, after)


def waiting(actor, course_id: int, reviewer: tuple | None = None) -> tuple[int, datetime | None]:
    """(open requests the actor reviews, when the oldest was made): the home page's and digest's notice, in one
    statement instead of loading the whole queue to count it. `reviewer`: the actor's reviewer_scope() in the
    course, when the caller has it already."""
    course, precepted = reviewer or reviewer_scope(actor, course_id)
    query = _open_requests(actor, course, precepted, QueueFilters())
    count, oldest = db.session.execute(query.with_only_columns(
        func.count(ReviewRequest.id), func.min(ReviewRequest.requested_at), maintain_column_froms=True)).one()
    return count, oldest


def queue_page(actor, course_id: int, filters: QueueFilters, after: int | None = None,
               per_page: int = PER_PAGE) -> QueuePage:
    """One page of the queue with what the page shows around it: the count of every matching request and of
    their technicians, and the competencies with open requests (with counts of the whole queue) to filter by.
    A fixed number of statements, each reading an index range or the open requests, not the team (except a name
    search, which reads the tenant's people as the matrix's does)."""
    course, precepted = reviewer_scope(actor, course_id)
    tree = course_tree(course)
    tagged = [c.id for c in tree.competencies if filters.department in (c.departments or [])] \
        if filters.department else None
    query = _open_requests(actor, course, precepted, filters, tagged)
    rows = _rows(course, query, per_page + 1, after)
    total, technicians = db.session.execute(query.with_only_columns(
        func.count(ReviewRequest.id), func.count(distinct(ReviewRequest.person_id)),
        maintain_column_froms=True)).one()
    whole = _open_requests(actor, course, precepted, QueueFilters()).with_only_columns(
        ReviewRequest.competency_id, maintain_column_froms=True).subquery()
    competencies = [(CompetencyOption(row.id, row.code, row.title), row.count) for row in db.session.execute(
        select(Competency.id, Competency.code, Competency.title, func.count().label("count"))
        .join(whole, whole.c.competency_id == Competency.id)
        .group_by(Competency.id, Competency.code, Competency.title).order_by(Competency.code))]
    return QueuePage(rows=rows[:per_page], total=total, technicians=technicians, competencies=competencies,
                     departments=tree.departments(), filters=filters,
                     next_after=rows[per_page - 1].id if len(rows) > per_page else None, paged=after is not None)
