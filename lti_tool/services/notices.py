"""What is waiting for a person: the notices on each role's home page, and what the reminder e-mails say.

The same functions feed both, so the home page and an e-mail never disagree. Statuses are the stored status
(status.current, judged by the clock at the moment given), never the history judged again; "due soon" means within
the tenant's first reminder (60 days by default), dates are the tenant's. The words are written in the current
language: the viewer's on a page, the recipient's in an e-mail.
"""
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext, ngettext
from flask_babel import gettext as _
from sqlalchemy import case, func, or_, select

from ..extensions import db
from ..formatting import us_date
from ..formatting import zone as zone_named
from ..lti.roles import TECHNICIAN
from ..models import Evidence, Membership, Person, ReviewRequest, StoredStatus
from ..models.evidence import RETURNED, WITHDRAWN
from ..models.people import display_name, name_order
from ..models.reviews import RETURNED as REQUEST_RETURNED
from . import Forbidden, NotFound, review_queue, settings, status
from .preceptors import reviewer_scope

EXPIRING, EXPIRED, RETURNED_KIND, WAITING, TEAM = "expiring", "expired", "returned", "waiting", "team"
TEAM_SUMMARY = "team_summary"  # how many technicians need attention, of each kind, when not all are named
# The home page and the digest name this many technicians, the most urgent first; the team matrix lists everyone.
# A health system's course of 2,000 has hundreds with something due: a page or an e-mail of hundreds of names
# helps nobody, and cost grew with the team.
TEAM_LINES = 20
OVERDUE, REQUIRED = "overdue", "required"  # requirements (issue 15): past their date / due within the horizon


@dataclass(frozen=True)
class Notice:
    kind: str
    title: str
    detail: str
    # For expiry notices: what expires (sign-off or certification evidence id) and the day, in the tenant's zone.
    ref: str = ""
    day: date | None = None


def tenant_clock(registration, now: datetime) -> tuple:
    """(time zone, today there, how many days ahead counts as due soon)."""
    tz = zone_named(settings.get(registration, "time_zone"))
    return tz, now.astimezone(tz).date(), max(settings.get(registration, "reminder_days"))


def _expiry(kind_ref: str, title: str, expires: date, today: date, horizon: int) -> Notice | None:
    days = (expires - today).days
    if days < 0:
        return Notice(EXPIRED, title, _("expired on %(date)s", date=us_date(expires)), kind_ref, expires)
    if days <= horizon:
        if days == 0:
            detail = _("expires today, on %(date)s", date=us_date(expires))
        elif days == 1:
            detail = _("expires tomorrow, on %(date)s", date=us_date(expires))
        else:
            detail = _("expires in %(days)d days, on %(date)s", days=days, date=us_date(expires))
        return Notice(EXPIRING, title, detail, kind_ref, expires)
    return None


def competency_expiries(entries: dict, titles: dict, zone, today: date, horizon: int) -> list[Notice]:
    """From one person's {competency_id: CompetencyStatus}: held competencies due soon and expired ones, by the
    day of expiry in the tenant's calendar (_team_counts says the same in SQL)."""
    found = []
    for competency_id, entry in entries.items():
        if entry.expires_at is None or entry.status not in (status.ACHIEVED, status.DUE_FOR_REVALIDATION,
                                                            status.EXPIRED):
            continue
        notice = _expiry(f"signoff:{entry.sign_off_id}", titles[competency_id],
                         entry.expires_at.astimezone(zone).date(), today, horizon)
        if notice:
            found.append(notice)
    return sorted(found, key=lambda n: n.day)


def competency_requirements(entries: dict, titles: dict, today: date, horizon: int) -> list[Notice]:
    """From one person's {competency_id: CompetencyStatus}: required competencies not held whose date has passed
    (overdue) or comes within `horizon` days. The wording every page and e-mail uses."""
    found = []
    for competency_id, entry in entries.items():
        if entry.required_by is None or entry.held or competency_id not in titles:
            continue
        days = (entry.required_by - today).days
        day = us_date(entry.required_by)
        ref = f"required:{competency_id}:{entry.required_by.isoformat()}"
        if days < 0:
            found.append(Notice(OVERDUE, titles[competency_id], gettext("required by %(date)s: overdue", date=day),
                                ref, entry.required_by))
        elif days <= horizon:
            when = gettext("today") if days == 0 else (gettext("tomorrow") if days == 1 else
                                                       gettext("in %(days)s days", days=days))
            found.append(Notice(REQUIRED, titles[competency_id],
                                gettext("required %(when)s, by %(date)s", when=when, date=day), ref,
                                entry.required_by))
    return sorted(found, key=lambda n: (n.kind != OVERDUE, n.day))


def certifications_by_person(person_ids) -> dict:
    """{person_id: [(evidence_id, title, expiration date)]}: the latest of each credential (a renewal replaces the
    card it renews), withdrawn and draft records left out."""
    latest: dict = {}
    rows = db.session.execute(select(Evidence.id, Evidence.person_id, Evidence.title, Evidence.data).where(
        Evidence.person_id.in_(person_ids), Evidence.kind == "certification",
        Evidence.status.not_in((WITHDRAWN, "draft"))))
    for evidence_id, person_id, title, data in rows:
        raw = (data or {}).get("expiry_date")
        if not raw:
            continue
        expires = date.fromisoformat(str(raw)[:10])
        key = (person_id, (data or {}).get("credential") or title)
        if key not in latest or latest[key][2] < expires:
            latest[key] = (evidence_id, title, expires)
    found: dict = {}
    for (person_id, _credential), item in latest.items():
        found.setdefault(person_id, []).append(item)
    return found


def certification_expiries(items, today: date, horizon: int) -> list[Notice]:
    found = [_expiry(f"certification:{evidence_id}", title, expires, today, horizon)
             for evidence_id, title, expires in items]
    return sorted((n for n in found if n), key=lambda n: n.day)


def technician_notices(person, course, now: datetime) -> list[Notice]:
    """A technician's home page: competencies and certifications due soon or expired, evidence returned."""
    zone, today, horizon = tenant_clock(course.registration, now)
    competencies = status.course_competencies(course)
    titles = {c.id: c.title for c in competencies}
    entries = status.current(course.registration, [person.id], list(titles), now)[person.id]
    notices = competency_requirements(entries, titles, today, horizon)
    notices += competency_expiries(entries, titles, zone, today, horizon)
    notices += certification_expiries(certifications_by_person([person.id]).get(person.id, []), today, horizon)
    returned = db.session.execute(
        select(Evidence.title, ReviewRequest.return_comment, ReviewRequest.resolved_at)
        .join(ReviewRequest, ReviewRequest.evidence_id == Evidence.id)
        .where(Evidence.person_id == person.id, Evidence.course_id == course.id, Evidence.status == RETURNED,
               ReviewRequest.status == REQUEST_RETURNED)
        .order_by(ReviewRequest.resolved_at.desc())).all()
    seen = set()
    for title, comment, resolved_at in returned:
        if title in seen:
            continue
        seen.add(title)
        notices.append(Notice(RETURNED_KIND, title, returned_detail(us_date(resolved_at.astimezone(zone).date()),
                                                                    comment)))
    return notices


def returned_detail(day: str, comment: str | None) -> str:
    if comment:
        return _("returned for revision on %(date)s: %(comment)s", date=day, comment=comment)
    return _("returned for revision on %(date)s", date=day)


def waiting(count: int, oldest: str) -> Notice:
    """The reviewer's notice of review requests waiting (home page and digest)."""
    return Notice(WAITING, ngettext("%(num)d review request waiting", "%(num)d review requests waiting", count),
                  _("the oldest since %(date)s", date=oldest))


def reviewer_notices(actor, now: datetime) -> list[Notice]:
    """A manager's or preceptor's notices (reviewer_overview's), none for anyone else."""
    try:
        return reviewer_overview(actor, now)[1]
    except (Forbidden, NotFound):
        return []


def reviewer_overview(actor, now: datetime) -> tuple[int, list[Notice]]:
    """(open review requests the actor reviews in their course, the notices of their home page): what waits for
    their review; for managers also who in the course is due soon or expired. Forbidden or NotFound for someone
    who reviews nothing there. The reviewer's scope is read once, for the count and for "is a manager"."""
    course, precepted = reviewer_scope(actor, actor.course.id)
    count, oldest = review_queue.waiting(actor, course.id, (course, precepted))
    zone, _today, _horizon = tenant_clock(course.registration, now)
    notices = [waiting(count, us_date(oldest.astimezone(zone).date()))] if count else []
    if precepted is None:  # reviewer_scope's word for a manager of the course
        notices += team_notices(course, now)
    return count, notices


def team_notices(course, now: datetime, limit: int | None = TEAM_LINES) -> list[Notice]:
    """One notice per active technician of the course with a required competency overdue, a competency expired
    or one expiring within the horizon, the most urgent first (_team_counts): the manager's home page and
    digest. When more than `limit` have something to say, the first notice (TEAM_SUMMARY) says how many in all
    and of each kind, and only the `limit` most urgent follow. One statement on the stored status, which
    returns only the lines shown: the cost hardly grows with the team."""
    zone, today, horizon = tenant_clock(course.registration, now)
    query = _team_counts(course, now, zone, today, horizon)
    rows = db.session.execute(query if limit is None else query.limit(limit)).all()
    # Each wording translated once (gettext(text, **values) is gettext(text) % values), each day written once.
    overdue_text, expired_text, due_text = (gettext("%(count)s required overdue"), _("%(n)d expired"),
                                            _("%(n)d due by %(date)s"))
    days: dict = {}
    found = [_team_summary(rows[0], len(rows), us_date(today + timedelta(days=horizon)))] \
        if rows and rows[0].people > len(rows) else []
    for row in rows:
        parts = [overdue_text % {"count": row.overdue}] if row.overdue else []
        if row.expired:
            parts.append(expired_text % {"n": row.expired})
        if row.due:
            day = row.last_due.astimezone(zone).date()
            if day not in days:
                days[day] = us_date(day)
            parts.append(due_text % {"n": row.due, "date": days[day]})
        name = display_name(row.name, row.given_name, row.family_name, row.email, row.sub)
        found.append(Notice(TEAM, name, ", ".join(parts)))
    return found


def _team_summary(row, shown: int, horizon_day: str) -> Notice:
    """How many technicians need attention in all and of each kind (the window counts every row carries)."""
    title = ngettext("%(num)d technician needs attention", "%(num)d technicians need attention", row.people)
    detail = _("%(overdue)d with a required competency overdue, %(expired)d with a competency expired, "
               "%(due)d with one due by %(date)s; the %(shown)d most urgent are listed, the team matrix has "
               "everyone", overdue=row.people_overdue, expired=row.people_expired, due=row.people_due,
               date=horizon_day, shown=shown)
    return Notice(TEAM_SUMMARY, title, detail)


def _start_of(day: date, zone) -> datetime:
    """The first moment of `day` in `zone`, in UTC: an expiry before it falls on an earlier day there."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _team_counts(course, now: datetime, zone, today: date, horizon: int):
    """The select behind team_notices: per active technician with anything to say, their name's columns and how
    many of the course's competencies are overdue (status.current_is, the rule of the matrix's filter and of
    competency_requirements), expired and due within `horizon` days (competency_expiries: days are counted in
    the tenant's calendar, so the bounds are the tenant's midnights), with the latest such expiry, the most
    urgent first; each row also carries how many technicians are listed in all, and with each kind."""
    table = StoredStatus
    dated = (table.state == status.ACHIEVED) & table.expires_at.is_not(None)
    expired = dated & (table.expires_at < _start_of(today, zone))
    due = dated & (table.expires_at >= _start_of(today, zone)) \
        & (table.expires_at < _start_of(today + timedelta(days=horizon + 1), zone))
    overdue = status.current_is(status.OVERDUE, now, status.warning_window(course.registration), today=today)

    def how_many(condition):
        return func.sum(case((condition, 1), else_=0))

    counted = (
        select(table.person_id, how_many(overdue).label("overdue"), how_many(expired).label("expired"),
               how_many(due).label("due"), func.min(case((due, table.expires_at))).label("first_due"),
               func.max(case((due, table.expires_at))).label("last_due"))
        .join(Membership, (Membership.person_id == table.person_id) & (Membership.course_id == course.id)
              & Membership.active.is_(True) & (Membership.role == TECHNICIAN))
        .where(table.competency_id.in_(status.course_competency_ids(course)), or_(overdue, expired, due))
        .group_by(table.person_id)
        .subquery()
    )

    def people_with(column):
        return func.sum(case((column > 0, 1), else_=0)).over()

    # Who comes first: a required competency overdue (a training deadline missed), then one expired (working
    # without a current sign-off), then the soonest to expire; then by name (the order of every list of people).
    urgency = (case((counted.c.overdue > 0, 0), (counted.c.expired > 0, 1), else_=2),
               counted.c.first_due.nulls_last())
    return (select(Person.name, Person.given_name, Person.family_name, Person.email, Person.sub, counted.c.overdue,
                   counted.c.expired, counted.c.due, counted.c.last_due, func.count().over().label("people"),
                   people_with(counted.c.overdue).label("people_overdue"),
                   people_with(counted.c.expired).label("people_expired"),
                   people_with(counted.c.due).label("people_due"))
            .join(counted, counted.c.person_id == Person.id).order_by(*urgency, *name_order()))
