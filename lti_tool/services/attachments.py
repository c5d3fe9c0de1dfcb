"""Attachment bytes: a small storage interface, local-disk storage, and checks on what is uploaded.

The type of a file is read from its first bytes (its "magic number"), never from the name or the browser's
claim. Files are written when uploaded; if the transaction then rolls back, the new file is deleted again, and a
removed attachment's file is deleted only once the removal is committed, so the disk and the database agree.
"""
import hashlib
import io
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db
from . import DomainError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
CHUNK = 64 * 1024

# HEIF brands that mean HEIC (HEVC-coded) images, as iPhones write them. AVIF and other HEIF codecs are refused.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_GENERIC = {b"mif1", b"msf1"}

ALLOWED_TYPES = {
    "application/pdf": "PDF",
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/heic": "HEIC",
}


class AttachmentError(DomainError):
    """An upload refused for its content (type, size)."""


class Storage(Protocol):
    def save(self, stream: BinaryIO) -> str: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}$")


class LocalDiskStorage:
    """Files under one directory, named by random keys (`ab/ab12...`), never by what the user called them."""

    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def save(self, stream: BinaryIO) -> str:
        token = secrets.token_hex(16)
        key = f"{token[:2]}/{token}"
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with open(partial, "xb") as out:
            while chunk := stream.read(CHUNK):
                out.write(chunk)
        os.replace(partial, path)
        return key

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def storage() -> Storage:
    """The app's storage: one set in app.extensions["attachment_storage"], or local disk at ATTACHMENT_DIR."""
    app = current_app
    custom = app.extensions.get("attachment_storage")
    if custom is not None:
        return custom
    root = app.config.get("ATTACHMENT_DIR") or os.path.join(app.instance_path, "attachments")
    return LocalDiskStorage(root)


def max_bytes() -> int:
    return int(current_app.config.get("ATTACHMENT_MAX_BYTES") or DEFAULT_MAX_BYTES)


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes, or None when it is not one we accept."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 16 and head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        major = head[8:12]
        if major in _HEIC_BRANDS:
            return "image/heic"
        if major in _HEIF_GENERIC and 16 <= box_size <= len(head):
            compatible = {head[i:i + 4] for i in range(16, box_size - 3, 4)}
            if compatible & _HEIC_BRANDS:
                return "image/heic"
    return None


def clean_filename(name) -> str:
    """The last path component, without control characters, at most 255 characters; never empty."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(text) > 255:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: 254 - len(ext)] + "." + ext) if dot and len(ext) <= 16 else text[:255]
    return text or "attachment"


@dataclass(frozen=True)
class StoredFile:
    key: str
    content_type: str
    size: int
    sha256: str


def store_upload(stream: BinaryIO) -> StoredFile:
    """Check and store an upload: reads at most the size limit plus one byte, refuses a type we do not accept by
    its content, hashes it, writes it to storage. The new file is deleted again if the transaction rolls back."""
    limit = max_bytes()
    data = bytearray()
    while len(data) <= limit:
        chunk = stream.read(min(CHUNK, limit + 1 - len(data)))
        if not chunk:
            break
        data.extend(chunk)
    if not data:
        raise AttachmentError(_("The file is empty."), code="empty_file", fields={"file": "The file is empty."})
    if len(data) > limit:
        message = _("The file is larger than %(size)s.", size=_size(limit))
        raise AttachmentError(message, status=413, code="file_too_large", fields={"file": message})
    content_type = sniff(bytes(data[:64]))
    if content_type is None:
        kinds = ", ".join(ALLOWED_TYPES.values())
        message = _("Only %(kinds)s files can be attached; this file's content is none of these.", kinds=kinds)
        raise AttachmentError(message, status=415, code="file_type", fields={"file": message})
    store = storage()
    key = store.save(io.BytesIO(bytes(data)))
    _pending(current_session(), "created").append((store, key))
    return StoredFile(key=key, content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def save_in_transaction(data: bytes) -> str:
    """Store bytes the caller has checked itself (an import file); deleted again if the transaction rolls back."""
    store = storage()
    key = store.save(io.BytesIO(data))
    _pending(current_session(), "created").append((store, key))
    return key


def delete_after_commit(key: str) -> None:
    """Delete a file once the transaction that removed its row commits (never if it rolls back)."""
    _pending(current_session(), "deleted").append((storage(), key))


def current_session() -> Session:
    return db.session()


def _size(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} bytes"


def _pending(session: Session, which: str) -> list:
    return session.info.setdefault("attachment_files", {"created": [], "deleted": []})[which]


@event.listens_for(Session, "after_commit")
def _after_commit(session):
    files = session.info.pop("attachment_files", None)
    if files:
        for store, key in files["deleted"]:
            store.delete(key)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session, previous_transaction):
    if previous_transaction.parent is not None:
        return  # a savepoint; the outer transaction decides
    files = session.info.pop("attachment_files", None)
    if files:
        for store, key in files["created"]:
            store.delete(key)
