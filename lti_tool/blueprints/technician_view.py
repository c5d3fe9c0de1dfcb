"""What the technician's pages show, gathered in a fixed number of queries: the dashboard (progress by area and
department, what needs attention, CE against the recertification rule, career pathways), the competency choices
of a form, and an evidence item's reviews, sign-offs and history in plain words."""
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from .. import formatting
from ..extensions import db
from ..i18n import gettext as _
from ..lti.roles import ROLE_LABELS
from ..models import AuditEntry, Evidence, Membership, Person, ReviewRequest, SignOff
from ..models.evidence import DRAFT, RETURNED, SIGNED_OFF, SUBMITTED, WITHDRAWN
from ..models.reviews import OPEN, SIGNED
from ..models.reviews import RETURNED as REQUEST_RETURNED
from ..models.reviews import WITHDRAWN as REQUEST_WITHDRAWN
from ..services import DomainError, attestation, ce, requirements, status
from ..services.placements import DEPARTMENT_LABELS
from ..web import app_urls_by_id, viewer_zone
from . import technician_forms as forms

try:  # career pathways arrived in their own change; the dashboard works without them
    from ..services import pathways
except ImportError:  # pragma: no cover
    pathways = None

# One status, one name: submitted evidence, its open request and the competency it supports all read the
# competency status's own label.
EVIDENCE_LABELS = {DRAFT: _l("Draft"), SUBMITTED: status.LABELS[status.AWAITING_REVIEW],
                   RETURNED: _l("Returned for revision"), SIGNED_OFF: _l("Signed off"), WITHDRAWN: _l("Withdrawn")}
REQUEST_LABELS = {OPEN: status.LABELS[status.AWAITING_REVIEW], SIGNED: _l("Signed off"),
                  REQUEST_RETURNED: _l("Returned with comments"),
                  REQUEST_WITHDRAWN: _l("Withdrawn")}
METHOD_LABELS = {"observed": _l("Observed"), "demonstrated": _l("Demonstrated"),
                 "verified_document": _l("Document verified"), "attested": _l("Attested")}
PEOPLE_ROLES = {**ROLE_LABELS, "preceptor": _l("Preceptor"), "system": _l("the tool")}


def day_text(value) -> str:
    return formatting.us_date(value, viewer_zone())


def moment_text(value: datetime | None) -> str:
    return formatting.us_datetime(value, viewer_zone()) if value else ""


def hours_text(hours) -> str:
    number = float(hours)
    return _("%(hours)s hour", hours=f"{number:g}") if number == 1 else _("%(hours)s hours", hours=f"{number:g}")


# --- Competencies of the course ---------------------------------------------------------------------------

@dataclass
class Tree:
    """The course's competencies: leaves (what is signed off), their top-level area and their group."""

    competencies: list
    by_id: dict
    leaves: list
    roots: list
    area_of: dict  # leaf id -> root competency
    group_of: dict  # leaf id -> label of the group shown in forms

    @classmethod
    def of(cls, course) -> "Tree":
        unordered = status.course_competencies(course)
        by_id = {c.id: c for c in unordered}
        # Framework order is depth first (positions count among siblings), so walk the tree.
        children: dict = {}
        for c in unordered:
            children.setdefault(c.parent_id if c.parent_id in by_id else None, []).append(c)
        comps, stack = [], list(reversed(children.get(None, [])))
        while stack:
            node = stack.pop()
            comps.append(node)
            stack.extend(reversed(children.get(node.id, [])))
        parents = {c.parent_id for c in comps if c.parent_id in by_id}
        leaves = [c for c in comps if c.id not in parents]
        roots = [c for c in comps if c.parent_id not in by_id]
        area_of, group_of = {}, {}
        for leaf in leaves:
            chain = [leaf]
            while chain[-1].parent_id in by_id:
                chain.append(by_id[chain[-1].parent_id])
            area_of[leaf.id] = chain[-1]
            path = [c.title for c in reversed(chain[1:])]
            group_of[leaf.id] = " › ".join(path) if path else _("Other competencies")
        return cls(comps, by_id, leaves, roots, area_of, group_of)

    def choices(self, kind: str) -> list[dict]:
        """Leaves accepting `kind`, grouped as in the framework: [{"label", "items": [competency]}]."""
        groups: dict[str, list] = {}
        for leaf in self.leaves:
            if leaf.evidence_kinds and kind not in leaf.evidence_kinds:
                continue
            groups.setdefault(self.group_of[leaf.id], []).append(leaf)
        return [{"label": label, "items": items} for label, items in groups.items()]


def _counts(entries) -> dict:
    counts = dict.fromkeys(status.STATUSES, 0)
    for entry in entries:
        counts[entry.status] += 1
    return counts


def _progress(label: str, entries: list) -> dict:
    counts = _counts(entries)
    total = len(entries)
    held = counts[status.ACHIEVED] + counts[status.DUE_FOR_REVALIDATION]
    segments, x = [], 0.0
    for code in (status.ACHIEVED, status.DUE_FOR_REVALIDATION, status.AWAITING_REVIEW, status.IN_PROGRESS,
                 status.EXPIRED):
        if counts[code] and total:
            width = 100 * counts[code] / total
            segments.append({"status": code, "x": round(x, 3), "width": round(width, 3)})
            x += width
    return {"label": label, "total": total, "held": held, "counts": counts, "segments": segments,
            "percent": round(100 * held / total) if total else 0}


# --- Dashboard --------------------------------------------------------------------------------------------

def _competency_item(comp, entry, labels: dict) -> dict:
    """One competency in the portfolio's list: its status, when it expires, what to record for it."""
    return {"competency": comp, "status": entry.status, "label": labels[entry.status],
            "expires": day_text(entry.expires_at) if entry.held and entry.expires_at else None,
            "kind": _record_kind(comp)}


def record_links():
    """(kind, competency id) -> the link that records that kind of evidence for the competency; one url_for
    per kind, however many competencies the page lists."""
    by_kind: dict = {}

    def link(kind: str, competency_id: int) -> str:
        if kind not in by_kind:
            by_kind[kind] = app_urls_by_id("technician.record", "competency", kind=kind)
        return by_kind[kind](competency_id)

    return link


def _record_kind(comp) -> str:
    return "cross_training" if not comp.evidence_kinds or "cross_training" in comp.evidence_kinds \
        else comp.evidence_kinds[0]


def dashboard(actor, today: date | None = None, shown: str | None = None) -> dict:
    """The portfolio. `shown`: a status the tiles chose (the list then holds only competencies in it)."""
    if shown is not None and shown not in status.STATUSES:
        raise DomainError(_("Not a known status: choose one of the tiles on your portfolio."),
                          code="invalid_filter")
    person, course = actor.person, actor.course
    today = today or date.today()
    tree = Tree.of(course)
    # Every stored status of the technician in one query, shared with the career pathways.
    known = status.compute(course.registration, [person.id], None)[person.id]
    statuses = {c.id: known.get(c.id) or status.CompetencyStatus(c.id, status.NOT_STARTED) for c in tree.leaves}
    entries = [statuses[c.id] for c in tree.leaves if c.id in statuses]
    # Each status's name read in the viewer's language once, not once per competency.
    labels = {code: str(label) for code, label in status.LABELS.items()}
    in_area: dict = {}
    for c in tree.leaves:
        in_area.setdefault(tree.area_of[c.id].id, []).append(c)
    areas = []
    for root in tree.roots:
        leaves = in_area.get(root.id, [])
        if leaves:
            label = root.title if not root.code or root.title.startswith(root.code) else f"{root.code} {root.title}"
            items = [_competency_item(c, statuses[c.id], labels) for c in leaves]
            areas.append({**_progress(label, [statuses[c.id] for c in leaves]), "id": root.id,
                          "competencies": [i for i in items if shown is None or i["status"] == shown]})
    by_department: dict = {}
    for c in tree.leaves:
        for code in dict.fromkeys(c.departments or ()):
            by_department.setdefault(code, []).append(statuses[c.id])
    departments = []
    for code, label in DEPARTMENT_LABELS.items():
        tagged = by_department.get(code)
        if tagged:
            departments.append({**_progress(_(label), tagged), "code": code})

    def attention(state):
        rows = [(tree.by_id[cid], entry) for cid, entry in statuses.items() if entry.status == state]
        return [{"competency": comp, "expires": day_text(entry.expires_at), "expires_at": entry.expires_at,
                 "days": (entry.expires_at.date() - today).days if entry.expires_at else None,
                 "kind": _record_kind(comp)}
                for comp, entry in sorted(rows, key=lambda r: (r[1].expires_at or datetime.max, r[0].code))]

    # The course's signed-off items (for re-assessment), drafts (a count) and whether any item is returned for
    # revision, in one query: the returned items' comments are read only when there are some (a review request
    # is in its evidence's course).
    items = db.session.execute(select(Evidence.id, Evidence.status).where(
        Evidence.person_id == person.id, Evidence.course_id == course.id,
        Evidence.status.in_((SIGNED_OFF, DRAFT, RETURNED)))).all()
    reassess = needs_reassessment([i for i, state in items if state == SIGNED_OFF], statuses, tree)
    drafts = sum(1 for _, state in items if state == DRAFT)
    returned = returned_evidence(person, course) if any(state == RETURNED for _, state in items) else []
    return {
        "counts": _counts(entries),
        "total": len(entries),
        "shown": shown,
        "labels": labels,
        "areas": areas,
        "departments": departments,
        "due": attention(status.DUE_FOR_REVALIDATION),
        "expired": attention(status.EXPIRED),
        "returned": returned,
        "reassess": reassess,
        "drafts": drafts,
        "ce": ce_report(person, today),
        "pathways": pathway_progress(actor, known, tree.competencies),
        "has_frameworks": bool(tree.leaves),
        "required": requirements.required_list(statuses, tree.by_id),
    }


def needs_reassessment(signed_ids: list[int], statuses: dict, tree) -> list[dict]:
    """Competencies whose sign-off was revoked or corrected to "not yet proficient" and that are not held
    again since: the technician records new evidence for them. `signed_ids`: the technician's signed-off
    evidence in the course. Read from attestation.evidence_states, the rule every page and export follows."""
    found: dict = {}
    for evidence_id, state in attestation.evidence_states(signed_ids).items():
        for entry in state.competencies:
            held = statuses.get(entry.competency_id)
            if (entry.counts or entry.state not in (attestation.REVOKED, attestation.CORRECTED)
                    or entry.competency_id not in tree.by_id):
                continue
            if held is not None and held.held:
                continue
            latest = found.get(entry.competency_id)
            if latest is None or entry.at > latest["at"]:
                comp = tree.by_id[entry.competency_id]
                found[entry.competency_id] = {
                    "competency": comp, "label": entry.label, "at": entry.at, "evidence_id": evidence_id,
                    "kind": _record_kind(comp)}
    return sorted(found.values(), key=lambda item: item["competency"].code)


def returned_evidence(person, course) -> list[dict]:
    """Evidence sent back for revision, with the comments of its latest return."""
    rows = db.session.scalars(
        select(ReviewRequest).join(Evidence, Evidence.id == ReviewRequest.evidence_id)
        .where(ReviewRequest.person_id == person.id, ReviewRequest.course_id == course.id,
               ReviewRequest.status == REQUEST_RETURNED, Evidence.status == RETURNED)
        .options(joinedload(ReviewRequest.evidence), joinedload(ReviewRequest.resolved_by),
                 joinedload(ReviewRequest.competency))
        .order_by(ReviewRequest.resolved_at.desc(), ReviewRequest.id)).unique().all()
    items: dict[int, dict] = {}
    for row in rows:
        item = items.setdefault(row.evidence_id, {"evidence": row.evidence, "at": row.resolved_at,
                                                  "when": day_text(row.resolved_at), "comments": [],
                                                  "competencies": []})
        if row.resolved_at != item["at"]:
            continue  # an earlier round of review
        who = row.resolved_by.display_name if row.resolved_by else _("A reviewer")
        if (who, row.return_comment) not in [(c["who"], c["text"]) for c in item["comments"]]:
            item["comments"].append({"who": who, "text": row.return_comment})
        item["competencies"].append(row.competency)
    return list(items.values())


def ce_report(person, today: date) -> dict:
    """CE for the dashboard: services.ce.report (the one computation the transcript and exports use too),
    shaped as charts: verified hours against each requirement, with the recorded hours beside them."""
    report = ce.report(person, today)
    return {"charts": [_chart(result) for result in report["cycles"]], "warnings": report["warnings"],
            "pending": report["pending"]}


def _bar(label: str, verified: float, recorded: float, need: float, met: bool) -> dict:
    scale = max(need, recorded, verified, 0.01)
    return {"label": label, "hours": verified, "recorded": recorded, "need": need, "met": met,
            "width": round(min(100.0, 100 * verified / scale), 2),
            "recorded_width": round(min(100.0, 100 * recorded / scale), 2), "mark": round(100 * need / scale, 2),
            "text": _("%(verified)s verified of %(need)s; %(recorded)s recorded", verified=hours_text(verified),
                      need=hours_text(need), recorded=hours_text(recorded))}


def _chart(result: dict) -> dict:
    recorded, verified = result["recorded"], result["verified"]
    bars = [_bar(_("All CE hours"), verified["hours"], recorded["hours"], verified["required_hours"],
                 verified["hours"] >= verified["required_hours"])]
    for mine, sent in zip(verified["requirements"], recorded["requirements"], strict=True):
        bars.append(_bar(mine["label"][:1].upper() + mine["label"][1:], mine["hours"], sent["hours"],
                         mine["min_hours"], mine["met"]))
    return {
        "code": result["rule"], "name": result["name"], "bars": bars, "summary": verified["summary"],
        "recorded_summary": recorded["summary"], "recorded_hours": recorded["hours"],
        "verified_hours": verified["hours"], "required_hours": verified["required_hours"],
        "unsent_hours": result["unsent_hours"],
        "limits": [limit["note"] for limit in recorded["limits"] if limit.get("note")],
        "days_left": result["days_left"], "cycle_start": day_text(result["cycle_start"]),
        "cycle_end": day_text(result["cycle_end"]), "known": result["known"],
        "certification": result["certification"], "warnings": result["warnings"],
    }


def pathway_progress(actor, statuses=None, loaded=None) -> list:
    if pathways is None:
        return []
    try:
        return pathways.progress(actor, actor.person.id, statuses=statuses, loaded=loaded)
    except (DomainError, getattr(pathways, "DefinitionError", DomainError)):
        return []


# --- Forms ------------------------------------------------------------------------------------------------

def trainer_options(actor) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Person).join(Membership, Membership.person_id == Person.id)
        .where(Membership.course_id == actor.course.id, Membership.active.is_(True), Person.id != actor.person.id)
        .order_by(Person.name, Person.id)).scalars()
    return [(p.id, p.display_name) for p in rows]


# --- An evidence item -------------------------------------------------------------------------------------

def field_rows(evidence, people: dict) -> list[dict]:
    """The item's fields as (label, text or list) in form order."""
    data = evidence.data or {}
    rows = []
    for spec in forms.FIELDS[evidence.kind]:
        if spec.name == "title":
            continue
        value = data.get(spec.name)
        if spec.type == "checkbox":
            rows.append({"label": spec.label, "value": _("Yes") if value else _("No")})
            continue
        if value in (None, "", []):
            continue
        if spec.type == "select" and spec.name == "trainer_person_id":
            value = people.get(value, _("A member of this course"))
        elif spec.type == "select":
            value = str(dict(spec.options).get(value, value))
        elif spec.type == "date":
            value = day_text(value)
        elif spec.type == "number":
            value = hours_text(value)
        rows.append({"label": spec.label, "value": value, "prewrap": spec.type == "textarea"})
    if evidence.kind == "continuing_education" and data.get("uan_parts"):
        parts = data["uan_parts"]
        rows.insert(1, {"label": _("Activity"), "value": _(
            "%(format)s activity on %(topic)s (ACPE topic %(code)s), for %(audience)ss",
            format=_(str(parts.get("format_label", ""))).capitalize(), topic=_(str(parts.get("topic_label"))),
            code=parts.get("topic"), audience=_(str(parts.get("audience_label"))))})
    if evidence.kind == "certification" and data.get("issuer"):
        rows.insert(1, {"label": _("Issued by"), "value": data["issuer"]})
    if evidence.kind == "qi_project":
        for n, cycle in enumerate(data.get("pdsa_cycles") or [], start=1):
            rows.append({"label": _("PDSA cycle %(n)d (%(date)s)", n=n, date=day_text(cycle.get("date"))),
                         "value": [f"{name}: {cycle.get(part, '')}" for part, name in forms.PDSA_PARTS]})
    if evidence.kind == "cross_training" and data.get("checklist_steps"):
        rows.append({"label": _("Checklist steps observed"), "value": list(data["checklist_steps"])})
    return rows


def reviews_of(evidence) -> tuple[list, list]:
    requests = db.session.scalars(
        select(ReviewRequest).where(ReviewRequest.evidence_id == evidence.id)
        .options(joinedload(ReviewRequest.competency), joinedload(ReviewRequest.resolved_by))
        .order_by(ReviewRequest.requested_at, ReviewRequest.id)).unique().all()
    sign_offs = db.session.scalars(
        select(SignOff).where(SignOff.evidence_id == evidence.id)
        .options(joinedload(SignOff.competency), joinedload(SignOff.revocation))
        .order_by(SignOff.signed_at, SignOff.id)).unique().all()
    return list(requests), list(sign_offs)


def sign_off_rows(sign_offs) -> list[dict]:
    corrected = {s.corrects_id: s for s in sign_offs if s.corrects_id}
    rows = []
    for s in sign_offs:
        state = _("Counts")
        if s.revocation is not None:
            state = _("Revoked on %(date)s: %(reason)s", date=day_text(s.revocation.revoked_at),
                      reason=s.revocation.reason)
        elif s.id in corrected:
            state = _("Replaced by a correction on %(date)s", date=day_text(corrected[s.id].signed_at))
        elif not s.proficient:
            state = _("Not yet proficient: this rating does not achieve the competency")
        rows.append({"sign_off": s, "role": _(PEOPLE_ROLES.get(s.signer_role, s.signer_role)),
                     "when": moment_text(s.signed_at), "method": METHOD_LABELS.get(s.method, s.method),
                     "expires": day_text(s.expires_at) if s.expires_at else _("Does not expire"), "state": state})
    return rows


def history(evidence, requests, sign_offs, me_id: int) -> list[dict]:
    """The item's audit entries (its own, its attachments', its review requests' and sign-offs') in plain
    words, oldest first."""
    conditions = [(AuditEntry.entity_type == "evidence") & (AuditEntry.entity_id == evidence.id),
                  (AuditEntry.entity_type == "attachments") & (AuditEntry.course_id == evidence.course_id)
                  & (AuditEntry.actor_id == evidence.person_id)]
    requests_by_id = {r.id: r for r in requests}
    sign_offs_by_id = {s.id: s for s in sign_offs}
    revocations = {s.revocation.id: s for s in sign_offs if s.revocation is not None}
    for table, ids in (("review_requests", requests_by_id), ("sign_offs", sign_offs_by_id),
                       ("sign_off_revocations", revocations)):
        if ids:
            conditions.append((AuditEntry.entity_type == table) & AuditEntry.entity_id.in_(list(ids)))
    rows = db.session.execute(
        select(AuditEntry, Person).outerjoin(Person, Person.id == AuditEntry.actor_id)
        .where(or_(*conditions)).order_by(AuditEntry.at, AuditEntry.id)).all()
    out = []
    for entry, person in rows:
        before, after = entry.before or {}, entry.after or {}
        if entry.entity_type == "attachments" and evidence.id not in (before.get("evidence_id"),
                                                                      after.get("evidence_id")):
            continue
        if person is None:
            who = _("The tool")
        elif person.id == me_id:
            who = _("You")
        else:
            who = f"{person.display_name} ({_(PEOPLE_ROLES.get(entry.actor_role, entry.actor_role or 'member'))})"
        comp = None
        if entry.entity_type == "review_requests":
            comp = requests_by_id[entry.entity_id].competency
        elif entry.entity_type == "sign_offs":
            comp = sign_offs_by_id[entry.entity_id].competency
        elif entry.entity_type == "sign_off_revocations":
            comp = revocations[entry.entity_id].competency
        text = _sentence(entry.action, who, before, after, comp)
        if text:
            out.append({"when": moment_text(entry.at), "at": entry.at, "text": text})
    return out


def _sentence(action, who, before, after, comp) -> str | None:
    name = f"{comp.code} {comp.title}" if comp is not None else _("a competency")
    if action == "evidence.create":
        return _("%(who)s recorded this evidence as a draft.", who=who)
    if action == "evidence.update":
        return _("%(who)s edited it (revision %(revision)s).", who=who, revision=after.get("revision"))
    if action == "evidence.submit":
        return _("%(who)s sent it for review.", who=who)
    if action == "evidence.withdraw":
        if after.get("reason"):
            return _("%(who)s withdrew it. Reason: %(reason)s", who=who, reason=after["reason"])
        return _("%(who)s withdrew it.", who=who)
    if action == "evidence.status":
        return _("Its status became “%(status)s”.",
                 status=EVIDENCE_LABELS.get(after.get("status"), after.get("status")))
    if action == "attachment.add":
        return _("%(who)s attached “%(file)s”.", who=who, file=after.get("filename"))
    if action == "attachment.remove":
        return _("%(who)s removed the attachment “%(file)s”.", who=who, file=before.get("filename"))
    if action == "review_request.create":
        return _("%(who)s asked for review of %(competency)s.", who=who, competency=name)
    if action == "review_request.returned":
        return _("%(who)s returned the request for %(competency)s with comments: “%(comment)s”", who=who,
                 competency=name, comment=after.get("return_comment"))
    if action == "review_request.withdrawn":
        return _("%(who)s withdrew the review request for %(competency)s.", who=who, competency=name)
    if action == "review_request.signed_off":
        return None  # the sign-off's own entry says it
    if action == "sign_off.create":
        return _("%(who)s signed off %(competency)s: %(rating)s, %(method)s.", who=who, competency=name,
                 rating=after.get("rating_label"),
                 method=METHOD_LABELS.get(after.get("method"), after.get("method")))
    if action == "sign_off.correct":
        return _("%(who)s corrected the sign-off of %(competency)s to %(rating)s. Reason: %(reason)s", who=who,
                 competency=name, rating=after.get("rating_label"), reason=after.get("correction_reason"))
    if action == "sign_off.revoke":
        return _("%(who)s revoked the sign-off of %(competency)s. Reason: %(reason)s", who=who, competency=name,
                 reason=after.get("reason"))
    return f"{who}: {action.replace('.', ' ').replace('_', ' ')}."
