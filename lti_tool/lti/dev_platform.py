"""The development LMS: a platform that lives inside the tool (development settings only).

It is registered like any other platform and launches the tool through the real OIDC flow with id_tokens
signed by its own key, so /dev/ exercises exactly the code a Canvas or Moodle launch does.
"""
import time
import uuid
from datetime import UTC, datetime

import jwt
from sqlalchemy import select

from ..extensions import db
from ..models import Deployment, Registration
from . import storage
from .keys import generate_rsa_pem, public_jwk_from_pem

CLIENT_ID = "dev-lms-client"
DEPLOYMENT_ID = "dev-deployment-1"
KEY_ENTRY = "dev-lms-private-key"
KID = "dev-lms-key-1"
FOREVER = 100 * 365 * 86400
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

COURSE = {"id": "dev-course-central-pharmacy", "label": "RX-XT-101",
          "title": "Central Pharmacy Cross-Training (demo)",
          "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]}

PERSONAS = {
    "tech": {"name": "Tess Nguyen", "given_name": "Tess", "family_name": "Nguyen",
             "email": "tess.nguyen@example.org", "label": "Technician",
             "roles": [LIS + "membership#Learner", LIS + "institution/person#Student", LIS + "system/person#User"]},
    "tech2": {"name": "Ravi Patel", "given_name": "Ravi", "family_name": "Patel",
              "email": "ravi.patel@example.org", "label": "Technician",
              "roles": [LIS + "membership#Learner", LIS + "system/person#User"]},
    "manager": {"name": "Morgan Ellis", "given_name": "Morgan", "family_name": "Ellis",
                "email": "morgan.ellis@example.org", "label": "Pharmacy manager",
                "roles": [LIS + "membership#Instructor", LIS + "institution/person#Instructor",
                          LIS + "system/person#User"]},
    "admin": {"name": "Alex Admin", "given_name": "Alex", "family_name": "Admin",
              "email": "alex.admin@example.org", "label": "LMS administrator",
              "roles": [LIS + "institution/person#Administrator", LIS + "system/person#User"]},
    # A Canvas observer / Moodle mentor: follows the course, may look, never signs off.
    "observer": {"name": "Olivia Reyes", "given_name": "Olivia", "family_name": "Reyes",
                 "email": "olivia.reyes@example.org", "label": "Observer",
                 "roles": [LIS + "membership#Mentor", LIS + "system/person#User"]},
}


def private_key() -> str:
    pem = storage.get(KEY_ENTRY)
    if pem is None:
        pem = generate_rsa_pem()
        storage.put(KEY_ENTRY, pem, FOREVER)
    return pem


def jwks() -> dict:
    return {"keys": [public_jwk_from_pem(private_key(), KID)]}


def ensure_registered(issuer: str, auth_url: str, token_url: str, jwks_url: str) -> Registration:
    row = db.session.scalars(
        select(Registration).where(Registration.issuer == issuer, Registration.client_id == CLIENT_ID)
    ).first()
    if row is None:
        row = Registration(issuer=issuer, client_id=CLIENT_ID, name="Development LMS", is_dev_lms=True)
        db.session.add(row)
    row.auth_login_url, row.auth_token_url, row.jwks_url = auth_url, token_url, jwks_url
    # Our own key set, so a launch needs no HTTP call back into this same server.
    row.jwks_cache = jwks()
    row.jwks_fetched_at = datetime.now(UTC)
    db.session.flush()
    if not any(d.deployment_id == DEPLOYMENT_ID for d in row.deployments):
        db.session.add(Deployment(registration_id=row.id, deployment_id=DEPLOYMENT_ID, name="Demo deployment"))
        db.session.flush()
    private_key()
    return row


def id_token(issuer: str, persona_key: str, nonce: str, target_link_uri: str) -> str:
    persona = PERSONAS[persona_key]
    now = int(time.time())
    claim = "https://purl.imsglobal.org/spec/lti/claim/"
    claims = {
        "iss": issuer, "aud": CLIENT_ID, "azp": CLIENT_ID, "sub": f"dev-{persona_key}",
        "iat": now, "exp": now + 300, "nonce": nonce,
        "name": persona["name"], "given_name": persona["given_name"], "family_name": persona["family_name"],
        "email": persona["email"],
        claim + "message_type": "LtiResourceLinkRequest", claim + "version": "1.3.0",
        claim + "deployment_id": DEPLOYMENT_ID, claim + "target_link_uri": target_link_uri,
        claim + "resource_link": {"id": "dev-link-portfolio", "title": "Competency portfolio"},
        claim + "roles": persona["roles"], claim + "context": COURSE,
        claim + "tool_platform": {"guid": "dev-lms", "name": "Development LMS", "product_family_code": "dev"},
        claim + "launch_presentation": {"document_target": "iframe", "locale": "en-US"},
    }
    return jwt.encode(claims, private_key(), algorithm="RS256", headers={"kid": KID, "jti": uuid.uuid4().hex})
