"""What is waiting for a person: the notices on each role's home page, and what the reminder e-mails say.

The same functions feed both, so the home page and an e-mail never disagree. Expiry is read through the status
service; "due soon" means within the tenant's first reminder (60 days by default), dates are the tenant's. The
words are written in the current language: the viewer's on a page, the recipient's in an e-mail.
"""
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext, ngettext
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..formatting import us_date
from ..formatting import zone as zone_named
from ..models import Evidence, Person, ReviewRequest
from ..models.evidence import RETURNED, WITHDRAWN
from ..models.reviews import RETURNED as REQUEST_RETURNED
from . import Forbidden, NotFound, review_queue, scope, settings, status

EXPIRING, EXPIRED, RETURNED_KIND, WAITING, TEAM = "expiring", "expired", "returned", "waiting", "team"
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
    """From one person's {competency_id: CompetencyStatus}: held competencies due soon and expired ones."""
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
    """{person_id: [(evidence_id, title, expiry date)]}: the latest of each credential (a renewal replaces the
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
    entries = status.compute(course.registration, [person.id], list(titles), now)[person.id]
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
    """A manager's or preceptor's home page: what waits for their review; for managers also who in the course
    is due soon or expired."""
    course = actor.course
    try:
        count, oldest = review_queue.waiting(actor, course.id)
    except (Forbidden, NotFound):
        return []
    zone, today, horizon = tenant_clock(course.registration, now)
    notices = []
    if count:
        notices.append(waiting(count, us_date(oldest.astimezone(zone).date())))
    if scope.manages(actor.person.id, course.id):
        notices += team_notices(course, status.team_statuses(actor, course, as_of=now), today, zone, horizon)
    return notices


def team_notices(course, statuses: dict, today: date, zone, horizon: int, names: dict | None = None) -> list:
    """One notice per technician with something expired or due soon (names: {person_id: name})."""
    if names is None:
        names = {p.id: p.display_name for p in db.session.scalars(select(Person).where(
            Person.id.in_(list(statuses))))}
    found = []
    for person_id, entries in statuses.items():
        items = competency_expiries(entries, dict.fromkeys(entries, ""), zone, today, horizon)
        expired = sum(1 for n in items if n.kind == EXPIRED)
        due = [n for n in items if n.kind == EXPIRING]
        overdue = sum(1 for n in competency_requirements(entries, dict.fromkeys(entries, ""), today, horizon)
                      if n.kind == OVERDUE)
        if not expired and not due and not overdue:
            continue
        parts = [gettext("%(count)s required overdue", count=overdue)] if overdue else []
        if expired:
            parts.append(_("%(n)d expired", n=expired))
        if due:
            parts.append(_("%(n)d due by %(date)s", n=len(due), date=us_date(due[-1].day)))
        found.append(Notice(TEAM, names.get(person_id, _("A technician")), ", ".join(parts)))
    return sorted(found, key=lambda n: n.title.lower())

