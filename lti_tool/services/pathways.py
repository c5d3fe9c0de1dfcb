"""Career pathways: how far a technician is toward each pathway defined in data/career_pathways.json.

A pathway is a tree of requirements (the data file's "about" lists the types). Each requirement reports met /
not met, a progress fraction and a plain-words explanation; a pathway's percentage is its root's progress
(all_of: the mean of its parts; any_of: the best part), shown as 100 only when every requirement is met.

Where the facts come from:
- competencies: the technician's status (services.status) over the frameworks of their active courses (or one
  course). Selectors pick leaf competencies by code, code prefix or department tag; codes are compared across
  frameworks, so two versions of a framework count as one. Achieved and due-for-revalidation count as held.
- credentials and certificates: certification evidence (credential code, not withdrawn, issued by and not
  expired at `as_of`), or a held competency named in the credential's `competency_codes` (CRED-*).
- experience: date ranges of responsibility / cross-training evidence (optionally limited to departments: the
  evidence's department field or its linked competencies' tags) and a start date the technician declares
  (`declarations`, e.g. {"sterile_compounding_start": "2021-03-01"}, ongoing to `as_of`). Ranges are clipped
  to the window, overlaps merged; "continuous" uses the longest unbroken stretch. Evidence that is not yet
  signed off counts, and the explanation says how much of it is attested.
"""
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import aliased, joinedload

from ..extensions import db
from ..i18n import gettext as _
from ..i18n import ngettext
from ..models import (
    Competency,
    Evidence,
    Framework,
    Membership,
    SignOff,
    SignOffRevocation,
)
from ..models.evidence import WITHDRAWN
from ..schemas.evidence import DEPARTMENTS
from . import DomainError, NotFound, frameworks, scope
from .status import _aware, add_months, compute

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "career_pathways.json"
FORMAT = "pharmacy-tech-pathways/career-pathways"
TYPES = ("all_of", "any_of", "credential", "certificates", "experience", "competencies", "departments",
         "evidence", "pathway")
DAYS_PER_YEAR = 365.25
SHOW = 5  # names listed in an explanation before "and N more"


class DefinitionError(ValueError):
    """The pathway data file is malformed; the message names the place."""


# --- Definitions ------------------------------------------------------------------------------------------

def _check_requirement(req, where: str, defs: dict, declarations: set):
    if not isinstance(req, dict) or req.get("type") not in TYPES:
        raise DefinitionError(f"{where}: 'type' must be one of {', '.join(TYPES)}.")
    kind = req["type"]
    if kind != "all_of" and kind != "any_of" and not req.get("label"):
        raise DefinitionError(f"{where}: a {kind} requirement needs a 'label'.")
    if kind in ("all_of", "any_of"):
        parts = req.get("requirements")
        if not isinstance(parts, list) or not parts:
            raise DefinitionError(f"{where}: {kind} needs a non-empty 'requirements' list.")
        for n, part in enumerate(parts):
            _check_requirement(part, f"{where}.requirements[{n}]", defs, declarations)
    elif kind == "credential" and req.get("credential") not in defs["credentials"]:
        raise DefinitionError(f"{where}: unknown credential {req.get('credential')!r}.")
    elif kind == "certificates" and req.get("set") not in defs["certificate_sets"]:
        raise DefinitionError(f"{where}: unknown certificate set {req.get('set')!r}.")
    elif kind == "experience":
        if not isinstance(req.get("years"), int | float) or req["years"] <= 0:
            raise DefinitionError(f"{where}: 'years' must be a positive number.")
        if req.get("declaration"):
            declarations.add(req["declaration"])
    elif kind in ("competencies", "departments"):
        chosen = req.get("select") or {}
        if not any(chosen.get(k) for k in ("codes", "code_prefixes", "tags")):
            raise DefinitionError(f"{where}: 'select' needs codes, code_prefixes or tags.")
    elif kind == "evidence" and not req.get("kinds"):
        raise DefinitionError(f"{where}: 'kinds' is required.")
    if "min" in req and (not isinstance(req["min"], int) or req["min"] < 1):
        raise DefinitionError(f"{where}: 'min' must be a whole number of at least 1.")


def load_definitions(path=None, text: str | None = None) -> dict:
    """Read and check a pathways file (the shipped one by default)."""
    try:
        defs = json.loads(text if text is not None else Path(path or DATA_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DefinitionError(f"Cannot read the pathways file: {exc}") from exc
    if not isinstance(defs, dict) or defs.get("format") != FORMAT:
        raise DefinitionError(f"Not a pathways file: 'format' must be {FORMAT!r}.")
    defs.setdefault("credentials", {})
    defs.setdefault("certificate_sets", {})
    defs.setdefault("evidence_fields", {})
    for name, cset in defs["certificate_sets"].items():
        unknown = [c for c in cset.get("credentials", []) if c not in defs["credentials"]]
        if unknown:
            raise DefinitionError(f"certificate_sets.{name}: unknown credentials {', '.join(unknown)}.")
    codes, declarations = set(), set()
    for n, pathway in enumerate(defs.get("pathways") or []):
        where = f"pathways[{n}]"
        if not pathway.get("code") or not pathway.get("name"):
            raise DefinitionError(f"{where}: 'code' and 'name' are required.")
        if pathway["code"] in codes:
            raise DefinitionError(f"{where}: code {pathway['code']!r} is used twice.")
        codes.add(pathway["code"])
        _check_requirement(pathway.get("requirement"), f"{where}.requirement", defs, declarations)
    graph = {}
    for n, pathway in enumerate(defs.get("pathways") or []):
        graph[pathway["code"]] = set(_references(pathway["requirement"]))
        for ref in graph[pathway["code"]]:
            if ref not in codes:
                raise DefinitionError(f"pathways[{n}]: requires unknown pathway {ref!r}.")
    for code in graph:
        _no_cycle(graph, code, [])
    defs["declarations"] = sorted(declarations)
    return defs


def _no_cycle(graph: dict, code: str, trail: list):
    if code in trail:
        raise DefinitionError(f"Pathways require each other in a circle: {' -> '.join(trail + [code])}.")
    for ref in graph[code]:
        _no_cycle(graph, ref, trail + [code])


def _references(req):
    if req["type"] == "pathway":
        yield req.get("pathway")
    for part in req.get("requirements") or []:
        yield from _references(part)


@lru_cache(maxsize=1)
def default_definitions() -> dict:
    return load_definitions(DATA_FILE)


# --- Results ----------------------------------------------------------------------------------------------

@dataclass
class RequirementResult:
    type: str
    label: str
    met: bool
    progress: float
    explanation: str
    children: list = field(default_factory=list)


@dataclass
class PathwayProgress:
    code: str
    name: str
    kind: str
    source: str
    met: bool
    percent: int
    requirement: RequirementResult

    @property
    def requirements(self) -> list[RequirementResult]:
        """The top-level requirements, for a checklist display."""
        if self.requirement.type == "all_of":
            return self.requirement.children
        return [self.requirement]


def _percent(progress: float, met: bool) -> int:
    return 100 if met else min(99, math.floor(progress * 100))


def _names(items, limit=SHOW) -> str:
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return _("%(names)s and %(n)d more", names=", ".join(items[:limit]), n=len(items) - limit)




def _years(days: float) -> str:
    years = days / DAYS_PER_YEAR
    text = f"{years:.1f}"
    return _("%(n)s year", n=text) if round(years, 1) == 1 else _("%(n)s years", n=text)


# --- Facts about one technician ---------------------------------------------------------------------------

def _day(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


class _Facts:
    def __init__(self, person, competencies, statuses, evidence, attested_evidence, declarations, as_of, defs):
        self.person = person
        self.as_of = as_of
        self.today = as_of.date()
        self.defs = defs
        self.fields = defs.get("evidence_fields") or {}
        self.declarations = declarations
        self.evidence = evidence
        self.attested_evidence = attested_evidence
        parents = {c.parent_id for c in competencies if c.parent_id is not None}
        self.leaves = [c for c in competencies if c.id not in parents]
        # (code, departments) of each leaf, read once: every requirement's selector scans them all.
        self.leaf_tags = [(c.code, frozenset(c.departments or ())) for c in self.leaves]
        # Held / expired by code, across frameworks (a code held in any framework version counts).
        self.held_codes, self.expired_codes, self.titles = set(), set(), {}
        for c in self.leaves:
            self.titles.setdefault(c.code, c.title)
            entry = statuses.get(c.id)
            if entry is not None and entry.held:
                self.held_codes.add(c.code)
            elif entry is not None and entry.status == "expired":
                self.expired_codes.add(c.code)
        self.expired_codes -= self.held_codes
        # Certification evidence, and each credential's standing once worked out: pathways and certificate
        # sets name the same credentials again and again.
        self.certifications = [ev for ev in evidence if ev.kind == "certification"]
        self.credentials = {}
        self.pathways = {}
        self.evaluating = set()

    def field(self, evidence, name):
        for key in self.fields.get(name, [name]):
            if (evidence.data or {}).get(key) not in (None, ""):
                return evidence.data[key]
        return None

    def select(self, chosen: dict) -> list[str]:
        """Codes of the leaf competencies a selector picks, in framework order, without duplicates."""
        codes = set(chosen.get("codes") or [])
        prefixes = tuple(chosen.get("code_prefixes") or [])
        tags = set(chosen.get("tags") or [])
        exclude = set(chosen.get("exclude_codes") or [])
        picked, seen = [], set(exclude)
        for code, departments in self.leaf_tags:
            if code in seen:
                continue
            if code in codes or (prefixes and code.startswith(prefixes)) or not tags.isdisjoint(departments):
                picked.append(code)
                seen.add(code)
        return picked


def _credential(facts: _Facts, key: str) -> dict:
    """How a credential stands: {"held": bool, "how": str, "expired": str | None}."""
    if key not in facts.credentials:
        facts.credentials[key] = _credential_state(facts, key)
    return facts.credentials[key]


def _credential_state(facts: _Facts, key: str) -> dict:
    spec = facts.defs["credentials"][key]
    wanted = set(spec.get("evidence") or [])
    matches = [m.casefold() for m in spec.get("other_matches") or []]
    expired = None
    for ev in facts.certifications:
        code = facts.field(ev, "credential")
        other = str(facts.field(ev, "credential_other") or "").casefold()
        if code not in wanted and not (code == "other" and any(m in other for m in matches)):
            continue
        issued, expiry = _day(facts.field(ev, "issued")), _day(facts.field(ev, "expiry"))
        if issued is not None and issued > facts.today:
            continue
        if expiry is not None and expiry < facts.today:
            expired = _("the recorded %(credential)s expired on %(date)s", credential=spec["name"],
                        date=expiry.isoformat())
            continue
        state = _("signed off") if ev.id in facts.attested_evidence else _("recorded, not yet signed off")
        if expiry:
            state = _("%(state)s, valid until %(date)s", state=state, date=expiry.isoformat())
        return {"held": True, "how": _("certificate '%(title)s' (%(state)s)", title=ev.title, state=state),
                "expired": None}
    for code in spec.get("competency_codes") or []:
        if code in facts.held_codes:
            return {"held": True, "how": _("%(code)s signed off", code=code), "expired": None}
    return {"held": False, "how": None, "expired": expired}


def _intervals(facts: _Facts, req: dict):
    """(start, end, attested, source) date ranges of experience evidence for a requirement."""
    kinds = set(req.get("kinds") or [])
    departments = set(req.get("departments") or [])
    for ev in facts.evidence:
        if ev.kind not in kinds:
            continue
        if departments:
            tags = {facts.field(ev, "department")}
            for link in ev.competency_links:
                tags.update(link.competency.departments or [])
            if not departments & tags:
                continue
        start = _day(facts.field(ev, "start"))
        end = _day(facts.field(ev, "end")) or facts.today
        if start is None or end < start:
            continue
        yield start, min(end, facts.today), ev.id in facts.attested_evidence, "evidence"
    declared = facts.declarations.get(req.get("declaration")) if req.get("declaration") else None
    if declared is not None and declared <= facts.today:
        yield declared, facts.today, False, "declared"


def _merge(ranges):
    merged = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


# --- Requirement evaluation -------------------------------------------------------------------------------

def _evaluate(facts: _Facts, req: dict) -> RequirementResult:
    return _EVALUATORS[req["type"]](facts, req)


def _all_of(facts, req):
    children = [_evaluate(facts, part) for part in req["requirements"]]
    met = sum(c.met for c in children)
    progress = sum(c.progress for c in children) / len(children)
    if met == len(children):
        text = _("Every requirement is met.")
    else:
        todo = _names(c.label for c in children if not c.met)
        text = _("%(met)d of %(total)d requirements met; still to do: %(todo)s.", met=met, total=len(children),
                 todo=todo)
    return RequirementResult("all_of", req.get("label") or "All of", met == len(children), progress, text, children)


def _any_of(facts, req):
    children = [_evaluate(facts, part) for part in req["requirements"]]
    done = [c for c in children if c.met]
    best = max(children, key=lambda c: c.progress)
    if done:
        text = _("Met through: %(label)s.", label=done[0].label)
    else:
        text = _("One of these is needed: %(options)s. Closest: %(best)s (%(percent)s%%).",
                 options=_(" or ").join(c.label for c in children), best=best.label,
                 percent=_percent(best.progress, False))
    return RequirementResult("any_of", req.get("label") or "One of", bool(done), 1.0 if done else best.progress,
                             text, children)


def _credential_req(facts, req):
    spec = facts.defs["credentials"][req["credential"]]
    state = _credential(facts, req["credential"])
    if state["held"]:
        return RequirementResult("credential", req["label"], True, 1.0, _("Held: %(how)s.", how=state["how"]))
    how = []
    if spec.get("evidence") or spec.get("other_matches"):
        how.append(_("record it as certification evidence"))
    if spec.get("competency_codes"):
        how.append(_("have %(codes)s signed off", codes=_(" or ").join(spec["competency_codes"])))
    text = _("Not held yet: %(credential)s", credential=spec["name"])
    text += f" ({state['expired']})" if state["expired"] else ""
    text += ". " + _("To show it, %(how)s.", how=_(" or ").join(how)) if how else "."
    return RequirementResult("credential", req["label"], False, 0.0, text)


def _certificates(facts, req):
    cset = facts.defs["certificate_sets"][req["set"]]
    need = req.get("min", 1)
    held = [facts.defs["credentials"][k]["name"] for k in cset["credentials"] if _credential(facts, k)["held"]]
    met = len(held) >= need
    if held:
        text = _("%(held)d of the %(need)d %(set)s needed held: %(names)s.", held=len(held), need=need,
                 set=cset["name"], names=_names(held))
    else:
        text = _("0 of the %(need)d %(set)s needed held.", need=need, set=cset["name"])
    if not met:
        text += " " + _("%(n)d more needed.", n=need - len(held))
    return RequirementResult("certificates", req["label"], met, min(len(held) / need, 1.0), text)


def _experience(facts, req):
    years = req["years"]
    needed_days = math.floor(years * DAYS_PER_YEAR)
    window_start = add_months(facts.as_of, -12 * req["within_years"]).date() if req.get("within_years") else None
    ranges, attested, items, declared = [], [], 0, False
    for start, end, is_attested, source in _intervals(facts, req):
        if window_start is not None:
            start = max(start, window_start)
        if end < start:
            continue
        ranges.append((start, end))
        if is_attested:
            attested.append((start, end))
        items += source == "evidence"
        declared = declared or source == "declared"
    merged = _merge(ranges)
    lengths = [(end - start).days + 1 for start, end in merged]
    have = max(lengths, default=0) if req.get("continuous") else sum(lengths)
    attested_days = sum((e - s).days + 1 for s, e in _merge(attested))
    met = have >= needed_days
    what = _("Longest continuous stretch") if req.get("continuous") else _("Total")
    if req.get("within_years"):
        what = _("%(what)s in the last %(n)s years", what=what, n=req["within_years"])
    sources = []
    if items:
        sources.append(ngettext("%(num)d evidence item", "%(num)d evidence items", items))
    if declared:
        sources.append(_("a declared start date"))
    text = _("%(what)s: %(have)s of the %(years)s needed", what=what, have=_years(have), years=years)
    text += " " + _("(from %(sources)s; %(attested)s of it attested by a sign-off).",
                    sources=_(" and ").join(sources), attested=_years(attested_days)) \
        if sources else _("; no dated experience recorded yet.")
    return RequirementResult("experience", req["label"], met, min(have / needed_days, 1.0), text)


def _competencies(facts, req):
    codes = facts.select(req["select"])
    if not codes:
        return RequirementResult("competencies", req["label"], False, 0.0,
                                 _("None of these competencies are in the frameworks of the technician's courses."))
    need = min(req.get("min", len(codes)), len(codes))
    held = [c for c in codes if c in facts.held_codes]
    missing = [c for c in codes if c not in facts.held_codes]
    met = len(held) >= need
    about = f" ({req['explain']})" if req.get("explain") else ""
    text = _("%(held)d of %(need)d achieved", held=len(held), need=need) + about
    text += f": {_names(held)}." if held else "."
    if not met:
        text += " " + _("Not yet: %(names)s.", names=_names(f"{c} {facts.titles[c]}" for c in missing))
        lapsed = [c for c in missing if c in facts.expired_codes]
        if lapsed:
            text += " " + _("Expired and needing revalidation: %(names)s.", names=_names(lapsed))
    return RequirementResult("competencies", req["label"], met, min(len(held) / need, 1.0), text)


def _departments(facts, req):
    codes = set(facts.select(req["select"]))
    need = req.get("min", 1)
    tags = []
    for c in facts.leaves:
        if c.code in codes and c.code in facts.held_codes:
            tags.extend(t for t in c.departments or [] if t not in tags)
    met = len(tags) >= need
    names = [_(DEPARTMENTS.get(t, t)) for t in tags]
    text = ngettext("Cross-trained in %(num)d department", "Cross-trained in %(num)d departments", len(tags))
    text += f" ({_names(names)})" if names else ""
    text += _("; %(n)d needed.", n=need) if not met else "."
    return RequirementResult("departments", req["label"], met, min(len(tags) / need, 1.0), text)


def _evidence_req(facts, req):
    need = req.get("min", 1)
    kinds = set(req["kinds"])
    items = [ev for ev in facts.evidence if ev.kind in kinds
             and (not req.get("signed_off") or ev.id in facts.attested_evidence)]
    met = len(items) >= need
    text = _("%(n)d of %(need)d signed off item(s)", n=len(items), need=need) if req.get("signed_off") \
        else _("%(n)d of %(need)d item(s)", n=len(items), need=need)
    text += f": {_names(ev.title for ev in items)}." if items else "."
    return RequirementResult("evidence", req["label"], met, min(len(items) / need, 1.0), text)


def _pathway_req(facts, req):
    result = _pathway(facts, req["pathway"])
    text = f"{result.name}: {result.percent}%" + (" " + _("(met).") if result.met else ".")
    return RequirementResult("pathway", req["label"], result.met, 1.0 if result.met else result.percent / 100,
                             text, [result.requirement])


_EVALUATORS = {
    "all_of": _all_of, "any_of": _any_of, "credential": _credential_req, "certificates": _certificates,
    "experience": _experience, "competencies": _competencies, "departments": _departments,
    "evidence": _evidence_req, "pathway": _pathway_req,
}


def _pathway(facts: _Facts, code: str) -> PathwayProgress:
    if code in facts.pathways:
        return facts.pathways[code]
    if code in facts.evaluating:
        raise DefinitionError(f"Pathway {code!r} requires itself.")
    facts.evaluating.add(code)
    spec = next(p for p in facts.defs["pathways"] if p["code"] == code)
    root = _evaluate(facts, spec["requirement"])
    facts.evaluating.discard(code)
    result = PathwayProgress(code=code, name=spec["name"], kind=spec.get("kind", ""), source=spec.get("source", ""),
                             met=root.met, percent=_percent(root.progress, root.met), requirement=root)
    facts.pathways[code] = result
    return result


# --- Entry point ------------------------------------------------------------------------------------------

def _declarations(raw, defs) -> dict:
    clean, errors = {}, {}
    for key, value in (raw or {}).items():
        day = _day(value)
        if key not in defs["declarations"]:
            errors[key] = "Not something a pathway asks to declare."
        elif day is None:
            errors[key] = "Not a date (use YYYY-MM-DD)."
        else:
            clean[key] = day
    if errors:
        raise DomainError(_("Some declared dates are not valid."), code="invalid_declaration", fields=errors)
    return clean


# Made once per process (an alias works out its columns on first use).
_SIGN_OFF, _CORRECTION = aliased(SignOff), aliased(SignOff)


# The two statements of progress() are built once per process, with the technician and the moment as bound
# parameters: building them and working out their cache keys (the framework rule's union, the aliases) took
# about a millisecond of every dashboard.

@cache
def _competencies_statement(one_course: bool, skip_known: bool):
    """Competencies of the frameworks of the technician's active courses (or of one course), by the one rule
    (chosen, else the default) inside the same query; `skip_known`: not those of the frameworks in "known"."""
    registration_id = bindparam("registration_id")
    courses = select(Membership.course_id).where(Membership.person_id == bindparam("person_id"),
                                                 Membership.active.is_(True))
    if one_course:
        courses = courses.where(Membership.course_id == bindparam("course_id"))
    framework_ids = frameworks.used_framework_ids_of_courses(courses, registration_id)
    query = (select(Competency).join(Framework, Framework.id == Competency.framework_id)
             .where(Competency.framework_id.in_(framework_ids),
                    Framework.registration_id.is_(None) | (Framework.registration_id == registration_id)))
    if skip_known:
        # Whole frameworks the caller already loaded are not read again (a one-course technician's are all).
        query = query.where(Competency.framework_id.not_in(bindparam("known", expanding=True)))
    return query


@cache
def _evidence_statement():
    """The technician's evidence, each with whether a proficient sign-off attesting it stood at the moment (not
    revoked; not corrected, even by a correction later revoked, as in services.status), in one query."""
    sign_off, correction, moment = _SIGN_OFF, _CORRECTION, bindparam("moment")
    attested = exists().where(
        sign_off.evidence_id == Evidence.id, sign_off.proficient.is_(True), sign_off.signed_at <= moment,
        ~exists().where(SignOffRevocation.sign_off_id == sign_off.id, SignOffRevocation.revoked_at <= moment),
        ~exists().where(correction.corrects_id == sign_off.id, correction.signed_at <= moment))
    return (select(Evidence, attested.label("attested"))
            .where(Evidence.person_id == bindparam("person_id"), Evidence.status != WITHDRAWN,
                   Evidence.created_at <= moment)
            # Links in the same query; their competencies are the ones loaded before (the identity map has them).
            .options(joinedload(Evidence.competency_links))
            .order_by(Evidence.id))


def progress(actor, person_id: int, course_id: int | None = None, as_of: datetime | None = None,
             declarations: dict | None = None, definitions: dict | None = None,
             pathway_codes=None, statuses: dict | None = None, loaded=None) -> list[PathwayProgress]:
    """Progress of one technician toward each pathway. The technician sees their own; a manager sees the
    technicians of the courses they manage (the given course, or any). Now (`as_of` None) the competencies
    come from the stored status; `statuses` ({competency_id: CompetencyStatus}, now) saves reading it again
    when the caller has it, and `loaded` (every competency of some frameworks, as status.course_competencies
    gives a course's) saves reading those competencies again."""
    moment = _aware(as_of)
    defs = definitions or default_definitions()
    person = scope.person(actor, person_id)
    if course_id is not None:
        course = scope.course(actor, course_id)
        if not scope.is_member(person.id, course.id):
            raise NotFound(_("No such technician in this course."))
    if not scope.can_view_person(actor, person, course_id):
        raise NotFound(_("No such person."))
    declared = _declarations(declarations, defs)

    known = sorted({c.framework_id for c in loaded or ()})
    values = {"person_id": person.id, "registration_id": person.registration_id}
    if course_id is not None:
        values["course_id"] = course_id
    if known:
        values["known"] = known
    competencies = sorted([*(loaded or ()), *db.session.scalars(
        _competencies_statement(course_id is not None, bool(known)), values)],
        key=lambda c: (c.framework_id, c.position, c.id))
    if statuses is None or as_of is not None:
        statuses = compute(person.registration, [person.id], [c.id for c in competencies], as_of)[person.id]
    rows = db.session.execute(_evidence_statement(), {"person_id": person.id, "moment": moment}).unique().all()
    evidence = [row.Evidence for row in rows]
    facts = _Facts(person, competencies, statuses, evidence, {row.Evidence.id for row in rows if row.attested},
                   declared, moment, defs)
    codes = pathway_codes or [p["code"] for p in defs.get("pathways") or []]
    return [_pathway(facts, code) for code in codes]
