"""Turn a validated launch into people, courses and memberships."""
from sqlalchemy import select

from ..extensions import db
from ..lti.errors import LaunchError
from ..lti.roles import map_roles
from ..lti.urls import origin
from ..models import Course, Deployment, Membership, Person, Registration, ResourceLink
from ..models.base import utcnow

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


MAX_FRAME_ORIGINS = 20


def remember_origins(registration: Registration, claims: dict) -> None:
    """Keep the origins a validated launch came from, so this registration's pages may be framed there (CSP
    frame-ancestors) and post back there (form-action): launch_presentation.return_url and deep_link_return_url.
    Both are inside the signed id_token; no request header (Origin, Referer) is ever trusted for this."""
    found = {
        origin((claims.get(CLAIM + "launch_presentation") or {}).get("return_url")),
        origin((claims.get(DL_SETTINGS) or {}).get("deep_link_return_url")),
    } - {None}
    settings = dict(registration.settings or {})
    known = list(settings.get("frame_origins") or [])
    new = sorted(found - set(known))
    if new:
        settings["frame_origins"] = (known + new)[-MAX_FRAME_ORIGINS:]
        registration.settings = settings


def frame_origins(registration: Registration) -> list[str]:
    """The origins allowed to frame this registration's pages and receive their forms: its issuer and login
    endpoint, and the (capped) origins its validated launches came from. Another tenant's launches never add
    to this list."""
    found = [origin(registration.issuer), origin(registration.auth_login_url),
             *((registration.settings or {}).get("frame_origins") or [])[-MAX_FRAME_ORIGINS:]]
    return sorted({o for o in found if o and origin(o) == o})


def record_launch(registration: Registration, deployment: Deployment, claims: dict):
    """Upsert the person (by sub), the course (by context id) and the membership with its mapped role.

    Returns (person, course or None, membership or None). Raises LaunchError when the person has no role
    this tool understands, before anything is written.
    """
    roles = list(claims.get(CLAIM + "roles") or [])
    role, is_admin = map_roles(roles, registration.role_mapping)
    context = claims.get(CLAIM + "context") or {}
    if role is None:
        raise LaunchError(
            "Your role in this course has no place in this tool",
            "The LMS sent roles this tool does not map to technician, manager or administrator: "
            + (", ".join(r.rsplit("#", 1)[-1] for r in roles) or "none") + ".",
            "Ask your LMS administrator to check your enrolment, or to adjust the tool's role mapping.",
            status=403, code="no_role",
        )
    now = utcnow()
    person = db.session.scalars(
        select(Person).where(Person.registration_id == registration.id, Person.sub == claims["sub"])
    ).first()
    if person is None:
        person = Person(registration_id=registration.id, sub=claims["sub"])
        db.session.add(person)
    # Names and email change in the LMS; the latest launch wins.
    person.name = claims.get("name") or person.name
    person.given_name = claims.get("given_name") or person.given_name
    person.family_name = claims.get("family_name") or person.family_name
    person.email = claims.get("email") or person.email
    person.is_admin = is_admin
    person.last_launch_at = now

    course = membership = None
    if context.get("id"):
        course = db.session.scalars(
            select(Course).where(Course.registration_id == registration.id, Course.context_id == str(context["id"]))
        ).first()
        if course is None:
            course = Course(registration_id=registration.id, context_id=str(context["id"]))
            db.session.add(course)
        course.title = context.get("title") or course.title
        course.label = context.get("label") or course.label
        course.deployment_id = deployment.id
        db.session.flush()
        record_services(course, claims)
        membership = db.session.scalars(
            select(Membership).where(Membership.person_id == person.id, Membership.course_id == course.id)
        ).first()
        if membership is None:
            membership = Membership(person_id=person.id, course_id=course.id)
            db.session.add(membership)
        membership.role = role
        membership.source = "launch"
        membership.lti_roles = roles
        membership.active = True
        membership.last_launch_at = now
    db.session.flush()
    return person, course, membership


AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


def record_services(course: Course, claims: dict) -> None:
    """Keep the course's Advantage endpoints and the launched resource link (with its line item) current."""
    nrps = claims.get(NRPS) or {}
    if nrps.get("context_memberships_url"):
        course.nrps_url = nrps["context_memberships_url"]
    ags = claims.get(AGS) or {}
    if ags.get("lineitems"):
        course.ags_lineitems_url = ags["lineitems"]
    if ags.get("scope"):
        course.ags_scopes = list(ags["scope"])
    link_claim = claims.get(CLAIM + "resource_link") or {}
    if not link_claim.get("id"):
        return
    link = db.session.scalars(select(ResourceLink).where(
        ResourceLink.course_id == course.id, ResourceLink.resource_link_id == str(link_claim["id"]))).first()
    if link is None:
        link = ResourceLink(course_id=course.id, resource_link_id=str(link_claim["id"]))
        db.session.add(link)
    link.title = link_claim.get("title") or link.title
    target = parse_target((claims.get(CLAIM + "custom") or {}).get("target"))
    if target:
        link.target = target
    if ags.get("lineitem"):
        link.lineitem_url = ags["lineitem"]


TARGET_TYPES = ("competency", "department", "pathway", "portfolio", "matrix")


def parse_target(value) -> dict | None:
    """Deep-linked items carry custom target=<type>[:<id>], e.g. "competency:12" or "department:iv_room"."""
    if not value or not isinstance(value, str):
        return None
    kind, _, ident = value.partition(":")
    if kind not in TARGET_TYPES:
        return None
    if kind == "competency":
        return {"type": kind, "id": int(ident)} if ident.isdigit() else None
    return {"type": kind, "id": ident or None}
