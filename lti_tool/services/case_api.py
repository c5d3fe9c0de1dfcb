"""The CASE 1.1 REST read API over the tool's public frameworks (blueprints/case_api.py serves it).

Which frameworks are public: the shipped ones (registration_id NULL) always; a tenant's own imports only when that
tenant marked them public (Framework.is_public, off by default: a health system's frameworks are its own).
Everything else answers "unknown", exactly as an identifier that does not exist, so the API reveals nothing about
other tenants. Entities come from framework_io.case.package(), so the API and a CASE file export agree.
"""
from flask_babel import gettext as _
from sqlalchemy import or_, select

from ..extensions import db
from ..models import Competency, Framework
from . import DomainError, Forbidden, NotFound, audit
from . import frameworks as framework_service
from .framework_io import case

PUBLIC = or_(Framework.registration_id.is_(None), Framework.is_public.is_(True))
UNKNOWN = "Unknown object: no public framework of this tool has this identifier."


def _public_frameworks() -> list[Framework]:
    return list(db.session.scalars(select(Framework).where(PUBLIC).order_by(Framework.id.desc())))


def _package(framework: Framework, base: str) -> dict:
    return case.package(framework_service.get_tree(None, framework.id), base_uri=base)


def _package_link(package: dict, base: str) -> dict:
    doc = package["CFDocument"]
    return {"title": doc["title"], "identifier": doc["identifier"],
            "uri": f"{base}/ims/case/v1p1/CFPackages/{doc['identifier']}"}


def _document_link(package: dict) -> dict:
    doc = package["CFDocument"]
    return {"title": doc["title"], "identifier": doc["identifier"], "uri": doc["uri"]}


def _by_document(identifier: str) -> Framework:
    """The public framework whose CFDocument has this identifier (the newest when several copies share it)."""
    for framework in _public_frameworks():
        if case.document_id(framework) == identifier:
            return framework
    raise NotFound(UNKNOWN)


def documents(base: str) -> dict:
    out = []
    for framework in _public_frameworks():
        package = _package(framework, base)
        out.append({**package["CFDocument"], "CFPackageURI": _package_link(package, base)})
    return {"CFDocuments": out}


def document(identifier: str, base: str) -> dict:
    package = _package(_by_document(identifier), base)
    return {**package["CFDocument"], "CFPackageURI": _package_link(package, base)}


def package(identifier: str, base: str) -> dict:
    return _package(_by_document(identifier), base)


def item(identifier: str, base: str) -> dict:
    framework_ids = list(db.session.scalars(
        select(Competency.framework_id).join(Framework, Framework.id == Competency.framework_id)
        .where(PUBLIC, Competency.identifier == identifier).order_by(Competency.framework_id.desc())))
    for framework_id in framework_ids:
        package = _package(db.session.get(Framework, framework_id), base)
        found = next((i for i in package["CFItems"] if i["identifier"] == identifier), None)
        if found is not None:
            return {**found, "CFDocumentURI": _document_link(package)}
    raise NotFound(UNKNOWN)


def association(identifier: str, base: str) -> dict:
    # Associations are not rows of their own: look through the public frameworks' packages (a handful).
    for framework in _public_frameworks():
        package = _package(framework, base)
        found = next((a for a in package["CFAssociations"] if a["identifier"] == identifier), None)
        if found is not None:
            return {**found, "CFDocumentURI": _document_link(package)}
    raise NotFound(UNKNOWN)


def set_public(actor, framework_id: int, public: bool) -> Framework:
    """Publish (or withdraw) a tenant's framework on the CASE API. Its administrators only; the command line
    (actor None) may do it for any tenant's framework. Shipped frameworks are always public."""
    framework = framework_service.get_framework(actor, framework_id)
    if framework.registration_id is None:
        raise DomainError(_("Frameworks shipped with the tool are always public."), status=409,
                                            code="always_public")
    if actor is not None and not actor.is_admin:
        raise Forbidden(_("Only administrators can publish a framework."))
    if framework.is_public != public:
        before = framework.is_public
        framework.is_public = public
        entry = audit.record(actor, "framework.published" if public else "framework.unpublished", framework,
                             before={"is_public": before}, after={"is_public": public})
        if actor is None:
            entry.registration_id = framework.registration_id
        db.session.flush()
    return framework
