"""Framework schemas: load (validate one imported framework or competency, whatever the file format) and dump.

Importers (services/framework_io) turn CASE, Moodle CSV or native JSON into plain dicts shaped like the native
format and validate each with these schemas, so every format obeys the same rules. Tree rules (unique codes,
known parents, no cycles) need the whole file and live in framework_io.common; schemas never query.
"""
import re

from flask_babel import gettext as _
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from ..models.frameworks import EVIDENCE_KINDS

SLUG = re.compile(r"^[a-z0-9][a-z0-9_]*$")
MAX_REVALIDATION_MONTHS = 120


def _slug(value):
    if not SLUG.match(value):
        raise ValidationError(_("Use lower-case letters, digits and underscores, e.g. iv_room."))


def _not_blank(value):
    if not value.strip():
        raise ValidationError(_("Missing."))


def _text(max_len):
    return fields.String(required=True, validate=[_not_blank, validate.Length(max=max_len)])


def _optional_text(max_len=None):
    return fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=max_len) if max_len else None)


class ScaleLevelSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=[validate.Length(min=1, max=50), _slug])
    label = _text(100)
    proficient = fields.Boolean(required=True, truthy={True}, falsy={False})


class FrameworkLoadSchema(Schema):
    """A framework's own fields (without its competencies)."""

    class Meta:
        unknown = RAISE

    code = _text(100)
    name = _text(300)
    version = _text(50)
    identifier = _optional_text(100)
    description = _optional_text()
    source = _optional_text()
    scale = fields.List(fields.Nested(ScaleLevelSchema), required=True)
    # What the imported file held beyond the tool's fields (CASE document and associations, Moodle taxonomy).
    extra = fields.Dict(load_default=None, allow_none=True)

    @validates("scale")
    def _scale(self, value, **_kwargs):
        if len(value) < 2:
            raise ValidationError(_("A scale needs at least two levels, lowest first."))
        codes = [lvl["code"] for lvl in value]
        if len(set(codes)) != len(codes):
            raise ValidationError(_("Scale level codes must be unique."))
        if not any(lvl["proficient"] for lvl in value):
            raise ValidationError(_("At least one scale level must count as proficient."))


class CompetencyLoadSchema(Schema):
    """One competency (its place in the tree is checked elsewhere)."""

    class Meta:
        unknown = RAISE

    # May be empty (a CASE item without humanCodingScheme) and need not be unique (CASE allows a shared code).
    code = fields.String(required=True, validate=validate.Length(max=100))
    title = _text(500)
    description = _optional_text()
    identifier = _optional_text(100)
    extra = fields.Dict(load_default=None, allow_none=True)
    departments = fields.List(fields.String(validate=[validate.Length(max=50), _slug]), load_default=list)
    evidence_kinds = fields.List(fields.String(validate=validate.OneOf(EVIDENCE_KINDS)), load_default=list)
    checklist = fields.List(fields.String(validate=validate.Length(min=1, max=500)), load_default=list)
    revalidation_months = fields.Integer(load_default=None, allow_none=True, strict=True,
                                         validate=validate.Range(min=1, max=MAX_REVALIDATION_MONTHS))

    @validates_schema
    def _no_repeats(self, data, **_kwargs):
        for name in ("departments", "evidence_kinds", "checklist"):
            values = data.get(name) or []
            if len(set(values)) != len(values):
                raise ValidationError(_("Remove the repeated entries."), name)


framework_load = FrameworkLoadSchema()
competency_load = CompetencyLoadSchema()


class CompetencyDumpSchema(Schema):
    id = fields.Integer(dump_only=True)
    parent_id = fields.Integer(dump_only=True, allow_none=True)
    code = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    identifier = fields.String(allow_none=True)
    departments = fields.List(fields.String())
    evidence_kinds = fields.List(fields.String())
    checklist = fields.List(fields.String())
    revalidation_months = fields.Integer(allow_none=True)
    position = fields.Integer()


class CompetencyTreeDumpSchema(CompetencyDumpSchema):
    children = fields.List(fields.Nested(lambda: CompetencyTreeDumpSchema()))


class FrameworkDumpSchema(Schema):
    id = fields.Integer(dump_only=True)
    registration_id = fields.Integer(dump_only=True, allow_none=True)
    is_global = fields.Function(lambda fw: fw.registration_id is None, dump_only=True)
    code = fields.String()
    name = fields.String()
    version = fields.String()
    identifier = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    scale = fields.List(fields.Dict())
    created_at = fields.DateTime(dump_only=True)


framework_dump = FrameworkDumpSchema()
frameworks_dump = FrameworkDumpSchema(many=True)


def dump_tree(tree) -> dict:
    """A framework and its nested competencies (a services.frameworks FrameworkTree) as JSON-ready data."""
    out = framework_dump.dump(tree.framework)
    out["competencies"] = CompetencyTreeDumpSchema(many=True).dump(tree.roots)
    return out
