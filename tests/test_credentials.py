"""Open Badges 3.0 and CLR 2.0 credentials: checked by an independent verifier (openbadgeslib, offline, with the
tool's published key and status list), validated against the 1EdTech JSON schema, and by the tool's own verify()
for tampering, revocation, correction and expiry."""
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from jsonschema import Draft201909Validator
from openbadgeslib.ob3.verifier import OB3VerificationError, OB3Verifier
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import IssuedCredential, ToolKey
from lti_tool.services import DomainError, credentials, reviews
from lti_tool.services.credentials import CredentialError
from tests.support.competency_world import T0
from tests.test_transcripts import rich_world

BASE = "https://tool.example.org"
TITLE = "Pharmacy Tech Pathways"
SCHEMAS = Path(__file__).parent / "data" / "schemas"
# Issued while IV-GARB (6-month revalidation, signed 15 Jan 2025) was still held.
ISSUED = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def world(make):
    # The tool's signing key exists before the test writes (signing_key() would otherwise create one in its own
    # transaction, which SQLite refuses while the test's transaction holds the write lock).
    keys.create_key()
    return rich_world(make)


def ob3_validator():
    schema = json.loads((SCHEMAS / "ob_v3p0_achievementcredential_schema.json").read_text())
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema, format_checker=Draft201909Validator.FORMAT_CHECKER)


def payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def public_pem(token: str) -> bytes:
    kid = jwt.get_unverified_header(token)["kid"].rsplit("/", 1)[-1]  # a URL ending in the key's id
    published = {k["kid"]: k for k in keys.jwks()["keys"]}
    from jwcrypto.jwk import JWK

    return JWK.from_json(json.dumps(published[kid])).export_to_pem()


def status_download(url: str) -> bytes:
    """What a verifier would fetch from the statusListCredential URL: the tool's signed list, served here by the
    same function the /credentials/status/<n> view uses."""
    list_no = int(url.rsplit("/", 1)[1])
    return credentials.status_list_jwt(BASE, list_no).encode()


def bundle(world, as_of=ISSUED):
    return credentials.ob3_bundle(world.tech, world.tech.person.id, BASE, TITLE, as_of=as_of)


def test_ob3_credentials_verify_with_openbadgeslib_and_match_the_schema(world):
    issued = bundle(world)
    names = {c["name"] for c in issued["credentials"]}
    assert names == {"IV-GARB Garbing and gloved-fingertip testing", "CEN-CART Cart fill",
                     "PTCB Certified Pharmacy Technician (CPhT)"}
    validator = ob3_validator()
    for item in issued["credentials"]:
        token = item["jwt"]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256"
        assert header["kid"] in {f"{BASE}/credentials/jwks/{k.kid}" for k in keys.published_keys()}
        body = payload(token)
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, [e.message for e in errors]
        verifier = OB3Verifier(public_pem(token))
        if body.get("validUntil") and body["validUntil"] < datetime.now(UTC).isoformat():
            with pytest.raises(OB3VerificationError, match="expired"):
                verifier.verify(token)
            continue
        credential = verifier.verify(token, check_status=True, download=status_download)
        assert credential.achievement.name == item["name"]
        assert credential.issuer.id == f"{BASE}/credentials/issuer"


def test_competency_credential_carries_results_and_evidence(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("CEN-CART"))
    body = payload(token)
    subject = body["credentialSubject"]
    achievement = subject["achievement"]
    assert achievement["achievementType"] == "Competency" and achievement["humanCode"] == "CEN-CART"
    [description] = achievement["resultDescription"]
    assert description["resultType"] == "RubricCriterionLevel"
    assert [lvl["name"] for lvl in description["rubricCriterionLevel"]] == [
        "Not yet competent", "Competent with supervision", "Competent", "Can train others"]
    assert description["requiredLevel"].endswith("#competent")
    [result] = subject["result"]
    assert result["resultDescription"] == description["id"] and result["achievedLevel"].endswith("#trainer")
    [evidence] = body["evidence"]
    assert evidence["genre"] == "Cross-training" and evidence["name"] == "Cart fill checklist"
    assert "Signed off by" in evidence["narrative"] and "rated Can train others" in evidence["narrative"]
    assert subject["identifier"][0]["identityType"] == "emailAddress" and subject["identifier"][0]["hashed"]
    assert world.tech.person.email not in json.dumps(body)
    assert body["credentialStatus"]["type"] == "BitstringStatusListEntry"
    assert body["iss"] == body["issuer"]["id"] and body["jti"] == body["id"]


def test_reissuing_reuses_the_credential_and_its_status_index(world):
    first = {c["name"]: c for c in bundle(world)["credentials"]}
    again = {c["name"]: c for c in bundle(world)["credentials"]}
    assert {n: c["id"] for n, c in first.items()} == {n: c["id"] for n, c in again.items()}
    assert db.session.query(IssuedCredential).count() == 3


def test_verify_reports_valid_then_revoked(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("CEN-CART"))
    assert credentials.verify(token)["status"] == "valid"
    fixed = world.sign_offs["fixed"]
    reviews.revoke(world.manager, fixed.id, "Checklist was not followed", now=datetime.now(UTC))
    result = credentials.verify(token)
    assert result["status"] == "revoked"
    # That it was revoked and when, never why (the reason is the organization's internal record).
    assert any("CEN-CART was revoked on" in r for r in result["reasons"])
    assert not any("Checklist was not followed" in r for r in result["reasons"])
    # The independent verifier sees the bit in the status list too.
    with pytest.raises(OB3VerificationError, match="revocation"):
        OB3Verifier(public_pem(token)).verify(token, check_status=True, download=status_download)


def test_a_corrected_sign_off_revokes_its_credential(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("CEN-CART"))
    reviews.correct(world.manager, world.sign_offs["fixed"].id, "Rating too high", rating="competent",
                    now=datetime.now(UTC))
    result = credentials.verify(token)
    assert result["status"] == "revoked" and "corrected" in result["reasons"][0]


def test_an_expired_sign_off_reports_expired(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("IV-GARB"))
    assert payload(token)["validUntil"].startswith("2025-07-15")
    result = credentials.verify(token)
    assert result["status"] == "expired" and "revalidation" in result["reasons"][0]
    assert result["credential"]["name"] == "IV-GARB Garbing and gloved-fingertip testing"


def test_tampered_credentials_fail(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("CEN-CART"))
    head, body, sig = token.split(".")
    claims = payload(token)
    claims["credentialSubject"]["achievement"]["name"] = "Chief pharmacist"
    forged = head + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + "." + sig
    result = credentials.verify(forged)
    assert result["status"] == "invalid" and "altered" in result["reasons"][0]
    with pytest.raises(OB3VerificationError, match="signature"):
        OB3Verifier(public_pem(token)).verify(forged)

    # Signed by someone else's key, claiming the tool's kid.
    from tests.support.platform import new_rsa_key

    other = new_rsa_key(jwt.get_unverified_header(token)["kid"])
    resigned = jwt.encode(payload(token), other["pem"], algorithm="RS256", headers={"kid": other["kid"]})
    assert credentials.verify(resigned)["status"] == "invalid"
    # An unsigned token is refused, whatever it claims.
    none = jwt.encode(payload(token), None, algorithm="none")
    assert credentials.verify(none)["status"] == "invalid"

    # The JSON form: the body as issued verifies; an edited body does not.
    plain = {k: v for k, v in payload(token).items() if k not in credentials.JWT_CLAIMS}
    assert credentials.verify(json.dumps(plain))["status"] == "valid"
    plain["validUntil"] = "2099-01-01T00:00:00Z"
    assert credentials.verify(plain)["status"] == "invalid"


@pytest.mark.parametrize("garbage", ["", "not a credential", "a.b", "{not json", "[1, 2]", b"\xff\xfe",
                                     '{"type": ["Thing"]}'])
def test_malformed_input_is_a_clear_error(world, garbage):
    with pytest.raises(CredentialError) as exc:
        credentials.verify(garbage)
    assert exc.value.status == 400 and exc.value.message


def test_unknown_credential_ids_are_invalid(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("CEN-CART"))
    claims = payload(token)
    claims["id"] = claims["jti"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    key = db.session.scalars(select(ToolKey)).first()
    token = jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})
    result = credentials.verify(token)
    assert result["status"] == "invalid" and "no record" in result["reasons"][0]


def test_clr_embeds_the_achievement_credentials(world):
    body, token = credentials.clr_credential(world.tech, world.tech.person.id, BASE, TITLE, as_of=ISSUED)
    assert payload(token)["type"] == ["VerifiableCredential", "ClrCredential"]
    assert body["@context"][:2] == [credentials.VC2_CONTEXT, credentials.CLR_CONTEXT]
    subject = body["credentialSubject"]
    assert subject["type"] == ["ClrSubject"] and len(subject["verifiableCredential"]) == 3
    assert {a["name"] for a in subject["achievement"]} >= {"CEN-CART Cart fill"}
    validator = ob3_validator()
    for member in subject["verifiableCredential"]:
        assert not list(validator.iter_errors(member))
    # Structural CLR 2.0 checks (the ClrCredential JSON schema was not available offline; see the report).
    assert isinstance(body["issuer"], dict) and body["issuer"]["type"] == ["Profile"]
    assert body["validFrom"].endswith("Z") and body["id"].startswith("urn:uuid:")
    assert all(m["id"].startswith("urn:uuid:") for m in subject["verifiableCredential"])
    pem = public_pem(token)
    decoded = jwt.decode(token, pem, algorithms=["RS256"])
    assert decoded["jti"] == body["id"]

    assert credentials.verify(token)["status"] == "valid"
    reviews.revoke(world.manager, world.sign_offs["garb"].id, "Failed the media fill", now=datetime.now(UTC))
    result = credentials.verify(token)
    assert result["status"] == "revoked" and any("IV-GARB" in r for r in result["reasons"])


def test_clr_with_nothing_to_issue_is_refused(make):
    from tests.support.competency_world import World

    keys.create_key()
    empty = World(make)
    with pytest.raises(DomainError) as exc:
        credentials.clr_credential(empty.tech, empty.tech.person.id, BASE, TITLE)
    assert exc.value.status == 409


def test_status_list_is_a_signed_bitstring(world):
    issued = bundle(world)
    rows = {r.sign_off_id: r for r in db.session.scalars(select(IssuedCredential))}
    reviews.revoke(world.manager, world.sign_offs["fixed"].id, "Wrong person", now=datetime.now(UTC))
    token = credentials.status_list_jwt(BASE, 0)
    claims = jwt.decode(token, public_pem(issued["credentials"][0]["jwt"]), algorithms=["RS256"])
    assert claims["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    from openbadgeslib.ob3.status import decode_encoded_list, set_indices

    bits = set_indices(decode_encoded_list(claims["credentialSubject"]["encodedList"]))
    assert bits == {rows[world.sign_offs["fixed"].id].status_index}
    assert len(decode_encoded_list(claims["credentialSubject"]["encodedList"])) == credentials.LIST_SIZE // 8


def test_keys_rotated_after_issue_still_verify(world):
    token = next(c["jwt"] for c in bundle(world)["credentials"] if c["name"].startswith("CEN-CART"))
    keys.rotate()
    assert credentials.verify(token)["status"] == "valid"
    later = T0 + timedelta(days=1)
    assert later < datetime.now(UTC)
