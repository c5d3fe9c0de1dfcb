"""The manager's team notices (home page and digest) and a technician's own notices read the stored status: on a
team with something of every kind (expired, expiring today and on the horizon's last day, just past it, required
and overdue, required but held, awaiting review, left the course, a manager, namesakes), they say exactly what
the history judged at the same moment said, the way the home page computed them before
(status.team_statuses(as_of=now) and the per-technician rules), at several moments."""
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.formatting import us_date
from lti_tool.models import Membership
from lti_tool.services import notices, requirement_edits, review_queue, status
from tests.support.competency_world import World, count_queries

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
ZONE = "America/Los_Angeles"  # eight hours from UTC: a tenant's midnight is not UTC's


def _midnight(day, zone) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _expiring(world, tech, competency, expires_at):
    """A sign-off of `competency` for `tech` that stops counting at `expires_at` (set after signing: the stored
    row follows, as for any change to a sign-off)."""
    signed_at = min(expires_at, status.now_utc()) - 200 * DAY
    row = world.signed(competency, actor=tech, now=signed_at)
    row.expires_at = expires_at
    db.session.flush()
    return row


def _require(world, tech, competency, due_on):
    requirement_edits.create(world.manager, world.course.id, {
        "name": f"{competency.code} by {due_on}", "competency_ids": [competency.id], "audience": "people",
        "person_ids": [tech.person.id], "due_kind": "date", "due_on": due_on.isoformat()})


@pytest.fixture
def team(make):
    world = World(make)
    world.reg.settings = {"time_zone": ZONE}
    zone = status.settings.time_zone(world.reg)
    today = status.local_today(world.reg)
    horizon = max(status.settings.get(world.reg, "reminder_days"))
    start, beyond = _midnight(today, zone), _midnight(today + (horizon + 1) * DAY, zone)

    def tech(name):
        actor = make.actor(world.course, "technician")
        actor.person.name = name
        return actor

    _expiring(world, tech("Erin Expired"), world.garb, start - MINUTE)  # yesterday there
    both = tech("dana Due")  # lower case sorts with the others
    _expiring(world, both, world.garb, start + MINUTE)  # today: "expires today"
    _expiring(world, both, world.audit_comp, beyond - MINUTE)  # the horizon's last day
    _expiring(world, tech("Bo Beyond"), world.garb, beyond + MINUTE)  # a day too far: nothing
    late = tech("Olu Overdue")
    _require(world, late, world.cart, today - 3 * DAY)
    _require(world, late, world.garb, today + 10 * DAY)  # required soon: the technician's notice only
    held = tech("Hana Held")
    _expiring(world, held, world.garb, start + 100 * DAY)
    _require(world, held, world.garb, today - 5 * DAY)  # held: not overdue
    mixed = tech("Max Mixed")
    _expiring(world, mixed, world.garb, start - 5 * DAY)
    _require(world, mixed, world.garb, today - DAY)  # expired, so not held: overdue too
    _expiring(world, mixed, world.audit_comp, start + 20 * DAY)
    world.submitted(tech("Wes Waiting"), [world.cart], now=status.now_utc() - 2 * DAY)
    gone = tech("Lee Left")
    _expiring(world, gone, world.garb, start - 2 * DAY)
    gone.membership.active = False
    colleague = make.actor(world.course, "manager")  # manager-side: not on the team
    colleague.person.name = "Mia Manager"
    _expiring(world, colleague, world.garb, start - 4 * DAY)
    for _twin in range(2):  # namesakes: both listed, in id order
        _expiring(world, tech("Sam Same"), world.garb, start - 3 * DAY)
    db.session.flush()
    return world


def _members(world) -> list:
    return list(db.session.scalars(select(Membership).where(Membership.course_id == world.course.id)
                                   .order_by(Membership.id)))


def _old_team_notices(world, now):
    """The notices as the home page made them before: every technician's history judged at `now`."""
    zone, today, horizon = notices.tenant_clock(world.reg, now)
    statuses = status.team_statuses(world.manager, world.course, as_of=now)
    names = {p.id: p.display_name for p in (m.person for m in _members(world))}
    found = []
    for person_id, entries in statuses.items():
        items = notices.competency_expiries(entries, dict.fromkeys(entries, ""), zone, today, horizon)
        expired = sum(1 for n in items if n.kind == notices.EXPIRED)
        due = [n for n in items if n.kind == notices.EXPIRING]
        overdue = sum(1 for n in notices.competency_requirements(entries, dict.fromkeys(entries, ""), today,
                                                                 horizon) if n.kind == notices.OVERDUE)
        if not expired and not due and not overdue:
            continue
        parts = [f"{overdue} required overdue"] if overdue else []
        if expired:
            parts.append(f"{expired} expired")
        if due:
            parts.append(f"{len(due)} due by {us_date(due[-1].day)}")
        urgency = (not overdue, not expired, due[0].day if due else date.max, names[person_id].lower())
        found.append((urgency, notices.Notice(notices.TEAM, names[person_id], ", ".join(parts))))
    return [notice for _urgency, notice in sorted(found, key=lambda item: item[0])]


def _old_own_notices(world, person, now):
    """A technician's competency notices as before: their history judged at `now`."""
    zone, today, horizon = notices.tenant_clock(world.reg, now)
    titles = {c.id: c.title for c in status.course_competencies(world.course)}
    entries = status.compute(world.reg, [person.id], list(titles), as_of=now)[person.id]
    return notices.competency_requirements(entries, titles, today, horizon) + \
        notices.competency_expiries(entries, titles, zone, today, horizon)


@pytest.mark.parametrize("days_later", [0, 1, 30, 61, 200])
def test_team_and_own_notices_say_what_the_history_says(team, days_later):
    now = status.now_utc() + days_later * DAY
    found = notices.team_notices(team.course, now)
    assert found == _old_team_notices(team, now)
    count, oldest = review_queue.waiting(team.manager, team.course.id)
    assert notices.reviewer_notices(team.manager, now) == [
        notices.waiting(count, us_date(oldest.astimezone(status.settings.time_zone(team.reg)).date())),
        *found]
    for membership in _members(team):
        if membership.role == "technician":
            assert notices.technician_notices(membership.person, team.course, now) == \
                _old_own_notices(team, membership.person, now), membership.person.display_name


def test_the_seeded_team_has_every_kind_of_notice(team):
    """The comparison above is only as good as the team: the notices it reads today, in words."""
    zone, today, horizon = notices.tenant_clock(team.reg, status.now_utc())
    last_day = us_date(today + horizon * DAY)
    found = [(n.title, n.detail) for n in notices.team_notices(team.course, status.now_utc())]
    # The most urgent first: a requirement overdue, then expired, then the soonest due; by name within each.
    assert found == [
        ("Max Mixed", f"1 required overdue, 1 expired, 1 due by {us_date(today + 20 * DAY)}"),
        ("Olu Overdue", "1 required overdue"),
        ("Erin Expired", "1 expired"),
        ("Sam Same", "1 expired"),
        ("Sam Same", "1 expired"),
        ("dana Due", f"2 due by {last_day}"),
    ]
    waiting = notices.reviewer_notices(team.manager, status.now_utc())[0]
    assert (waiting.kind, waiting.title) == (notices.WAITING, "1 review request waiting")
    late = next(m.person for m in _members(team) if m.person.name == "Olu Overdue")
    own = [(n.kind, n.detail) for n in notices.technician_notices(late, team.course, status.now_utc())]
    assert own == [(notices.OVERDUE, f"required by {us_date(today - 3 * DAY)}: overdue"),
                   (notices.REQUIRED, f"required in 10 days, by {us_date(today + 10 * DAY)}")]


def test_team_notices_are_one_statement_whatever_the_team(team, make):
    with count_queries() as n:
        small = notices.team_notices(team.course, status.now_utc())
    for _extra in range(12):
        actor = make.actor(team.course, "technician")
        _expiring(team, actor, team.garb, status.now_utc() - 3 * DAY)
    with count_queries() as m:
        large = notices.team_notices(team.course, status.now_utc())
    assert len(large) == len(small) + 12
    assert n[0] == m[0] == 1


def test_a_long_list_names_the_most_urgent_and_counts_everyone(team):
    """More technicians than the home page names: a summary of how many of each kind comes first, then only the
    most urgent, in the same order as the whole list."""
    now = status.now_utc()
    everyone = notices.team_notices(team.course, now, limit=None)
    assert len(everyone) == 6 and all(n.kind == notices.TEAM for n in everyone)
    assert notices.team_notices(team.course, now, limit=6) == everyone  # all fit: no summary
    cut = notices.team_notices(team.course, now, limit=3)
    summary, *named = cut
    assert named == everyone[:3]
    zone, today, horizon = notices.tenant_clock(team.reg, now)
    assert (summary.kind, summary.title) == (notices.TEAM_SUMMARY, "6 technicians need attention")
    # Max is overdue, expired and due at once: counted under each kind, once in the six.
    assert summary.detail == (
        "2 with a required competency overdue, 4 with a competency expired, 2 with one due by "
        f"{us_date(today + horizon * DAY)}; the 3 most urgent are listed, the team matrix has everyone")
