"""The personal calendar feed (issue 15): a secret URL per person, /calendar/<token>.ics, that a calendar app
subscribes to without logging in. It lists the person's due dates as all-day events: what requirements want by
a date (while not held) and when held competencies expire. Read from the stored status (status.compute), the same
rows every page reads.

Only the token's SHA-256 is stored (like lti/registration_links.py): the URL is shown once, when made; making a
new one revokes the old; revoking leaves none. An unknown or revoked token finds nobody (the view answers 404).
"""
import hashlib
import secrets
from datetime import timedelta

from flask_babel import gettext as _
from icalendar import Calendar, Event
from sqlalchemy import select

from ..extensions import db
from ..models import Competency, Person
from ..models.base import utcnow
from . import audit, settings, status

PRODID = "-//Pharmacy Tech Pathways//Due dates//EN"
UID_DOMAIN = "pharmacy-tech-pathways"
MAX_TOKEN = 200


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(actor) -> str:
    """A new secret token for the acting person's feed (the old one stops working). Returned once."""
    token = secrets.token_urlsafe(32)
    had = actor.person.calendar_token_hash is not None
    actor.person.calendar_token_hash = _hash(token)
    db.session.flush()
    audit.record(actor, "calendar.replace" if had else "calendar.create", actor.person)
    return token


def revoke(actor) -> bool:
    if actor.person.calendar_token_hash is None:
        return False
    actor.person.calendar_token_hash = None
    db.session.flush()
    audit.record(actor, "calendar.revoke", actor.person)
    return True


def person_for(token: str | None) -> Person | None:
    if not token or len(token) > MAX_TOKEN:
        return None
    return db.session.scalar(select(Person).where(Person.calendar_token_hash == _hash(token)))


def due_dates(person: Person) -> list[dict]:
    """[{kind: "required" | "expires", date, competency, key}] for one person, by date: two queries (the
    stored status and the competencies it names)."""
    registration = person.registration
    statuses = status.compute(registration, [person.id], None)[person.id]
    tz = settings.time_zone(registration)
    wanted = {c for c, e in statuses.items() if e.required_by is not None or (e.held and e.expires_at)}
    competencies = {c.id: c for c in db.session.scalars(select(Competency).where(Competency.id.in_(wanted)))} \
        if wanted else {}
    found = []
    for competency_id, entry in statuses.items():
        competency = competencies.get(competency_id)
        if competency is None:
            continue
        if entry.required_by is not None and not entry.held:
            found.append({"kind": "required", "date": entry.required_by, "competency": competency,
                          "overdue": entry.overdue, "key": f"required-{person.id}-{competency_id}"})
        if entry.held and entry.expires_at is not None:
            found.append({"kind": "expires", "date": entry.expires_at.astimezone(tz).date(),
                          "competency": competency, "overdue": False,
                          "key": f"expires-{person.id}-{competency_id}-{entry.sign_off_id}"})
    return sorted(found, key=lambda item: (item["date"], item["competency"].code or "", item["kind"]))


def feed(person: Person) -> bytes:
    """The iCalendar (RFC 5545) text of one person's due dates; the library escapes every text value."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", _("Competency due dates"))
    stamp = utcnow()
    for item in due_dates(person):
        competency = item["competency"]
        name = f"{competency.code} {competency.title}".strip()
        event = Event()
        # Stable per (person, competency[, sign-off]): a changed date updates the same event in the calendar.
        event.add("uid", f"{item['key']}@{UID_DOMAIN}")
        event.add("dtstamp", stamp)
        event.add("dtstart", item["date"])
        event.add("dtend", item["date"] + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
        if item["kind"] == "required":
            event.add("summary", _("Required: %(name)s", name=name))
            event.add("description", _("Required by this date. Record evidence and ask for review in Pharmacy "
                                       "Tech Pathways."))
        else:
            event.add("summary", _("Expires: %(name)s", name=name))
            event.add("description", _("Your sign-off expires on this date: revalidate before then."))
        cal.add_component(event)
    return cal.to_ical()
