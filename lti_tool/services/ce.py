"""Continuing-education compliance: how a technician's CE stands against a recertification rule, and in which
cycle. THE one CE computation: the dashboard, the transcript page, PDF, CSV/JSON and credentials all call
`report` (or `ce_status` with the cycle it chose), so they cannot disagree.

Rules are data (lti_tool/data/ce_rules.json). Two answers are given side by side, labelled on every page:
- "recorded": CE items sent for review or signed off (drafts and returned items are work in progress: their
  hours are reported apart, as `unsent_hours`, and count in neither answer);
- "verified": CE items whose sign-off stands (a revoked or corrected-away sign-off does not verify).
An activity (one UAN) counts once, even if recorded in two courses. Hours are counted when the completion date
falls in the cycle and not after `as_of`.

The cycle (`cycle_for`) comes from the technician's VERIFIED certification for the rule's credential: the cycle
ends on its expiration date (inclusive) and began one cycle-length before; with only an issue date, cycles run
on from it. An unreviewed certification is listed as pending and does not move the cycle. Without a verified
certification the cycle is a stand-in: the cycle-length ending today ("assumed").
"""
import calendar
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

from sqlalchemy import select

from .. import formatting
from ..extensions import db
from ..i18n import N_, ngettext
from ..i18n import gettext as _
from ..models import Evidence
from ..models.evidence import DRAFT, RETURNED, SIGNED_OFF, SUBMITTED, WITHDRAWN
from ..schemas.evidence import CREDENTIALS
from . import DomainError, NotFound, attestation, scope

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "ce_rules.json"
KIND = "continuing_education"
CERTIFICATION = "certification"
RECORDED = (SUBMITTED, SIGNED_OFF)
UNSENT = (DRAFT, RETURNED)
# The rule that applies is the one of the credential the technician holds (verified), CPhT when none is.
RULE_PREFERENCE = ("ptcb_cpht_adv", "ptcb_cpht", "nha_excpt")
DEFAULT_RULE = "ptcb_cpht"
EXTRA_RULES = ("ptcb_cspt",)
# The shipped rules' names and labels (lti_tool/data/ce_rules.json), so the catalog has them: results carry them
# in the current language (pages in the viewer's; exports are written in English). tests/test_i18n.py checks that
# every name and label of the rules file is listed here.
RULE_WORDS = (
    N_("PTCB CPhT recertification"), N_("PTCB CPhT-Adv recertification"), N_("NHA ExCPT recertification"),
    N_("PTCB CSPT yearly renewal"), N_("pharmacy law (ACPE topic 03)"), N_("patient safety (ACPE topic 05)"),
    N_("technician-specific CE (UAN ending in T)"), N_("pharmacist-specific CE (UAN ending in P)"),
    N_("sterile-compounding CE"),
)
# Warn this many days ahead of a cycle's end with CE missing, and of a certification's expiration.
WARNING_DAYS = 90


@cache
def rules() -> dict:
    """All rules by code (read once, on first use)."""
    with open(RULES_FILE, encoding="utf-8") as fh:
        data = json.load(fh)
    return {code: rule for code, rule in data.items() if not code.startswith("_")}


def rule(code: str) -> dict:
    try:
        return rules()[code]
    except KeyError:
        raise NotFound(f"No CE rule '{code}'; known rules: {', '.join(sorted(rules()))}.") from None


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cycle_end(rule_data: dict, cycle_start: date) -> date:
    """The last day of the cycle (the day before the next cycle starts)."""
    return add_months(cycle_start, rule_data["cycle_months"]) - timedelta(days=1)


def hours_text(hours: Decimal) -> str:
    """Decimal("1.50") -> "1.5 hours", Decimal(1) -> "1 hour"."""
    number = format(hours.normalize(), "f")
    return _("%(hours)s hour", hours=number) if hours == 1 else _("%(hours)s hours", hours=number)


def _matches(item: dict, match: dict) -> bool:
    parts = item["uan_parts"]
    for key, wanted in match.items():
        if key in ("topic", "audience", "format"):
            if parts.get(key) not in wanted:
                return False
        elif key == "sterile_compounding":
            if bool(item.get("sterile_compounding")) is not bool(wanted):
                return False
        else:
            raise ValueError(f"unknown match key {key!r} in a CE rule")
    return True


def _num(value: Decimal) -> float:
    return float(value)


def evaluate(rule_data: dict, items: list[dict]) -> dict:
    """Apply a rule to CE items ({"id", "hours", "uan_parts", ...}); pure, for tests and previews."""
    recorded = sum((Decimal(str(i["hours"])) for i in items), Decimal(0))
    capped_out = Decimal(0)
    limits = []
    for limit in rule_data.get("limits", []):
        hours = sum((Decimal(str(i["hours"])) for i in items if _matches(i, limit["match"])), Decimal(0))
        over = max(hours - Decimal(str(limit["max_hours"])), Decimal(0))
        capped_out += over
        limits.append({"code": limit["code"], "label": _(limit["label"]), "max_hours": limit["max_hours"],
                       "hours": _num(hours), "counted": _num(hours - over), "not_counted": _num(over)})
    counted = recorded - capped_out
    required = Decimal(str(rule_data["total_hours"]))
    missing_total = max(required - counted, Decimal(0))

    requirements, missing = [], []
    if missing_total:
        missing.append(_("%(missing)s more CE in total (%(counted)s of %(required)s so far)",
                         missing=hours_text(missing_total), counted=hours_text(counted),
                         required=hours_text(required)))
    for req in rule_data.get("requirements", []):
        hours = sum((Decimal(str(i["hours"])) for i in items if _matches(i, req["match"])), Decimal(0))
        need = Decimal(str(req["min_hours"]))
        short = max(need - hours, Decimal(0))
        requirements.append({"code": req["code"], "label": _(req["label"]), "min_hours": req["min_hours"],
                             "hours": _num(hours), "met": not short, "missing_hours": _num(short)})
        if short:
            missing.append(_("%(hours)s of %(what)s", hours=hours_text(short), what=_(req["label"])))
    for limit in limits:
        if limit["not_counted"]:
            limit["note"] = _("%(hours)s of %(what)s do not count (at most %(most)s may).",
                              hours=hours_text(Decimal(str(limit["not_counted"]))), what=_(limit["label"]),
                              most=hours_text(Decimal(str(limit["max_hours"]))))
    summary = _("All requirements are met.") if not missing else \
        _("Still needed: %(missing)s.", missing="; ".join(missing))
    return {
        "hours": _num(counted),
        "recorded_hours": _num(recorded),
        "required_hours": rule_data["total_hours"],
        "missing_hours": _num(missing_total),
        "met": not missing,
        "requirements": requirements,
        "limits": limits,
        "missing": missing,
        "summary": summary,
        "evidence_ids": sorted(i["id"] for i in items),
    }


def _verified(evidence_ids, as_of: date) -> set[int]:
    """Signed-off items whose sign-off stands (attestation.evidence_states: the one rule)."""
    moment = datetime.combine(as_of, time.max, tzinfo=UTC)
    states = attestation.evidence_states(evidence_ids, moment)
    return {i for i in evidence_ids if attestation.is_verified(SIGNED_OFF, states.get(i))}


class _Records:
    """The technician's CE and certification records (not withdrawn, oldest first) and which of them are verified
    at `as_of`: two queries for a whole report, however many cycles it shows."""

    def __init__(self, rows: list, verified: set[int]):
        self.rows, self.verified = rows, verified

    def of_kind(self, kind: str) -> list:
        return [row for row in self.rows if row.kind == kind]


def _records(person, as_of: date, course_ids=None, kinds=(KIND, CERTIFICATION)) -> _Records:
    query = select(Evidence).where(Evidence.person_id == person.id, Evidence.kind.in_(kinds),
                                   Evidence.status != WITHDRAWN)
    if course_ids is not None:
        query = query.where(Evidence.course_id.in_(course_ids))
    rows = list(db.session.scalars(query.order_by(Evidence.id)))
    return _Records(rows, _verified([ev.id for ev in rows if ev.status == SIGNED_OFF], as_of))


def _items(person, start: date, last: date, as_of: date, course_ids=None,
           records: _Records | None = None) -> tuple[list[dict], set[int], Decimal]:
    """(CE items sent for review or signed off in the cycle, one per UAN, the ids of the verified ones (judged
    at `as_of`: CE done in a cycle is often signed off after it), hours of drafts and returned items in the
    cycle not sent yet)."""
    loaded = records or _records(person, as_of, course_ids, (KIND,))
    rows = []
    for evidence in loaded.of_kind(KIND):
        data = evidence.data or {}
        try:
            done = date.fromisoformat(data["completion_date"])
        except (KeyError, TypeError, ValueError):
            continue
        if start <= done <= last and "uan_parts" in data:
            rows.append((evidence, data))
    verified = loaded.verified
    by_uan: dict[str, dict] = {}
    unsent: dict[str, Decimal] = {}
    for evidence, data in rows:
        if evidence.status in UNSENT:
            unsent.setdefault(data["uan"], Decimal(str(data.get("hours") or 0)))
            continue
        if evidence.status not in RECORDED:
            continue
        item = {"id": evidence.id, "status": evidence.status, "verified": evidence.id in verified, **data}
        seen = by_uan.get(data["uan"])
        # One activity counts once: keep a verified record if there is one, else the first recorded.
        if seen is None or (item["verified"] and not seen["verified"]):
            by_uan[data["uan"]] = item
    items = list(by_uan.values())
    sent = {i["uan"] for i in items}
    return items, {i["id"] for i in items if i["verified"]}, sum(
        (hours for uan, hours in unsent.items() if uan not in sent), Decimal(0))


def ce_status(person, rule_code: str, cycle_start: date, as_of: date | None = None, *, course_ids=None,
              records: _Records | None = None, last_day: date | None = None) -> dict:
    """Where `person` stands on rule `rule_code` for the cycle starting `cycle_start`, as of `as_of` (today).
    `last_day`: the cycle's last day when it is known (a certification's expiry: cycle_for), else the rule's
    length from the start.

    Returns the rule, the cycle's dates, days left (0 on the last day; negative once it is over), and a
    "recorded" and a "verified" result, each with hours counted, requirements met or missing, and what is
    missing in plain words. `course_ids` (a collection or select of ids) limits which courses' records count.
    """
    rule_data = rule(rule_code)
    as_of = as_of or date.today()
    if not isinstance(cycle_start, date):
        raise DomainError(_("Give the cycle's start date."), code="invalid", fields={"cycle_start": "Not a date."})
    last = last_day or cycle_end(rule_data, cycle_start)
    items, verified_ids, unsent = _items(person, cycle_start, min(last, as_of), as_of, course_ids, records)
    recorded = evaluate(rule_data, items)
    verified = evaluate(rule_data, [item for item in items if item["id"] in verified_ids])
    return {
        "rule": rule_code,
        "name": _(rule_data["name"]),
        "cycle_start": cycle_start.isoformat(),
        "cycle_end": last.isoformat(),
        "as_of": as_of.isoformat(),
        "days_left": (last - as_of).days,
        "recorded": recorded,
        "verified": verified,
        "unsent_hours": _num(unsent),
    }


# --- Which rule and which cycle: from the technician's verified certifications ---------------------------------

def _day(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def certifications(person, as_of: date, course_ids=None, records: _Records | None = None) -> list[dict]:
    """The technician's certification records (not withdrawn), oldest first, each with `verified` (a standing
    sign-off) and its dates."""
    loaded = records or _records(person, as_of, course_ids, (CERTIFICATION,))
    verified = loaded.verified
    out = []
    for ev in loaded.of_kind(CERTIFICATION):
        data = ev.data or {}
        credential = data.get("credential")
        out.append({"evidence_id": ev.id, "title": ev.title, "credential": credential,
                    "label": data.get("credential_other") or CREDENTIALS.get(credential, (ev.title,))[0],
                    "issued": _day(data.get("issued_date")), "expires": _day(data.get("expiry_date")),
                    "status": ev.status, "verified": ev.id in verified})
    return out


def cycle_for(rule_code: str, certs: list[dict], today: date) -> dict:
    """The cycle of `rule_code` from the latest verified certification of its credential:
    {"start", "end", "known", "certification"}."""
    rule_data = rule(rule_code)
    months = rule_data["cycle_months"]
    mine = [c for c in certs if c["verified"] and c["credential"] == rule_data.get("credential")
            and (c["expires"] or c["issued"])]
    mine.sort(key=lambda c: (c["issued"] or date.min, c["expires"] or date.min, c["evidence_id"]))
    if mine:
        cert = mine[-1]
        if cert["expires"]:
            # The cycle ends on the expiration date itself. Computed from the start it would not always: a
            # certification expiring Feb 28, 2028 (a leap year) has its cycle start on Feb 28, 2026 (no Feb 29
            # that year), and start + 24 months - 1 day is Feb 27.
            start = add_months(cert["expires"] + timedelta(days=1), -months)
            return {"start": start, "end": cert["expires"], "known": True, "certification": cert}
        # Cycles are counted from the issue date each time, not from the cycle before: from Feb 29, 2024 the
        # third starts Feb 29, 2028, where stepping from the clamped Feb 28, 2026 would give Feb 28.
        issued, passed = cert["issued"], 0
        while add_months(issued, (passed + 1) * months) <= today:  # that cycle's last day is before today
            passed += 1
        next_start = add_months(issued, (passed + 1) * months)
        return {"start": add_months(issued, passed * months), "end": next_start - timedelta(days=1),
                "known": True, "certification": cert}
    # No certification to count from: the cycle is the one ending today (on Feb 28, 2026 it starts Feb 29, 2024,
    # whose cycle_end would be Feb 27).
    return {"start": add_months(today, -months) + timedelta(days=1), "end": today, "known": False,
            "certification": None}


def _warnings(result: dict, cycle: dict, today: date) -> list[str]:
    out = []
    end, days = formatting.us_date(result["cycle_end"]), result["days_left"]
    verified = result["verified"]
    if cycle["known"] and not verified["met"]:
        if days < 0:
            out.append(_("Your %(rule)s cycle ended on %(date)s without the CE it needs.", rule=result["name"],
                         date=end) + " " + verified["summary"])
        elif days <= WARNING_DAYS:
            extra = (" " + _("Your recorded CE would cover it once signed off: ask for review.")
                     if result["recorded"]["met"] else "")
            out.append(ngettext("Your %(rule)s cycle ends on %(date)s (in %(num)d day) and verified CE falls short.",
                                "Your %(rule)s cycle ends on %(date)s (in %(num)d days) and verified CE falls short.",
                                days, rule=result["name"], date=end) + f" {verified['summary']}{extra}")
    cert = cycle["certification"]
    if cert is not None and cert["expires"] is not None:
        left = (cert["expires"] - today).days
        when = formatting.us_date(cert["expires"])
        if left < 0:
            out.append(_("Your %(credential)s expired on %(date)s.", credential=_(cert["label"]), date=when))
        elif left <= WARNING_DAYS:
            out.append(ngettext("Your %(credential)s expires on %(date)s (in %(num)d day).",
                                "Your %(credential)s expires on %(date)s (in %(num)d days).", left,
                                credential=_(cert["label"]), date=when))
    return out


def report(person, today: date | None = None, *, course_ids=None, rule_code: str | None = None) -> dict:
    """Everything every page and export says about CE: {"cycles": [the main rule's, then CSPT's if held],
    "pending": [certifications not verified yet], "warnings": [...]}. Each cycle is a ce_status result plus
    "known" (cycle from a verified certification) and "certification"."""
    today = today or date.today()
    records = _records(person, today, course_ids)
    certs = certifications(person, today, course_ids, records)
    held = {c["credential"] for c in certs if c["verified"]}
    by_credential = {r.get("credential"): code for code, r in rules().items()}
    main = rule_code or next((c for c in RULE_PREFERENCE if rule(c).get("credential") in held), DEFAULT_RULE)
    codes = [main] + [c for c in EXTRA_RULES if c != main and rule(c).get("credential") in held]
    cycles, warnings = [], []
    for code in codes:
        cycle = cycle_for(code, certs, today)
        result = ce_status(person, code, cycle["start"], today, course_ids=course_ids, records=records,
                           last_day=cycle["end"])
        result.update(known=cycle["known"], certification=_cert_json(cycle["certification"]),
                      warnings=_warnings(result, cycle, today))
        warnings += result["warnings"]
        cycles.append(result)
    pending = [_cert_json(c) for c in certs if not c["verified"] and c["credential"] in by_credential]
    for cert in pending:
        warnings.append(_("Your %(credential)s is pending verification: it sets your CE cycle once a manager "
                          "signs it off.", credential=_(cert["label"])))
    return {"cycles": cycles, "pending": pending, "warnings": warnings}


def _cert_json(cert: dict | None) -> dict | None:
    if cert is None:
        return None
    return {**cert, "issued": cert["issued"].isoformat() if cert["issued"] else None,
            "expires": cert["expires"].isoformat() if cert["expires"] else None}


def status_for(actor, person_id: int, rule_code: str, cycle_start: date, as_of: date | None = None) -> dict:
    """ce_status for someone the actor may see: oneself (every course), or a technician of a course the actor
    manages (counting only that course's records)."""
    target = scope.person(actor, person_id)
    if target.id == actor.person.id:
        return ce_status(target, rule_code, cycle_start, as_of)
    if not scope.can_view_person(actor, target):
        raise NotFound(_("No such person."))
    return ce_status(target, rule_code, cycle_start, as_of, course_ids=scope.managed_course_ids(actor))
