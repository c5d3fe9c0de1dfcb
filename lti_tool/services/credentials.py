"""Verifiable credentials: Open Badges 3.0 and CLR 2.0, signed as VC-JWT, with a Bitstring Status List.

Choices (see also the report for issue 5):
- Proof: VC-JWT, RS256, signed with the tool's own signing key (lti.keys.signing_key()). Per OB 3.0 section 8.2
  the JOSE `kid` is a URL, /credentials/jwks/<kid>, that returns that single public JWK (1EdTech's validator
  fetches it); the whole key set is at /lti/jwks and /credentials/jwks. The JWT payload is the credential itself
  (no `vc` wrapper) plus `iss` (issuer id), `jti` (credential id), `sub` (credentialSubject.id), `nbf`/`iat`
  (validFrom) and `exp` (validUntil, when there is one).
- Subject: credentialSubject.id is `urn:uuid:<Person.credential_subject_id>`, random and stable per technician
  (pairwise: it means nothing outside this tool), with the hashed e-mail as an IdentityObject beside it.
- Issuer: the tool (one Profile for the whole tool); the tenant (the pharmacy or health system) is named as the
  subject's `source`, the organization that assessed the achievement on the issuer's behalf.
- Status: W3C Bitstring Status List v1.0, purpose "revocation". Each IssuedCredential row draws a random unused
  index (status_index; rows issued before that use their id), so a list reveals neither order nor volume; lists of
  131,072 entries (the minimum size, 16 KiB before compression) live at /credentials/status/<n> as
  signed VC-JWTs, computed from today's sign-offs, so a revoked or corrected sign-off shows revoked at once.
- Expiry: a credential whose sign-off has an expiry (revalidation) carries validUntil; after it, verify() says
  "expired" (the signature is still checked).
- CLR: the ClrCredential embeds the same AchievementCredential bodies that are issued on their own (same ids),
  each with its own Data Integrity proof (eddsa-rdfc-2022, services.data_integrity), as 1EdTech's CLR validator
  requires; the CLR itself is a VC-JWT. Each can also be checked on its own at /verify/<id>.
- Ids resolve: achievements (/credentials/achievements/...), rating scales (/credentials/frameworks/.../scale) and
  the assessing organization's profile (/credentials/organizations/...) are served by credential_documents.
"""
import base64
import gzip
import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update

from .. import formatting
from ..extensions import db
from ..i18n import N_
from ..lti import keys
from ..models import (
    Competency,
    Evidence,
    IssuedCredential,
    Person,
    Registration,
    SignOff,
    SignOffRevocation,
    ToolKey,
)
from ..models.evidence import WITHDRAWN
from ..models.exports import ACHIEVEMENT, CERTIFICATION, CLR, TRANSCRIPT
from . import DomainError, NotFound, attestation, data_integrity, settings, transcripts

VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CLR_CONTEXT = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
OB3_SCHEMA = {"id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
              "type": "1EdTechJsonSchemaValidator2019"}
CLR_SCHEMA = {"id": "https://purl.imsglobal.org/spec/clr/v2p0/schema/json/clr_v2p0_clrcredential_schema.json",
              "type": "1EdTechJsonSchemaValidator2019"}
LIST_SIZE = 131072
ORGANIZATION_NAMESPACE = uuid.UUID("5b0f6a9e-3c1d-4e8a-9f27-6d4c2b1a0e93")
JWT_CLAIMS = ("iss", "jti", "sub", "nbf", "iat", "exp")
VALID, REVOKED, EXPIRED, INVALID = "valid", "revoked", "expired", "invalid"
STATUS_LABELS = {VALID: N_("Valid"), REVOKED: N_("Revoked"), EXPIRED: N_("Expired"), INVALID: N_("Invalid")}


class CredentialError(DomainError):
    """A credential presented for verification that cannot be read at all (400)."""

    code = "malformed_credential"


# --- identifiers and profiles --------------------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def issuer_id(base: str) -> str:
    return f"{base}/credentials/issuer"


def issuer_profile(base: str, tool_title: str) -> dict:
    """The issuer Profile served at /credentials/issuer (the embedded copy in credentials is shorter)."""
    return {"@context": [VC2_CONTEXT, OB3_CONTEXT], "id": issuer_id(base), "type": ["Profile"], "name": tool_title,
            "url": base + "/", "description": "Competency records of pharmacy technicians, signed by the tool.",
            "otherIdentifier": [{"type": "IdentifierEntry", "identifier": f"{base}/credentials/jwks",
                                 "identifierType": "identifier"}]}


def _issuer(base: str, tool_title: str) -> dict:
    return {"id": issuer_id(base), "type": ["Profile"], "name": tool_title}


def organization_public_id(registration: Registration) -> str:
    """An organization's id in credentials: stable and derived from the LMS registration (issuer and client id),
    not the row id, so the organizations' profiles cannot be listed by counting."""
    return str(uuid.uuid5(ORGANIZATION_NAMESPACE, f"{registration.issuer}|{registration.client_id}"))


def organization_url(base: str, registration_id: int) -> str:
    registration = db.session.get(Registration, registration_id)
    return f"{base}/credentials/organizations/{organization_public_id(registration)}"


def _source(base: str, registration_id: int, organization: str) -> dict:
    return {"id": organization_url(base, registration_id), "type": ["Profile"], "name": organization}


def jwk_url(base: str, kid: str) -> str:
    return f"{base}/credentials/jwks/{kid}"


def _base_of(body: dict) -> str:
    return body["issuer"]["id"].removesuffix("/credentials/issuer")


def subject_id(person_id: int) -> str:
    """`urn:uuid:...` naming the technician in credentials: drawn at the first issuance, then kept."""
    db.session.execute(update(Person).where(Person.id == person_id, Person.credential_subject_id.is_(None))
                       .values(credential_subject_id=str(uuid.uuid4())))
    return "urn:uuid:" + db.session.scalar(select(Person.credential_subject_id).where(Person.id == person_id))


def verify_url(base: str, public_id: str) -> str:
    return f"{base}/verify/{public_id}"


def status_list_url(base: str, list_no: int) -> str:
    return f"{base}/credentials/status/{list_no}"


def status_index(row: IssuedCredential) -> int:
    return row.status_index if row.status_index is not None else row.id


def _status_entry(base: str, index: int) -> dict:
    list_no, bit = divmod(index, LIST_SIZE)
    url = status_list_url(base, list_no)
    return {"id": f"{url}#{bit}", "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
            "statusListIndex": str(bit), "statusListCredential": url}


def _identity(person: dict, public_id: str) -> list[dict]:
    salt = public_id.replace("-", "")[:16]
    if person.get("email"):
        value, kind = person["email"].strip().lower(), "emailAddress"
    else:
        value, kind = f"person-{person['id']}", "ltiUserId"
    digest = hashlib.sha256((value + salt).encode("utf-8")).hexdigest()
    return [{"type": "IdentityObject", "identityHash": f"sha256${digest}", "identityType": kind, "hashed": True,
             "salt": salt}]


def body_hash(body: dict) -> str:
    """SHA-256 of the credential body (JWT registered claims and any proof left out), canonical JSON."""
    plain = {k: v for k, v in body.items() if k not in JWT_CLAIMS and k != "proof"}
    return hashlib.sha256(attestation.canonical_json(plain)).hexdigest()


def sign(body: dict, key: ToolKey | None = None) -> str:
    key = key or keys.signing_key()
    claims = {**body, "iss": body["issuer"]["id"], "jti": body["id"]}
    subject = body.get("credentialSubject")
    if isinstance(subject, dict) and subject.get("id"):
        claims["sub"] = subject["id"]
    valid_from = datetime.fromisoformat(body["validFrom"].replace("Z", "+00:00"))
    claims["nbf"] = claims["iat"] = int(valid_from.timestamp())
    if body.get("validUntil"):
        claims["exp"] = int(datetime.fromisoformat(body["validUntil"].replace("Z", "+00:00")).timestamp())
    return jwt.encode(claims, key.private_pem, algorithm="RS256",
                      headers={"kid": jwk_url(_base_of(body), key.kid), "typ": "JWT"})


# --- rows ------------------------------------------------------------------------------------------------------

def _random_status_index() -> int:
    """A random index no credential uses: in the first list while it is under half full, then in the next."""
    issued = db.session.scalar(select(func.max(IssuedCredential.id))) or 0  # an index read, unlike count(*)
    lists = 1 + issued // (LIST_SIZE // 2)
    for _attempt in range(64):
        index = secrets.randbelow(LIST_SIZE * lists)
        taken = or_(IssuedCredential.status_index == index,  # both indexed: the unique index and the key
                    and_(IssuedCredential.id == index, IssuedCredential.status_index.is_(None)))
        if db.session.scalar(select(IssuedCredential.id).where(taken)) is None:
            return index
    raise DomainError(_("No free credential status index was found; try again."), status=503)


def _new_row(registration_id: int, person_id: int, kind: str, name: str, issued_at: datetime, **fields):
    row = IssuedCredential(public_id=str(uuid.uuid4()), registration_id=registration_id, person_id=person_id,
                           kind=kind, name=name[:500], issued_at=issued_at, status_index=_random_status_index(),
                           **fields)
    db.session.add(row)
    db.session.flush()  # the next row's index must see this one
    return row


def register_transcript(transcript: dict, registration_id: int, issued_at: datetime | None = None):
    """A row for a printed transcript, so its verification link can answer; returns the row (flushed)."""
    row = _new_row(registration_id, transcript["person"]["id"], TRANSCRIPT,
                   f"Transcript of {transcript['person']['name']}", issued_at or datetime.now(UTC),
                   covers={"sign_off_ids": transcript["live_sign_off_ids"],
                           "evidence_ids": transcript["evidence_ids"]})
    db.session.flush()
    return row


# --- building -------------------------------------------------------------------------------------------------

def scale_url(base: str, framework: dict) -> str:
    return f"{base}/credentials/frameworks/{framework.get('identifier') or framework['id']}/scale"


def achievement_url(base: str, entry: dict) -> str:
    return f"{base}/credentials/achievements/{entry.get('identifier') or entry['competency_id']}"


def certification_url(base: str, credential_code: str | None) -> str:
    return f"{base}/credentials/achievements/certification/{credential_code or 'other'}"


def result_description(base: str, entry: dict) -> dict:
    return _scale(base, entry)[1]


def _scale(base: str, entry: dict) -> tuple[str, dict]:
    framework = entry["framework"]
    rd_id = scale_url(base, framework)
    levels = [{"id": f"{rd_id}#{lvl['code']}", "type": ["RubricCriterionLevel"], "name": lvl["label"],
               "level": lvl["code"],
               "description": "Proficient." if lvl.get("proficient") else "Not yet proficient."}
              for lvl in framework["scale"]]
    description = {"id": rd_id, "type": ["ResultDescription"],
                   "name": f"Rating on the {framework['name']} scale", "resultType": "RubricCriterionLevel",
                   "allowedValue": [lvl["label"] for lvl in framework["scale"]], "rubricCriterionLevel": levels}
    required = next((lvl["id"] for lvl, raw in zip(levels, framework["scale"], strict=True)
                     if raw.get("proficient")), None)
    if required:
        description["requiredLevel"] = required
    return rd_id, description


def achievement_for(base: str, entry: dict) -> dict:
    """The Achievement of a competency (an entry of services.transcripts, or the same keys)."""
    framework = entry["framework"]
    _id, description = _scale(base, entry)
    narrative = (f"Signed off as proficient on the {framework['name']} (version {framework['version']}) rating "
                 "scale by a manager or a named preceptor who observed, checked or was shown the technician's "
                 "recorded evidence.")
    if entry.get("revalidation_months"):
        narrative += f" Revalidated every {entry['revalidation_months']} months."
    achievement = {"id": achievement_url(base, entry),
                   "type": ["Achievement"], "achievementType": "Competency",
                   "name": f"{entry['code']} {entry['title']}", "description": entry.get("description")
                   or entry["title"], "criteria": {"narrative": narrative}, "humanCode": entry["code"],
                   "fieldOfStudy": "Pharmacy technician practice", "resultDescription": [description]}
    if entry["department_labels"]:
        achievement["tag"] = entry["department_labels"]
    return achievement


def _narrative(att: dict) -> str:
    text = (f"Signed off by {att['signer_name']} ({att['signer_role_label']}) on {att['signed_at'][:10]}: "
            f"{att['method_label'].lower()}, rated {att['rating_label']}.")
    if att["checklist_seen"]:
        text += " Checklist steps seen: " + "; ".join(att["checklist_seen"]) + "."
    if att.get("comment"):
        text += f" Comment: {att['comment']}"
    return text


def _competency_body(base, tool_title, transcript, entry, row) -> dict:
    att = next(a for a in entry["attestations"] if a["sign_off_id"] == entry["sign_off_id"])
    rd_id, _description = _scale(base, entry)
    body = {
        "@context": [VC2_CONTEXT, OB3_CONTEXT],
        "id": f"urn:uuid:{row.public_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f"{entry['code']} {entry['title']}",
        "description": f"{transcript['person']['name']} was signed off on {entry['code']} {entry['title']}.",
        "issuer": _issuer(base, tool_title),
        "validFrom": _iso(row.issued_at),
        "awardedDate": att["signed_at"],
        "credentialSubject": {
            "id": transcript["person"]["subject_id"],
            "type": ["AchievementSubject"],
            "identifier": _identity(transcript["person"], row.public_id),
            "achievement": achievement_for(base, entry),
            "result": [{"type": ["Result"], "resultDescription": rd_id,
                        "achievedLevel": f"{rd_id}#{att['rating_code']}", "status": "Completed"}],
            "source": _source(base, row.registration_id, transcript["organization"]),
        },
        "evidence": [{"id": f"{verify_url(base, row.public_id)}#evidence-{att['evidence_id']}",
                      "type": ["Evidence"], "name": att["evidence_title"], "narrative": _narrative(att),
                      "genre": att["evidence_kind_label"],
                      "description": f"Evidence record SHA-256 {att['evidence_hash']} at signing."}],
        "credentialStatus": _status_entry(base, status_index(row)),
        "credentialSchema": [OB3_SCHEMA],
    }
    if att["expires_at"]:
        body["validUntil"] = att["expires_at"]
    return body


def certification_achievement(base: str, cert: dict) -> dict:
    """The Achievement of a certification (a transcript's certification entry, or the same keys)."""
    label = cert.get("credential_label") or cert["title"]
    return {"id": certification_url(base, cert.get("credential")),
            "type": ["Achievement"],
            "achievementType": "License" if cert.get("credential") == "state_registration" else "Certification",
            "name": label, "description": f"{label}" + (f", issued by {cert['issuer']}." if cert.get("issuer")
                                                       else "."),
            "criteria": {"narrative": "Held by the technician; the record of it was checked and signed off "
                                      "by a manager in the tool."}}


def _certification_body(base, tool_title, transcript, cert, row) -> dict:
    label = cert.get("credential_label") or cert["title"]
    achievement = certification_achievement(base, cert)
    subject = {"id": transcript["person"]["subject_id"], "type": ["AchievementSubject"],
               "identifier": _identity(transcript["person"], row.public_id),
               "achievement": achievement, "source": _source(base, row.registration_id, transcript["organization"])}
    if cert.get("number"):
        subject["licenseNumber"] = cert["number"]
    body = {
        "@context": [VC2_CONTEXT, OB3_CONTEXT],
        "id": f"urn:uuid:{row.public_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": label,
        "description": f"{transcript['person']['name']} holds {label}.",
        "issuer": _issuer(base, tool_title),
        "validFrom": _iso(row.issued_at),
        "credentialSubject": subject,
        "evidence": [{"id": f"{verify_url(base, row.public_id)}#evidence-{cert['evidence_id']}",
                      "type": ["Evidence"], "name": cert["title"], "genre": "Certification",
                      "narrative": f"Credential number {cert.get('number') or 'not given'}, issued "
                                   f"{cert.get('issued_date') or 'on an unknown date'}"
                                   + (f", expires {cert['expiry_date']}" if cert.get("expiry_date") else "")
                                   + ". Verified (signed off) in the tool."}],
        "credentialStatus": _status_entry(base, status_index(row)),
        "credentialSchema": [OB3_SCHEMA],
    }
    if cert.get("issued_date"):
        body["awardedDate"] = cert["issued_date"] + "T00:00:00Z"
    if cert.get("expiry_date"):
        body["validUntil"] = cert["expiry_date"] + "T23:59:59Z"
    return body


def achievement_credentials(transcript: dict, registration_id: int, base: str, tool_title: str,
                            issued_at: datetime | None = None) -> list[dict]:
    """Unsigned OB 3.0 credential bodies for every held competency and every verified certification of a
    transcript. Rows are reused per sign-off / evidence item (one query to find them), created when missing."""
    issued_at = issued_at or datetime.now(UTC)
    held = [e for e in transcript["competencies"] if e["held"] and e["sign_off_id"]]
    certs = [c for c in transcript["certifications"] if c["verified"]]
    existing = db.session.scalars(select(IssuedCredential).where(
        IssuedCredential.person_id == transcript["person"]["id"],
        ((IssuedCredential.kind == ACHIEVEMENT) & IssuedCredential.sign_off_id.in_([e["sign_off_id"] for e in held]))
        | ((IssuedCredential.kind == CERTIFICATION)
           & IssuedCredential.evidence_id.in_([c["evidence_id"] for c in certs])))).all()
    by_sign_off = {r.sign_off_id: r for r in existing if r.kind == ACHIEVEMENT}
    by_evidence = {r.evidence_id: r for r in existing if r.kind == CERTIFICATION}
    person_id = transcript["person"]["id"]
    transcript = _with_subject(transcript)
    for entry in held:
        if entry["sign_off_id"] not in by_sign_off:
            by_sign_off[entry["sign_off_id"]] = _new_row(
                registration_id, person_id, ACHIEVEMENT, f"{entry['code']} {entry['title']}", issued_at,
                sign_off_id=entry["sign_off_id"], valid_until=_parse(entry["expires_at"]))
    for cert in certs:
        if cert["evidence_id"] not in by_evidence:
            by_evidence[cert["evidence_id"]] = _new_row(
                registration_id, person_id, CERTIFICATION, cert.get("credential_label") or cert["title"], issued_at,
                evidence_id=cert["evidence_id"],
                valid_until=_parse(cert["expiry_date"] + "T23:59:59Z") if cert.get("expiry_date") else None)
    db.session.flush()
    bodies = [_competency_body(base, tool_title, transcript, e, by_sign_off[e["sign_off_id"]]) for e in held]
    bodies += [_certification_body(base, tool_title, transcript, c, by_evidence[c["evidence_id"]]) for c in certs]
    rows = [by_sign_off[e["sign_off_id"]] for e in held] + [by_evidence[c["evidence_id"]] for c in certs]
    for body, row in zip(bodies, rows, strict=True):
        digest = body_hash(body)
        if row.body_sha256 != digest:
            row.body_sha256 = digest
    db.session.flush()
    return bodies


def _with_subject(transcript: dict) -> dict:
    if transcript["person"].get("subject_id"):
        return transcript
    return {**transcript, "person": {**transcript["person"], "subject_id": subject_id(transcript["person"]["id"])}}


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def ob3_bundle(actor, person_id: int, base: str, tool_title: str, *, as_of=None) -> dict:
    """{"credentials": [{"id", "name", "jwt"}, ...]}: a signed OB 3.0 credential per held competency and
    verified certification."""
    key = keys.signing_key()  # before this transaction writes anything (a first key commits on its own)
    transcript = transcripts.build(actor, person_id, as_of=as_of)
    bodies = achievement_credentials(transcript, actor.registration_id, base, tool_title, as_of)
    return {"technician": transcript["person"]["name"], "issuer": issuer_id(base), "jwks": f"{base}/credentials/jwks",
            "credentials": [{"id": b["id"], "name": b["name"], "jwt": sign(b, key)} for b in bodies]}


def clr_credential(actor, person_id: int, base: str, tool_title: str, *, as_of=None) -> tuple[dict, str]:
    """(body, compact JWT) of a CLR 2.0 ClrCredential over the whole transcript."""
    key = keys.signing_key()  # before this transaction writes anything (a first key commits on its own)
    transcript = _with_subject(transcripts.build(actor, person_id, as_of=as_of))
    issued_at = as_of or datetime.now(UTC)
    members = achievement_credentials(transcript, actor.registration_id, base, tool_title, issued_at)
    # Each embedded credential carries its own proof (1EdTech's CLR validator checks every one).
    members = [data_integrity.add_proof(m, base, key, _iso(issued_at)) for m in members]
    if not members:
        raise DomainError(_("There is nothing to put in a learner record yet: no competency is held and no "
                          "certification has been verified."), status=409, code="nothing_to_issue")
    row = _new_row(actor.registration_id, transcript["person"]["id"], CLR,
                   f"Comprehensive Learner Record of {transcript['person']['name']}", issued_at,
                   covers={"sign_off_ids": transcript["live_sign_off_ids"], "evidence_ids": transcript["evidence_ids"],
                           "members": [m["id"] for m in members]})
    db.session.flush()
    achievements = [m["credentialSubject"]["achievement"] for m in members]
    body = {
        "@context": [VC2_CONTEXT, CLR_CONTEXT, OB3_CONTEXT],
        "id": f"urn:uuid:{row.public_id}",
        "type": ["VerifiableCredential", "ClrCredential"],
        "name": f"Competency transcript of {transcript['person']['name']}",
        "description": f"Competencies, certifications and sign-offs recorded for {transcript['person']['name']} "
                       f"at {transcript['organization']}, as of {transcript['as_of'][:10]}.",
        "issuer": _issuer(base, tool_title),
        "validFrom": _iso(row.issued_at),
        "credentialSubject": {
            "id": transcript["person"]["subject_id"],
            "type": ["ClrSubject"],
            "identifier": _identity(transcript["person"], row.public_id),
            "achievement": achievements,
            "verifiableCredential": members,
        },
        "credentialStatus": _status_entry(base, status_index(row)),
        "credentialSchema": [CLR_SCHEMA],
    }
    row.body_sha256 = body_hash(body)
    db.session.flush()
    return body, sign(body, key)


# --- state ----------------------------------------------------------------------------------------------------

def _sign_off_problems(sign_off_ids, tz=None) -> dict:
    """{sign_off_id: what happened} for sign-offs revoked or corrected (two queries). Only that and when: the
    reason is the organization's internal record and is never shown to whoever checks a credential."""
    ids = list(sign_off_ids)
    if not ids:
        return {}
    problems = {}
    rows = db.session.execute(
        select(SignOffRevocation, Competency.code).join(SignOff, SignOff.id == SignOffRevocation.sign_off_id)
        .join(Competency, Competency.id == SignOff.competency_id).where(SignOffRevocation.sign_off_id.in_(ids)))
    for revocation, code in rows:
        problems[revocation.sign_off_id] = _("The sign-off of %(code)s was revoked on %(date)s.", code=code,
                                             date=formatting.us_date(revocation.revoked_at, tz))
    rows = db.session.execute(select(SignOff.corrects_id, SignOff.signed_at, SignOff.correction_reason,
                                     Competency.code).join(Competency, Competency.id == SignOff.competency_id)
                              .where(SignOff.corrects_id.in_(ids)))
    for corrects_id, signed_at, _reason, code in rows:
        problems.setdefault(corrects_id, _("The sign-off of %(code)s was corrected on %(date)s.", code=code,
                                           date=formatting.us_date(signed_at, tz)))
    return problems


def state(row: IssuedCredential, now: datetime | None = None) -> dict:
    """{"status": valid|revoked|expired|invalid, "reasons": [...]} of an issued credential today."""
    now = now or datetime.now(UTC)
    reasons = []
    if row.kind == ACHIEVEMENT:
        reasons = list(_sign_off_problems([row.sign_off_id], settings.time_zone(row.registration)).values())
        if not reasons:
            sign_off = db.session.get(SignOff, row.sign_off_id)
            if sign_off is None or not attestation.verify(sign_off)["snapshot_intact"]:
                return {"status": INVALID, "reasons": ["The signed-off evidence record no longer matches the "
                                                       "fingerprint taken when it was signed."]}
    elif row.kind == CERTIFICATION:
        evidence = db.session.get(Evidence, row.evidence_id)
        if evidence is None or evidence.status == WITHDRAWN:
            reasons = [_("The certification record was withdrawn.")]
    else:
        reasons = sorted(_sign_off_problems((row.covers or {}).get("sign_off_ids", []),
                                            settings.time_zone(row.registration)).values())
    if reasons:
        return {"status": REVOKED, "reasons": reasons}
    if row.valid_until is not None and row.valid_until <= now:
        what = "the competency was due for revalidation" if row.kind == ACHIEVEMENT else "the certification lapsed"
        return {"status": EXPIRED, "reasons": [f"Expired on {row.valid_until.date().isoformat()}: {what}."]}
    return {"status": VALID, "reasons": []}


def describe(row: IssuedCredential) -> dict:
    person = db.session.get(Person, row.person_id)
    return {"id": row.public_id, "kind": row.kind, "name": row.name,
            "holder": person.display_name if person else None,
            "organization": settings.organization_name(row.registration),
            "issued_at": _iso(row.issued_at), "valid_until": _iso(row.valid_until) if row.valid_until else None}


def lookup(public_id: str) -> IssuedCredential:
    row = db.session.scalars(select(IssuedCredential).where(IssuedCredential.public_id == str(public_id))).first()
    if row is None:
        raise NotFound(_("No credential or transcript with this id was issued by this tool."))
    return row


def status_of(public_id: str) -> dict:
    row = lookup(public_id)
    return {**state(row), "credential": describe(row)}


# --- verification ---------------------------------------------------------------------------------------------

def _result(status_value: str, reasons: list, row: IssuedCredential | None = None) -> dict:
    out = {"status": status_value, "reasons": reasons}
    if row is not None:
        out["credential"] = describe(row)
    return out


def _row_for(body: dict) -> IssuedCredential | None:
    cid = body.get("id")
    if not isinstance(cid, str) or not cid.startswith("urn:uuid:"):
        return None
    try:
        public_id = str(uuid.UUID(cid[len("urn:uuid:"):]))
    except ValueError:
        return None
    return db.session.scalars(select(IssuedCredential).where(IssuedCredential.public_id == public_id)).first()


def _verify_jwt(token: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise CredentialError(f"This is not a compact JWT credential ({exc}).") from exc
    if header.get("alg") != "RS256":
        return _result(INVALID, [f"Signature algorithm {header.get('alg')!r} is not accepted; credentials of this "
                                 "tool are signed with RS256."])
    kid = str(header.get("kid"))
    kid = kid.rsplit("/", 1)[-1] if "/credentials/jwks/" in kid else kid  # a kid URL, or a bare kid (older)
    key = db.session.scalars(select(ToolKey).where(ToolKey.kid == kid)).first()
    if key is None:
        return _result(INVALID, ["The credential names a signing key (kid) this tool never used."])
    public = jwt.PyJWK(key.public_jwk).key
    try:
        payload = jwt.decode(token, public, algorithms=["RS256"],
                             options={"verify_exp": False, "verify_nbf": False, "verify_aud": False,
                                      "verify_iat": False})
    except jwt.InvalidSignatureError:
        return _result(INVALID, ["The signature does not match the content: the credential was altered after it "
                                 "was signed, or was not signed by this tool."])
    except jwt.InvalidTokenError as exc:
        raise CredentialError(f"The credential could not be read ({exc}).") from exc
    if not isinstance(payload, dict):
        raise CredentialError(_("The credential's payload is not a JSON object."))
    issuer = payload.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
    if payload.get("iss") != issuer or payload.get("jti") != payload.get("id"):
        return _result(INVALID, ["The JWT claims (iss, jti) do not match the credential's issuer and id."])
    row = _row_for(payload)
    if row is None:
        return _result(INVALID, ["This tool has no record of issuing a credential with this id."])
    if row.body_sha256 and row.body_sha256 != body_hash(payload):
        return _result(INVALID, ["The credential does not match the one this tool issued with this id."], row)
    return {**state(row), "credential": describe(row)}


def _verify_document(document: dict) -> dict:
    types = document.get("type")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise CredentialError(_("This JSON is not a verifiable credential (its type lacks VerifiableCredential)."))
    row = _row_for(document)
    if row is None:
        return _result(INVALID, ["This tool has no record of issuing a credential with this id."])
    # An embedded proof is not part of the body that was hashed when issued.
    plain = {k: v for k, v in document.items() if k != "proof"}
    if row.body_sha256 is None or row.body_sha256 not in (body_hash(document), body_hash(plain)):
        return _result(INVALID, ["The credential's content differs from what this tool issued under this id: it "
                                 "was altered."], row)
    return {**state(row), "credential": describe(row)}


def verify(credential_or_jwt) -> dict:
    """Check a credential this tool issued, given as a compact VC-JWT or as the credential's JSON (object or
    text). Returns {"status": valid|revoked|expired|invalid, "reasons": [...], "credential": {...}} for anything
    readable (a tampered credential is "invalid"); raises CredentialError (400) for input that is not a
    credential at all."""
    value = credential_or_jwt
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CredentialError(_("The credential is not UTF-8 text.")) from exc
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise CredentialError(_("No credential was given."))
        if value.startswith("{"):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise CredentialError(_("The credential is neither a compact JWT nor valid JSON.")) from exc
        else:
            if len(value) > 2_000_000:
                raise CredentialError(_("The credential is too large."))
            return _verify_jwt(value)
    if isinstance(value, dict):
        return _verify_document(value)
    raise CredentialError(_("Give the credential as a compact JWT or as a JSON object."))


# --- status list ----------------------------------------------------------------------------------------------

def revoked_indexes(list_no: int) -> set[int]:
    """Bit positions set in status list `list_no`: credentials whose sign-off was revoked or corrected, whose
    certification record was withdrawn, or (CLR, transcript) that cover such a sign-off."""
    low, high = list_no * LIST_SIZE, (list_no + 1) * LIST_SIZE
    index = func.coalesce(IssuedCredential.status_index, IssuedCredential.id)
    in_list = and_(index >= low, index < high)
    revoked = set(db.session.scalars(
        select(index).join(SignOffRevocation, SignOffRevocation.sign_off_id == IssuedCredential.sign_off_id)
        .where(in_list, IssuedCredential.kind == ACHIEVEMENT)))
    corrections = select(SignOff.corrects_id).where(SignOff.corrects_id.is_not(None))
    revoked |= set(db.session.scalars(select(index).where(
        in_list, IssuedCredential.kind == ACHIEVEMENT, IssuedCredential.sign_off_id.in_(corrections))))
    revoked |= set(db.session.scalars(
        select(index).join(Evidence, Evidence.id == IssuedCredential.evidence_id)
        .where(in_list, IssuedCredential.kind == CERTIFICATION, Evidence.status == WITHDRAWN)))
    bundles = db.session.execute(select(index, IssuedCredential.covers).where(
        in_list, IssuedCredential.kind.in_((CLR, TRANSCRIPT)))).all()
    covered = {sid for _bundle, covers in bundles for sid in (covers or {}).get("sign_off_ids", [])}
    bad = set()
    chunk = sorted(covered)
    for start in range(0, len(chunk), 5000):
        part = chunk[start:start + 5000]
        bad |= set(db.session.scalars(select(SignOffRevocation.sign_off_id)
                                      .where(SignOffRevocation.sign_off_id.in_(part))))
        bad |= set(db.session.scalars(select(SignOff.corrects_id).where(SignOff.corrects_id.in_(part))))
    revoked |= {rid for rid, covers in bundles if bad & set((covers or {}).get("sign_off_ids", []))}
    return {i - low for i in revoked}


def encode_list(bits: set[int], size: int = LIST_SIZE) -> str:
    raw = bytearray(size // 8)
    for bit in bits:
        raw[bit // 8] |= 0x80 >> (bit % 8)
    return "u" + base64.urlsafe_b64encode(gzip.compress(bytes(raw), mtime=0)).decode().rstrip("=")


def status_list_jwt(base: str, list_no: int, now: datetime | None = None) -> str:
    """The signed BitstringStatusListCredential for list `list_no`, valid for a day (verifiers refetch)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    url = status_list_url(base, list_no)
    body = {"@context": [VC2_CONTEXT], "id": url, "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": {"id": issuer_id(base), "type": ["Profile"]}, "validFrom": _iso(now),
            "validUntil": _iso(now + timedelta(days=1)),
            "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList", "statusPurpose": "revocation",
                                  "encodedList": encode_list(revoked_indexes(list_no))}}
    return sign(body)
