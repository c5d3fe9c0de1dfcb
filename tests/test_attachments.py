"""Attachments: types allowed or refused by content, the size limit, sha256, files on disk that follow the
transaction, and audit rows."""
import hashlib
import io

import pytest
from sqlalchemy import select

import config
from lti_tool.extensions import db
from lti_tool.models import Attachment, AuditEntry
from lti_tool.models.evidence import SIGNED_OFF, SUBMITTED
from lti_tool.services import DomainError, NotFound
from lti_tool.services import attachments as attachment_service
from lti_tool.services import evidence as evidence_service
from lti_tool.services.attachments import LocalDiskStorage, clean_filename, sniff
from tests.test_evidence_service import add_framework, payloads

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40
HEIF_WITH_HEIC = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1miafheic" + b"\x00" * 40
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 40
HEIF_AVIF_ONLY = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1miafavif" + b"\x00" * 40
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 40
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
ZIP = b"PK\x03\x04\x14\x00\x00\x00" + b"\x00" * 40
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'
PDF_LATE = b"\n\n%PDF-1.4\n"


@pytest.mark.parametrize("head, expected", [
    (PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"),
    (HEIC, "image/heic"), (HEIF_WITH_HEIC, "image/heic"),
    (AVIF, None), (HEIF_AVIF_ONLY, None), (GIF, None), (EXE, None), (HTML, None), (ZIP, None), (SVG, None),
    (PDF_LATE, None), (b"RIFF\x24\x00\x00\x00WAVEfmt ", None), (b"", None), (b"%PD", None),
])
def test_sniff_reads_the_content(head, expected):
    assert sniff(head) == expected


@pytest.mark.parametrize("name, cleaned", [
    ("certificate.pdf", "certificate.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\dana\\CPhT card.jpg", "CPhT card.jpg"),
    ("bad\x00name\r\n.png", "badname.png"),
    ("", "attachment"),
    (None, "attachment"),
    ("...", "attachment"),
    ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
])
def test_clean_filename(name, cleaned):
    assert clean_filename(name) == cleaned


def test_local_disk_storage_round_trip(tmp_path):
    store = LocalDiskStorage(tmp_path)
    key = store.save(io.BytesIO(PDF))
    assert store.exists(key)
    with store.open(key) as fh:
        assert fh.read() == PDF
    assert (tmp_path / key).read_bytes() == PDF
    assert not list(tmp_path.rglob("*.part"))
    other = store.save(io.BytesIO(PDF))
    assert other != key
    store.delete(key)
    assert not store.exists(key) and store.exists(other)
    store.delete(key)  # deleting twice is harmless
    for bad in ("../../etc/passwd", "ab/../../x", "AB/" + "0" * 32, "", None):
        with pytest.raises(ValueError):
            store.open(bad)


@pytest.fixture
def files(app, tmp_path):
    """Attachment storage in this test's own directory, with a 1 KB limit."""
    saved = app.config["ATTACHMENT_DIR"], app.config["ATTACHMENT_MAX_BYTES"]
    app.config["ATTACHMENT_DIR"] = str(tmp_path / "attachments")
    app.config["ATTACHMENT_MAX_BYTES"] = 1024
    yield tmp_path / "attachments"
    app.config["ATTACHMENT_DIR"], app.config["ATTACHMENT_MAX_BYTES"] = saved


def stored_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def draft(make, files):
    reg = make.registration()
    course = make.course(reg)
    comps = add_framework(course)
    tech = make.actor(course, "technician")
    evidence = evidence_service.create_draft(tech, "certification", payloads(comps)["certification"])
    return {"tech": tech, "course": course, "evidence": evidence, "manager": make.actor(course, "manager"),
            "files": files, "make": make}


def audit_for(entity_type, entity_id):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type == entity_type,
                                                       AuditEntry.entity_id == entity_id)
                              .order_by(AuditEntry.id)).all()


@pytest.mark.parametrize("content, content_type", [
    (PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"), (HEIC, "image/heic"),
])
def test_allowed_types_are_stored_with_sha256_and_audited(draft, content, content_type):
    tech, evidence, root = draft["tech"], draft["evidence"], draft["files"]
    # The name (and whatever the browser claimed) does not decide the type: the content does.
    att = evidence_service.add_attachment(tech, evidence.id, "scan.txt", io.BytesIO(content),
                                          description="Wallet card")
    assert (att.content_type, att.size, att.sha256) == (content_type, len(content),
                                                        hashlib.sha256(content).hexdigest())
    assert (att.filename, att.description, att.uploaded_by_id) == ("scan.txt", "Wallet card", tech.person.id)
    assert (root / att.storage_key).read_bytes() == content
    assert evidence.revision == 2 and evidence.attachments == [att]
    (row,) = audit_for("attachments", att.id)
    assert (row.action, row.actor_id, row.course_id) == ("attachment.add", tech.person.id, draft["course"].id)
    assert row.after["sha256"] == att.sha256 and row.after["evidence_id"] == evidence.id
    assert row.after["evidence_revision"] == 2 and row.before is None


@pytest.mark.parametrize("content", [EXE, HTML, ZIP, GIF, SVG, AVIF])
def test_blocked_types_are_refused_by_content_whatever_the_name(draft, content):
    with pytest.raises(DomainError) as caught:
        evidence_service.add_attachment(draft["tech"], draft["evidence"].id, "certificate.pdf", io.BytesIO(content))
    assert (caught.value.status, caught.value.code) == (415, "file_type")
    assert caught.value.fields == {
        "file": "Only PDF, PNG, JPEG, WebP, HEIC files can be attached; this file's content is none of these."}
    assert stored_files(draft["files"]) == []
    assert db.session.scalar(select(Attachment.id)) is None and draft["evidence"].revision == 1


def test_size_limit(draft):
    tech, evidence = draft["tech"], draft["evidence"]
    exactly = PDF + b"0" * (1024 - len(PDF))
    att = evidence_service.add_attachment(tech, evidence.id, "ok.pdf", io.BytesIO(exactly))
    assert att.size == 1024
    with pytest.raises(DomainError) as caught:
        evidence_service.add_attachment(tech, evidence.id, "big.pdf", io.BytesIO(exactly + b"0"))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        413, "file_too_large", "The file is larger than 1 KB.")
    with pytest.raises(DomainError) as caught:
        evidence_service.add_attachment(tech, evidence.id, "empty.pdf", io.BytesIO(b""))
    assert (caught.value.code, caught.value.fields) == ("empty_file", {"file": "The file is empty."})
    assert len(stored_files(draft["files"])) == 1


def test_default_limit_is_ten_megabytes():
    assert config.Config.ATTACHMENT_MAX_BYTES == 10 * 1024 * 1024
    assert config.load({"LTI_TOOL_ENV": "testing", "ATTACHMENT_MAX_BYTES": "2048"})["ATTACHMENT_MAX_BYTES"] == 2048


def test_the_same_file_twice_is_refused_and_not_kept(draft):
    tech, evidence = draft["tech"], draft["evidence"]
    evidence_service.add_attachment(tech, evidence.id, "a.pdf", io.BytesIO(PDF))
    with pytest.raises(DomainError) as caught:
        evidence_service.add_attachment(tech, evidence.id, "b.pdf", io.BytesIO(PDF))
    assert (caught.value.status, caught.value.code) == (409, "duplicate_file")
    assert len(stored_files(draft["files"])) == 1 and evidence.revision == 2


def test_removed_attachment_file_is_deleted_when_the_removal_commits(draft):
    tech, evidence, root = draft["tech"], draft["evidence"], draft["files"]
    att = evidence_service.add_attachment(tech, evidence.id, "card.png", io.BytesIO(PNG))
    db.session.commit()
    path, att_id, sha = root / att.storage_key, att.id, att.sha256
    assert path.exists()

    evidence_service.remove_attachment(tech, evidence.id, att_id)
    assert path.exists()  # not before the commit
    db.session.rollback()
    assert path.exists() and db.session.get(Attachment, att_id) is not None

    evidence_service.remove_attachment(tech, evidence.id, att_id)
    assert evidence.revision == 3 and evidence.attachments == []
    db.session.commit()
    assert not path.exists() and db.session.get(Attachment, att_id) is None
    add_row, remove_row = audit_for("attachments", att_id)
    assert remove_row.action == "attachment.remove"
    assert remove_row.before["sha256"] == sha and remove_row.before["evidence_revision"] == 2
    assert remove_row.after == {"evidence_revision": 3}


def test_a_rolled_back_upload_leaves_no_file(draft):
    evidence_service.add_attachment(draft["tech"], draft["evidence"].id, "card.jpg", io.BytesIO(JPEG))
    assert len(stored_files(draft["files"])) == 1
    db.session.rollback()
    assert stored_files(draft["files"]) == []


@pytest.mark.parametrize("status", [SUBMITTED, SIGNED_OFF])
def test_no_attachment_changes_once_submitted_or_signed(draft, status):
    tech, evidence = draft["tech"], draft["evidence"]
    att = evidence_service.add_attachment(tech, evidence.id, "card.png", io.BytesIO(PNG))
    evidence.status = status
    db.session.flush()
    for call in (lambda: evidence_service.add_attachment(tech, evidence.id, "more.pdf", io.BytesIO(PDF)),
                 lambda: evidence_service.remove_attachment(tech, evidence.id, att.id)):
        with pytest.raises(DomainError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (409, "not_editable")
    assert len(stored_files(draft["files"])) == 1 and evidence.attachments == [att]


def test_only_the_owner_changes_attachments_and_scoped_reading(draft):
    tech, manager, evidence, make = draft["tech"], draft["manager"], draft["evidence"], draft["make"]
    att = evidence_service.add_attachment(tech, evidence.id, "card.png", io.BytesIO(PNG))
    peer = make.actor(draft["course"], "technician")
    with pytest.raises(NotFound):
        evidence_service.add_attachment(peer, evidence.id, "x.pdf", io.BytesIO(PDF))
    with pytest.raises(NotFound):
        evidence_service.remove_attachment(peer, evidence.id, att.id)
    with pytest.raises(NotFound):
        evidence_service.open_attachment(peer, att.id)
    foreign = make.actor(make.course(make.registration()), "manager")
    with pytest.raises(NotFound):
        evidence_service.open_attachment(foreign, att.id)
    row, stream = evidence_service.open_attachment(manager, att.id)
    with stream:
        assert row.id == att.id and stream.read() == PNG
    other = evidence_service.create_draft(tech, "responsibility", payloads(add_framework(
        draft["course"], code="X"))["responsibility"])
    with pytest.raises(NotFound):
        evidence_service.remove_attachment(tech, other.id, att.id)


def test_attachment_count_is_limited(draft, monkeypatch):
    monkeypatch.setattr(evidence_service, "MAX_ATTACHMENTS", 1)
    tech, evidence = draft["tech"], draft["evidence"]
    evidence_service.add_attachment(tech, evidence.id, "a.pdf", io.BytesIO(PDF))
    with pytest.raises(DomainError) as caught:
        evidence_service.add_attachment(tech, evidence.id, "b.png", io.BytesIO(PNG))
    assert (caught.value.code, caught.value.message) == (
        "too_many_attachments", "An evidence item can have at most 1 attachments.")


def test_storage_can_be_replaced(app, draft, tmp_path):
    other = LocalDiskStorage(tmp_path / "elsewhere")
    app.extensions["attachment_storage"] = other
    try:
        att = evidence_service.add_attachment(draft["tech"], draft["evidence"].id, "a.pdf", io.BytesIO(PDF))
        assert attachment_service.storage() is other and other.exists(att.storage_key)
        assert stored_files(draft["files"]) == []
    finally:
        del app.extensions["attachment_storage"]
