"""The public verification page: what a credential or printed transcript certifies, and whether it still holds.

`credentials` signs and checks credentials (valid / revoked / expired / invalid). This module says, for anyone who
holds the link or the file, what the credential certifies: the competencies with their dates, signers' names and
roles, the certification, and the pharmacy's name as the tenant set it. It never shows why a sign-off was revoked
or corrected (that is the organization's internal record), only that it was and when.

It accepts what the tool hands out, as it is: a compact VC-JWT (an Open Badges credential or the CLR file), a
credential's JSON, or the Open Badges download itself (a bundle {"credentials": [{"id", "name", "jwt"}...]}).
"""
import json
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from .. import formatting
from ..extensions import db
from ..models import Competency, Evidence, IssuedCredential, SignOff, SignOffRevocation
from ..models.exports import ACHIEVEMENT, CERTIFICATION
from ..schemas.evidence import CREDENTIALS
from . import credentials, settings
from .transcripts import SIGNER_ROLE_LABELS

MAX_BUNDLE = 500  # credentials checked from one uploaded bundle


@dataclass
class Checked:
    """One credential's answer: {"status", "reasons", "credential"} from credentials, plus what it certifies."""

    result: dict
    certifies: list = field(default_factory=list)
    certification: dict | None = None

    @property
    def status(self) -> str:
        return self.result["status"]


def _row(public_id: str | None) -> IssuedCredential | None:
    if not public_id:
        return None
    return db.session.scalars(select(IssuedCredential).where(IssuedCredential.public_id == public_id)).first()


def _sign_off_ids(row: IssuedCredential) -> list[int]:
    if row.kind == ACHIEVEMENT:
        return [row.sign_off_id] if row.sign_off_id else []
    if row.kind == CERTIFICATION:
        return list(db.session.scalars(select(SignOff.id).where(SignOff.evidence_id == row.evidence_id)))
    return list((row.covers or {}).get("sign_off_ids") or [])


def certifies(row: IssuedCredential) -> list[dict]:
    """The sign-offs a credential rests on (one query): competency, date, signer and role, expiration, and its
    state today (revoked or corrected with the date only, never the reason)."""
    ids = _sign_off_ids(row)
    if not ids:
        return []
    rows = db.session.execute(
        select(SignOff, Competency, SignOffRevocation)
        .join(Competency, Competency.id == SignOff.competency_id)
        .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
        .where(SignOff.id.in_(ids), SignOff.person_id == row.person_id)
        .order_by(Competency.framework_id, Competency.position, SignOff.signed_at)).all()
    corrections = {s.corrects_id: s for s in db.session.scalars(select(SignOff).where(SignOff.corrects_id.in_(ids)))}
    tz = settings.time_zone(row.registration)
    out = []
    for sign_off, competency, revocation in rows:
        corrected = corrections.get(sign_off.id)
        if revocation is not None:
            state = _("Revoked on %(date)s", date=formatting.us_date(revocation.revoked_at, tz))
        elif corrected is not None:
            state = _("Corrected on %(date)s", date=formatting.us_date(corrected.signed_at, tz))
        else:
            state = _("In force")
        out.append({"code": competency.code, "title": competency.title, "rating": sign_off.rating_label,
                    "signed": formatting.us_date(sign_off.signed_at, tz), "signer": sign_off.signer_name,
                    "role": _(SIGNER_ROLE_LABELS.get(sign_off.signer_role, sign_off.signer_role)),
                    "expires": formatting.us_date(sign_off.expires_at, tz) if sign_off.expires_at
                    else _("No expiration"),
                    "state": state})
    return out


def _certification(row: IssuedCredential) -> dict | None:
    if row.kind != CERTIFICATION or row.evidence_id is None:
        return None
    evidence = db.session.get(Evidence, row.evidence_id)
    if evidence is None or evidence.person_id != row.person_id:
        return None
    data = evidence.data or {}
    credential = data.get("credential")
    return {"label": data.get("credential_other") or _(CREDENTIALS.get(credential, (evidence.title,))[0]),
            "number": data.get("number"), "issued": formatting.us_date(data.get("issued_date")),
            "expires": formatting.us_date(data.get("expiry_date")) or _("No expiration")}


def _with_details(result: dict) -> Checked:
    """Adds the tenant's organization name and what the credential certifies to a credentials result."""
    row = _row((result.get("credential") or {}).get("id"))
    if row is None or result["status"] == credentials.INVALID:
        return Checked(result)
    result["credential"]["organization"] = settings.organization_name(row.registration)
    return Checked(result, certifies(row), _certification(row))


def status_of(public_id: str) -> Checked:
    """The answer for /verify/<public_id> (NotFound for an unknown id)."""
    return _with_details(credentials.status_of(public_id))


class Answers(list):
    """The answers for what was presented; `bundle` says it was the Open Badges download (several credentials)."""

    bundle = False


def check(presented) -> Answers:
    """Check what someone pasted or uploaded, as downloaded from the tool; one answer per credential in it.
    Raises credentials.CredentialError (400) for anything that is not a credential at all."""
    value = presented
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise credentials.CredentialError(_("The file is not a credential (it is not UTF-8 text).")) from exc
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise credentials.CredentialError(_("The credential is neither a compact JWT nor valid JSON.")) from exc
    if isinstance(value, dict) and isinstance(value.get("credentials"), list) and "type" not in value:
        items = value["credentials"][:MAX_BUNDLE]
        tokens = [item.get("jwt") if isinstance(item, dict) else item for item in items]
        if not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise credentials.CredentialError(_("This Open Badges file lists no credentials to check."))
        answers = Answers(_with_details(credentials.verify(token)) for token in tokens)
        answers.bundle = True
        return answers
    return Answers([_with_details(credentials.verify(value))])


def overall(answers: list[Checked]) -> str:
    """The worst status among several credentials (invalid, then revoked, expired, valid)."""
    order = (credentials.INVALID, credentials.REVOKED, credentials.EXPIRED, credentials.VALID)
    return min((a.status for a in answers), key=order.index)
