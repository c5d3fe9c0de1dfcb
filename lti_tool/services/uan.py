"""ACPE Universal Activity Numbers: parse, validate and print in the canonical form.

`0197-0000-17-001-L05-T` = provider (4 digits) - 0000 sole / 9999 joint providers - year of development (2 digits)
- sequence (3 digits) - format letter and topic designator - audience (P pharmacist, T technician).

ACPE's UAN page names two formats, L (live) and H (home study); an activity offered both ways gets two UANs with
the same sequence number, so there is no combined letter. Topic designators 01-08 are the ones we could confirm
(08, pain management / opioids, is seen in real UANs such as 0204-0000-20-755-H08-P); an unknown designator is
refused rather than guessed at (add it here when ACPE's list is checked).
"""
import re
from dataclasses import asdict, dataclass
from datetime import date

from flask_babel import gettext as _

from ..i18n import N_

FORMATS = {"L": N_("live"), "H": N_("home study")}
TOPICS = {
    "01": N_("disease state management / drug therapy"),
    "02": N_("HIV/AIDS therapy"),
    "03": N_("pharmacy law"),
    "04": N_("general pharmacy"),
    "05": N_("patient safety"),
    "06": N_("immunizations"),
    "07": N_("compounding"),
    "08": N_("pain management / opioids"),
}
AUDIENCES = {"P": N_("pharmacist"), "T": N_("pharmacy technician")}
JOINT = {"0000": False, "9999": True}
EXAMPLE = "0197-0000-17-001-L05-T"

_DASHES = re.compile(r"\s*[-\u2010-\u2015\u2212]\s*")
_COMPACT = re.compile(r"^(\w{4})(\w{4})(\w{2})(\w{3})(\w{3})(\w)$")


class UANError(ValueError):
    """A UAN that does not parse; `part` names the part at fault (or "format" for the overall shape)."""

    def __init__(self, message: str, part: str):
        super().__init__(message)
        self.message = message
        self.part = part


@dataclass(frozen=True)
class UAN:
    provider: str
    joint_provider: bool
    year: int
    sequence: str
    format: str
    topic: str
    audience: str

    @property
    def canonical(self) -> str:
        return "-".join((self.provider, "9999" if self.joint_provider else "0000", f"{self.year % 100:02d}",
                         self.sequence, f"{self.format}{self.topic}", self.audience))

    @property
    def format_label(self) -> str:
        return FORMATS[self.format]

    @property
    def topic_label(self) -> str:
        return TOPICS[self.topic]

    @property
    def audience_label(self) -> str:
        return AUDIENCES[self.audience]

    def as_dict(self) -> dict:
        """The parsed parts as stored in a CE evidence item's data."""
        return {**asdict(self), "format_label": self.format_label, "topic_label": self.topic_label,
                "audience_label": self.audience_label}

    def __str__(self) -> str:
        return self.canonical


def normalise(text: str) -> str:
    """Upper case, no surrounding or inner spaces around dashes, typographic dashes made plain."""
    return _DASHES.sub("-", text.strip()).upper()


def parse(text, today: date | None = None) -> UAN:
    """Parse a UAN typed by a person: lower case, spaces around dashes and a dash-less 17-character form are
    accepted. Raises UANError naming the part that is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise UANError(_("Enter the activity's UAN, like %(example)s.", example=EXAMPLE), "format")
    value = normalise(text)
    if "-" not in value and (m := _COMPACT.match(value)):
        parts = list(m.groups())
    else:
        parts = value.split("-")
    if len(parts) != 6:
        raise UANError(_("A UAN has six parts separated by dashes, like %(example)s; this one has %(n)d.",
                         example=EXAMPLE, n=len(parts)), "format")
    provider, joint, year, sequence, format_topic, audience = parts

    if not re.fullmatch(r"\d{4}", provider):
        raise UANError(_("The provider number (first part) must be 4 digits, not '%(value)s'.", value=provider),
                       "provider")
    if joint not in JOINT:
        raise UANError(_("The second part must be 0000 (one provider) or 9999 (joint providers), not '%(value)s'.",
                         value=joint), "joint_provider")
    if not re.fullmatch(r"\d{2}", year):
        raise UANError(_("The year (third part) must be 2 digits, not '%(value)s'.", value=year), "year")
    full_year = 2000 + int(year)
    this_year = (today or date.today()).year
    if full_year > this_year:
        raise UANError(_("The year (third part) '%(value)s' means %(year)d, which has not come yet.", value=year,
                         year=full_year), "year")
    if not re.fullmatch(r"\d{3}", sequence):
        raise UANError(_("The sequence number (fourth part) must be 3 digits, not '%(value)s'.", value=sequence),
                       "sequence")
    if sequence == "000":
        raise UANError(_("The sequence number (fourth part) starts at 001; 000 is not used."), "sequence")
    if not re.fullmatch(r"[A-Z]\d{2}", format_topic):
        raise UANError(_("The fifth part must be a format letter (L live, H home study) and a 2-digit topic, "
                         "like L05, not '%(value)s'.", value=format_topic), "format_topic")
    fmt, topic = format_topic[0], format_topic[1:]
    if fmt not in FORMATS:
        hint = " " + _("An activity offered both live and as home study has two UANs, one with L and one with H.") \
            if fmt == "B" else ""
        raise UANError(_("The format letter (fifth part) must be L (live) or H (home study), not '%(value)s'.",
                         value=fmt) + hint, "format_topic")
    if topic not in TOPICS:
        known = ", ".join(f"{code} {_(label)}" for code, label in TOPICS.items())
        raise UANError(_("The topic '%(value)s' (fifth part) is not an ACPE topic designator (%(known)s).",
                         value=topic, known=known), "format_topic")
    if audience not in AUDIENCES:
        raise UANError(_("The last part must be P (pharmacists) or T (pharmacy technicians), not '%(value)s'.",
                         value=audience), "audience")
    return UAN(provider=provider, joint_provider=JOINT[joint], year=full_year, sequence=sequence, format=fmt,
               topic=topic, audience=audience)


def is_valid(text, today: date | None = None) -> bool:
    try:
        parse(text, today)
    except UANError:
        return False
    return True
