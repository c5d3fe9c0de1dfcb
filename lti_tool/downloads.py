"""Files the tool hands to browsers: transcripts, exports and evidence attachments.

Content-Disposition is always built by werkzeug (send_file): a plain ASCII `filename=` plus RFC 6266/5987
`filename*=UTF-8''...` for any other name. A header written by hand with a technician's name in Chinese, Cyrillic
or Greek is outside Latin-1, which gunicorn refuses to send (the download failed with a 500).
"""
from io import BytesIO
from pathlib import PurePath

from flask import send_file

# What a browser may show in place rather than download: images and PDFs only (HEIC: browsers cannot show it).
INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/webp"}
EXTENSIONS = {"application/pdf": (".pdf",), "image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"),
              "image/webp": (".webp",), "image/heic": (".heic", ".heif")}
# An uploaded file is never a page of the tool: no scripts, no forms, no plugins, no same-origin access, even if
# its bytes are also HTML (a %PDF- + HTML polyglot) and a browser were tempted to read it as such.
ATTACHMENT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def file_response(body, mimetype: str, filename: str, *, inline: bool = False, size: int | None = None):
    """A download (or, with inline=True, a file shown in place) that is never cached by shared caches. `body`: text,
    bytes, a binary stream or a Path. A stream is sent in blocks from its start and closed afterwards; `size`,
    its length, becomes the Content-Length."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        body = BytesIO(body)
    if size is not None:
        body.seek(0)
    response = send_file(body, mimetype=mimetype, as_attachment=not inline, download_name=filename, max_age=0)
    if size is not None:
        response.content_length = size
    response.headers["Cache-Control"] = "private, no-store"
    return response


def attachment_name(filename: str, content_type: str) -> str:
    """The uploaded name with an extension that matches what the file really is ("scan.html" holding a PDF is
    served as "scan.pdf"), so the operating system opens it with the right program."""
    wanted = EXTENSIONS.get(content_type)
    path = PurePath(filename)
    if not wanted or path.suffix.lower() in wanted:
        return filename
    return f"{path.stem if path.suffix else filename}{wanted[0]}"


def evidence_file(row, stream, *, inline: bool = False):
    """An evidence attachment: in place only for images and PDFs, always inside a sandbox."""
    inline = inline and row.content_type in INLINE_TYPES
    response = file_response(stream, row.content_type, attachment_name(row.filename, row.content_type),
                             inline=inline)
    response.headers["Content-Security-Policy"] = ATTACHMENT_CSP
    return response
