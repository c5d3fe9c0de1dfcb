"""Input no view should ever see: refused once, before any view runs, with a readable 400.

- NUL characters: PostgreSQL cannot store them in text, and no person types one.
- Lone UTF-16 surrogates (from a JSON "\\ud800"): they cannot be encoded as UTF-8, so storing or even comparing
  them in a query fails.
Query strings, form fields (names and values) and JSON bodies are checked; the LTI id_token's claims are
checked by the launch (lti/claims.py), since they arrive inside a signed token.
"""
import re
from itertools import chain

from flask import abort, request

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = ("The request contains characters that cannot be stored (a NUL character or broken Unicode). Remove them "
           "and try again.")


def unstorable(value) -> bool:
    """True if a string anywhere in value (nested lists and dicts too) holds a character no column can store."""
    if isinstance(value, str):
        return UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(unstorable(v) for v in value)
    return False


def _multidict_unstorable(data) -> bool:
    # Every key and value (all strings) in one search: a launch's form and a login's query string are checked in
    # a few microseconds instead of a Python call per item. "\x01" keeps neighbours apart and is storable.
    return UNSTORABLE.search("\x01".join(chain.from_iterable(data.items(multi=True)))) is not None


def refuse_unstorable_input():
    if unstorable(request.path) or _multidict_unstorable(request.args):
        abort(400, MESSAGE)
    if request.method in ("POST", "PUT", "PATCH"):
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if _multidict_unstorable(request.form) or any(unstorable(f.filename or "")
                                                          for f in request.files.values()):
                abort(400, MESSAGE)
        elif request.is_json and unstorable(request.get_json(silent=True)):
            abort(400, MESSAGE)


def register(app):
    # First in line: before the CSRF check and the session token are read.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_unstorable_input)
