"""Continuing-education compliance: how a technician's CE stands against a recertification rule.

Rules are data (lti_tool/data/ce_rules.json). Two answers are given side by side:
- "recorded": every CE item the technician recorded that is not withdrawn (drafts included: it is their own
  record of what they did, useful for planning);
- "verified": only CE items a manager has signed off.
An activity (one UAN) counts once, even if recorded in two courses. Hours are counted when the completion date
falls in the cycle and not after `as_of`.
"""
import calendar
import json
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

from sqlalchemy import select

from ..extensions import db
from ..models import Evidence
from ..models.evidence import SIGNED_OFF, WITHDRAWN
from . import DomainError, NotFound, scope

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "ce_rules.json"
KIND = "continuing_education"
_STATUS_RANK = {SIGNED_OFF: 0}


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
    return format(hours.normalize(), "f") + (" hour" if hours == 1 else " hours")


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
        limits.append({"code": limit["code"], "label": limit["label"], "max_hours": limit["max_hours"],
                       "hours": _num(hours), "counted": _num(hours - over), "not_counted": _num(over)})
    counted = recorded - capped_out
    required = Decimal(str(rule_data["total_hours"]))
    missing_total = max(required - counted, Decimal(0))

    requirements, missing = [], []
    if missing_total:
        missing.append(f"{hours_text(missing_total)} more CE in total ({hours_text(counted)} of "
                       f"{hours_text(required)} so far)")
    for req in rule_data.get("requirements", []):
        hours = sum((Decimal(str(i["hours"])) for i in items if _matches(i, req["match"])), Decimal(0))
        need = Decimal(str(req["min_hours"]))
        short = max(need - hours, Decimal(0))
        requirements.append({"code": req["code"], "label": req["label"], "min_hours": req["min_hours"],
                             "hours": _num(hours), "met": not short, "missing_hours": _num(short)})
        if short:
            missing.append(f"{hours_text(short)} of {req['label']}")
    for limit in limits:
        if limit["not_counted"]:
            limit["note"] = (f"{hours_text(Decimal(str(limit['not_counted'])))} of {limit['label']} do not count "
                             f"(at most {hours_text(Decimal(str(limit['max_hours'])))} may).")
    summary = ("All requirements are met." if not missing else "Still needed: " + "; ".join(missing) + ".")
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


def _items(person, start: date, last: date, course_ids=None) -> list[tuple[Evidence, dict]]:
    query = select(Evidence).where(Evidence.person_id == person.id, Evidence.kind == KIND,
                                   Evidence.status != WITHDRAWN)
    if course_ids is not None:
        query = query.where(Evidence.course_id.in_(course_ids))
    by_uan: dict[str, tuple[Evidence, dict]] = {}
    for evidence in db.session.scalars(query.order_by(Evidence.id)):
        data = evidence.data or {}
        try:
            done = date.fromisoformat(data["completion_date"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (start <= done <= last) or "uan_parts" not in data:
            continue
        item = {"id": evidence.id, "status": evidence.status, **data}
        seen = by_uan.get(data["uan"])
        # One activity counts once: keep the signed-off record if there is one, else the first recorded.
        if seen is None or (_STATUS_RANK.get(evidence.status, 1) < _STATUS_RANK.get(seen[0].status, 1)):
            by_uan[data["uan"]] = (evidence, item)
    return list(by_uan.values())


def ce_status(person, rule_code: str, cycle_start: date, as_of: date | None = None, *, course_ids=None) -> dict:
    """Where `person` stands on rule `rule_code` for the cycle starting `cycle_start`, as of `as_of` (today).

    Returns the rule, the cycle's dates, days left (0 on the last day; negative once it is over), and a
    "recorded" and a "verified" result, each with hours counted, requirements met or missing, and what is
    missing in plain words. `course_ids` (a collection or select of ids) limits which courses' records count.
    """
    rule_data = rule(rule_code)
    as_of = as_of or date.today()
    if not isinstance(cycle_start, date):
        raise DomainError("Give the cycle's start date.", code="invalid", fields={"cycle_start": "Not a date."})
    last = cycle_end(rule_data, cycle_start)
    found = _items(person, cycle_start, min(last, as_of), course_ids)
    recorded = evaluate(rule_data, [item for _, item in found])
    verified = evaluate(rule_data, [item for ev, item in found if ev.status == SIGNED_OFF])
    return {
        "rule": rule_code,
        "name": rule_data["name"],
        "cycle_start": cycle_start.isoformat(),
        "cycle_end": last.isoformat(),
        "as_of": as_of.isoformat(),
        "days_left": (last - as_of).days,
        "recorded": recorded,
        "verified": verified,
    }


def status_for(actor, person_id: int, rule_code: str, cycle_start: date, as_of: date | None = None) -> dict:
    """ce_status for someone the actor may see: oneself (every course), or a technician of a course the actor
    manages (counting only that course's records)."""
    target = scope.person(actor, person_id)
    if target.id == actor.person.id:
        return ce_status(target, rule_code, cycle_start, as_of)
    if not scope.can_view_person(actor, target):
        raise NotFound("No such person.")
    return ce_status(target, rule_code, cycle_start, as_of, course_ids=scope.managed_course_ids(actor))
