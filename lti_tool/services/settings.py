"""Tenant settings: `Registration.settings` over the tool's defaults.

A tenant (registration) stores only what it changed; reads always see a full set, so code never needs to
know which keys a tenant has overridden. Every key has a validator, so a bad value is refused at write time
rather than surprising the status computation later.
"""
from zoneinfo import available_timezones

from flask_babel import gettext as _

from .. import formatting
from ..extensions import db
from ..formatting import DEFAULT_TIME_ZONE
from ..models import Registration
from . import DomainError, Forbidden, audit


def _int_between(low: int, high: int):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DomainError(f"Must be a whole number from {low} to {high}.", code="invalid_setting")
        return value

    return check


def _time_zone(value):
    if not isinstance(value, str) or value not in available_timezones():
        raise DomainError(_("Choose a time zone from the list, e.g. America/Chicago."), code="invalid_setting")
    return value


def _name(value):
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > 200 or any(ord(c) < 32 for c in value):
        raise DomainError(_("Give a name of at most 200 characters on one line."), code="invalid_setting")
    return value.strip() or None


# The US zones offered first on the settings page (any IANA zone is accepted).
US_TIME_ZONES = [
    ("America/New_York", "Eastern"), ("America/Chicago", "Central"), ("America/Denver", "Mountain"),
    ("America/Phoenix", "Arizona"), ("America/Los_Angeles", "Pacific"), ("America/Anchorage", "Alaska"),
    ("Pacific/Honolulu", "Hawaii"), ("America/Puerto_Rico", "Atlantic (Puerto Rico)"),
]


def _bool(value):
    if not isinstance(value, bool):
        raise DomainError(_("Must be on or off."), code="invalid_setting")
    return value


def _sender_name(value):
    if not isinstance(value, str) or len(value.strip()) > 100 or any(ch in value for ch in "\r\n<>\"@"):
        raise DomainError(_("Up to 100 characters, without line breaks, quotes, @ or angle brackets."),
                          code="invalid_setting")
    return value.strip()


def _reminder_days(value):
    if (not isinstance(value, list) or not 1 <= len(value) <= 5
            or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 365 for d in value)):
        raise DomainError(_("Up to five whole numbers of days from 0 to 365."), code="invalid_setting")
    return sorted(set(value), reverse=True)

def _job_roles(value):
    if (not isinstance(value, list) or not 1 <= len(value) <= 40
            or any(not isinstance(v, str) or not v.strip() or len(v.strip()) > 60 or any(ord(c) < 32 for c in v)
                   for v in value)):
        raise DomainError("From 1 to 40 job roles, each at most 60 characters on one line.", code="invalid_setting")
    return list(dict.fromkeys(v.strip() for v in value))


# Job roles that requirements can target (a tenant may replace the list).
JOB_ROLES = ["Technician I", "Technician II", "Technician III", "Lead technician", "IV room technician",
             "New hire"]

DEFAULTS = {
    # Days before a sign-off expires when its competency shows as "due for revalidation".
    "revalidation_warning_days": 30,
    # Times on pages, PDFs and e-mails are shown in this zone (also what "today" is for reminders).
    "time_zone": DEFAULT_TIME_ZONE,
    # The pharmacy's name on transcripts, credentials and the public verify page (None: the LMS's name).
    "organization_name": None,
    # E-mail reminders for the whole tenant (people choose theirs on the preferences page).
    "email_enabled": True,
    # The name in the From: header ("" = the tool's title).
    "email_sender_name": "",
    # Reminders this many days before a competency or certification expires (0 = on the day).
    "reminder_days": [60, 14, 0],
    # The job roles a manager can give technicians and target with requirements.
    "job_roles": JOB_ROLES,
}
VALIDATORS = {
    "revalidation_warning_days": _int_between(1, 365),
    "time_zone": _time_zone,
    "organization_name": _name,
    "email_enabled": _bool,
    "email_sender_name": _sender_name,
    "reminder_days": _reminder_days,
    "job_roles": _job_roles,
}


def time_zone(registration: Registration | None):
    """The tenant's time zone (a ZoneInfo) for dates and times shown outside a page request."""
    return formatting.zone(get(registration, "time_zone"))


def viewer_time_zone(person, registration: Registration | None):
    """The zone a person's times are shown in (a ZoneInfo): the one their LMS sends at launch, else the tenant's
    own setting, else the one their browser reported, else the tool's default."""
    if person is not None and person.time_zone and person.time_zone_source == "lms":
        return formatting.zone(person.time_zone)
    chosen = (registration.settings or {}).get("time_zone") if registration is not None else None
    if chosen:
        return formatting.zone(chosen)
    return formatting.zone(person.time_zone if person is not None else None)


def wants_browser_zone(person, registration: Registration | None) -> bool:
    """Ask the browser for its zone only when neither the LMS nor the tenant says, and it has not answered yet."""
    if person is None or person.time_zone:
        return False
    return not (registration is not None and (registration.settings or {}).get("time_zone"))


def organization_name(registration: Registration) -> str:
    """The organization's name as its administrator set it, else the name of its LMS registration."""
    return get(registration, "organization_name") or registration.name


def effective(registration: Registration | None) -> dict:
    """The tenant's settings with defaults filled in (unknown stored keys are ignored)."""
    stored = (registration.settings or {}) if registration is not None else {}
    return {key: stored.get(key, default) for key, default in DEFAULTS.items()}


def get(registration: Registration | None, key: str):
    if key not in DEFAULTS:
        raise KeyError(key)
    return effective(registration)[key]


def update(actor, changes: dict) -> dict:
    """Change the acting user's tenant settings. Tool administrators only; audited."""
    if not actor.is_admin:
        raise Forbidden(_("Only an administrator can change the tool's settings."))
    errors = {}
    clean = {}
    for key, value in (changes or {}).items():
        if key not in VALIDATORS:
            errors[key] = "Unknown setting."
            continue
        try:
            clean[key] = VALIDATORS[key](value)
        except DomainError as exc:
            errors[key] = exc.message
    if errors:
        raise DomainError(_("Some settings are not valid."), code="invalid_setting", fields=errors)
    registration = db.session.get(Registration, actor.registration_id)
    before = dict(registration.settings or {})
    registration.settings = {**before, **clean}
    db.session.flush()
    audit.record(actor, "settings.update", registration, before=before, after=dict(registration.settings))
    return effective(registration)
