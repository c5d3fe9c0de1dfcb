"""The documents that ids inside the tool's credentials point to, so that a verifier can dereference them:
a single signing key as JWK (the VC-JWT `kid`), the Ed25519 key of embedded proofs (verificationMethod), an
Achievement, a rating scale (ResultDescription) and the assessing organization's Profile.

All are public (the holder hands these ids out inside credentials). None is reachable by counting: achievements
and scales are addressed by their UUID identifiers, organizations by a name-based UUID of their LMS registration
(credentials.organization_public_id).
"""
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..lti import keys
from ..models import Competency, Framework, Registration, ToolKey
from ..schemas.evidence import CREDENTIALS, DEPARTMENTS
from . import NotFound, credentials, data_integrity

OB3_CONTEXTS = [credentials.VC2_CONTEXT, credentials.OB3_CONTEXT]


def jwk(kid: str) -> dict:
    """The one published public key with this kid (what a VC-JWT's `kid` URL returns)."""
    found = next((k for k in keys.jwks()["keys"] if k.get("kid") == kid), None)
    if found is None:
        raise NotFound(_("No published key has this id."))
    return found


def key_document(base: str, kid: str) -> dict:
    jwk(kid)  # only keys the tool still publishes
    tool_key = db.session.scalars(select(ToolKey).where(ToolKey.kid == kid)).first()
    return data_integrity.key_document(base, tool_key, credentials.issuer_id(base))


def _entry(competency: Competency, framework: Framework) -> dict:
    return {"competency_id": competency.id, "identifier": competency.identifier, "code": competency.code,
            "title": competency.title, "description": competency.description,
            "department_labels": [DEPARTMENTS.get(d, d) for d in competency.departments or []],
            "revalidation_months": competency.revalidation_months,
            "framework": {"id": framework.id, "identifier": framework.identifier, "name": framework.name,
                          "version": framework.version, "scale": list(framework.scale or [])}}


def achievement(base: str, identifier: str) -> dict:
    row = db.session.execute(select(Competency, Framework).join(Framework, Framework.id == Competency.framework_id)
                             .where(Competency.identifier == identifier).order_by(Competency.id)).first()
    if row is None:
        raise NotFound(_("No achievement has this id."))
    return {"@context": OB3_CONTEXTS, **credentials.achievement_for(base, _entry(*row))}


def certification(base: str, code: str) -> dict:
    if code not in CREDENTIALS:
        raise NotFound(_("No certification has this id."))
    label, issuer = CREDENTIALS[code]
    return {"@context": OB3_CONTEXTS, **credentials.certification_achievement(base, {
        "credential": code, "credential_label": label, "title": label, "issuer": issuer})}


def scale(base: str, identifier: str) -> dict:
    framework = db.session.scalars(select(Framework).where(Framework.identifier == identifier)
                                   .order_by(Framework.id)).first()
    if framework is None:
        raise NotFound(_("No rating scale has this id."))
    entry = {"framework": {"id": framework.id, "identifier": framework.identifier, "name": framework.name,
                           "scale": list(framework.scale or [])}}
    return {"@context": OB3_CONTEXTS, **credentials.result_description(base, entry)}


def organization(base: str, public_id: str) -> dict:
    for registration in db.session.scalars(select(Registration)):
        if credentials.organization_public_id(registration) == public_id:
            return {"@context": OB3_CONTEXTS, "id": credentials.organization_url(base, registration.id),
                    "type": ["Profile"], "name": registration.name,
                    "description": "The organization that assessed the technician's achievements."}
    raise NotFound(_("No organization has this id."))
