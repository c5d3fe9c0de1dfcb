"""What a sign-off attests to: a canonical JSON document of the evidence, its SHA-256 and a snapshot.

The document is kind, title, data, the attachments' SHA-256s (in upload order) and the revision; canonical JSON
is sorted keys, no insignificant whitespace, UTF-8, so anyone can recompute the hash from the stored snapshot
(or from the evidence today) and compare.
"""
import hashlib
import json

from ..models import Evidence, SignOff

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
