"""Checking one row of a prior-records file: who it is about, its dates, and what it would create (a sign-off of
a competency on the framework's scale, a certification or a CE item validated by the evidence schemas), with a
natural key that makes a re-run find it. Problems are collected per row in plain words; nothing is written."""
import hashlib
from dataclasses import dataclass, field

from marshmallow import ValidationError

from ...models.reviews import METHODS
from ...schemas.evidence import CREDENTIALS, load_evidence
from .. import localtime
from . import columns, files

_METHOD_WORDS = {"observed": "observed", "observation": "observed", "demonstrated": "demonstrated",
                 "demonstration": "demonstrated", "return demonstration": "demonstrated",
                 "verified document": "verified_document", "verified_document": "verified_document",
                 "document": "verified_document", "documentation": "verified_document", "written test": "attested",
                 "attested": "attested", "attestation": "attested", "self attestation": "attested"}


@dataclass
class PlannedRow:
    number: int
    problems: list = field(default_factory=list)
    skip: str = ""  # why nothing is created ("already imported")
    what: str = ""  # "Tess Nguyen: USP797-02 assessed Jan 15, 2025"
    person_key: str = ""
    key: str = ""
    values: dict = field(default_factory=dict)


def natural_key(*parts) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def _rating(framework, raw: str):
    scale = framework.scale or []
    if not raw:
        return next((lvl for lvl in scale if lvl.get("proficient")), None)
    wanted = columns.normalize(raw)
    return next((lvl for lvl in scale if wanted in (columns.normalize(lvl.get("code")),
                                                    columns.normalize(lvl.get("label")))), None)


def _credential(raw: str) -> tuple[str, str | None]:
    """("ptcb_cpht", None) for "PTCB CPhT" or "CPhT"; ("other", raw) for anything unknown."""
    wanted = columns.normalize(raw)
    for code, (label, _) in CREDENTIALS.items():
        short = label[label.find("(") + 1:label.find(")")] if "(" in label else ""
        if wanted in (columns.normalize(code), columns.normalize(label), columns.normalize(short),
                      columns.normalize("ptcb" + short)):
            return code, None
    return "other", raw


def resolve_person(planned: PlannedRow, values: dict, technician: str, context):
    email = (values.get("email") or (technician if "@" in technician else "")).strip().lower()
    sub = (values.get("lms_id") or (technician if technician and "@" not in technician else "")).strip()
    name = (values.get("name") or "").strip()[:300]
    if email and ("@" not in email or len(email) > 320 or " " in email):
        planned.problems.append(f"'{email[:60]}' is not an e-mail address.")
        return
    if len(sub) > 200:
        planned.problems.append("The LMS id is too long.")
        return
    person = context["people"].get(("sub", sub)) if sub else None
    person = person or (context["people"].get(("email", email)) if email else None)
    if person is not None:
        planned.values["person"] = person
        planned.person_key = f"id:{person.id}"
        planned.values["person_name"] = person.display_name
    elif email or sub:
        planned.person_key = f"sub:{sub}" if sub else f"email:{email}"
        planned.values["new_person"] = (email or None, sub or None, name or None)
        planned.values["person_name"] = name or email or sub
    else:
        planned.problems.append("Give the technician's e-mail or LMS id.")


def _date(planned: PlannedRow, raw, label: str, required: bool, context, future_ok: bool = False):
    try:
        day = files.date_of(raw)
    except ValueError as exc:
        planned.problems.append(f"{label}: {exc}")
        return None
    if day is None and required:
        planned.problems.append(f"{label} is missing.")
    if day is not None and not future_ok and day > context["today"]:
        planned.problems.append(f"{label} is in the future.")
    if day is not None and day.year < 1970:
        planned.problems.append(f"{label} is before 1970.")
    return day


def _keyed(planned: PlannedRow, *parts):
    """The row's natural key: what it records and whose it is. A person the import has yet to create is named by
    e-mail or LMS id here (so the dry run finds repeats in the file); once created, by id, which is what a re-run
    finds, however the next file names them."""
    planned.values["key_parts"] = parts
    planned.key = natural_key(planned.person_key, *parts)


def check_sign_off(planned: PlannedRow, v: dict, context):
    code = v.get("competency") or ""
    competency = context["competencies"].get(code.lower())
    if not code:
        planned.problems.append("Competency code is missing.")
    elif competency is None:
        planned.problems.append(f"'{code[:60]}' is not a competency of this course's frameworks.")
    assessed = _date(planned, v.get("assessed"), "Date assessed", True, context)
    expires = _date(planned, v.get("expires"), "Expiration date", False, context, future_ok=True)
    interval = None
    raw_interval = (v.get("interval") or "").lower()
    if raw_interval:
        words = {"annual": 12, "annually": 12, "yearly": 12, "semiannual": 6, "semiannually": 6, "quarterly": 3,
                 "monthly": 1, "every 6 months": 6, "every 12 months": 12, "every 3 months": 3}
        digits = "".join(ch for ch in raw_interval.split()[0] if ch.isdigit())
        interval = words.get(raw_interval) or (int(digits) if digits else None)
        if "year" in raw_interval and digits:
            interval = int(digits) * 12
        if not interval or interval > 120:
            planned.problems.append(f"Interval '{raw_interval[:30]}' is not a number of months (e.g. 6 or 12).")
    method_raw = (v.get("method") or "").lower().replace("-", " ").strip()
    method = _METHOD_WORDS.get(method_raw, method_raw.replace(" ", "_")) if method_raw else "verified_document"
    if method not in METHODS:
        planned.problems.append(f"Method '{method_raw[:40]}' is not one of observed, demonstrated, verified document, "
                                "attested.")
    level = None
    if competency is not None:
        level = _rating(competency.framework, v.get("rating") or "")
        if level is None:
            scale = ", ".join(lvl.get("label") or lvl["code"] for lvl in competency.framework.scale or [])
            planned.problems.append(f"Rating '{(v.get('rating') or '')[:40]}' is not on the scale ({scale}).")
    for key, limit in (("assessor_name", 300), ("assessor_role", 100), ("note", 2000)):
        if len(v.get(key) or "") > limit:
            planned.problems.append(f"{key.replace('_', ' ').capitalize()} is longer than {limit} characters.")
    if expires and assessed and expires <= assessed:
        planned.problems.append("The expiration date is not after the date assessed.")
    if planned.problems or competency is None or assessed is None:
        return
    _keyed(planned, "sign_off", context["course"].registration_id, competency.code, assessed.isoformat())
    planned.values.update(competency=competency, assessed=assessed, expires=expires, interval=interval,
                          method=method, level=level, assessor_name=v.get("assessor_name") or "",
                          assessor_role=v.get("assessor_role") or "", note=v.get("note") or "")
    planned.what = (f"{planned.values['person_name']}: {competency.code} assessed {localtime.us_date(assessed)}"
                    + (f" by {v['assessor_name']}" if v.get("assessor_name") else ""))


def _evidence_payload(planned: PlannedRow, kind: str, payload: dict, context) -> dict | None:
    try:
        title, data, _ = load_evidence(kind, payload, today=context["today"], competencies_required=False)
    except ValidationError as exc:
        for name, messages in exc.messages.items():
            text = " ".join(m for m in messages if isinstance(m, str)) if isinstance(messages, list) else messages
            planned.problems.append(f"{name.replace('_', ' ').capitalize()}: {text}")
        return None
    return {"title": title, "data": data}


def check_certification(planned: PlannedRow, v: dict, context):
    issued = _date(planned, v.get("issued"), "Issued", True, context)
    expires = _date(planned, v.get("expires"), "Expires", False, context, future_ok=True)
    if planned.problems:
        return
    credential, other = _credential(v.get("credential") or "")
    label = other or CREDENTIALS[credential][0]
    payload = {"title": label[:300], "credential": credential, "number": v.get("number") or None,
               "issued_date": issued.isoformat() if issued else None}
    if other:
        payload["credential_other"] = other[:200]
    for key, value in (("expiry_date", expires.isoformat() if expires else None),
                       ("issuing_body", v.get("issuing_body") or None), ("state", (v.get("state") or "").upper()
                                                                         or None)):
        if value:
            payload[key] = value
    loaded = _evidence_payload(planned, "certification", payload, context)
    if loaded is None:
        return
    _keyed(planned, "certification", context["course"].registration_id, credential, columns.normalize(other or ""),
           columns.normalize(v.get("number") or ""))
    planned.values.update(kind="certification", **loaded)
    planned.what = f"{planned.values['person_name']}: {label} no. {v.get('number')} issued {localtime.us_date(issued)}"


def check_ce(planned: PlannedRow, v: dict, context):
    completed = _date(planned, v.get("completed"), "Completion date", True, context)
    hours = v.get("hours") or ""
    if not hours and v.get("ceus"):
        try:  # 1 CEU = 10 contact hours (ACPE)
            hours = str(round(float(v["ceus"]) * 10, 2))
        except ValueError:
            planned.problems.append(f"CEUs '{v['ceus'][:20]}' is not a number.")
    if planned.problems:
        return
    title = (v.get("title") or f"ACPE activity {v.get('uan')}")[:300]
    payload = {"title": title, "uan": v.get("uan"), "hours": hours or None,
               "completion_date": completed.isoformat() if completed else None,
               "provider_name": (v.get("provider") or "Not recorded")[:200]}
    loaded = _evidence_payload(planned, "continuing_education", payload, context)
    if loaded is None:
        return
    _keyed(planned, "ce", context["course"].registration_id, loaded["data"]["uan"], completed.isoformat())
    planned.values.update(kind="continuing_education", **loaded)
    planned.what = (f"{planned.values['person_name']}: {loaded['data']['uan']} ({loaded['data']['hours']} h) "
                    f"completed {localtime.us_date(completed)}")


# --- Applying -----------------------------------------------------------------------------------------------
