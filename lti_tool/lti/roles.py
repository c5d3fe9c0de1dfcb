"""Map LTI roles to the tool's roles: course (membership) roles first, never institution roles.

Canvas sends `system/person#User` and institution roles (`institution/person#Student`, `#Instructor`) with
every launch; a person who teaches elsewhere in the institution must still be a technician in a course where
they are a Learner, and the other way round. Only institution/system Administrator is read, as the tool-admin
flag.
"""
from functools import lru_cache

from ..i18n import N_

TECHNICIAN = "technician"
MANAGER = "manager"
DESIGNER = "designer"
OBSERVER = "observer"
ADMIN = "admin"

TOOL_ROLES = (TECHNICIAN, MANAGER, DESIGNER, OBSERVER, ADMIN)
# Roles that review and sign off evidence (Issue 3 adds named preceptors on top of these).
MANAGER_SIDE = frozenset({MANAGER, DESIGNER, ADMIN})
ROLE_LABELS = {
    TECHNICIAN: N_("Technician"),
    MANAGER: N_("Manager"),
    DESIGNER: N_("Course designer"),
    OBSERVER: N_("Observer"),
    ADMIN: N_("Administrator"),
}

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
MEMBERSHIP = LIS + "membership#"

# Default mapping of context roles. Sub-roles (membership/instructor#TeachingAssistant) are keyed by their
# full name; Canvas sends them together with membership#Instructor.
DEFAULT_CONTEXT_MAP = {
    "Instructor": MANAGER,
    "Instructor#TeachingAssistant": MANAGER,
    "TeachingAssistant": MANAGER,
    "Administrator": MANAGER,
    "ContentDeveloper": DESIGNER,
    # Canvas observers and Moodle mentors follow someone's progress; they may look, never sign off.
    "Mentor": OBSERVER,
    "Learner": TECHNICIAN,
}
# When a launch carries several context roles, the strongest one wins.
PRECEDENCE = (MANAGER, DESIGNER, TECHNICIAN, OBSERVER)

ADMIN_ROLES = {
    LIS + "institution/person#Administrator",
    LIS + "system/person#Administrator",
    LIS + "system/person#SysAdmin",
}


def context_role_name(uri: str) -> str | None:
    """'...membership#Instructor' -> 'Instructor'; '...membership/Instructor#TeachingAssistant' ->
    'Instructor#TeachingAssistant'; short names ('Learner') are context roles too (LTI 1.3 allows them).
    Institution and system roles give None."""
    if uri.startswith(MEMBERSHIP):
        return uri[len(MEMBERSHIP):]
    if uri.startswith(LIS + "membership/"):
        rest = uri[len(LIS + "membership/"):]
        parent, _, sub = rest.partition("#")
        return f"{parent[:1].upper()}{parent[1:]}#{sub}" if sub else None
    if "://" not in uri and "/" not in uri:
        return uri
    return None


def map_roles(lti_roles: list[str], overrides: dict | None = None) -> tuple[str | None, bool]:
    """Return (course role or None, is_admin). Overrides may be keyed by full URI or context role name; a
    sub-role's override may also use its short name ('TeachingAssistant')."""
    roles = tuple(uri for uri in lti_roles or () if isinstance(uri, str))
    if not overrides:
        return _map_default(roles)  # most registrations: every launch brings one of a few role lists
    return _map(roles, overrides)


@lru_cache(maxsize=256)
def _map_default(roles: tuple[str, ...]) -> tuple[str | None, bool]:
    return _map(roles, {})


def _map(roles: tuple[str, ...], overrides: dict) -> tuple[str | None, bool]:
    names = {uri: context_role_name(uri) for uri in roles}
    # A sub-role implies its parent, and Canvas sends the parent too (a TA arrives as
    # membership/Instructor#TeachingAssistant plus membership#Instructor). The sub-role is the more specific
    # statement, so the parent it implies is not mapped on its own: otherwise an override for TAs could never
    # take effect, the implied Instructor would always win.
    implied = {name.partition("#")[0] for name in names.values() if name and "#" in name}
    mapped = set()
    for uri in roles:
        if uri in overrides:
            mapped.add(overrides[uri])
            continue
        name = names[uri]
        if name is None or name in implied:
            continue
        sub = name.partition("#")[2]
        if name in overrides:
            role = overrides[name]
        elif sub and sub in overrides:
            role = overrides[sub]
        else:
            role = DEFAULT_CONTEXT_MAP.get(name)
        if role:
            mapped.add(role)
    is_admin = any(uri in ADMIN_ROLES for uri in roles)
    course_role = next((r for r in (ADMIN,) + PRECEDENCE if r in mapped), None)
    if course_role is None and is_admin:
        course_role = ADMIN
    return course_role, is_admin
