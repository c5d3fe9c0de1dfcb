"""The claims of a signed launch, and the members of a roster, checked against what the tool stores.

A signature proves who sent a claim, not that it fits: any tenant's platform (or a misconfigured one) can send a
context as a string, an endpoint as a number, or a 400-character name, and a column of 300 characters then fails
half-way through the launch. Each claim the tool keeps is checked here first, so a launch either fits or is
refused with a page that says which claim is wrong, and nothing is written.
"""
from flask_babel import gettext as _

from ..guards import unstorable
from .errors import LaunchError

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

# Top-level text claims and their column sizes (models/people.py).
TEXT = {"sub": 255, "name": 300, "given_name": 150, "family_name": 150, "email": 320,
        CLAIM + "deployment_id": 255}
# Object claims: {member: column size}; members that are ids may also be numbers.
OBJECTS = {
    CLAIM + "context": {"id": 255, "title": 500, "label": 255},
    CLAIM + "resource_link": {"id": 255, "title": 500},
    CLAIM + "launch_presentation": {"return_url": 2000},
    CLAIM + "custom": {},
    AGS: {"lineitems": 1000, "lineitem": 1000},
    NRPS: {"context_memberships_url": 1000},
    DL_SETTINGS: {"deep_link_return_url": 2000},
}
IDS = {"id"}
TEXT_LISTS = {AGS: ("scope",)}


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _refuse(detail: str):
    raise LaunchError(_("The LMS sent a launch the tool cannot use"), detail,
                      "An LMS administrator should check the tool's configuration in the LMS; the values named "
                      "above must be shorter or of the expected kind.", status=400, code="malformed_claim")


def _text(value, limit: int, where: str, *, number_ok: bool = False) -> None:
    if value is None:
        return
    if number_ok and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        _refuse(f"The claim {where} is {type(value).__name__}, not text.")
    if len(value) > limit:
        _refuse(f"The claim {where} is {len(value)} characters long; the tool keeps at most {limit}.")


def check_claims(claims: dict) -> None:
    """Raise LaunchError unless every claim the tool keeps has the right JSON type and fits its column."""
    if unstorable(claims):
        _refuse("The launch contains characters that cannot be stored (a NUL character or broken Unicode).")
    for name, limit in TEXT.items():
        _text(claims.get(name), limit, _short(name))
    for name, members in OBJECTS.items():
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            _refuse(f"The claim {_short(name)} is {type(value).__name__}, not an object.")
        for member, limit in members.items():
            _text(value.get(member), limit, f"{_short(name)}.{member}", number_ok=member in IDS)
        for member in TEXT_LISTS.get(name, ()):
            items = value.get(member)
            if items is not None and (not isinstance(items, list) or not all(isinstance(i, str) for i in items)):
                _refuse(f"The claim {_short(name)}.{member} is not a list of text.")


MEMBER_TEXT = {"name": 300, "given_name": 150, "family_name": 150, "email": 320}


def fitting_member(member) -> dict | None:
    """An NRPS roster member the tool can store: None for one without a usable user_id; names cut to their
    columns (a roster is read in the background, so one odd member must not cost the whole roster)."""
    if not isinstance(member, dict) or unstorable(member):
        return None
    user_id = member.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id or len(user_id) > TEXT["sub"]:
        return None
    roles = member.get("roles")
    fitted = {**member, "user_id": user_id,
              "roles": [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []}
    for name, limit in MEMBER_TEXT.items():
        value = member.get(name)
        fitted[name] = value[:limit] if isinstance(value, str) else None
    if not isinstance(member.get("status"), str | None):
        fitted["status"] = None
    return fitted
