"""Planning reminder e-mails: which events are due, and one rendered row per event in the sent-messages table.

Events and their keys (the database refuses a second row with the same key, so planning can run on any number of
workers at once and as often as wanted):
- a technician's competency or certification expiring: `expiry:<signoff|certification>:<id>:<stage>`, stages
  from the tenant's reminder days (60, 14, 0 by default; only the nearest due stage is sent, so a reminder that
  was missed is not followed by an older one; "0" is also sent up to a week after the day, saying it expired);
- evidence returned for revision: `returned:<review request>`; a sign-off recorded: `signed:<sign-off>`
  (both for a week after the event);
- a manager's or preceptor's digest: `digest:<person>:<course>:<day or ISO week>`, from 7 a.m. in the tenant's
  time zone, only when something waits.
Statuses are the stored status judged at the planning moment (status.current), what the home page reads too.
Only addresses the LMS shared are used; people without one see the same notices on their home page only.
Each message is written in its recipient's language (the one they picked in the tool, else their LMS's, else
English): subject, introduction, items and dates.
"""
from datetime import datetime, timedelta

from flask import current_app, render_template
from flask_babel import gettext
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..formatting import us_date
from ..i18n import in_language
from ..lti.roles import MANAGER_SIDE, TECHNICIAN
from ..lti.urls import origin
from ..models import (
    Competency,
    Course,
    Membership,
    Person,
    Preceptor,
    Registration,
    ResourceLink,
    ReviewRequest,
    SentMessage,
    SignOff,
)
from ..models.base import utcnow
from ..models.notifications import DIGEST, REMINDERS, REVIEW_UPDATES
from ..models.reviews import RETURNED
from . import notices, preferences, review_queue, settings, status
from .actors import Actor

RECENT = timedelta(days=7)
LATE_EXPIRY_DAYS = 7
DIGEST_HOUR = 7
CHUNK = 500


def stage_for(days_left: int, stages: list[int]) -> int | None:
    """The reminder stage due `days_left` days before expiry (negative: after), or None."""
    if days_left < 0:
        return 0 if 0 in stages and days_left >= -LATE_EXPIRY_DAYS else None
    due = [s for s in stages if days_left <= s]
    return min(due) if due else None


def where_to_open(course: Course) -> dict:
    """How to reach the tool: the course and activity to open in the LMS (the link only opens the LMS)."""
    registration = course.registration
    activity = db.session.scalar(select(ResourceLink.title).where(ResourceLink.course_id == course.id,
                                                                  ResourceLink.title.is_not(None))
                                 .order_by(ResourceLink.id).limit(1))
    frames = (registration.settings or {}).get("frame_origins") or []
    return {"course": course.display_title, "activity": activity or current_app.config["TOOL_TITLE"],
            "lms": registration.name, "lms_url": frames[0] if frames else origin(registration.issuer)}


class Planner:
    """Collects the messages of one planning run, renders only those not sent before, and inserts them."""

    def __init__(self, now: datetime):
        self.now, self.rows = now, []
        self.base = current_app.config["TOOL_BASE_URL"].rstrip("/")

    def add(self, person: Person, key: str, category: str, subject: str, intro: str, items, where: dict):
        self.rows.append((person, key, category, subject, intro, list(items), where))

    def save(self) -> list[int]:
        """Insert what is new; returns the ids of the rows this run created."""
        keys = [r[1] for r in self.rows]
        known = set()
        for i in range(0, len(keys), CHUNK):
            known.update(db.session.scalars(select(SentMessage.event_key).where(
                SentMessage.event_key.in_(keys[i:i + CHUNK]))))
        values = [self._render(*row) for row in self.rows if row[1] not in known]
        dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
        created = []
        for i in range(0, len(values), CHUNK):
            statement = (dialect.insert(SentMessage).values(values[i:i + CHUNK])
                         .on_conflict_do_nothing(index_elements=["event_key"]).returning(SentMessage.id))
            created += list(db.session.scalars(statement))
        return created

    def _render(self, person, key, category, subject, intro, items, where):
        unsubscribe = f"{self.base}/notifications/unsubscribe/{preferences.unsubscribe_token(person.id, category)}"
        context = {"name": person.given_name or person.display_name, "intro": intro, "items": items,
                   "where": where, "unsubscribe_url": unsubscribe, "category": category,
                   "tool_title": current_app.config["TOOL_TITLE"]}
        with in_language(person):
            body_text = render_template("email/message.txt", **context)
            body_html = render_template("email/message.html", **context)
        return {"registration_id": person.registration_id, "person_id": person.id, "event_key": key,
                "category": category, "to_address": person.email, "subject": subject[:300],
                "body_text": body_text, "body_html": body_html, "unsubscribe_url": unsubscribe,
                "status": "pending", "attempts": 0, "next_attempt_at": self.now, "created_at": self.now}


def plan(now: datetime | None = None) -> list[int]:
    """Plan every tenant's due messages; returns the ids of new rows (the caller queues them for sending)."""
    now = now or utcnow()
    created = []
    for registration in db.session.scalars(select(Registration).order_by(Registration.id)).all():
        if settings.get(registration, "email_enabled"):
            planner = Planner(now)
            _plan_tenant(planner, registration, now)
            created += planner.save()
    db.session.flush()
    return created


def _plan_tenant(planner: Planner, registration: Registration, now: datetime):
    zone, today, horizon = notices.tenant_clock(registration, now)
    stages = settings.get(registration, "reminder_days")
    prefs = preferences.for_people(select(Person.id).where(Person.registration_id == registration.id))
    courses = db.session.scalars(select(Course).where(Course.registration_id == registration.id)
                                 .order_by(Course.id)).all()
    reminded = set()
    for course in courses:
        members = db.session.execute(select(Membership, Person).join(Person, Person.id == Membership.person_id)
                                     .where(Membership.course_id == course.id, Membership.active.is_(True))).all()
        if not members:
            continue
        where = where_to_open(course)
        technicians = {p.id: p for m, p in members if m.role == TECHNICIAN}
        titles = {c.id: c.title for c in status.course_competencies(course)}
        statuses = status.current(registration, list(technicians), list(titles), now)
        certifications = notices.certifications_by_person(list(technicians))
        for person_id, person in technicians.items():
            if person_id in reminded or not person.email or not preferences.wants(prefs.get(person_id), REMINDERS):
                continue
            reminded.add(person_id)  # status belongs to the person: one reminder whatever the number of courses
            with in_language(person):
                _plan_expiries(planner, person, statuses[person_id], certifications.get(person_id, []), titles,
                               (zone, today, horizon), stages, where)
                for item in notices.competency_requirements(statuses[person_id], titles, today, horizon):
                    stage = stage_for((item.day - today).days, stages)
                    if stage is not None:
                        subject = (gettext("%(title)s is overdue", title=item.title)
                                   if item.kind == notices.OVERDUE
                                   else gettext("%(title)s is required soon", title=item.title))
                        planner.add(person, f"{item.ref}:{person_id}:{stage}", REMINDERS, subject,
                                    gettext("%(title)s: %(detail)s. Record evidence and ask for review.",
                                            title=item.title, detail=item.detail), [item], where)
        _plan_digests(planner, course, members, prefs, (zone, today, horizon), where)
    _plan_review_updates(planner, registration, prefs, zone, now)


def _plan_expiries(planner, person, entries, certifications, titles, clock, stages, where):
    zone, today, horizon = clock
    items = notices.competency_expiries(entries, titles, zone, today, horizon)
    items += notices.certification_expiries(certifications, today, horizon)
    for item in items:
        stage = stage_for((item.day - today).days, stages)
        if stage is not None:
            subject = _("%(title)s expired", title=item.title) if item.kind == notices.EXPIRED \
                else _("%(title)s is due for renewal", title=item.title)
            planner.add(person, f"expiry:{item.ref}:{stage}", REMINDERS, subject,
                        _("%(title)s %(detail)s. Record new evidence and ask for review in time.", title=item.title,
                          detail=item.detail), [item], where)


def _plan_digests(planner, course, members, prefs, clock, where):
    zone, today, _horizon = clock
    local = planner.now.astimezone(zone)
    if local.hour < DIGEST_HOUR:
        return
    preceptor_ids = set(db.session.scalars(select(Preceptor.person_id).where(
        Preceptor.course_id == course.id, Preceptor.active.is_(True))))
    teams: dict = {}  # the team's notices, written once per language
    for membership, person in members:
        manager = membership.role in MANAGER_SIDE
        pref = prefs.get(person.id)
        if not person.email or not (manager or person.id in preceptor_ids) or not preferences.wants(pref, DIGEST):
            continue
        actor = Actor(person=person, course=course, membership=membership)
        with in_language(person) as language:
            items = []
            count, oldest = review_queue.waiting(actor, course.id)
            if count:
                items.append(notices.waiting(count, us_date(oldest.astimezone(zone).date())))
            if manager:
                if language not in teams:
                    teams[language] = notices.team_notices(course, planner.now)
                items += teams[language]
            if not items:
                continue
            daily = pref is not None and pref.digest == "daily"
            period = today.isoformat() if daily else "{}-W{:02d}".format(*today.isocalendar()[:2])
            subject = _("Daily summary for %(course)s", course=course.display_title) if daily \
                else _("Weekly summary for %(course)s", course=course.display_title)
            planner.add(person, f"digest:{person.id}:{course.id}:{period}", DIGEST, subject,
                        _("What waits for you in %(course)s on %(date)s.", course=course.display_title,
                          date=us_date(today)), items, where)


def _plan_review_updates(planner, registration, prefs, zone, now):
    since = now - RECENT
    returned = db.session.execute(
        select(ReviewRequest, Competency.title).join(Competency, Competency.id == ReviewRequest.competency_id)
        .join(Person, Person.id == ReviewRequest.person_id)
        .where(Person.registration_id == registration.id, ReviewRequest.status == RETURNED,
               ReviewRequest.resolved_at >= since)).all()
    for request, title in returned:
        person = request.person
        if person.email and preferences.wants(prefs.get(person.id), REVIEW_UPDATES):
            with in_language(person):
                day = us_date(request.resolved_at.astimezone(zone).date())
                item = notices.Notice(notices.RETURNED_KIND, title,
                                      notices.returned_detail(day, request.return_comment))
                planner.add(person, f"returned:{request.id}", REVIEW_UPDATES,
                            _("Evidence returned for revision: %(title)s", title=title),
                            _("Your reviewer asked for changes. Revise the evidence and ask for review again."),
                            [item], where_to_open(request.course))
    signed = db.session.execute(
        select(SignOff, Competency.title).join(Competency, Competency.id == SignOff.competency_id)
        .join(Person, Person.id == SignOff.person_id)
        .where(Person.registration_id == registration.id, SignOff.signed_at >= since)).all()
    for sign_off, title in signed:
        person = db.session.get(Person, sign_off.person_id)
        if person.email and preferences.wants(prefs.get(person.id), REVIEW_UPDATES):
            with in_language(person):
                day = us_date(sign_off.signed_at.astimezone(zone).date())
                detail = _("%(rating)s, signed off by %(signer)s on %(date)s", rating=sign_off.rating_label,
                           signer=sign_off.signer_name, date=day)
                if sign_off.expires_at:
                    detail += _("; due for revalidation by %(date)s",
                                date=us_date(sign_off.expires_at.astimezone(zone).date()))
                planner.add(person, f"signed:{sign_off.id}", REVIEW_UPDATES, _("Signed off: %(title)s", title=title),
                            _("A sign-off was recorded on your record."), [notices.Notice("signed", title, detail)],
                            where_to_open(db.session.get(Course, sign_off.course_id)))
