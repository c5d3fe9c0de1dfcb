"""Turn a validated launch into people, courses and memberships."""
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, delete, func, literal, select, update

from .. import formatting
from ..extensions import db
from ..i18n import supported
from ..ids import id_or_none
from ..lti import storage
from ..lti.errors import LaunchError
from ..lti.roles import map_roles
from ..lti.urls import origin
from ..models import Course, ImportedRecord, Membership, Person, Registration, ResourceLink, SignOff
from ..models.base import utcnow
from ..models.people import IMPORTED_SUB_PREFIX
from ..models.upsert import as_detached, as_loaded, attach, prebuilt, upsert
from . import audit, grades, requirement_edits, status_store
from .actors import Actor

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


MAX_FRAME_ORIGINS = 20


def remember_origins(registration, claims: dict) -> None:
    """Keep the origins a validated launch came from, so this registration's pages may be framed there (CSP
    frame-ancestors) and post back there (form-action): launch_presentation.return_url and deep_link_return_url.
    Both are inside the signed id_token; no request header (Origin, Referer) is ever trusted for this.
    `registration` may be the launch's cached copy: the row is read and written only when an origin is new."""
    found = {
        origin((claims.get(CLAIM + "launch_presentation") or {}).get("return_url")),
        origin((claims.get(DL_SETTINGS) or {}).get("deep_link_return_url")),
    } - {None}
    if not found - set((registration.settings or {}).get("frame_origins") or []):
        return
    storage.transaction()  # the read, the new stamp and the update together
    row = db.session.get(Registration, registration.id)
    settings = dict(row.settings or {})
    known = list(settings.get("frame_origins") or [])
    new = sorted(found - set(known))
    if new:
        settings["frame_origins"] = (known + new)[-MAX_FRAME_ORIGINS:]
        row.settings = settings


def frame_origins(registration: Registration) -> list[str]:
    """The origins allowed to frame this registration's pages and receive their forms: its issuer and login
    endpoint, and the (capped) origins its validated launches came from. Another tenant's launches never add
    to this list."""
    found = [origin(registration.issuer), origin(registration.auth_login_url),
             *((registration.settings or {}).get("frame_origins") or [])[-MAX_FRAME_ORIGINS:]]
    return sorted({o for o in found if o and origin(o) == o})


LAUNCH_PRESENTATION = CLAIM + "launch_presentation"


def launch_language(claims: dict) -> str | None:
    """The tool language for the launch's `locale` ("es-MX" -> "es"); None when absent or not shipped."""
    presentation = claims.get(LAUNCH_PRESENTATION)
    return supported(presentation.get("locale")) if isinstance(presentation, dict) else None


def launch_rows_read(registration_id: int, claims: dict):
    """The launch's SELECT (see record_launch) as storage.claim's `read`, so the nonce's statement can run it."""
    return ("launch-rows",), _launch_rows, _launch_rows_params(registration_id, claims)


def _launch_rows_params(registration_id: int, claims: dict) -> dict:
    context = claims.get(CLAIM + "context") or {}
    link_claim = claims.get(CLAIM + "resource_link") or {}
    return {"registration_id": registration_id, "sub": claims.get("sub"),
            "context_id": str(context["id"]) if isinstance(context, dict) and context.get("id") else None,
            "link_id": str(link_claim["id"]) if isinstance(link_claim, dict) and link_claim.get("id") else None}


def record_launch(registration, deployment, claims: dict, touch_seconds: int = 0, found=None):
    """Upsert the person (by sub), the course (by context id) and the membership with its mapped role.

    One SELECT reads the person, the course, the launched resource link and the membership as stored; each is
    written (INSERT ... ON CONFLICT, so two first launches at once cannot create a row twice) only when the launch
    brings something new: a name, a role, a course title, an inactive membership made active again, or a last
    launch older than `touch_seconds`. A technician opening the tool again within that time costs one statement,
    and hundreds of launches into one course at a shift change do not queue on its row.

    `found`: that SELECT's row (a mapping) when the launch already read it (with its nonce: launch.py). When the
    request runs without a transaction (storage.autocommit), one is opened before the first write, so a first
    launch's rows and the stored status they change commit together.

    Returns (person, course or None, membership or None); the ones this launch did not write are detached from
    the session (models/upsert.as_detached: readable, attach() them to write). Raises LaunchError when the
    person has no role this tool understands, before anything is written.
    """
    roles = list(claims.get(CLAIM + "roles") or [])
    role, is_admin = map_roles(roles, registration.role_mapping)
    context = claims.get(CLAIM + "context") or {}
    if role is None:
        raise LaunchError(
            _("Your role in this course has no place in this tool"),
            _("The LMS sent roles this tool does not map to technician, manager or administrator: %(roles)s.",
              roles=", ".join(r.rsplit("#", 1)[-1] for r in roles) or _("none")),
            _("Ask your LMS administrator to check your enrollment, or to adjust the tool's role mapping."),
            status=403, code="no_role",
        )
    now = utcnow()
    params = _launch_rows_params(registration.id, claims)
    context_id, link_id = params["context_id"], params["link_id"]
    if found is None:
        found = db.session.execute(prebuilt(("launch-rows",), _launch_rows), params).one()._mapping

    # Names and email change in the LMS; the latest launch wins (an absent one keeps what we have).
    # An absent or unknown locale keeps the language of the person's last launch (and writes nothing).
    wanted = {"registration_id": registration.id, "sub": claims["sub"],
              "name": claims.get("name") or None, "given_name": claims.get("given_name") or None,
              "family_name": claims.get("family_name") or None, "email": claims.get("email") or None,
              "is_admin": is_admin, "launch_language": launch_language(claims), **launch_time_zone(claims)}
    person = _current(Person, _stored(found, "person_", Person), wanted, now, touch_seconds)
    claimed = None
    if person is None:
        storage.transaction()
        person = upsert(Person, ("registration_id", "sub"), {**wanted, "last_launch_at": now, "updated_at": now},
                        keep=PERSON_KEEP)
        if person.email and person.created_at >= now:  # a first launch (a returning person's row is older)
            person, claimed = claim_imported(registration.id, person, now)

    course = membership = None
    if context_id:
        course = record_course(registration, deployment, context_id, context, claims, now, found, link_id)
        if claimed is not None:
            course = attach(course)
            _score_claimed(course, person)
        wanted = {"person_id": person.id, "course_id": course.id, "role": role, "source": "launch",
                  "lti_roles": roles, "active": True}
        stored = _stored(found, "member_", Membership)
        if stored is not None and stored["course_id"] != course.id:
            stored = None
        membership = _current(Membership, stored, wanted, now, touch_seconds)
        if membership is None:
            storage.transaction()
            membership = upsert(Membership, ("person_id", "course_id"),
                                {**wanted, "last_launch_at": now, "updated_at": now})
            if stored is None or not stored["active"] or stored["role"] != role:
                # New in the course, back in it, or in another role (an upsert, which the status store's mapper
                # events do not see): which of the course's requirements apply to them may have changed.
                status_store.touch_people([person.id])
        custom = claims.get(CLAIM + "custom") or {}
        if "pharmacy_department" in custom or "pharmacy_job_role" in custom:
            storage.transaction()
            membership = attach(membership)
            requirement_edits.attributes_from_launch(membership, custom, registration)
    return person, course, membership


LAUNCH_COLUMNS = ("sub", "name", "given_name", "family_name", "email", "is_admin", "last_launch_at", "updated_at",
                  "launch_language", "time_zone", "time_zone_source")


def claim_imported(registration_id: int, person: Person, now) -> tuple[Person, str | None]:
    """A first launch whose e-mail (from the platform's signed id_token, this registration only) matches exactly
    one person a go-live import created "not launched yet": that row becomes the launching person (their sub,
    names, role), so the imported history is theirs, and the row the launch had just created goes. Never a
    person who has launched before or who has a real LMS id, never across registrations; with two candidates
    nothing is merged (the import page lists them for the administrator). Returns (person, the imported sub
    that was replaced, or None)."""
    candidates = db.session.execute(select(Person.id, Person.sub).where(
        Person.registration_id == registration_id, func.lower(Person.email) == person.email.lower(),
        Person.sub.startswith(IMPORTED_SUB_PREFIX), Person.last_launch_at.is_(None)).limit(2)).all()
    if len(candidates) != 1:
        return person, None
    (candidate_id, imported_sub), = candidates
    launched = {name: getattr(person, name) for name in LAUNCH_COLUMNS}
    db.session.execute(delete(Person).where(Person.id == person.id).execution_options(synchronize_session=False))
    db.session.expunge(person)
    row = db.session.execute(update(Person).where(
        Person.id == candidate_id, Person.sub.startswith(IMPORTED_SUB_PREFIX), Person.last_launch_at.is_(None))
        .values(**launched).returning(*Person.__table__.c).execution_options(synchronize_session=False)).first()
    if row is None:  # claimed by another launch a moment ago: this launch is a person of its own after all
        return upsert(Person, ("registration_id", "sub"), {"registration_id": registration_id, **launched},
                      keep=PERSON_KEEP), None
    claimed = as_loaded(Person, row._mapping)
    audit.record(Actor(person=claimed), "person.claimed", claimed, before={"sub": imported_sub},
                 after={"sub": claimed.sub, "email": claimed.email})
    return claimed, imported_sub


def _score_claimed(course: Course, person: Person) -> None:
    """The claimed person's imported sign-offs in this course go to its gradebook, as they would have at the
    import had the LMS known them then (the sweep delivers them, as it does every sign-off's score)."""
    imported = select(ImportedRecord.entity_id).where(ImportedRecord.entity_type == "sign_offs",
                                                      ImportedRecord.registration_id == course.registration_id)
    mine = select(SignOff.id).where(SignOff.person_id == person.id, SignOff.course_id == course.id,
                                    SignOff.id.in_(imported))
    grades.on_imported(course, mine)


PERSON_KEEP = ("name", "given_name", "family_name", "email", "launch_language", "time_zone", "time_zone_source")
# The custom parameter the tool asks for at registration (Canvas and Moodle substitute the user's zone).
TIME_ZONE_PARAMETER = "timezone"


def launch_time_zone(claims: dict) -> dict:
    """The person's zone when the LMS sent a real one (an unsubstituted "$Person.address.timezone" or anything
    unknown is ignored); empty values keep what is stored."""
    custom = claims.get(CLAIM + "custom")
    name = formatting.known_zone(custom.get(TIME_ZONE_PARAMETER)) if isinstance(custom, dict) else None
    return {"time_zone": name, "time_zone_source": "lms" if name else None}


def _stored(found, prefix: str, model) -> dict | None:
    """One table's columns out of the launch's SELECT (None when the row does not exist)."""
    if found[prefix + "id"] is None:
        return None
    return {name: found[label] for name, label in _labels(prefix, model)}


@cache
def _labels(prefix: str, model) -> tuple:
    """(column, its label in the launch's SELECT) for one table."""
    return tuple((name, prefix + name) for name in model.__table__.c.keys())


def _current(model, stored: dict | None, wanted: dict, now, touch_seconds: int):
    """The stored row as a detached ORM object (the launch only reads it: no session work) when the launch would
    change nothing in it and its last launch is recent enough; None when it must be written."""
    if stored is None or _brings_news(stored, wanted) or stored["last_launch_at"] is None:
        return None
    if (now - stored["last_launch_at"]).total_seconds() >= touch_seconds:
        return None
    return as_detached(model, stored)


AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
COURSE_KEEP = ("title", "label", "nrps_url", "ags_lineitems_url", "ags_scopes")
LINK_KEEP = ("title", "target", "lineitem_url")


def record_course(registration, deployment, context_id: str, context: dict, claims: dict, now, found,
                  link_id: str | None) -> Course:
    """The course with its Advantage endpoints, and the launched resource link (with its line item) current.
    `found`: the launch's SELECT (the course and the link as stored)."""
    nrps = claims.get(NRPS) or {}
    ags = claims.get(AGS) or {}
    wanted = {"registration_id": registration.id, "context_id": context_id, "deployment_id": deployment.id,
              "title": context.get("title") or None, "label": context.get("label") or None,
              "nrps_url": nrps.get("context_memberships_url") or None,
              "ags_lineitems_url": ags.get("lineitems") or None,
              "ags_scopes": list(ags["scope"]) if ags.get("scope") else None}
    link_claim = claims.get(CLAIM + "resource_link") or {}
    stored = _stored(found, "course_", Course)
    if stored is None or _brings_news(stored, wanted):
        storage.transaction()
        course = upsert(Course, ("registration_id", "context_id"), {**wanted, "updated_at": now}, keep=COURSE_KEEP)
    else:
        course = as_detached(Course, stored)
    if link_id:
        wanted_link = {"course_id": course.id, "resource_link_id": link_id, "title": link_claim.get("title") or None,
                       "target": parse_target((claims.get(CLAIM + "custom") or {}).get("target")),
                       "lineitem_url": ags.get("lineitem") or None}
        link = _stored(found, "link_", ResourceLink) or {}
        if link.get("resource_link_id") is None or _brings_news(link, wanted_link):
            storage.transaction()
            upsert(ResourceLink, ("course_id", "resource_link_id"), {**wanted_link, "updated_at": now},
                   keep=LINK_KEEP)
    return course


def _launch_rows(dialect):
    """The person, the course of the context, the launched resource link and the membership as stored, in one
    row (each part NULL when it does not exist yet)."""
    person, course = Person.__table__, Course.__table__
    link, member = ResourceLink.__table__, Membership.__table__
    one = select(literal(1).label("one")).subquery("one")
    joined = (
        one.outerjoin(person, and_(person.c.registration_id == bindparam("registration_id"),
                                   person.c.sub == bindparam("sub")))
        .outerjoin(course, and_(course.c.registration_id == bindparam("registration_id"),
                                course.c.context_id == bindparam("context_id")))
        .outerjoin(link, and_(link.c.course_id == course.c.id, link.c.resource_link_id == bindparam("link_id")))
        .outerjoin(member, and_(member.c.person_id == person.c.id, member.c.course_id == course.c.id)))
    columns = [c.label(prefix + c.name) for prefix, table in (("person_", person), ("course_", course),
                                                               ("link_", link), ("member_", member))
               for c in table.c]
    return select(*columns).select_from(joined)


def _brings_news(stored, wanted: dict) -> bool:
    """True when a value the launch sent differs from the stored one (an absent value changes nothing)."""
    return any(value is not None and stored[key] != value for key, value in wanted.items())


TARGET_TYPES = ("competency", "department", "pathway", "portfolio", "matrix")


def parse_target(value) -> dict | None:
    """Deep-linked items carry custom target=<type>[:<id>], e.g. "competency:12" or "department:iv_room"."""
    if not value or not isinstance(value, str):
        return None
    kind, _, ident = value.partition(":")
    if kind not in TARGET_TYPES:
        return None
    if kind == "competency":
        return {"type": kind, "id": id_or_none(ident)} if id_or_none(ident) is not None else None
    return {"type": kind, "id": ident or None}
