"""What a sign-off attests to: a canonical JSON document of the evidence, its SHA-256 and a snapshot.

The document is kind, title, data, the attachments' SHA-256s (in upload order) and the revision; canonical JSON
is sorted keys, no insignificant whitespace, UTF-8, so anyone can recompute the hash from the stored snapshot
(or from the evidence today) and compare.
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select

from .. import formatting
from ..extensions import db
from ..i18n import N_
from ..i18n import gettext as _
from ..models import Evidence, Person, SignOff, SignOffRevocation
from . import settings

HASHED_KEYS = ("kind", "title", "data", "attachments", "revision")


def evidence_document(evidence: Evidence) -> dict:
    """What a sign-off attests to: kind, title, data, the attachments' SHA-256s (upload order), revision."""
    return {
        "kind": evidence.kind,
        "title": evidence.title,
        "data": evidence.data or {},
        "attachments": [a.sha256 for a in sorted(evidence.attachments, key=lambda a: a.id)],
        "revision": evidence.revision,
    }


def canonical_json(document: dict) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same document always gives the same bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def evidence_hash(document: dict) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def snapshot(evidence: Evidence, document: dict) -> dict:
    return {
        **document,
        "evidence_id": evidence.id,
        "course_id": evidence.course_id,
        "person_id": evidence.person_id,
        "submitted_at": evidence.submitted_at.isoformat() if evidence.submitted_at else None,
        "attachment_files": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
            for a in sorted(evidence.attachments, key=lambda a: a.id)
        ],
    }


def verify(sign_off: SignOff) -> dict:
    """Check a sign-off: does its stored snapshot still give its stored hash, and is the evidence today the
    evidence it attested?"""
    document = {key: sign_off.evidence_snapshot.get(key) for key in HASHED_KEYS}
    current = evidence_hash(evidence_document(sign_off.evidence))
    return {
        "snapshot_intact": evidence_hash(document) == sign_off.evidence_hash,
        "evidence_unchanged": current == sign_off.evidence_hash,
    }


# --- Where a sign-off stands: ONE rule for every page and export ----------------------------------------------

VALID, NOT_PROFICIENT, EXPIRED, REVOKED, CORRECTED = "valid", "not_proficient", "expired", "revoked", "corrected"
STATE_LABELS = {VALID: N_("Valid"), NOT_PROFICIENT: N_("Not yet proficient"), EXPIRED: N_("Expired"),
                REVOKED: N_("Revoked"),
                CORRECTED: N_("Corrected")}
# Evidence-level states, worst first: what a reader must see before anything else.
SIGNED_OFF = "signed_off"
EVIDENCE_ORDER = (REVOKED, CORRECTED, NOT_PROFICIENT, SIGNED_OFF)


def sign_off_state(sign_off: SignOff, revocation, corrected_by, as_of: datetime) -> str:
    """One sign-off at `as_of`: revoked, corrected (replaced by a correction), not proficient, expired or valid."""
    if revocation is not None and revocation.revoked_at <= as_of:
        return REVOKED
    if corrected_by is not None and corrected_by.signed_at <= as_of:
        return CORRECTED
    if not sign_off.proficient:
        return NOT_PROFICIENT
    if sign_off.expires_at is not None and sign_off.expires_at <= as_of:
        return EXPIRED
    return VALID


@dataclass(frozen=True)
class CompetencySignOff:
    """Where the sign-off of one competency on one evidence item stands (the head of its correction chain)."""

    competency_id: int
    state: str  # SIGNED_OFF, NOT_PROFICIENT, CORRECTED (a correction stands), REVOKED
    sign_off: SignOff
    at: datetime  # when it was signed, corrected or revoked
    by: str  # who did that
    rating_label: str
    tz: object = None  # the tenant's time zone, for the date in the label

    @property
    def counts(self) -> bool:
        return self.state in (SIGNED_OFF, CORRECTED) and self.sign_off.proficient

    @property
    def label(self) -> str:
        when = formatting.us_date(self.at, self.tz)
        if self.state == REVOKED:
            return _("Sign-off revoked on %(date)s by %(name)s", date=when, name=self.by)
        if self.state == CORRECTED:
            return _("Sign-off corrected to “%(rating)s” on %(date)s by %(name)s", rating=self.rating_label,
                     date=when, name=self.by)
        if self.state == NOT_PROFICIENT:
            return _("Assessed “%(rating)s” (not yet proficient) on %(date)s by %(name)s", rating=self.rating_label,
                     date=when, name=self.by)
        return _("Signed off on %(date)s by %(name)s", date=when, name=self.by)


@dataclass(frozen=True)
class EvidenceSignOff:
    """The current sign-off state of an evidence item: the worst of its competencies' (revoked first)."""

    state: str
    label: str
    competencies: tuple  # CompetencySignOff, by competency id

    @property
    def counts(self) -> bool:
        return any(c.counts for c in self.competencies)

    @property
    def needs_reassessment(self) -> bool:
        return self.state in (REVOKED, CORRECTED, NOT_PROFICIENT) and not self.counts


def is_verified(evidence_status: str, signed: EvidenceSignOff | None) -> bool:
    """Verified evidence: signed off, with no sign-off on it revoked or corrected away (a standing one)."""
    return evidence_status == SIGNED_OFF and (signed is None or signed.counts)


def _head_state(head: SignOff, revocation, revoker: str | None, as_of: datetime, tz) -> CompetencySignOff:
    if revocation is not None and revocation.revoked_at <= as_of:
        state, at, by = REVOKED, revocation.revoked_at, revoker or "a manager"
    elif head.corrects_id is not None:
        state, at, by = CORRECTED, head.signed_at, head.signer_name
    else:
        state, at, by = (SIGNED_OFF if head.proficient else NOT_PROFICIENT), head.signed_at, head.signer_name
    return CompetencySignOff(head.competency_id, state, head, at, by, head.rating_label, tz)


# Built once (bound parameters): building it and working out its cache key cost as much as running it, and the
# dashboard asks twice.
_SIGN_OFFS_OF_EVIDENCE = (
    select(SignOff, SignOffRevocation, Person)
    .outerjoin(SignOffRevocation, SignOffRevocation.sign_off_id == SignOff.id)
    .outerjoin(Person, Person.id == SignOffRevocation.revoked_by_id)
    .where(SignOff.evidence_id.in_(bindparam("ids", expanding=True)), SignOff.signed_at <= bindparam("as_of"))
    .order_by(SignOff.signed_at, SignOff.id))


def evidence_states(evidence_ids, as_of: datetime | None = None) -> dict:
    """{evidence_id: EvidenceSignOff} for the items among `evidence_ids` that were ever signed off (by `as_of`),
    in one query. Items never signed off are absent: their workflow status (draft, submitted...) says it all.
    Every page and export that says "signed off" asks this, so a revoked or corrected sign-off reads as such
    everywhere."""
    ids = list(dict.fromkeys(evidence_ids))
    if not ids:
        return {}
    as_of = as_of or datetime.now(UTC)
    rows = db.session.execute(_SIGN_OFFS_OF_EVIDENCE, {"ids": ids, "as_of": as_of}).all()
    if not rows:
        return {}
    tz = settings.time_zone(db.session.get(Person, rows[0][0].person_id).registration)
    superseded = {row[0].corrects_id for row in rows if row[0].corrects_id is not None}
    heads: dict = {}
    for sign_off, revocation, revoker in rows:
        if sign_off.id in superseded:
            continue
        heads[(sign_off.evidence_id, sign_off.competency_id)] = _head_state(
            sign_off, revocation, revoker.display_name if revoker is not None else None, as_of, tz)
    by_evidence: dict = {}
    for (evidence_id, _competency), entry in sorted(heads.items()):
        by_evidence.setdefault(evidence_id, []).append(entry)
    out = {}
    for evidence_id, entries in by_evidence.items():
        worst = min(entries, key=lambda e: EVIDENCE_ORDER.index(e.state))
        label = _("Signed off") if worst.state == SIGNED_OFF else worst.label
        out[evidence_id] = EvidenceSignOff(worst.state, label, tuple(entries))
    return out
