"""The team matrix query (services/matrix.py): the lean status pass agrees with status.compute, filters and
pagination, access, and a fixed number of queries whatever the size of the team."""
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from lti_tool.extensions import db
from lti_tool.models import Competency, Evidence, Membership
from lti_tool.services import DomainError, Forbidden, NotFound, matrix, reviews, status
from tests.support.competency_world import T0, World, count_queries

DAY = timedelta(days=1)


@pytest.fixture
def world(make):
    return World(make)


def _history(world, make):
    """Technicians in every status, with corrections, revocations and non-proficient ratings."""
    w = world
    # tech: garbing achieved at T0 (6 months), audit awaiting review, cart drafted
    w.signed(w.garb, now=T0)
    w.submitted(w.tech, [w.audit_comp], now=T0 + DAY)
    w.evidence(w.tech, [w.cart], status="draft")
    # tech2: garbing rated "supervised" (in progress), cart achieved then revoked, audit corrected down
    w.signed(w.garb, actor=w.tech2, rating="supervised", now=T0)
    cart = w.signed(w.cart, actor=w.tech2, now=T0)
    reviews.revoke(w.manager, cart.id, "Wrong person", now=T0 + 2 * DAY)
    audit = w.signed(w.audit_comp, actor=w.tech2, now=T0)
    reviews.correct(w.manager, audit.id, "Level was wrong", rating="not_yet", now=T0 + 3 * DAY)
    # tech3: garbing signed long ago (expired by T0 + 200 days), renewal awaiting review
    tech3 = make.actor(w.course, "technician")
    w.signed(w.garb, actor=tech3, now=T0 - 100 * DAY)
    w.submitted(tech3, [w.garb], now=T0 + 150 * DAY)
    return tech3


def test_status_and_expiry_filters_pick_technicians_with_a_matching_cell(world, make):
    tech3 = _history(world, make)
    as_of = T0 + 170 * DAY  # garbing of `tech` (T0 + 6 months) is due within 30 days; tech3's expired
    page = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(status="expired"), as_of=as_of)
    assert [r.person.id for r in page.rows] == [tech3.person.id]
    assert page.rows[0].matches == {world.garb.id}
    due = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(expiring_days=30), as_of=as_of)
    assert [r.person.id for r in due.rows] == [world.tech.person.id]
    assert due.rows[0].cells[0].status == status.DUE_FOR_REVALIDATION
    both = matrix.team_matrix(world.manager, world.course.id,
                              matrix.MatrixFilters(status="achieved", expiring_days=30), as_of=as_of)
    assert both.total == 0  # due, not achieved
    awaiting = matrix.team_matrix(world.manager, world.course.id,
                                  matrix.MatrixFilters(status="awaiting_review"), as_of=as_of)
    assert {r.person.id for r in awaiting.rows} == {world.tech.person.id}
    central = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(department="central"))
    assert [c.code for c in central.columns] == ["CEN-CART", "REG-AUDIT"]


def test_pagination_order_inactive_members_and_never_launched(world, make):
    extra = [make.member(world.course, make.person(world.reg, name=f"Zed {i}", family_name=f"Zz{i:02d}"))
             for i in range(7)]
    leaver = make.member(world.course, make.person(world.reg, name="Aaron Gone", family_name="Aaa"), active=False)
    filters = matrix.MatrixFilters(per_page=4)
    first = matrix.team_matrix(world.manager, world.course.id, filters)
    assert (first.total, first.pages, len(first.rows)) == (9, 3, 4)
    assert leaver.person_id not in [r.person.id for r in first.rows]
    last = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(per_page=4, page=99))
    assert last.page == 3 and [r.person.id for r in last.rows] == [extra[-1].person_id]
    assert (last.first, last.last) == (9, 9)
    everyone = matrix.team_matrix(world.manager, world.course.id,
                                  matrix.MatrixFilters(per_page=4, include_inactive=True))
    assert everyone.total == 10 and everyone.rows[0].person.id == leaver.person_id and not everyone.rows[0].active
    assert all(r.never_launched for r in first.rows) and first.not_launched == 9


def test_areas_are_the_competencies_with_children(world, make):
    area = Competency(framework_id=world.framework.id, code="AREA", title="An area", position=9)
    db.session.add(area)
    db.session.flush()
    world.cart.parent_id = area.id
    db.session.flush()
    tree = matrix.course_tree(world.course)
    assert [a.code for a, _depth in tree.areas] == ["AREA"]
    page = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(area_id=area.id))
    assert [c.code for c in page.columns] == ["CEN-CART"]
    with pytest.raises(DomainError) as caught:
        matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(area_id=world.garb.id))
    assert "area" in caught.value.fields


def test_filters_from_a_query_string():
    parsed = matrix.parse_filters(MultiDict({"department": "iv_room", "area": "3", "status": "expired",
                                             "expiring": "60", "inactive": "1", "page": "4"}))
    assert (parsed.department, parsed.area_id, parsed.status, parsed.expiring_days, parsed.include_inactive,
            parsed.page) == ("iv_room", 3, "expired", 60, True, 4)
    with pytest.raises(DomainError) as caught:
        matrix.parse_filters(MultiDict({"department": "moon", "status": "x", "expiring": "45", "page": "two"}))
    assert set(caught.value.fields) == {"department", "status", "expiring", "page"}


def test_only_the_courses_managers_see_the_matrix(world, make):
    with pytest.raises(Forbidden):
        matrix.team_matrix(world.tech, world.course.id)
    stranger = make.actor(make.course(world.reg), "manager")
    with pytest.raises(NotFound):
        matrix.team_matrix(stranger, world.course.id)
    other_tenant = make.actor(make.course(), "manager")
    with pytest.raises(NotFound):
        matrix.technician_detail(other_tenant, world.course.id, world.tech.person.id)
    with pytest.raises(NotFound):  # a manager is not a technician of the course
        matrix.technician_detail(world.manager, world.course.id, world.manager.person.id)


def _grow(world, make, n, tag):
    for i in range(n):
        actor = make.actor(world.course, "technician")
        ev = Evidence(person_id=actor.person.id, course_id=world.course.id, kind="cross_training",
                      title=f"{tag}{i}", data={}, status="draft", revision=1, created_at=T0 - DAY)
        db.session.add(ev)
        if i % 2:
            world.signed(world.garb, actor=actor, now=T0)
        else:
            world.submitted(actor, [world.cart], now=T0)


def test_a_fixed_number_of_queries_whatever_the_team_size(world, make):
    _grow(world, make, 3, "a")
    db.session.expire_all()
    shapes = [matrix.MatrixFilters(), matrix.MatrixFilters(status="achieved"),
              matrix.MatrixFilters(expiring_days=90, include_inactive=True)]

    def counts():
        out = []
        for filters in shapes:
            db.session.expire_all()
            with count_queries() as n:
                page = matrix.team_matrix(world.manager, world.course.id, filters, as_of=T0 + DAY)
                for row in page.rows:  # everything the template reads
                    _ = [row.person.display_name, row.never_launched, row.held, [c.label for c in row.cells]]
            out.append((n[0], len(page.rows)))
        return out

    small = counts()
    _grow(world, make, 30, "b")
    large = counts()
    assert [n for n, _ in small] == [n for n, _ in large]
    assert [rows for _, rows in large] > [rows for _, rows in small]
    # The past is judged twice with a filter (candidates, then the page): four history queries each, the fourth
    # the requirements in effect then (issue 15).
    assert max(n for n, _ in large) <= 16


def test_technician_detail_groups_statuses_by_area(world, make):
    world.signed(world.garb, now=T0)
    (request,) = world.submitted(world.tech, [world.cart], now=T0)
    detail = matrix.technician_detail(world.manager, world.course.id, world.tech.person.id, as_of=T0 + DAY)
    assert detail.counts["achieved"] == 1 and detail.counts["awaiting_review"] == 1
    flat = {c.code: s.status for _area, items in detail.by_area for c, s in items}
    assert flat == {"IV-GARB": "achieved", "CEN-CART": "awaiting_review", "REG-AUDIT": "not_started"}
    assert [r.id for rows in detail.open_requests.values() for r in rows] == [request.id]
    assert len(detail.sign_offs) == 1 and len(detail.evidence) == 2
    assert db.session.scalar(select(Membership.role).where(Membership.person_id == world.tech.person.id)) == \
        "technician"
