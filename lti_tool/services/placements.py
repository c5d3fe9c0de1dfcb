"""What a manager can place in the LMS course with deep linking, and what a placed link opens."""
from sqlalchemy import select

from ..extensions import db
from ..i18n import N_
from ..ids import is_digits
from ..models import Competency, Framework
from . import frameworks, pathways

DEPARTMENT_LABELS = {
    "community": N_("Community / retail"), "central": N_("Hospital central pharmacy"),
    "iv_room": N_("IV room / sterile compounding"),
    "nonsterile": N_("Non-sterile compounding"), "hazardous": N_("Hazardous drugs"), "ltc": N_("Long-term care"),
    "specialty": N_("Specialty / mail order"), "nuclear": N_("Nuclear pharmacy"),
}


def course_frameworks(actor, course) -> list[Framework]:
    """The frameworks a course uses (frameworks.used_framework_ids: the chosen ones, else the default)."""
    return frameworks.course_frameworks(actor, course.id)


def offered_pathways() -> list[dict]:
    return [{"code": p["code"], "title": p.get("name") or p["code"]}
            for p in pathways.default_definitions()["pathways"]]


def targets(actor, course) -> dict:
    """{"pages": [...], "pathways": [...], "departments": [...], "competencies": [(framework, [competency])]}"""
    used = course_frameworks(actor, course)
    ids = [f.id for f in used]
    competencies = db.session.scalars(select(Competency).where(Competency.framework_id.in_(ids))
                                      .order_by(Competency.framework_id, Competency.position, Competency.id)).all()
    has_children = {c.parent_id for c in competencies if c.parent_id}
    leaves = [c for c in competencies if c.id not in has_children]
    departments = sorted({d for c in leaves for d in (c.departments or []) if d in DEPARTMENT_LABELS})
    return {
        "pages": [{"target": "portfolio", "title": "Technician portfolio"},
                  {"target": "matrix", "title": "Team competency matrix"}],
        "pathways": [{"target": f"pathway:{p['code']}", "title": p["title"]} for p in offered_pathways()],
        "departments": [{"target": f"department:{d}", "title": f"{DEPARTMENT_LABELS[d]} cross-training checklist"}
                        for d in departments],
        "competencies": [(f, [c for c in leaves if c.framework_id == f.id]) for f in used],
    }


def describe(target: str, offered: dict) -> dict | None:
    """Title and gradebook maximum of one target string among `offered` (from targets()), or None when it is
    not offered in this course."""
    for group in ("pages", "pathways", "departments"):
        for item in offered[group]:
            if item["target"] == target:
                return {"title": item["title"], "gradable": False, "maximum": None}
    kind, _, ident = target.partition(":")
    if kind == "competency" and is_digits(ident):
        for framework, comps in offered["competencies"]:
            for c in comps:
                if c.id == int(ident):
                    maximum = len(framework.scale or []) or 1
                    return {"title": f"{c.code} {c.title}", "gradable": True, "maximum": maximum}
    return None
