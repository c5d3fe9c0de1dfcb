"""Framework files in and out: 1EdTech CASE 1.1 JSON, Moodle tool_lpimportcsv CSV and the tool's native JSON.

Pure functions, no database: `read(raw, filename)` detects the format and returns a checked tree (or raises
FrameworkImportError listing every problem with its line or item and field); `write(tree, fmt)` renders a loaded
framework. services.frameworks does the database side (import_framework, export_framework).
"""
import json

from . import case, moodle_csv, native
from .common import FrameworkImportError, FrameworkTree, Parsed, ValidNode, ValidTree, fail, validate
from .common import decode as _decode

FORMATS = ("case", "moodle-csv", "native")

__all__ = ["FORMATS", "FrameworkImportError", "FrameworkTree", "Parsed", "ValidNode", "ValidTree", "detect",
           "parse", "read", "write"]


def detect(text: str, filename: str | None = None) -> str:
    """'case', 'native' or 'moodle-csv' from the content (the file name only breaks a tie)."""
    stripped = text.lstrip()
    if not stripped:
        fail(None, None, "The file is empty.")
    if stripped[0] in "{[" or (filename or "").lower().endswith(".json"):
        doc = _json(text)
        if case.looks_like(doc):
            return "case"
        if native.looks_like(doc):
            return "native"
        fail(None, None, "Unrecognized JSON: expected a CASE CFPackage (CFDocument, CFItems, CFAssociations) "
                         f'or a framework file with "format": "{native.FORMAT}".')
    return "moodle-csv"


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        fail(f"line {line}" if line else None, None, f"Not valid JSON: {getattr(exc, 'msg', exc)} (column {col}).")


def parse(raw: bytes | str, filename: str | None = None, *, version: str | None = None) -> Parsed:
    text = _decode(raw)
    fmt = detect(text, filename)
    if fmt == "moodle-csv":
        return moodle_csv.parse(text, version=version)
    doc = _json(text)
    parsed = case.parse(doc) if fmt == "case" else native.parse(doc)
    if version:
        parsed.framework["version"] = version
    return parsed


def read(raw: bytes | str, filename: str | None = None, *, version: str | None = None) -> ValidTree:
    return validate(parse(raw, filename, version=version))


def write(tree: FrameworkTree, fmt: str, *, base_uri: str | None = None) -> str:
    if fmt == "case":
        return case.export(tree, base_uri=base_uri)
    if fmt == "moodle-csv":
        return moodle_csv.export(tree)
    if fmt == "native":
        return native.export(tree)
    raise ValueError(f"Unknown framework format {fmt!r}; use one of {', '.join(FORMATS)}.")
