"""Evidence schemas: one load schema per evidence kind (unknown fields refused) and the dump schemas.

`load_evidence(kind, payload)` is the entry point: it returns (title, data, competency_ids) where `data` is
JSON-ready (dates as ISO strings, hours as numbers, the CE activity number in canonical form with its parsed
parts), or raises marshmallow.ValidationError with a message per field. Checks that need the database (the
competencies exist in the course's frameworks, checklist steps belong to them, the trainer is a course member)
are the evidence service's job; schemas never query.
"""
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..i18n import N_
from ..models.frameworks import EVIDENCE_KINDS
from ..services import uan as uan_parser

EARLIEST = date(1970, 1, 1)

DEPARTMENTS = {
    "community": N_("Community / retail pharmacy"),
    "central": N_("Hospital central pharmacy"),
    "iv_room": N_("IV room / sterile compounding"),
    "nonsterile": N_("Non-sterile compounding"),
    "hazardous": N_("Hazardous drugs"),
    "ltc": N_("Long-term care"),
    "specialty": N_("Specialty / mail-order pharmacy"),
    "nuclear": N_("Nuclear pharmacy"),
    "automation": N_("Pharmacy automation"),
    "transitions_of_care": N_("ED / admission medication history and transitions of care"),
    "or_satellite": N_("Operating room / anesthesia satellite"),
    "program_340b": N_("340B program"),
    "dscsa": N_("Drug supply chain security (DSCSA)"),
    "controlled_substances": N_("Controlled-substance operations"),
    "investigational": N_("Investigational drug service"),
    "infusion_billing": N_("Infusion and oncology billing"),
    "med_sync": N_("Medication synchronization and adherence packaging"),
    "vaccine_cold_chain": N_("Vaccine storage and cold chain"),
    "telepharmacy": N_("Telepharmacy"),
    "other": N_("Other"),
}
RESPONSIBILITY_ROLES = {
    "new_staff_trainer": N_("Trainer of new staff"),
    "inventory_lead": N_("Inventory lead"),
    "safety_champion": N_("Medication safety champion"),
    "qi_lead": N_("Quality-improvement lead"),
    "scheduler": N_("Scheduler"),
    "compliance_lead": N_("Compliance lead"),
    "other": N_("Other"),
}
PTCB, NHA = "Pharmacy Technician Certification Board (PTCB)", "National Healthcareer Association (NHA)"
# code -> (label, issuing body or None when the technician must name it)
CREDENTIALS = {
    "ptcb_cpht": ("PTCB Certified Pharmacy Technician (CPhT)", PTCB),
    "ptcb_cspt": ("PTCB Certified Compounded Sterile Preparation Technician (CSPT)", PTCB),
    "ptcb_cpht_adv": ("PTCB Advanced Certified Pharmacy Technician (CPhT-Adv)", PTCB),
    "ptcb_technician_product_verification": ("PTCB Technician Product Verification Certificate", PTCB),
    "ptcb_medication_history": ("PTCB Medication History Certificate", PTCB),
    "ptcb_hazardous_drug_management": ("PTCB Hazardous Drug Management Certificate", PTCB),
    "ptcb_billing_reimbursement": ("PTCB Billing and Reimbursement Certificate", PTCB),
    "ptcb_controlled_substances_diversion_prevention": (
        "PTCB Controlled Substances Diversion Prevention Certificate", PTCB),
    "ptcb_immunization_administration": ("PTCB Immunization Administration Certificate", PTCB),
    "ptcb_point_of_care_testing": ("PTCB Point-of-Care Testing Certificate", PTCB),
    "ptcb_medication_therapy_management": ("PTCB Medication Therapy Management Certificate", PTCB),
    "ptcb_regulatory_compliance": ("PTCB Regulatory Compliance Certificate", PTCB),
    "ptcb_supply_chain_inventory_management": ("PTCB Supply Chain and Inventory Management Certificate", PTCB),
    "ptcb_nonsterile_compounding": ("PTCB Nonsterile Compounding Certificate", PTCB),
    "nha_excpt": ("NHA Certified Pharmacy Technician (ExCPT)", NHA),
    "state_registration": (N_("State pharmacy technician registration or license"), None),
    "other": (N_("Other credential"), None),
}
# The competency (shipped framework's code) that a certification of each credential attests: a certification
# links it by itself, so recording "PTCB CPhT" counts toward CRED-CPHT without a choice in the form.
CREDENTIAL_COMPETENCY_CODES = {
    "ptcb_cpht": "CRED-CPHT", "ptcb_cspt": "CRED-CSPT", "ptcb_cpht_adv": "CRED-ADV",
    "ptcb_technician_product_verification": "CRED-TPV", "ptcb_medication_history": "CRED-MH",
    "ptcb_hazardous_drug_management": "CRED-HDM", "ptcb_billing_reimbursement": "CRED-BR",
    "ptcb_controlled_substances_diversion_prevention": "CRED-CSDP", "ptcb_immunization_administration": "CRED-IA",
    "ptcb_point_of_care_testing": "CRED-POCT", "ptcb_medication_therapy_management": "CRED-MTM",
    "ptcb_regulatory_compliance": "CRED-RC", "ptcb_supply_chain_inventory_management": "CRED-SCIM",
    "ptcb_nonsterile_compounding": "CRED-NSC", "nha_excpt": "CRED-EXCPT", "state_registration": "CRED-STATE",
}
assert set(CREDENTIAL_COMPETENCY_CODES) <= set(CREDENTIALS)
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "
    "OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP".split()
)

REQUIRED = _l("This field is required.")


def _choices(options) -> str:
    return ", ".join(options)


class Text(fields.String):
    """A string with surrounding whitespace removed; blank counts as missing."""

    default_error_messages = {"required": REQUIRED, "null": REQUIRED, "blank": _l("This field cannot be blank."),
                              "invalid": _l("Not a valid string.")}

    def __init__(self, max_length: int, *, required: bool = True, **kw):
        kw.setdefault("allow_none", not required)
        super().__init__(required=required, validate=validate.Length(max=max_length,
                         error=_l("At most {max} characters.")), **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise self.make_error("blank")
        return text


class Day(fields.Date):
    """An ISO date (YYYY-MM-DD) no earlier than 1970."""

    default_error_messages = {"required": REQUIRED, "null": REQUIRED,
                              "invalid": _l("Not a valid date; use YYYY-MM-DD."),
                              "too_early": _l("Dates before 1970 are not accepted.")}

    def __init__(self, *, required: bool = True, **kw):
        kw.setdefault("allow_none", not required)
        super().__init__(required=required, **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if day < EARLIEST:
            raise self.make_error("too_early")
        return day


class Hours(fields.Decimal):
    """Hours as a positive multiple of 0.25 with an upper bound; stored as a number."""

    default_error_messages = {"required": REQUIRED, "null": REQUIRED, "invalid": _l("Enter hours as a number."),
                              "special": _l("Enter hours as a number."),
                              "positive": _l("Hours must be more than 0."),
                              "step": _l("Hours go in steps of 0.25 (a quarter hour)."),
                              "too_many": _l("At most {maximum} hours.")}

    def __init__(self, maximum: int, **kw):
        super().__init__(required=True, **kw)
        self.maximum = maximum

    def make_error(self, key: str, **kwargs) -> ValidationError:
        # marshmallow formats only str messages; these are lazy (read in the request's language).
        return ValidationError(str(self.error_messages[key]).format(**kwargs))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        try:
            hours = super()._deserialize(value, attr, data, **kwargs)
        except InvalidOperation as exc:
            raise self.make_error("invalid") from exc
        if hours <= 0:
            raise self.make_error("positive")
        # The bound first: arithmetic on 1e308 or a 40-digit number exceeds decimal's precision and raises.
        if hours > self.maximum:
            raise self.make_error("too_many", maximum=self.maximum)
        if hours.adjusted() < -2 or (hours * 4) % 1 != 0:
            raise self.make_error("step")
        return hours


class Choice(fields.String):
    default_error_messages = {"required": REQUIRED, "null": REQUIRED}

    def __init__(self, options, error, **kw):
        super().__init__(required=True, validate=validate.OneOf(list(options), error=error), **kw)


class UANField(fields.String):
    """An ACPE Universal Activity Number; loads as a parsed uan.UAN."""

    default_error_messages = {"required": REQUIRED, "null": REQUIRED}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(_("Enter the activity's UAN as text, like 0197-0000-17-001-L05-T."))
        try:
            return uan_parser.parse(value, getattr(self.root, "today", None))
        except uan_parser.UANError as exc:
            raise ValidationError(exc.message) from exc


def _competency_id_list():
    return fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, error=_l("Not a valid id."))),
        required=True,
        validate=validate.Length(min=1, max=20, error=_l("Link between {min} and {max} competencies.")),
        error_messages={"required": _l("Link at least one competency."), "null": _l("Link at least one competency.")},
    )


class OptionalList(fields.List):
    """A list that may be left out or sent as null, both meaning empty."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is None:
            return []
        return super().deserialize(value, attr, data, **kwargs)


def _optional_competency_id_list():
    """Certifications and CE stand without a chosen competency (the service links a default one)."""
    return OptionalList(
        fields.Integer(strict=True, validate=validate.Range(min=1, error=_l("Not a valid id."))),
        load_default=list, validate=validate.Length(max=20, error=_l("Link at most {max} competencies.")))


def _text_list(item_max: int, *, minimum: int, maximum: int, error, required: bool = True):
    cls, kw = (fields.List, {"required": True}) if required else (OptionalList, {"load_default": list})
    return cls(Text(item_max), validate=validate.Length(min=minimum, max=maximum, error=error),
               error_messages={"required": REQUIRED, "null": REQUIRED}, **kw)


class _EvidenceSchema(Schema):
    """Fields every kind has. `today` (for "not in the future" checks) defaults to the real date."""

    class Meta:
        unknown = RAISE

    title = Text(300)
    competency_ids = _competency_id_list()
    notes = Text(5000, required=False)

    def __init__(self, *args, today: date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today or date.today()

    def _not_future(self, errors: dict, data: dict, *names: str):
        for name in names:
            day = data.get(name)
            if day is not None and day > self.today:
                errors.setdefault(name, []).append(_("This date is in the future."))

    @staticmethod
    def _other_text(errors: dict, data: dict, choice: str, other: str, what):
        """`other` free text is required when the choice is "other" and refused otherwise."""
        if choice not in data:
            return
        if data[choice] == "other" and not data.get(other):
            errors.setdefault(other, []).append(_("Describe the %(what)s when you choose 'other'.", what=what))
        elif data[choice] != "other" and data.get(other):
            errors.setdefault(other, []).append(_("Only give this when the %(what)s is 'other'.", what=what))

    @staticmethod
    def _raise(errors: dict):
        if errors:
            raise ValidationError(errors)


class CrossTrainingSchema(_EvidenceSchema):
    department = Choice(DEPARTMENTS, _l("Unknown department '{input}'; choose one of {choices}."))
    department_other = Text(100, required=False)
    skills = _text_list(200, minimum=1, maximum=30, error=_l("Give between {min} and {max} skills."))
    trainer_name = Text(200)
    trainer_person_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1))
    hours = Hours(2080)
    start_date = Day()
    end_date = Day()
    checklist_steps = _text_list(500, minimum=0, maximum=100, error=_l("At most {max} checklist steps."),
                                 required=False)

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict = {}
        self._other_text(errors, data, "department", "department_other", _("department"))
        self._not_future(errors, data, "start_date", "end_date")
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            errors.setdefault("end_date", []).append(_("The end date is before the start date."))
        elif start and end and data.get("hours") is not None:
            days = (end - start).days + 1
            if data["hours"] > 24 * days:
                errors.setdefault("hours", []).append(
                    ngettext("%(hours)s hours do not fit in %(num)d day (at most %(most)d).",
                             "%(hours)s hours do not fit in %(num)d days (at most %(most)d).", days,
                             hours=data["hours"], most=24 * days))
        self._raise(errors)


class ResponsibilitySchema(_EvidenceSchema):
    role = Choice(RESPONSIBILITY_ROLES, _l("Unknown role '{input}'; choose one of {choices}."))
    role_other = Text(100, required=False)
    scope = Text(2000)
    start_date = Day()
    end_date = Day(required=False)
    supervisor = Text(200)

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict = {}
        self._other_text(errors, data, "role", "role_other", _("role"))
        self._not_future(errors, data, "start_date", "end_date")
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            errors.setdefault("end_date", []).append(_("The end date is before the start date."))
        self._raise(errors)


class PDSACycleSchema(Schema):
    class Meta:
        unknown = RAISE

    plan = Text(3000)
    do = Text(3000)
    study = Text(3000)
    act = Text(3000)
    date = Day()


class QIProjectSchema(_EvidenceSchema):
    problem = Text(5000)
    aim = Text(2000)
    measures = _text_list(500, minimum=1, maximum=20, error=_l("Give between {min} and {max} measures."))
    pdsa_cycles = fields.List(
        fields.Nested(PDSACycleSchema), required=True,
        validate=validate.Length(min=1, max=20, error=_l("Give between {min} and {max} PDSA cycles.")),
        error_messages={"required": REQUIRED, "null": REQUIRED})
    results = Text(5000)
    role = Text(1000)
    team = _text_list(200, minimum=0, maximum=50, error=_l("At most {max} team members."), required=False)

    @validates_schema(skip_on_field_errors=True)
    def _rules(self, data, **kwargs):
        errors: dict = {}
        previous = None
        for n, cycle in enumerate(data.get("pdsa_cycles") or [], start=1):
            if cycle["date"] > self.today:
                errors.setdefault("pdsa_cycles", []).append(_("Cycle %(n)d's date is in the future.", n=n))
            if previous is not None and cycle["date"] < previous:
                errors.setdefault("pdsa_cycles", []).append(
                    _("List the cycles in date order: cycle %(n)d is dated before cycle %(previous)d.", n=n,
                      previous=n - 1))
            previous = cycle["date"]
        self._raise(errors)


class CertificationSchema(_EvidenceSchema):
    competency_ids = _optional_competency_id_list()
    credential = Choice(CREDENTIALS, _l("Unknown credential '{input}'; choose one of {choices}."))
    credential_other = Text(200, required=False)
    number = Text(100)
    issuing_body = Text(200, required=False)
    state = fields.String(allow_none=True, validate=validate.OneOf(
        sorted(US_STATES), error=_l("Not a US state or territory code (two letters, like TX).")))
    issued_date = Day()
    expiry_date = Day(required=False)

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _rules(self, data, original, **kwargs):
        errors: dict = {}
        self._other_text(errors, data, "credential", "credential_other", _("credential"))
        self._not_future(errors, data, "issued_date")
        credential = data.get("credential")
        if credential in CREDENTIALS and CREDENTIALS[credential][1] is None and not data.get("issuing_body"):
            errors.setdefault("issuing_body", []).append(_("Name the body that issued this credential."))
        if credential == "state_registration" and not original.get("state"):
            errors.setdefault("state", []).append(_("Give the state that issued the registration or license."))
        elif credential is not None and credential != "state_registration" and data.get("state"):
            errors.setdefault("state", []).append(_("Only give a state for a state registration or license."))
        issued, expiry = data.get("issued_date"), data.get("expiry_date")
        if issued and expiry and expiry <= issued:
            errors.setdefault("expiry_date", []).append(_("The expiration date must be after the issue date."))
        self._raise(errors)


class ContinuingEducationSchema(_EvidenceSchema):
    competency_ids = _optional_competency_id_list()
    uan = UANField(required=True)
    hours = Hours(100)
    completion_date = Day()
    provider_name = Text(200)
    # The technician's statement that the activity is sterile-compounding content (the CSPT renewal counts
    # these); ACPE's topic designators do not say so (07 is compounding in general).
    sterile_compounding = fields.Boolean(load_default=False, error_messages={"invalid": _l("Answer true or false.")})

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict = {}
        self._not_future(errors, data, "completion_date")
        parsed, done = data.get("uan"), data.get("completion_date")
        if parsed is not None and done is not None and done.year < parsed.year:
            errors.setdefault("completion_date", []).append(
                _("The activity was developed in %(year)d (the UAN's year); it cannot be completed earlier.",
                  year=parsed.year))
        self._raise(errors)


SCHEMAS = {
    "cross_training": CrossTrainingSchema,
    "responsibility": ResponsibilitySchema,
    "qi_project": QIProjectSchema,
    "certification": CertificationSchema,
    "continuing_education": ContinuingEducationSchema,
}
assert set(SCHEMAS) == set(EVIDENCE_KINDS)
# Keys of `data` that are worked out from other fields, not typed in.
DERIVED_KEYS = ("uan_parts", "credential_label", "issuer")


def _plain(messages):
    """Lazy messages read as text; a lone lazy message (marshmallow keeps a non-str one unwrapped) as a list."""
    if isinstance(messages, dict):
        return {k: _plain(v) if isinstance(v, dict | list) else [str(v)] for k, v in messages.items()}
    if isinstance(messages, list):
        return [_plain(m) if isinstance(m, dict | list) else str(m) for m in messages]
    return str(messages)


def _json_ready(value):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def load_evidence(kind: str, payload, *, today: date | None = None,
                  competencies_required: bool = True) -> tuple[str, dict, list[int]]:
    """Validate a kind's payload. Returns (title, data, competency_ids); raises ValidationError.
    `competencies_required=False` (imports of prior certifications and CE) accepts an item linked to none."""
    if kind not in SCHEMAS:
        raise ValidationError({"kind": [_("Unknown evidence kind '%(kind)s'; choose one of %(choices)s.", kind=kind,
                                          choices=_choices(SCHEMAS))]})
    if not isinstance(payload, dict):
        raise ValidationError({"_schema": [_("Send the evidence as an object of fields.")]})
    try:
        loaded = SCHEMAS[kind](today=today).load(payload,
                                                 partial=() if competencies_required else ("competency_ids",))
    except ValidationError as exc:
        # Messages set at import are lazy (translated when read): read them now, in the request's language.
        raise ValidationError(_plain(exc.messages)) from None
    title = loaded.pop("title")
    competency_ids = list(dict.fromkeys(loaded.pop("competency_ids", [])))
    if kind == "continuing_education":
        parsed = loaded["uan"]
        loaded["uan"] = parsed.canonical
        loaded["uan_parts"] = parsed.as_dict()
    if kind == "certification":
        label, body = CREDENTIALS[loaded["credential"]]
        loaded["credential_label"] = label
        # Kept apart from issuing_body so that changing the credential later does not keep a stale default.
        loaded["issuer"] = loaded.get("issuing_body") or body
    return title, _json_ready(loaded), competency_ids


def editable_payload(title: str, data: dict, competency_ids) -> dict:
    """The fields a person typed, rebuilt from a stored item, to merge an edit over."""
    return {"title": title, "competency_ids": list(competency_ids),
            **{k: v for k, v in (data or {}).items() if k not in DERIVED_KEYS}}


class AttachmentOut(Schema):
    id = fields.Integer(dump_only=True)
    evidence_id = fields.Integer(dump_only=True)
    filename = fields.String(dump_only=True)
    content_type = fields.String(dump_only=True)
    size = fields.Integer(dump_only=True)
    sha256 = fields.String(dump_only=True)
    uploaded_by_id = fields.Integer(dump_only=True)
    uploaded_at = fields.DateTime(dump_only=True)
    description = fields.String(dump_only=True)


class EvidenceOut(Schema):
    id = fields.Integer(dump_only=True)
    person_id = fields.Integer(dump_only=True)
    course_id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    data = fields.Dict(dump_only=True)
    status = fields.String(dump_only=True)
    revision = fields.Integer(dump_only=True)
    competency_ids = fields.Method("_competency_ids", dump_only=True)
    attachments = fields.List(fields.Nested(AttachmentOut), dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    submitted_at = fields.DateTime(dump_only=True)

    def _competency_ids(self, evidence):
        return sorted(link.competency_id for link in evidence.competency_links)


evidence_out = EvidenceOut()
evidence_list_out = EvidenceOut(many=True)
attachment_out = AttachmentOut()
