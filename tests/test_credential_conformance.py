"""The rules 1EdTech's digital-credentials-public-validator applies, followed over HTTP against the tool:
ExternalProofProbe (a VC-JWT's `kid` is fetched and must return one JWK that verifies the signature; RS256 or
ES256), EmbeddedProofProbe on every credential inside a CLR (CLR20Inspector: a DataIntegrityProof,
eddsa-rdfc-2022, assertionMethod, whose verificationMethod document names the issuer as controller and holds an
Ed25519 publicKeyMultibase), checked with an independent implementation (openbadgeslib's verifier); plus OB 3.0
section 8.2's `sub`, random status-list indexes and ids that resolve."""
import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openbadgeslib.ob3.ldp import verify_data_integrity_proof
from openbadgeslib.ob3.verifier import OB3VerificationError
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import IssuedCredential, Person
from lti_tool.services import credentials
from lti_tool.services.data_integrity import b58decode
from tests.test_credentials import BASE, ISSUED, TITLE, payload
from tests.test_transcripts import rich_world


@pytest.fixture
def world(make):
    keys.create_key()
    return rich_world(make)


@pytest.fixture
def fetch(client):
    """GET a URL the way the validator does (the tool answers at BASE)."""

    def get(url):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == BASE, url
        return client.get(parts.path, base_url=BASE, headers={"Accept": "application/json"})

    return get


def issue(world):
    bundle = credentials.ob3_bundle(world.tech, world.tech.person.id, BASE, TITLE, as_of=ISSUED)
    clr_body, clr_token = credentials.clr_credential(world.tech, world.tech.person.id, BASE, TITLE, as_of=ISSUED)
    db.session.commit()  # the validator's fetches are requests of their own
    return bundle, clr_body, clr_token


def external_proof_probe(token, fetch):
    """ExternalProofProbe.verifySignature: alg RS256/ES256, key from `jwk` or by fetching `kid`, then verify."""
    header = jwt.get_unverified_header(token)
    assert header.get("alg") in ("RS256", "ES256")
    assert "jwk" in header or "kid" in header
    response = fetch(header["kid"])
    assert response.status_code == 200
    jwk = response.get_json()
    assert jwk["kty"] == "RSA" and {"n", "e"} <= jwk.keys()
    key = jwt.PyJWK(jwk).key
    try:
        return jwt.decode(token, key, algorithms=[header["alg"]], options={"verify_aud": False})
    except jwt.ExpiredSignatureError:
        # The validator reports "JWT Token expired" too: right for a lapsed competency. The signature is sound.
        claims = jwt.decode(token, key, algorithms=[header["alg"]], options={"verify_aud": False,
                                                                              "verify_exp": False})
        assert claims["validUntil"] < datetime.now(UTC).isoformat()
        return claims


def embedded_proof_probe(credential, fetch) -> Ed25519PublicKey:
    """EmbeddedProofProbe.run: the proof, its type/cryptosuite/purpose, the key document and its controller."""
    proofs = credential.get("proof")
    proofs = proofs if isinstance(proofs, list) else [proofs] if proofs else []
    assert proofs, "The verifiable credential is missing a proof."
    proof = next(p for p in proofs if p["proofPurpose"] == "assertionMethod" and p["type"] == "DataIntegrityProof"
                 and p.get("cryptosuite") in ("eddsa-2022", "eddsa-rdfc-2022", "ecdsa-sd-2023"))
    assert urlsplit(proof["verificationMethod"]).scheme in ("http", "https")
    response = fetch(proof["verificationMethod"])
    assert response.status_code == 200
    document = response.get_json()
    assert document["controller"] == credential["issuer"]["id"], "Key controller does not match issuer"
    multicodec = b58decode(document["publicKeyMultibase"].removeprefix("z"))
    assert document["publicKeyMultibase"].startswith("z") and multicodec[:2] == b"\xed\x01" and len(multicodec) == 34
    return Ed25519PublicKey.from_public_bytes(multicodec[2:])


def pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_vc_jwt_kid_dereferences_to_one_jwk_and_sub_names_the_subject(world, fetch):
    bundle, _, clr_token = issue(world)
    subject_ids = set()
    for token in [c["jwt"] for c in bundle["credentials"]] + [clr_token]:
        claims = external_proof_probe(token, fetch)
        assert claims["sub"] == claims["credentialSubject"]["id"]
        subject_ids.add(claims["sub"])
    [subject] = subject_ids  # one technician, one id, in every credential
    assert subject.startswith("urn:uuid:") and world.tech.person.email not in subject
    person = db.session.get(Person, world.tech.person.id)
    assert subject == f"urn:uuid:{person.credential_subject_id}"
    # Stable: issuing again names the same subject.
    again = credentials.ob3_bundle(world.tech, world.tech.person.id, BASE, TITLE, as_of=ISSUED)
    assert {payload(c["jwt"])["sub"] for c in again["credentials"]} == {subject}
    # A kid that is not a published key answers 404.
    assert fetch(f"{BASE}/credentials/jwks/not-a-key").status_code == 404


def test_every_credential_inside_a_clr_has_its_own_proof(world, fetch):
    _, clr_body, clr_token = issue(world)
    members = payload(clr_token)["credentialSubject"]["verifiableCredential"]
    assert len(members) == 3 and members == clr_body["credentialSubject"]["verifiableCredential"]
    for member in members:
        public = embedded_proof_probe(member, fetch)
        verify_data_integrity_proof(member, pem(public))  # an independent eddsa-rdfc-2022 implementation
        # Each member also stands alone with the tool's own verification.
        assert credentials.verify(member)["status"] in ("valid", "expired")

    tampered = json.loads(json.dumps(members[0]))
    tampered["credentialSubject"]["achievement"]["name"] = "Director of pharmacy"
    with pytest.raises(OB3VerificationError):
        verify_data_integrity_proof(tampered, pem(embedded_proof_probe(tampered, fetch)))


def test_status_list_indexes_are_random(world):
    issue(world)
    rows = list(db.session.scalars(select(IssuedCredential).order_by(IssuedCredential.id)))
    indexes = [r.status_index for r in rows]
    assert len(rows) == 4 and None not in indexes and len(set(indexes)) == 4
    assert indexes != [r.id for r in rows] and max(indexes) > 100  # not the row ids, not a count
    assert all(0 <= i < credentials.LIST_SIZE for i in indexes)


def test_ids_inside_credentials_resolve(world, fetch):
    bundle, clr_body, _ = issue(world)
    for item in bundle["credentials"]:
        body = payload(item["jwt"])
        subject = body["credentialSubject"]
        urls = [body["issuer"]["id"], subject["achievement"]["id"], subject["source"]["id"]]
        urls += [rd["id"] for rd in subject["achievement"].get("resultDescription", [])]
        for url in urls:
            response = fetch(url)
            assert response.status_code == 200, url
            assert response.get_json()["id"] == url
        if subject["achievement"].get("resultDescription"):
            served = fetch(subject["achievement"]["id"]).get_json()
            assert served["name"] == subject["achievement"]["name"]
    # Organization profiles are not reachable by counting.
    source = payload(bundle["credentials"][0]["jwt"])["credentialSubject"]["source"]["id"]
    assert not source.rstrip("/").rsplit("/", 1)[-1].isdigit()
    assert fetch(f"{BASE}/credentials/organizations/1").status_code == 404


def test_embedded_proof_verification_method_is_the_published_key(world, fetch):
    _, clr_body, _ = issue(world)
    member = clr_body["credentialSubject"]["verifiableCredential"][0]
    kid = member["proof"][0]["verificationMethod"].rsplit("/", 1)[-1]
    assert kid in {k["kid"] for k in keys.jwks()["keys"]}
    assert fetch(f"{BASE}/credentials/keys/not-a-key").status_code == 404


def test_clr_matches_the_official_clr_2_0_schema(world):
    from pathlib import Path

    from jsonschema import Draft201909Validator

    schema = json.loads((Path(__file__).parent / "data" / "schemas" / "clr_v2p0_clrcredential_schema.json")
                        .read_text())
    validator = Draft201909Validator(schema, format_checker=Draft201909Validator.FORMAT_CHECKER)
    _, _, clr_token = issue(world)
    body = payload(clr_token)
    errors = sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body))
    assert errors == []
