"""The technician's evidence forms: which fields each kind shows, how a posted form becomes the payload the
evidence schemas load, and how their error keys map back to the fields on the page.

Field names are the schema's own, so a message from the service lands next to the field it is about.
"""
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..ids import id_or_none, ids, is_digits
from ..schemas.evidence import CREDENTIALS, DEPARTMENTS, RESPONSIBILITY_ROLES, US_STATES

KINDS = {
    "cross_training": (_l("Cross-training"),
                       _l("Training in another department or task: the trainer, the hours and the checklist steps "
                       "you were observed doing.")),
    "responsibility": (_l("Extra responsibility"),
                       _l("A role you took on, such as trainer of new staff, inventory lead or safety champion.")),
    "qi_project": (_l("Quality-improvement project"),
                   _l("A project that improved a process or safety: the problem, the aim, measures and PDSA cycles.")),
    "certification": (_l("Certification"),
                      _l("A certificate, registration or license you hold, such as PTCB CPhT or a state "
                         "registration.")),
    "continuing_education": (_l("Continuing education (CE)"),
                             _l("An ACPE-accredited CE activity: its UAN, hours and completion date.")),
}
# How the form's first section is headed ("About the ...").
ABOUT = {"cross_training": _l("About the cross-training"), "responsibility": _l("About the responsibility"),
         "qi_project": _l("About the project"), "certification": _l("About the certification"),
         "continuing_education": _l("About the CE activity")}
PDSA_PARTS = (("plan", _l("Plan")), ("do", _l("Do")), ("study", _l("Study")), ("act", _l("Act")))
DEFAULT_CYCLES = 2
MAX_CYCLES = 20


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str = "text"  # text, textarea, lines (one item a line), date, number, select, checkbox
    required: bool = True
    hint: str | None = None
    options: tuple = ()  # (value, label) for a select
    maxlength: int | None = None
    step: str | None = None
    min: str | None = None
    max: str | None = None
    past: bool = False  # a date that cannot be in the future
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "f-" + self.name.replace("_", "-")


def _options(mapping) -> tuple:
    # The labels stay English in the schemas (they are stored and exported); the form shows them translated.
    return tuple((code, _l(label if isinstance(label, str) else label[0])) for code, label in mapping.items())


TITLE = Field("title", _l("Title"), maxlength=300,
              hint=_l("A short name you will recognize, e.g. “Cart fill, 3 West”."))
NOTES = Field("notes", _l("Notes"), "textarea", required=False, maxlength=5000,
              hint=_l("Anything else the reviewer should know (optional)."))

FIELDS = {
    "cross_training": (
        TITLE,
        Field("department", _l("Department"), "select", options=_options(DEPARTMENTS)),
        Field("department_other", _l("Department, if “Other”"), required=False, maxlength=100),
        Field("skills", _l("Skills practiced"), "lines", hint=_l("One skill a line.")),
        Field("trainer_name", _l("Trainer’s name"), maxlength=200),
        Field("trainer_person_id", _l("Trainer’s account in this course"), "select", required=False,
              hint=_l("Optional: choose them if they use this tool, so the record is linked to them.")),
        Field("hours", _l("Hours of training"), "number", step="0.25", min="0.25", max="2080",
              hint=_l("In quarter hours, e.g. 7.5.")),
        Field("start_date", _l("Start date"), "date", past=True),
        Field("end_date", _l("End date"), "date", required=False, past=True,
              hint=_l("The start date unless you change it (training on one day)."),
              extra={"data-follows": "f-start-date"}),
        NOTES,
    ),
    "responsibility": (
        TITLE,
        Field("role", _l("Role"), "select", options=_options(RESPONSIBILITY_ROLES)),
        Field("role_other", _l("Role, if “Other”"), required=False, maxlength=100),
        Field("scope", _l("What the role involves"), "textarea", maxlength=2000),
        Field("start_date", _l("Start date"), "date", past=True),
        Field("end_date", _l("End date"), "date", required=False, past=True,
              hint=_l("Leave empty if you still hold it.")),
        Field("supervisor", _l("Supervisor"), maxlength=200, hint=_l("Who can confirm it.")),
        NOTES,
    ),
    "qi_project": (
        TITLE,
        Field("problem", _l("Problem"), "textarea", maxlength=5000, hint=_l("What was going wrong, and how you knew.")),
        Field("aim", _l("Aim"), "textarea", maxlength=2000,
              hint=_l("What you set out to change, by how much, by when.")),
        Field("measures", _l("Measures"), "lines", hint=_l("One measure a line.")),
        Field("results", _l("Results"), "textarea", maxlength=5000),
        Field("role", _l("Your role"), "textarea", maxlength=1000),
        Field("team", _l("Team members"), "lines", required=False, hint=_l("One name a line (optional).")),
        NOTES,
    ),
    "certification": (
        TITLE,
        Field("credential", _l("Credential"), "select", options=_options(CREDENTIALS)),
        Field("credential_other", _l("Credential, if “Other”"), required=False, maxlength=200),
        Field("number", _l("Certificate or license number"), maxlength=100),
        Field("issuing_body", _l("Issuing body"), required=False, maxlength=200,
              hint=_l("Needed for a state registration or another credential; PTCB and NHA are filled in for you.")),
        Field("state", _l("State"), "select", required=False, options=tuple((s, s) for s in sorted(US_STATES)),
              hint=_l("Only for a state registration or license.")),
        Field("issued_date", _l("Date issued"), "date", past=True),
        Field("expiry_date", _l("Expiration date"), "date", required=False,
              hint=_l("When it must be renewed, if it expires.")),
        NOTES,
    ),
    "continuing_education": (
        TITLE,
        Field("uan", _l("Universal Activity Number (UAN)"), maxlength=40,
              hint=_l("From your CE statement, like 0197-0000-17-001-L05-T."), extra={"autocomplete": "off"}),
        Field("hours", _l("Contact hours"), "number", step="0.25", min="0.25", max="100"),
        Field("completion_date", _l("Date completed"), "date", past=True),
        Field("provider_name", _l("Provider"), maxlength=200),
        Field("sterile_compounding", _l("This activity is about sterile compounding"), "checkbox", required=False,
              hint=_l("Tick it if it counts toward your CSPT renewal.")),
        NOTES,
    ),
}
ORDER = {kind: [f.name for f in specs] for kind, specs in FIELDS.items()}


def blank_values(kind: str) -> dict:
    values = {f.name: "" for f in FIELDS[kind]}
    values.update(competency_ids=[], checklist_steps=[], cycles=[{}] * DEFAULT_CYCLES)
    return values


def preset(kind: str, competency) -> dict:
    """A new form opened for one competency (a deep link, a "record evidence" link): the competency ticked,
    and what follows from it filled in for the technician to change: a title, and the department when the
    competency belongs to exactly one."""
    values = blank_values(kind)
    values["competency_ids"] = [competency.id]
    values["title"] = competency.title[:300]
    departments = competency.departments or []
    if kind == "cross_training" and len(departments) == 1 and departments[0] in DEPARTMENTS:
        values["department"] = departments[0]
    return values


def values_from_evidence(evidence, competency_ids) -> dict:
    """What the edit form shows for a stored item."""
    data = evidence.data or {}
    values = blank_values(evidence.kind)
    for spec in FIELDS[evidence.kind]:
        value = evidence.title if spec.name == "title" else data.get(spec.name)
        if spec.type == "lines":
            values[spec.name] = "\n".join(value or [])
        elif spec.type == "checkbox":
            values[spec.name] = bool(value)
        else:
            values[spec.name] = "" if value is None else str(value)
    values["competency_ids"] = list(competency_ids)
    values["checklist_steps"] = list(data.get("checklist_steps") or [])
    cycles = [dict(c) for c in data.get("pdsa_cycles") or []]
    values["cycles"] = cycles + [{}] * max(0, DEFAULT_CYCLES - len(cycles)) if cycles else [{}] * DEFAULT_CYCLES
    return values


def _blank(value) -> bool:
    return value is None or not str(value).strip()


def parse(kind: str, form) -> tuple[dict, dict, dict]:
    """(payload for the evidence service, values to show again, errors found before validation).

    Blank fields are sent as null: the schemas answer "This field is required." for a required one, and an
    edit clears an optional one."""
    payload, values, errors = {}, {}, {}
    for spec in FIELDS[kind]:
        raw = form.get(spec.name, "")
        if spec.type == "checkbox":
            values[spec.name] = bool(raw)
            payload[spec.name] = bool(raw)
            continue
        values[spec.name] = raw
        if _blank(raw):
            payload[spec.name] = None
        elif spec.type == "lines":
            payload[spec.name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif spec.name == "trainer_person_id":
            if id_or_none(raw) is not None:
                payload[spec.name] = id_or_none(raw)
            else:
                errors[spec.name] = _("Choose a trainer from the list, or leave it empty.")
        else:
            payload[spec.name] = raw.strip() if spec.type != "textarea" else raw

    chosen = form.getlist("competency_ids")
    values["competency_ids"] = ids(chosen)
    if len(values["competency_ids"]) != len(chosen):
        errors["competency_ids"] = _("Choose competencies from the list.")
    payload["competency_ids"] = values["competency_ids"] or None

    if kind == "cross_training":
        if payload.get("end_date") is None:  # training on one day: the end is the start
            payload["end_date"] = payload.get("start_date")
        steps = list(dict.fromkeys(s for s in form.getlist("checklist_steps") if s.strip()))
        values["checklist_steps"] = steps
        payload["checklist_steps"] = steps

    values["cycles"], cycle_map = [], []
    if kind == "qi_project":
        count = min(_int(form.get("cycle_count"), DEFAULT_CYCLES), MAX_CYCLES)
        cycles = []
        for n in range(count):
            cycle = {part: form.get(f"pdsa-{n}-{part}", "") for part, _name in PDSA_PARTS}
            cycle["date"] = form.get(f"pdsa-{n}-date", "")
            values["cycles"].append(cycle)
            if all(_blank(v) for v in cycle.values()):
                continue
            cycle_map.append(n)
            cycles.append({k: (None if _blank(v) else v.strip() if k == "date" else v) for k, v in cycle.items()})
        payload["pdsa_cycles"] = cycles or None
        if not values["cycles"]:
            values["cycles"] = [{}]
    values["_cycle_map"] = cycle_map
    return payload, values, errors


def _int(raw, default: int) -> int:
    value = id_or_none(raw)
    return default if value is None else max(1, value)


def field_id(key: str, kind: str, cycle_map=()) -> str | None:
    """The id of the input an error key ("hours", "pdsa_cycles.0.plan", "skills.2") is about."""
    head, _sep, rest = key.partition(".")
    if head == "pdsa_cycles":
        index, _sep, part = rest.partition(".")
        if is_digits(index) and part:
            n = int(index)
            return f"f-pdsa-{cycle_map[n] if n < len(cycle_map) else n}-{part}"
        return "f-pdsa"
    if head == "competency_ids":
        return "f-competencies"
    if head == "checklist_steps":
        return "f-steps"
    if head in ("file", "files", "description"):
        return "f-files"
    if head in ORDER.get(kind, ()):
        return "f-" + head.replace("_", "-")
    return None


def label_for(key: str, kind: str) -> str:
    head, _sep, rest = key.partition(".")
    if head == "pdsa_cycles":
        index, _sep, part = rest.partition(".")
        if is_digits(index) and part:
            return _("PDSA cycle %(n)d, %(part)s", n=int(index) + 1,
                     part=dict(PDSA_PARTS + (("date", _l("Date")),)).get(part, part))
        return _("PDSA cycles")
    if head == "competency_ids":
        return _("Competencies")
    if head == "checklist_steps":
        return _("Checklist steps")
    if head in ("file", "files", "description"):
        return _("Attachments")
    for spec in FIELDS.get(kind, ()):
        if spec.name == head:
            return str(spec.label)
    return _("Form")


def error_list(errors: dict, kind: str, cycle_map=()) -> tuple[list[dict], dict]:
    """Errors in page order for the summary, and {field id: message} for the messages next to fields."""
    order = ["title", *ORDER.get(kind, ()), "competency_ids", "checklist_steps", "pdsa_cycles", "files"]
    rank = {name: n for n, name in enumerate(order)}
    items, by_field = [], {}
    for key in sorted(errors, key=lambda k: (rank.get(k.partition(".")[0], len(order)), k)):
        fid = field_id(key, kind, cycle_map)
        message = errors[key]
        items.append({"id": fid, "label": label_for(key, kind), "message": message})
        if fid:
            by_field[fid] = f"{by_field[fid]} {message}" if fid in by_field else message
    return items, by_field
