"""One technician's transcript: the data every export (PDF, CSV, JSON, Open Badges, CLR) is made from.

What it holds: the competencies the technician has been signed off on, each with every attestation (who signed,
their role then, when, how, the rating, the evidence it rests on, expiry, and whether it was later revoked or
corrected), cross-training grouped by department, extra responsibilities, quality-improvement projects,
certifications, and continuing education against a recertification rule (PTCB CPhT by default).

Who sees what: a technician sees their own record from every course of their tenant; a manager sees a technician
of a course they manage, limited to the records of the courses they manage (like ce.status_for). Anyone else is
told the person does not exist (NotFound), so ids leak nothing.

Which evidence is listed: items sent for review or signed off. Drafts, returned and withdrawn items are work in
progress or retracted, and never appear on a transcript. Each item says whether it was verified (signed off).

The whole transcript is read in a fixed number of queries whatever the number of sign-offs and evidence items
(about ten: the person, the scope check, sign-offs with their competencies, frameworks, courses and revocations,
the status computation, the evidence, CE).
"""
from collections import OrderedDict
from datetime import UTC, date, datetime

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..i18n import N_
from ..lti.roles import ROLE_LABELS
from ..models import Competency, Course, Evidence, Framework, SignOff, SignOffRevocation
from ..models.evidence import RETURNED, SIGNED_OFF, SUBMITTED
from ..schemas.evidence import DEPARTMENTS, RESPONSIBILITY_ROLES
from . import NotFound, attestation, ce, scope, settings, status

METHOD_LABELS = {
    "observed": N_("Observed"),
    "demonstrated": N_("Demonstrated"),
    "verified_document": N_("Verified document"),
    "attested": N_("Attested"),
}
# "imported": sign-offs of prior records loaded at go-live (services/prior_records), attested by the importer.
SIGNER_ROLE_LABELS = {**ROLE_LABELS, "preceptor": N_("Preceptor"), "imported": N_("Imported from prior records")}
EVIDENCE_STATUS_LABELS = {SUBMITTED: N_("Awaiting review"), SIGNED_OFF: N_("Signed off"), RETURNED: N_("Returned")}
KIND_LABELS = {
    "cross_training": N_("Cross-training"),
    "responsibility": N_("Responsibility"),
    "qi_project": N_("Quality-improvement project"),
    "certification": N_("Certification"),
    "continuing_education": N_("Continuing education"),
}
# Attestation states, as printed (the rule lives in services.attestation).
VALID, NOT_PROFICIENT, EXPIRED, REVOKED, CORRECTED = (attestation.VALID, attestation.NOT_PROFICIENT,
                                                      attestation.EXPIRED, attestation.REVOKED, attestation.CORRECTED)
STATE_LABELS = attestation.STATE_LABELS
LISTED_STATUSES = (SUBMITTED, SIGNED_OFF)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _as_of(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    if as_of.tzinfo is None:
        raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
    return as_of


def record_scope(actor, person_id: int):
    """(person, course_ids) the actor may put on a transcript: course_ids None means every course (oneself)."""
    target = scope.person(actor, person_id)
    if target.id == actor.person.id:
        return target, None
    if not scope.can_view_person(actor, target):
        raise NotFound(_("No such person."))
    return target, scope.managed_course_ids(actor)


def _attestation(sign_off: SignOff, revocation, corrected_by: SignOff | None, ev_kind, ev_title, course_title,
                 as_of) -> dict:
    state = attestation.sign_off_state(sign_off, revocation, corrected_by, as_of)
    revoked = state == REVOKED
    return {
        "sign_off_id": sign_off.id,
        "signer_name": sign_off.signer_name,
        "signer_role": sign_off.signer_role,
        "signer_role_label": SIGNER_ROLE_LABELS.get(sign_off.signer_role, sign_off.signer_role),
        "signed_at": _iso(sign_off.signed_at),
        "method": sign_off.method,
        "method_label": METHOD_LABELS.get(sign_off.method, sign_off.method),
        "rating_code": sign_off.rating_code,
        "rating_label": sign_off.rating_label,
        "proficient": sign_off.proficient,
        "checklist_seen": list(sign_off.checklist_seen or []),
        "comment": sign_off.comment,
        "evidence_id": sign_off.evidence_id,
        "evidence_title": ev_title,
        "evidence_kind": ev_kind,
        "evidence_kind_label": KIND_LABELS.get(ev_kind, ev_kind),
        "evidence_hash": sign_off.evidence_hash,
        "course_title": course_title,
        "expires_at": _iso(sign_off.expires_at),
        "state": state,
        "state_label": STATE_LABELS[state],
        "revoked_at": _iso(revocation.revoked_at) if revoked else None,
        "revocation_reason": revocation.reason if revoked else None,
        "corrects_id": sign_off.corrects_id,
        "correction_reason": sign_off.correction_reason,
        "corrected_by_id": corrected_by.id if corrected_by is not None else None,
    }


def _competencies(person, course_ids, as_of, now: bool = False) -> tuple[list[dict], list[int]]:
    """`now`: the transcript is of the present, so each competency's status is the stored one (services.status),
    not judged again from the whole history (a quarter of a long transcript's time)."""
    query = (
        select(SignOff, SignOffRevocation, Competency, Framework, Course.title, Course.label, Course.context_id,
               Evidence.kind, Evidence.title)
        .join(Competency, Competency.id == SignOff.competency_id)
        .join(Framework, Framework.id == Competency.framework_id)
        .join(Course, Course.id == SignOff.course_id)
        .join(Evidence, Evidence.id == SignOff.evidence_id)
        .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
        .where(SignOff.person_id == person.id, SignOff.signed_at <= as_of)
        .order_by(Framework.id, Competency.position, Competency.id, SignOff.signed_at, SignOff.id)
    )
    if course_ids is not None:
        query = query.where(SignOff.course_id.in_(course_ids))
    rows = db.session.execute(query).all()
    corrected_by = {row[0].corrects_id: row[0] for row in rows if row[0].corrects_id is not None}

    entries: OrderedDict[int, dict] = OrderedDict()
    for sign_off, revocation, competency, framework, c_title, c_label, c_context, ev_kind, ev_title in rows:
        entry = entries.get(competency.id)
        if entry is None:
            entry = entries[competency.id] = {
                "competency_id": competency.id,
                "code": competency.code,
                "title": competency.title,
                "description": competency.description,
                "identifier": competency.identifier,
                "departments": list(competency.departments or []),
                "department_labels": [DEPARTMENTS.get(d, d) for d in competency.departments or []],
                "revalidation_months": competency.revalidation_months,
                "framework": {"id": framework.id, "code": framework.code, "name": framework.name,
                              "version": framework.version, "identifier": framework.identifier,
                              "scale": list(framework.scale or [])},
                "attestations": [],
            }
        entry["attestations"].append(_attestation(sign_off, revocation, corrected_by.get(sign_off.id), ev_kind,
                                                  ev_title, c_title or c_label or c_context, as_of))
    sign_off_ids = [row[0].id for row in rows]

    judge = status.current if now else status.compute  # current(): the stored status, its clock at as_of
    computed = judge(person.registration, [person.id], list(entries), as_of)[person.id] if entries else {}
    for competency_id, entry in entries.items():
        judged = computed[competency_id]
        entry.update({"status": judged.status, "status_label": judged.label, "held": judged.held,
                      "sign_off_id": judged.sign_off_id, "achieved_at": _iso(judged.achieved_at),
                      "expires_at": _iso(judged.expires_at)})
    return list(entries.values()), sign_off_ids


def _label(choices: dict, data: dict, key: str, other_key: str) -> str | None:
    value = data.get(key)
    if value == "other" and data.get(other_key):
        return data[other_key]
    return choices.get(value, value)


def _evidence_item(ev: Evidence, course_titles: dict, signed) -> dict:
    """`signed`: the item's attestation.EvidenceSignOff (None when never signed off): a revoked or corrected
    sign-off reads as such, and only a standing one makes the item verified."""
    data = ev.data or {}
    label = signed.label if signed is not None else EVIDENCE_STATUS_LABELS.get(ev.status, ev.status)
    item = {"evidence_id": ev.id, "kind": ev.kind, "kind_label": KIND_LABELS.get(ev.kind, ev.kind),
            "title": ev.title, "status": ev.status, "status_label": label,
            "sign_off_state": signed.state if signed is not None else None,
            "verified": attestation.is_verified(ev.status, signed), "course_title": course_titles.get(ev.course_id),
            "submitted_at": _iso(ev.submitted_at), "notes": data.get("notes")}
    if ev.kind == "cross_training":
        item.update(department=data.get("department"),
                    department_label=_label(DEPARTMENTS, data, "department", "department_other"),
                    skills=list(data.get("skills") or []), trainer_name=data.get("trainer_name"),
                    hours=data.get("hours"), start_date=data.get("start_date"), end_date=data.get("end_date"))
    elif ev.kind == "responsibility":
        item.update(role=data.get("role"), role_label=_label(RESPONSIBILITY_ROLES, data, "role", "role_other"),
                    scope=data.get("scope"), start_date=data.get("start_date"), end_date=data.get("end_date"),
                    supervisor=data.get("supervisor"))
    elif ev.kind == "qi_project":
        cycles = data.get("pdsa_cycles") or []
        item.update(problem=data.get("problem"), aim=data.get("aim"), measures=list(data.get("measures") or []),
                    results=data.get("results"), role=data.get("role"), team=list(data.get("team") or []),
                    pdsa_cycles=len(cycles), last_cycle_date=cycles[-1].get("date") if cycles else None)
    elif ev.kind == "certification":
        item.update(credential=data.get("credential"),
                    credential_label=data.get("credential_other") or data.get("credential_label"),
                    number=data.get("number"), issuer=data.get("issuer") or data.get("issuing_body"),
                    state=data.get("state"), issued_date=data.get("issued_date"),
                    expiry_date=data.get("expiry_date"))
    elif ev.kind == "continuing_education":
        item.update(uan=data.get("uan"), hours=data.get("hours"), completion_date=data.get("completion_date"),
                    provider_name=data.get("provider_name"),
                    sterile_compounding=bool(data.get("sterile_compounding")))
    return item


def build(actor, person_id: int, *, as_of: datetime | None = None, ce_rule: str | None = None) -> dict:
    """The transcript of one technician, as JSON-ready data (dates and times as ISO 8601 strings)."""
    now = as_of is None
    as_of = _as_of(as_of)
    person, course_ids = record_scope(actor, person_id)
    competencies, sign_off_ids = _competencies(person, course_ids, as_of, now)

    query = (select(Evidence, Course.title, Course.label, Course.context_id)
             .join(Course, Course.id == Evidence.course_id)
             .where(Evidence.person_id == person.id, Evidence.status.in_(LISTED_STATUSES),
                    Evidence.created_at <= as_of)
             .order_by(Evidence.kind, Evidence.id))
    if course_ids is not None:
        query = query.where(Evidence.course_id.in_(course_ids))
    evidence_rows = db.session.execute(query).all()
    course_titles = {ev.course_id: title or label or context for ev, title, label, context in evidence_rows}
    signed = attestation.evidence_states([ev.id for ev, *_ in evidence_rows], as_of)
    items = [_evidence_item(ev, course_titles, signed.get(ev.id)) for ev, *_ in evidence_rows]

    cross_training: OrderedDict[str, list] = OrderedDict()
    for item in sorted((i for i in items if i["kind"] == "cross_training"),
                       key=lambda i: (i["department_label"] or "", i.get("start_date") or "")):
        cross_training.setdefault(item["department_label"] or "Other", []).append(item)

    def by_date(kind, key):
        return sorted((i for i in items if i["kind"] == kind), key=lambda i: (i.get(key) or "", i["evidence_id"]))

    certifications = by_date("certification", "issued_date")
    today = as_of.date()
    for cert in certifications:
        cert["expired"] = bool(cert.get("expiry_date")) and date.fromisoformat(cert["expiry_date"]) < today
    # The one CE computation (services.ce.report): the same rule, cycle and hours as the dashboard.
    ce_report = ce.report(person, today, course_ids=course_ids, rule_code=ce_rule)

    return {
        "person": {"id": person.id, "name": person.display_name, "email": person.email},
        "organization": settings.organization_name(person.registration),
        "as_of": _iso(as_of),
        "scope": N_("all courses") if course_ids is None else N_("courses managed by the requester"),
        "competencies": competencies,
        "cross_training": [{"department": dept, "items": rows} for dept, rows in cross_training.items()],
        "responsibilities": by_date("responsibility", "start_date"),
        "qi_projects": by_date("qi_project", "last_cycle_date"),
        "certifications": certifications,
        "continuing_education": {"status": ce_report["cycles"][0], "cycles": ce_report["cycles"],
                                 "warnings": ce_report["warnings"], "pending": ce_report["pending"],
                                 "activities": by_date("continuing_education", "completion_date")},
        "sign_off_ids": sign_off_ids,
        # Sign-offs in force when this transcript was made: revoking or correcting one later makes a printed
        # transcript or CLR of it report "revoked" (those already revoked or corrected are printed as such).
        "live_sign_off_ids": [a["sign_off_id"] for c in competencies for a in c["attestations"]
                              if a["state"] not in (REVOKED, CORRECTED)],
        "evidence_ids": sorted(i["evidence_id"] for i in items),
        "counts": {"competencies": len(competencies),
                   "held": sum(1 for c in competencies if c["held"]),
                   "attestations": len(sign_off_ids), "evidence": len(items)},
    }
