"""Reading the audit log: who did what to whom, in plain words, filtered and paged in SQL.

Managers see the entries of their course; tenant administrators every entry of their tenant (registration).
The log records an entity (table and id), not the technician or competency it concerns, so the person and
competency filters follow each entity type to its owner with a subquery; one more query per entity type on the
page resolves who and what each entry is about (a fixed number of queries per page, whatever its size).
"""
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from ..extensions import db
from ..models import (
    Attachment,
    AuditEntry,
    Competency,
    Evidence,
    EvidenceCompetency,
    Membership,
    Person,
    Preceptor,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
)
from . import DomainError, Forbidden, localtime, scope
from .transcripts import SIGNER_ROLE_LABELS

PER_PAGE = 50
CSV_LIMIT = 50_000

# action -> what happened, as a person would say it.
ACTIONS = {
    "evidence.create": "Recorded evidence",
    "evidence.update": "Edited evidence",
    "evidence.submit": "Sent evidence for review",
    "evidence.withdraw": "Withdrew evidence",
    "evidence.status": "Evidence status changed",
    "attachment.add": "Attached a file",
    "attachment.remove": "Removed a file",
    "review_request.create": "Asked for a sign-off",
    "review_request.signed_off": "Review request signed off",
    "review_request.returned": "Returned for revision",
    "review_request.withdrawn": "Withdrew a review request",
    "sign_off.create": "Signed off a competency",
    "sign_off.correct": "Corrected a sign-off",
    "sign_off.revoke": "Revoked a sign-off",
    "sign_off.expired": "Sign-off expired",
    "sign_off.imported": "Imported a sign-off from prior records",
    "evidence.imported": "Imported a record from prior records",
    "person.imported": "Added a person from prior records (not launched yet)",
    "import.applied": "Imported prior records",
    "import.undone": "Undid an import of prior records",
    "preceptor.name": "Named a preceptor",
    "preceptor.remove": "Removed a preceptor",
    "course.frameworks_chosen": "Chose the course's frameworks",
    "framework.imported": "Imported a framework",
    "framework.installed": "Installed a framework",
    "settings.update": "Changed settings",
    "registration.role_mapping": "Changed the role mapping",
    "deployment.enabled": "Enabled a deployment",
    "deployment.disabled": "Disabled a deployment",
    "key.rotated": "Rotated the signing key",
    "key.retired": "Retired a signing key",
    "roster.synced": "Synchronized the course roster",
    "score.retry": "Retried a gradebook score",
}
ROLE_LABELS = {**SIGNER_ROLE_LABELS, "system": "The tool"}


def action_label(action: str) -> str:
    return ACTIONS.get(action) or action.replace(".", ": ").replace("_", " ").capitalize()


def role_label(role: str | None) -> str:
    return ROLE_LABELS.get(role or "", (role or "").replace("_", " ").capitalize())


@dataclass
class AuditFilters:
    person_id: int | None = None
    competency_id: int | None = None
    action: str | None = None
    actor_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1


def parse_filters(args) -> AuditFilters:
    """Filters from a query string; anything malformed is refused with a message per field."""
    errors, out = {}, AuditFilters()
    for name, attr in (("person", "person_id"), ("competency", "competency_id"), ("actor", "actor_id"),
                       ("page", "page")):
        raw = (args.get(name) or "").strip()
        if raw:
            if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
                errors[name] = "Choose from the list."
            else:
                setattr(out, attr, int(raw))
    action = (args.get("action") or "").strip()
    if action:
        if action not in ACTIONS:
            errors["action"] = "Not a known action."
        out.action = action
    for name, attr in (("from", "date_from"), ("to", "date_to")):
        raw = (args.get(name) or "").strip()
        if raw:
            try:
                setattr(out, attr, date.fromisoformat(raw))
            except ValueError:
                errors[name] = "Give a date like 2026-11-30."
    if out.date_from and out.date_to and out.date_to < out.date_from:
        errors["to"] = "The end date is before the start date."
    if errors:
        raise DomainError(_("Some filters need attention."), code="invalid_filter", fields=errors)
    return out


def _scope(actor, course_id: int | None):
    """The where-clause of what the actor may read: their course's entries, or (administrators without a
    course) their tenant's."""
    if course_id is not None:
        course = scope.course(actor, course_id)
        if not scope.manages(actor.person.id, course.id):
            raise Forbidden(_("The audit log is for the course's managers and the LMS administrator."))
        return AuditEntry.course_id == course.id
    if not actor.is_admin:
        raise Forbidden(_("The audit log of the whole organization is for the LMS administrator."))
    return AuditEntry.registration_id == actor.registration_id


def _about(entity: str, ids):
    return and_(AuditEntry.entity_type == entity, AuditEntry.entity_id.in_(ids))


def _person_clause(person_id: int):
    evidence_ids = select(Evidence.id).where(Evidence.person_id == person_id)
    return or_(
        _about("evidence", evidence_ids),
        _about("review_requests", select(ReviewRequest.id).where(ReviewRequest.person_id == person_id)),
        _about("sign_offs", select(SignOff.id).where(SignOff.person_id == person_id)),
        _about("sign_off_revocations", select(SignOffRevocation.id).join(
            SignOff, SignOff.id == SignOffRevocation.sign_off_id).where(SignOff.person_id == person_id)),
        _about("attachments", select(Attachment.id).where(Attachment.evidence_id.in_(evidence_ids))),
        _about("preceptors", select(Preceptor.id).where(Preceptor.person_id == person_id)),
        and_(AuditEntry.entity_type == "people", AuditEntry.entity_id == person_id),
    )


def _competency_clause(competency_id: int):
    evidence_ids = select(EvidenceCompetency.evidence_id).where(EvidenceCompetency.competency_id == competency_id)
    return or_(
        _about("evidence", evidence_ids),
        _about("review_requests", select(ReviewRequest.id).where(ReviewRequest.competency_id == competency_id)),
        _about("sign_offs", select(SignOff.id).where(SignOff.competency_id == competency_id)),
        _about("sign_off_revocations", select(SignOffRevocation.id).join(
            SignOff, SignOff.id == SignOffRevocation.sign_off_id).where(SignOff.competency_id == competency_id)),
        _about("preceptors", select(Preceptor.id).where(Preceptor.competency_id == competency_id)),
    )


def _query(actor, course_id, filters: AuditFilters, tz):
    query = select(AuditEntry).where(_scope(actor, course_id))
    if filters.person_id:
        query = query.where(_person_clause(filters.person_id))
    if filters.competency_id:
        query = query.where(_competency_clause(filters.competency_id))
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.actor_id:
        query = query.where(AuditEntry.actor_id == filters.actor_id)
    if filters.date_from:
        query = query.where(AuditEntry.at >= localtime.start_of(filters.date_from, tz))
    if filters.date_to:
        query = query.where(AuditEntry.at <= localtime.end_of(filters.date_to, tz))
    return query


@dataclass
class Line:
    entry: AuditEntry
    what: str
    actor_name: str
    actor_role: str
    person: Person | None = None
    competency: Competency | None = None
    # ("sign_off" | "evidence" | "review_request" | "person" | "framework" | None, id): the view builds the URL.
    target: tuple = (None, None)
    changes: list = field(default_factory=list)


def _subjects(entries) -> dict:
    """{(entity_type, id): (person_id, competency_id, target)} for the entries on a page, a query per type."""
    wanted: dict = {}
    for e in entries:
        if e.entity_id is not None:
            wanted.setdefault(e.entity_type, set()).add(e.entity_id)
    found: dict = {}

    def take(entity, query, target):
        if entity in wanted:
            for row in db.session.execute(query.where(query.selected_columns[0].in_(wanted[entity]))):
                ident, person_id, competency_id, link_id = row
                found[(entity, ident)] = (person_id, competency_id, (target, link_id))

    take("sign_offs", select(SignOff.id, SignOff.person_id, SignOff.competency_id, SignOff.id), "sign_off")
    take("sign_off_revocations", select(SignOffRevocation.id, SignOff.person_id, SignOff.competency_id, SignOff.id)
         .join(SignOff, SignOff.id == SignOffRevocation.sign_off_id), "sign_off")
    take("review_requests", select(ReviewRequest.id, ReviewRequest.person_id, ReviewRequest.competency_id,
                                   ReviewRequest.evidence_id), "evidence")
    first_link = (select(func.min(EvidenceCompetency.competency_id))
                  .where(EvidenceCompetency.evidence_id == Evidence.id).scalar_subquery())
    take("evidence", select(Evidence.id, Evidence.person_id, first_link, Evidence.id), "evidence")
    take("attachments", select(Attachment.id, Evidence.person_id, first_link, Evidence.id)
         .join(Evidence, Evidence.id == Attachment.evidence_id), "evidence")
    take("preceptors", select(Preceptor.id, Preceptor.person_id, Preceptor.competency_id, Preceptor.person_id),
         "person")
    for ident in wanted.get("people", ()):
        found[("people", ident)] = (ident, None, ("person", ident))
    for ident in wanted.get("frameworks", ()):
        found[("frameworks", ident)] = (None, None, ("framework", ident))
    for ident in wanted.get("import_batches", ()):
        found[("import_batches", ident)] = (None, None, ("import", ident))
    return found


def _changes(entry: AuditEntry) -> list[tuple[str, object, object]]:
    """(field, before, after) for the fields an entry changed, for the detail line."""
    before, after = entry.before or {}, entry.after or {}
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return [(k, before.get(k), after.get(k)) for k in keys
            if k not in ("evidence_snapshot", "evidence_hash", "data")][:8]


def _lines(entries) -> list[Line]:
    subjects = _subjects(entries)
    people_ids = {e.actor_id for e in entries if e.actor_id} | {s[0] for s in subjects.values() if s[0]}
    people = {p.id: p for p in db.session.scalars(select(Person).where(Person.id.in_(people_ids)))} \
        if people_ids else {}
    comp_ids = {s[1] for s in subjects.values() if s[1]}
    comps = {c.id: c for c in db.session.scalars(select(Competency).where(Competency.id.in_(comp_ids)))} \
        if comp_ids else {}
    out = []
    for e in entries:
        person_id, competency_id, target = subjects.get((e.entity_type, e.entity_id), (None, None, (None, None)))
        actor = people.get(e.actor_id)
        out.append(Line(entry=e, what=action_label(e.action),
                        actor_name=actor.display_name if actor else "The tool",
                        actor_role=role_label(e.actor_role), person=people.get(person_id),
                        competency=comps.get(competency_id), target=target, changes=_changes(e)))
    return out


@dataclass
class AuditPage:
    lines: list
    total: int
    page: int
    pages: int
    filters: AuditFilters
    tz: object


def page(actor, course_id: int | None, filters: AuditFilters, per_page: int = PER_PAGE) -> AuditPage:
    """One page of the log, newest first."""
    tz = localtime.zone(db.session.get(Person, actor.person.id).registration)
    query = _query(actor, course_id, filters, tz)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-total // per_page))
    number = min(max(1, filters.page), pages)
    entries = list(db.session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                                      .limit(per_page).offset((number - 1) * per_page)))
    return AuditPage(lines=_lines(entries), total=total, page=number, pages=pages, filters=filters, tz=tz)


def options(actor, course_id: int | None) -> dict:
    """What the filters offer: the people who appear (as actor or as a member), the competencies, the actions."""
    where = _scope(actor, course_id)
    actors = list(db.session.scalars(
        select(Person).where(Person.id.in_(select(AuditEntry.actor_id).where(where).distinct()))
        .order_by(func.lower(func.coalesce(Person.family_name, Person.name, Person.sub)), Person.id)))
    if course_id is not None:
        people = list(db.session.scalars(
            select(Person).join(Membership, Membership.person_id == Person.id)
            .where(Membership.course_id == course_id)
            .order_by(func.lower(func.coalesce(Person.family_name, Person.name, Person.sub)), Person.id)))
    else:
        people = list(db.session.scalars(
            select(Person).where(Person.registration_id == actor.registration_id)
            .order_by(func.lower(func.coalesce(Person.family_name, Person.name, Person.sub)), Person.id)
            .limit(2000)))
    used = set(db.session.scalars(select(AuditEntry.action).where(where).distinct()))
    return {"actors": actors, "people": people,
            "actions": sorted(((a, action_label(a)) for a in used if a in ACTIONS), key=lambda x: x[1])}


def trail(actor, person_id: int, course_id: int | None, limit: int = 5000) -> list[Line]:
    """Everything the log holds about one technician, oldest first (the person file's audit trail)."""
    person = db.session.get(Person, actor.person.id)
    query = _query(actor, course_id, AuditFilters(person_id=person_id), localtime.zone(person.registration))
    return _lines(list(db.session.scalars(query.order_by(AuditEntry.at, AuditEntry.id).limit(limit))))


CSV_HEADER = ["When (local)", "When (UTC)", "Action", "Action code", "By", "By role", "Technician", "Competency",
              "Record", "Record id", "Changes"]


def csv_rows(actor, course_id: int | None, filters: AuditFilters):
    """Every matching entry (newest first, at most CSV_LIMIT) as CSV rows, read in pages of 500."""
    tz = localtime.zone(db.session.get(Person, actor.person.id).registration)
    query = _query(actor, course_id, filters, tz).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    for offset in range(0, CSV_LIMIT, 500):
        entries = list(db.session.scalars(query.limit(500).offset(offset)))
        for line in _lines(entries):
            e = line.entry
            yield [localtime.us_datetime(e.at, tz), e.at.isoformat(), line.what, e.action, line.actor_name,
                   line.actor_role, line.person.display_name if line.person else "",
                   line.competency.code if line.competency else "", e.entity_type, e.entity_id or "",
                   "; ".join(f"{k}: {b!s} -> {a!s}" for k, b, a in line.changes)]
        if len(entries) < 500:
            return
