"""Requirements (issue 15): the required-by rule (department, job role, named people, days after assignment, fixed
date, retired, the earliest of two), kept on the stored status in the same transaction, the overdue and
required-and-due flags, who may write them, and the audit trail."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.formatting import us_date
from lti_tool.models import Membership, StoredStatus
from lti_tool.services import DomainError, Forbidden, NotFound, matrix, status, status_store
from lti_tool.services import requirement_edits as edits
from lti_tool.services import requirements as rule
from tests.support.competency_world import World, audit_rows, count_queries

DAY = timedelta(days=1)


@pytest.fixture
def world(make):
    return World(make)


def _form(**kw):
    form = {"name": "Orientation", "competency_ids": [], "audience": "everyone", "due_kind": "date",
            "due_on": "2030-01-31"}
    form.update(kw)
    return form


def _required(world, tech=None):
    tech = tech or world.tech
    return status.statuses_for(tech.person, world.course)


def _stored_required(person_id):
    return {r.competency_id: (r.required_by, r.requirement_id) for r in db.session.execute(
        select(StoredStatus.competency_id, StoredStatus.required_by, StoredStatus.requirement_id)
        .where(StoredStatus.person_id == person_id, StoredStatus.required_by.is_not(None)))}


def test_everyone_fixed_date_is_stored_for_every_technician_and_only_technicians(world):
    req = edits.create(world.manager, world.course.id, _form(competency_ids=[str(world.garb.id)]))
    for tech in (world.tech, world.tech2):
        assert _stored_required(tech.person.id) == {world.garb.id: (date(2030, 1, 31), req.id)}
        assert _required(world, tech)[world.garb.id].required_by == date(2030, 1, 31)
    assert _stored_required(world.manager.person.id) == {}


def test_department_job_role_and_named_people_pick_their_audience(world, make):
    third = make.actor(world.course, "technician")
    edits.set_attributes(world.manager, world.course.id, [world.tech.person.id], {"department": "iv_room"})
    edits.set_attributes(world.manager, world.course.id, [world.tech2.person.id], {"job_role": "New hire"})
    by_dept = edits.create(world.manager, world.course.id, _form(
        competency_ids=[world.garb.id], audience="department", audience_department="iv_room"))
    by_role = edits.create(world.manager, world.course.id, _form(
        competency_ids=[world.cart.id], audience="job_role", audience_job_role="New hire"))
    named = edits.create(world.manager, world.course.id, _form(
        competency_ids=[world.audit_comp.id], audience="people", person_ids=[str(third.person.id)]))
    assert set(_stored_required(world.tech.person.id)) == {world.garb.id}
    assert set(_stored_required(world.tech2.person.id)) == {world.cart.id}
    assert set(_stored_required(third.person.id)) == {world.audit_comp.id}
    assert {by_dept.id, by_role.id, named.id} == {
        _stored_required(p)[c][1] for p, c in ((world.tech.person.id, world.garb.id),
                                               (world.tech2.person.id, world.cart.id),
                                               (third.person.id, world.audit_comp.id))}
    # Moving a person out of the department drops the requirement in the same transaction.
    edits.set_attributes(world.manager, world.course.id, [world.tech.person.id], {"department": "central"})
    assert _stored_required(world.tech.person.id) == {}


def test_window_after_assignment_counts_from_assigned_on_or_the_first_day(world):
    edits.set_attributes(world.manager, world.course.id, [world.tech.person.id], {"assigned_on": "2026-03-01"})
    req = edits.create(world.manager, world.course.id, _form(competency_ids=[world.cart.id], due_kind="days",
                                                             due_days="90"))
    assert _stored_required(world.tech.person.id)[world.cart.id] == (date(2026, 3, 1) + 90 * DAY, req.id)
    tz = status.settings.time_zone(world.reg)
    first_day = world.tech2.membership.created_at.astimezone(tz).date()
    assert _stored_required(world.tech2.person.id)[world.cart.id][0] == first_day + 90 * DAY


def test_two_requirements_on_one_competency_give_the_earliest_and_retiring_restores_the_other(world):
    late = edits.create(world.manager, world.course.id, _form(name="Annual", competency_ids=[world.garb.id],
                                                              due_on="2031-06-30"))
    early = edits.create(world.manager, world.course.id, _form(name="IV room", competency_ids=[world.garb.id],
                                                               due_on="2030-02-28"))
    assert _stored_required(world.tech.person.id)[world.garb.id] == (date(2030, 2, 28), early.id)
    edits.retire(world.manager, early.id)
    assert _stored_required(world.tech.person.id)[world.garb.id] == (date(2031, 6, 30), late.id)
    edits.retire(world.manager, late.id)
    assert _stored_required(world.tech.person.id) == {}
    # A not-started pair that is no longer required keeps no row at all.
    assert db.session.scalar(select(StoredStatus.person_id).where(
        StoredStatus.person_id == world.tech.person.id, StoredStatus.competency_id == world.garb.id)) is None


def test_areas_and_departments_resolve_to_the_course_leaves(world):
    req = edits.create(world.manager, world.course.id, _form(departments=["central"]))
    assert sorted(req.competency_ids) == sorted([world.cart.id, world.audit_comp.id])


def test_overdue_and_required_due_flags_and_held_competencies_are_neither(world):
    today = status.local_today(world.reg)
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id, world.cart.id],
                                                       due_on=(today - DAY).isoformat()))
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.audit_comp.id],
                                                       due_on=(today + 5 * DAY).isoformat()))
    world.signed(world.cart, now=status.now_utc() - DAY)
    mine = _required(world)
    assert mine[world.garb.id].overdue and not mine[world.garb.id].held
    assert not mine[world.cart.id].overdue and mine[world.cart.id].held
    assert mine[world.audit_comp.id].required_due and not mine[world.audit_comp.id].overdue
    counts = status.summary(mine)
    assert counts[status.OVERDUE] == 1 and counts[status.REQUIRED] == 3
    # The history path says the same as the stored rows.
    judged = status.statuses_for(world.tech.person, world.course, as_of=status.now_utc())
    assert {c: (e.required_by, e.overdue, e.required_due) for c, e in judged.items()} == \
        {c: (e.required_by, e.overdue, e.required_due) for c, e in mine.items()}


def test_a_requirement_created_later_does_not_count_in_the_past(world):
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id], due_on="2020-01-01"))
    past = status.statuses_for(world.tech.person, world.course, as_of=status.now_utc() - 2 * DAY)
    assert past[world.garb.id].required_by is None
    assert status.statuses_for(world.tech.person, world.course)[world.garb.id].overdue


def test_matrix_filters_overdue_and_required(world):
    today = status.local_today(world.reg)
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id], audience="people",
                                                       person_ids=[world.tech.person.id],
                                                       due_on=(today - DAY).isoformat()))
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.cart.id], audience="people",
                                                       person_ids=[world.tech2.person.id],
                                                       due_on=(today + 60 * DAY).isoformat()))
    overdue = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(status=status.OVERDUE))
    required = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(status=status.REQUIRED))
    assert [r.person.id for r in overdue.rows] == [world.tech.person.id]
    assert overdue.rows[0].matches == {world.garb.id}
    assert {r.person.id for r in required.rows} == {world.tech.person.id, world.tech2.person.id}
    past = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(status=status.OVERDUE),
                              as_of=status.now_utc())
    assert [r.person.id for r in past.rows] == [world.tech.person.id]


def test_rebuild_restores_required_rows(world):
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id]))
    before = _stored_required(world.tech.person.id)
    db.session.execute(StoredStatus.__table__.delete())
    status_store.rebuild()
    assert _stored_required(world.tech.person.id) == before


def test_invalid_forms_name_each_field_and_write_nothing(world, make):
    other = World(make)
    with pytest.raises(DomainError) as caught:
        edits.create(world.manager, world.course.id, _form(
            name="", competency_ids=[str(other.garb.id)], audience="job_role", audience_job_role="Pilot",
            due_kind="date", due_on="31/01/2030"))
    assert {"name", "competency_ids", "audience_job_role", "due_on"} <= set(caught.value.fields)
    with pytest.raises(DomainError) as caught:
        edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id], audience="people",
                                                           person_ids=[str(other.tech.person.id)]))
    assert "person_ids" in caught.value.fields
    with pytest.raises(DomainError) as caught:
        edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id], due_kind="days",
                                                           due_days="-3"))
    assert "due_days" in caught.value.fields
    assert audit_rows("requirement.create") == []
    assert _stored_required(world.tech.person.id) == {}


def test_only_managers_of_the_course_or_admins_write(world, make):
    with pytest.raises(Forbidden):
        edits.create(world.tech, world.course.id, _form(competency_ids=[world.garb.id]))
    other = World(make)
    with pytest.raises(NotFound):
        edits.create(other.manager, world.course.id, _form(competency_ids=[world.garb.id]))
    elsewhere = make.course(world.reg)
    stranger = make.actor(elsewhere, "manager")
    with pytest.raises(NotFound):
        edits.create(stranger, world.course.id, _form(competency_ids=[world.garb.id]))
    req = edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id]))
    with pytest.raises(NotFound):
        edits.retire(other.manager, req.id)
    with pytest.raises(Forbidden):
        edits.set_attributes(world.tech, world.course.id, [world.tech.person.id], {"department": "iv_room"})


def test_edits_are_audited_with_the_old_values(world):
    req = edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id]))
    edits.update(world.manager, req.id, _form(name="Orientation (90 days)", competency_ids=[world.garb.id],
                                              due_kind="days", due_days="90"))
    edits.retire(world.manager, req.id)
    (created,), (updated,), (retired,) = (audit_rows(a, req) for a in
                                          ("requirement.create", "requirement.update", "requirement.retire"))
    assert updated.before["name"] == "Orientation" and updated.before["due_on"] == "2030-01-31"
    assert updated.after["due_days"] == 90 and updated.after["due_on"] is None
    assert retired.before["active"] is True and retired.after["active"] is False
    with pytest.raises(DomainError):
        edits.update(world.manager, req.id, _form(competency_ids=[world.garb.id]))
    edits.set_attributes(world.manager, world.course.id, [world.tech.person.id, world.tech2.person.id],
                         {"job_role": "Technician II", "department": "central"})
    changed = audit_rows("membership.attributes")
    assert len(changed) == 2 and changed[0].after == {"department": "central", "job_role": "Technician II",
                                                      "assigned_on": None}


def test_launch_custom_parameters_set_known_values_only(world):
    membership = world.tech.membership
    edits.attributes_from_launch(membership, {"pharmacy_department": "iv_room", "pharmacy_job_role": "Pilot"},
                                 world.reg)
    assert membership.department == "iv_room" and membership.job_role is None


def test_required_by_reads_two_queries_whatever_the_number_of_people(world, make):
    from tests.support.competency_world import count_queries

    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id, world.cart.id]))
    people = [make.actor(world.course, "technician").person.id for _ in range(6)]
    with count_queries() as n:
        found = rule.required_by(people)
    assert n[0] == 2 and len(found) == 12
    people += [make.actor(world.course, "technician").person.id for _ in range(20)]
    with count_queries() as n:
        found = rule.required_by(people)
    assert n[0] == 2 and len(found) == 52
    with count_queries() as n:
        assert rule.required_by(people, [world.audit_comp.id]) == {}
    assert n[0] == 1, "no requirement covers it: the memberships are not read"


def test_home_notices_and_reminders_name_overdue_and_soon_required(world):
    from lti_tool.models import SentMessage
    from lti_tool.services import notices, reminders

    today = status.local_today(world.reg)
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id], audience="people",
                                                       person_ids=[world.tech.person.id],
                                                       due_on=(today - 3 * DAY).isoformat()))
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.cart.id], audience="people",
                                                       person_ids=[world.tech.person.id],
                                                       due_on=(today + 14 * DAY).isoformat()))
    now = status.now_utc()
    mine = notices.technician_notices(world.tech.person, world.course, now)
    kinds = [(n.kind, n.title) for n in mine if n.kind in (notices.OVERDUE, notices.REQUIRED)]
    assert kinds == [(notices.OVERDUE, world.garb.title), (notices.REQUIRED, world.cart.title)]
    assert "overdue" in mine[0].detail and "in 14 days" in mine[1].detail
    assert notices.technician_notices(world.tech2.person, world.course, now) == []
    reminders.plan(now)
    rows = {r.event_key: r for r in db.session.scalars(select(SentMessage))}
    overdue_key = f"required:{world.garb.id}:{(today - 3 * DAY).isoformat()}:{world.tech.person.id}:0"
    soon_key = f"required:{world.cart.id}:{(today + 14 * DAY).isoformat()}:{world.tech.person.id}:14"
    assert {overdue_key, soon_key} <= set(rows)
    assert rows[overdue_key].subject == f"{world.garb.title} is overdue"
    assert rows[soon_key].subject == f"{world.cart.title} is required soon"
    assert not any(r.person_id == world.tech2.person.id for r in rows.values())
    team = notices.team_notices(world.course, now)
    assert [(n.title, n.detail) for n in team] == [(world.tech.person.display_name, "1 required overdue")]


def test_the_matrix_csv_and_roster_say_overdue_and_required_by(world):
    from lti_tool.services import reports, transcript_exports

    today = status.local_today(world.reg)
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.garb.id], audience="people",
                                                       person_ids=[world.tech.person.id],
                                                       due_on=(today - DAY).isoformat()))
    edits.create(world.manager, world.course.id, _form(competency_ids=[world.cart.id], audience="people",
                                                       person_ids=[world.tech.person.id], due_on="2099-12-31"))
    text = transcript_exports.course_matrix_csv(world.manager, world.course.id)
    due = us_date(today - DAY)
    assert f"Not started; overdue, required by {due}" in text and "Not started; required by Dec 31, 2099" in text
    roster = reports.roster(world.manager, world.course.id, f"c:{world.garb.id}")
    assert roster.counts[reports.OVERDUE] == 1
    labels = {r.person.id: r.standing_label for r in roster.rows}
    assert labels[world.tech.person.id] == f"Not qualified; overdue, required by {due}"
    assert labels[world.tech2.person.id] == "Not qualified"


def test_a_technician_joining_later_and_leaving_follows_the_requirements(world, make):
    req = edits.create(world.manager, world.course.id, _form(competency_ids=[world.cart.id]))
    newcomer = make.actor(world.course, "technician")
    assert _stored_required(newcomer.person.id) == {world.cart.id: (date(2030, 1, 31), req.id)}
    newcomer.membership.active = False
    db.session.flush()
    assert _stored_required(newcomer.person.id) == {}
    manager_side = make.actor(world.course, "manager")
    assert _stored_required(manager_side.person.id) == {}


def test_large_rewrites_go_in_batches_with_the_same_result(world, make, monkeypatch):
    # A requirement for everyone in a large course rewrites tens of thousands of pairs: in batches of whole people
    # (bench/requirements.py measures 2,000 technicians); here batches of two pairs give the same rows.
    monkeypatch.setattr(status_store, "_PAIRS_PER_BATCH", 2)
    monkeypatch.setattr(status_store, "_PEOPLE_PER_LIST", 2)
    people = [world.tech, world.tech2, *(make.actor(world.course, "technician") for _ in range(3))]
    world.signed(world.cart, actor=world.tech2, now=status.now_utc() - DAY)
    req = edits.create(world.manager, world.course.id, _form(departments=["central", "iv_room"]))
    for tech in people:
        assert _stored_required(tech.person.id) == {c.id: (date(2030, 1, 31), req.id)
                                                    for c in (world.garb, world.cart, world.audit_comp)}
    held = db.session.get(StoredStatus, (world.tech2.person.id, world.cart.id), populate_existing=True)
    assert held.state == status.ACHIEVED and held.required_by == date(2030, 1, 31)


def _team_of(world, make, size):
    """Technicians with a mix of histories: held, awaiting review, drafting, nothing."""
    now = status.now_utc()
    for i in range(size):
        actor = make.actor(world.course, "technician")
        if i % 4 == 0:
            world.signed(world.garb, actor=actor, now=now - 30 * DAY)
        elif i % 4 == 1:
            world.submitted(actor, [world.cart], now=now - DAY)
        elif i % 4 == 2:
            world.evidence(actor, [world.audit_comp])


def _requirement_statements(world, due=None, moved=None):
    """Statements to create, move, retire a requirement for everyone, each in its own flush."""
    due = due or {"due_on": "2030-01-31"}
    moved = moved or {"due_on": "2030-03-31"}
    counts = []
    with count_queries() as n:
        req = edits.create(world.manager, world.course.id, _form(departments=["central", "iv_room"], **due))
        db.session.flush()
    counts.append(n[0])
    with count_queries() as n:
        edits.update(world.manager, req.id, _form(departments=["central", "iv_room"], **moved))
        db.session.flush()
    counts.append(n[0])
    with count_queries() as n:
        edits.retire(world.manager, req.id)
        db.session.flush()
    counts.append(n[0])
    return req, counts


def test_a_requirement_for_everyone_takes_the_same_statements_for_20_or_200_technicians(world, make):
    # A requirement changes no history: the store applies the new required-by dates set-based (bench/requirements
    # .py: 2,000 technicians x 13 competencies), not by judging every pair again.
    _team_of(world, make, 18)
    _, small = _requirement_statements(world)
    _team_of(world, make, 180)
    req, large = _requirement_statements(world)
    assert small == large, (small, large)
    print("statements to create, move, retire:", large)
    assert max(large) <= 20, large
    # And the rows are what judging every pair from the history makes of them.
    assert _rows() and not any(row[-2:] != (None, None) for row in _rows().values()), "retired: none required"
    edits.create(world.manager, world.course.id, _form(departments=["central", "iv_room"]))
    db.session.flush()
    kept = _rows()
    status_store.rebuild(world.course.id)
    assert _rows() == kept and len(kept) == 200 * 3


def _rows():
    return {(r.person_id, r.competency_id): (r.state, r.sign_off_id, r.awaiting_review, r.in_progress,
                                            r.required_by, r.requirement_id)
            for r in db.session.execute(select(*StoredStatus.__table__.c))}


def test_a_window_after_assignment_takes_the_same_statements_however_many_assignment_days(world, make):
    # "90 days after assignment" gives every technician assigned on another day another date: the store writes
    # each person's own date in one statement per competency, not one per competency and date.
    days = {"due_kind": "days", "due_days": "90"}
    moved = {"due_kind": "days", "due_days": "120"}

    def team(size):
        _team_of(world, make, size)
        techs = sorted(db.session.scalars(select(Membership.person_id).where(
            Membership.course_id == world.course.id, Membership.role == "technician")))
        for offset, person_id in enumerate(techs):
            edits.set_attributes(world.manager, world.course.id, [person_id],
                                 {"assigned_on": (date(2026, 1, 1) + offset * DAY).isoformat()})
        db.session.flush()
        return techs

    team(18)
    _, small = _requirement_statements(world, days, moved)
    techs = team(180)
    _, large = _requirement_statements(world, days, moved)
    assert small == large, (small, large)
    assert max(large) <= 20, large
    req = edits.create(world.manager, world.course.id, _form(departments=["central", "iv_room"], **days))
    db.session.flush()
    edits.update(world.manager, req.id, _form(departments=["central", "iv_room"], **moved))
    db.session.flush()
    kept = _rows()
    dates = {kept[(p, world.cart.id)][-2] for p in techs}
    assert len(dates) == len(techs) == 200, "a date per assignment day"
    status_store.rebuild(world.course.id)
    assert _rows() == kept
