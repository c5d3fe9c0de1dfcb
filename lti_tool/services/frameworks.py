"""Competency frameworks: which a tenant sees, a framework's tree, the frameworks a course uses, import/export and
the shipped default framework.

Shipped frameworks (registration_id NULL) are visible to every tenant; a tenant's own imports only to that tenant.
`actor=None` means the command line (the operator, no tenant): it sees every framework and imports global ones
unless given a registration. Views always pass an Actor.
"""
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select, true, union
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..ids import is_digits, parse_id
from ..models import Competency, Course, CourseFramework, Framework
from . import DomainError, Forbidden, NotFound, audit, scope
from . import framework_io as io
from .framework_io.common import competency_identifier, framework_identifier

DEFAULT_FRAMEWORK_PATH = Path(__file__).resolve().parent.parent / "data" / "pharmacy_technician_framework.json"
FRAMEWORK_FIELDS = ("code", "name", "version", "registration_id", "identifier")


@dataclass
class ImportResult:
    framework: Framework
    format: str
    competencies: int
    warnings: list[str] = field(default_factory=list)


def _visible(actor):
    if actor is None:
        return true()
    return or_(Framework.registration_id.is_(None), Framework.registration_id == actor.registration_id)


def list_frameworks(actor) -> list[Framework]:
    """The shipped frameworks and the actor's tenant's own, by name then version."""
    return list(db.session.scalars(
        select(Framework).where(_visible(actor)).order_by(Framework.name, Framework.version, Framework.id)))


def competency_counts(framework_ids) -> dict[int, int]:
    rows = db.session.execute(select(Competency.framework_id, func.count()).where(
        Competency.framework_id.in_(list(framework_ids))).group_by(Competency.framework_id))
    return dict(rows.all())


def get_framework(actor, framework_id: int) -> Framework:
    row = db.session.scalars(select(Framework).where(Framework.id == framework_id, _visible(actor))).first()
    if row is None:
        raise NotFound(_("No such framework."))
    return row


def find_framework(actor, ref: str) -> Framework:
    """A framework by id or by code (the command line's FRAMEWORK argument). A code used by several frameworks
    (versions, tenants) must be given as an id."""
    if is_digits(ref):
        return get_framework(actor, parse_id(ref))
    rows = list(db.session.scalars(select(Framework).where(Framework.code == ref, _visible(actor))
                                   .order_by(Framework.id)))
    if not rows:
        raise NotFound(f"No framework with id or code {ref!r}.")
    if len(rows) > 1:
        listed = ", ".join(f"{r.id} (version {r.version})" for r in rows)
        raise DomainError(f"Several frameworks have code {ref!r}: ids {listed}. Give the id.")
    return rows[0]


def get_tree(actor, framework_id: int) -> io.FrameworkTree:
    """A framework with every competency, parent and children wired up, in ONE query: walking the tree
    (tree.walk(), competency.children, competency.parent, competency.framework) issues no further query."""
    stmt = (select(Framework, Competency)
            .outerjoin(Competency, Competency.framework_id == Framework.id)
            .where(Framework.id == framework_id, _visible(actor))
            .order_by(Competency.position, Competency.id))
    rows = db.session.execute(stmt).all()
    if not rows:
        raise NotFound(_("No such framework."))
    framework = rows[0][0]
    comps = [c for _, c in rows if c is not None]
    by_id = {c.id: c for c in comps}
    kids: dict[int | None, list[Competency]] = {}
    for comp in comps:
        kids.setdefault(comp.parent_id if comp.parent_id in by_id else None, []).append(comp)
    for comp in comps:
        set_committed_value(comp, "children", kids.get(comp.id, []))
        set_committed_value(comp, "parent", by_id.get(comp.parent_id))
        set_committed_value(comp, "framework", framework)
    tree = io.FrameworkTree(framework=framework, roots=kids.get(None, []), by_id=by_id)
    set_committed_value(framework, "competencies", [c for _, c in tree.walk()])
    return tree


def used_framework_ids(course):
    """A select of the ids of the frameworks a course uses: those its managers chose; until they choose, the
    tenant's own frameworks, or, when the tenant has none, the shipped framework (the latest installed version
    of each shipped code: a new version of the file installs alongside the old one). A course is usable from
    its first launch. THE rule: status, forms, placements (deep linking), the matrix and exports all ask it."""
    return used_framework_ids_of_course(course.id, course.registration_id)


def used_framework_ids_of_course(course_id, registration_id):
    """used_framework_ids by the course's id and tenant, values or bound parameters (a statement built once per
    process: status.course_competencies)."""
    chosen = select(CourseFramework.framework_id).where(CourseFramework.course_id == course_id)
    own, shipped = _default_framework_ids(registration_id)
    return union(chosen, own.where(~chosen.exists()), shipped.where(~chosen.exists(), ~own.exists()))


def used_framework_ids_of_courses(course_ids, registration_id):
    """used_framework_ids's rule for several courses of one tenant at once (`course_ids`: a select of ids): what
    any of them uses, in one query where a loop over the courses took one per course."""
    chosen = select(CourseFramework.framework_id).where(CourseFramework.course_id.in_(course_ids))
    choosing_nothing = select(Course.id).where(
        Course.id.in_(course_ids), Course.registration_id == registration_id,
        ~select(_LISTED.framework_id).where(_LISTED.course_id == Course.id).exists())
    own, shipped = _default_framework_ids(registration_id)
    return union(chosen, own.where(choosing_nothing.exists()),
                 shipped.where(choosing_nothing.exists(), ~own.exists()))


# Made once per process: an alias works out its columns on first use, which took longer than building and running
# the rest of these statements (every page asks which frameworks its course uses).
_OWN, _SHIPPED, _NEWER = aliased(Framework), aliased(Framework), aliased(Framework)
_LISTED = aliased(CourseFramework)


def _default_framework_ids(registration_id):
    """(the tenant's own frameworks, the latest version of each shipped one): selects of ids."""
    own_fw, shipped_fw, newer = _OWN, _SHIPPED, _NEWER
    own = select(own_fw.id).where(own_fw.registration_id == registration_id)
    shipped = select(shipped_fw.id).where(shipped_fw.registration_id.is_(None), ~select(newer.id).where(
        newer.registration_id.is_(None), newer.code == shipped_fw.code, newer.id > shipped_fw.id).exists())
    return own, shipped


def chosen_framework_ids(course) -> set[int]:
    """The frameworks the course's managers chose (empty: the course follows the default of used_framework_ids)."""
    return set(db.session.scalars(select(CourseFramework.framework_id).where(CourseFramework.course_id == course.id)))


def course_frameworks(actor, course_id: int) -> list[Framework]:
    """The frameworks a course uses (chosen, or the default while none are chosen), for its members."""
    course = scope.course(actor, course_id)
    if not (actor.is_admin or scope.is_member(actor.person.id, course.id)):
        raise NotFound(_("No such course."))
    return list(db.session.scalars(
        select(Framework).where(Framework.id.in_(used_framework_ids(course)), _visible(actor))
        .order_by(Framework.name, Framework.id)))


def choose_course_frameworks(actor, course_id: int, framework_ids) -> list[Framework]:
    """Set the frameworks a course uses (at least one). Manager-side members of the course only."""
    course = scope.course(actor, course_id)
    if not (actor.is_admin or scope.manages(actor.person.id, course.id)):
        raise Forbidden(_("Only the course's managers can choose its frameworks."))
    try:
        wanted = list(dict.fromkeys(parse_id(i) for i in framework_ids))
    except (TypeError, ValueError) as exc:
        raise DomainError(_("Framework ids must be numbers."), fields={"framework_ids": str(exc)}) from exc
    if not wanted:
        raise DomainError(_("Choose at least one framework."), fields={"framework_ids": "Choose at least one."})
    found = set(db.session.scalars(select(Framework.id).where(Framework.id.in_(wanted), _visible(actor))))
    if missing := [i for i in wanted if i not in found]:
        raise NotFound(f"No such framework: {', '.join(map(str, missing))}.")
    current = set(db.session.scalars(
        select(CourseFramework.framework_id).where(CourseFramework.course_id == course.id)))
    removed, added = current - set(wanted), [i for i in wanted if i not in current]
    if removed:
        db.session.execute(delete(CourseFramework).where(
            CourseFramework.course_id == course.id, CourseFramework.framework_id.in_(removed)))
    db.session.add_all(CourseFramework(course_id=course.id, framework_id=i) for i in added)
    if removed or added:
        audit.record(actor, "course.frameworks_chosen", course, before={"framework_ids": sorted(current)},
                     after={"framework_ids": sorted(wanted)}, course_id=course.id)
    db.session.flush()
    return course_frameworks(actor, course.id)


def _may_import(actor, registration_id):
    if actor is None:
        return registration_id
    if registration_id not in (None, actor.registration_id):
        raise Forbidden(_("A framework can only be imported into your own organization."))
    if not (actor.is_admin or actor.is_manager_side):
        raise Forbidden(_("Only managers can import frameworks."))
    return actor.registration_id


def create_framework(actor, tree: io.ValidTree, *, registration_id: int | None,
                     action: str = "framework.imported") -> Framework:
    """Write a checked tree. Everything was validated before this point and the clash with an existing framework
    is checked first, so a refused import writes nothing."""
    data = tree.framework
    ident = framework_identifier(data.get("identifier"))
    # A duplicate is the same framework (code or CASE identifier) in the same version among those the tenant
    # sees: its own and the shipped ones (re-importing the shipped framework's own export is refused too).
    seen_by = (Framework.registration_id.is_(None) if registration_id is None else
               or_(Framework.registration_id.is_(None), Framework.registration_id == registration_id))
    same = Framework.code == data["code"]
    if ident:
        same = or_(same, Framework.identifier == ident)
    clash = db.session.scalars(select(Framework).where(seen_by, same, Framework.version == data["version"])
                               .order_by(Framework.id)).first()
    if clash is not None:
        whose = "shipped with the tool" if clash.registration_id is None else "your organization's"
        raise io.FrameworkImportError([{
            "where": "framework", "field": "version",
            "message": f"Framework {clash.name} ({clash.code}) version {data['version']} already exists (id "
                       f"{clash.id}, {whose}); import it with another version."}])
    framework = Framework(registration_id=registration_id, code=data["code"], name=data["name"],
                          version=data["version"], description=data.get("description"), source=data.get("source"),
                          identifier=ident, scale=[dict(level) for level in data["scale"]],
                          extra=data.get("extra"))
    db.session.add(framework)
    made, used = {}, set()
    for node in tree.nodes:
        values = dict(node.data)
        derived = competency_identifier(ident, values["code"]) if values["code"] else None
        # Identifiers tell items apart (codes may be empty or shared): a derived one that is taken gets a random one.
        values["identifier"] = values.get("identifier") or (
            derived if derived and derived not in used else str(uuid.uuid4()))
        used.add(values["identifier"])
        parent = made[id(node.parent)] if node.parent is not None else None
        comp = Competency(framework=framework, parent=parent, position=node.position, **values)
        made[id(node)] = comp
    db.session.add_all(made.values())
    db.session.flush()
    entry = audit.record(actor, action, framework, after={
        **audit.snapshot(framework, FRAMEWORK_FIELDS), "format": tree.format, "competencies": len(tree.nodes)})
    if actor is None:
        entry.registration_id = registration_id
    return framework


def import_framework(actor, raw: bytes | str, *, filename: str | None = None, registration_id: int | None = None,
                     version: str | None = None) -> ImportResult:
    """Import a CASE, Moodle CSV or native file (detected from its content). All or nothing: a bad file raises
    FrameworkImportError naming each line or item and field, and writes no row."""
    registration_id = _may_import(actor, registration_id)
    tree = io.read(raw, filename, version=version)
    framework = create_framework(actor, tree, registration_id=registration_id)
    return ImportResult(framework, tree.format, len(tree.nodes), list(tree.warnings))


def export_framework(actor, framework_id: int, fmt: str, *, base_uri: str | None = None) -> str:
    if fmt not in io.FORMATS:
        raise DomainError(f"Unknown format {fmt!r}; use one of {', '.join(io.FORMATS)}.")
    return io.write(get_tree(actor, framework_id), fmt, base_uri=base_uri)


def _shipped_header() -> dict:
    return json.loads(DEFAULT_FRAMEWORK_PATH.read_text(encoding="utf-8"))["framework"]


def default_framework() -> Framework | None:
    """The installed copy of the shipped framework file's version, if any."""
    head = _shipped_header()
    return db.session.scalars(select(Framework).where(
        Framework.registration_id.is_(None), Framework.code == head["code"],
        Framework.version == head["version"])).first()


def ensure_default_framework() -> Framework:
    """Install the shipped "Pharmacy Technician" framework unless this version is already there (idempotent).
    A new version of the file installs alongside the old one, so courses keep the version they chose."""
    existing = default_framework()
    if existing is not None:
        return existing
    tree = io.read(DEFAULT_FRAMEWORK_PATH.read_bytes(), DEFAULT_FRAMEWORK_PATH.name)
    return create_framework(None, tree, registration_id=None, action="framework.installed")
