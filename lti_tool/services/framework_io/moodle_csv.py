"""Moodle's competency framework CSV (admin/tool/lpimportcsv), as its framework_exporter writes it.

Columns, in Moodle's order and with the English header strings of tool_lpimportcsv: Parent ID number, ID number,
Short name, Description, Description format, Scale values, Scale configuration, Rule type (optional), Rule outcome
(optional), Rule config (optional), Cross-referenced competency ID numbers, Exported ID (optional), Is framework,
Taxonomy. On import headers are matched ignoring case, spaces and punctuation (so "Shortname" and "Short name"
both work); the columns marked optional, Description format, Cross-referenced and Taxonomy may be absent.

- The framework is the row with Is framework = 1: ID number = our code, Short name = name, Description, and the
  framework's scale: Scale values = the level labels joined by commas, lowest first (Moodle's compact_items), Scale
  configuration = JSON `[{"scaleid": "1"}, {"id": 1, "scaledefault": 0, "proficient": 0, "code": "not_yet"}, ...]`
  where id is the 1-based position of the level. Moodle reads scaleid, id, scaledefault and proficient and ignores
  other keys; we add "code" so that our level codes survive a round trip (without it codes come from the labels).
- Every other row is a competency: ID number = code, Short name = title (Moodle keeps at most 100 characters),
  Parent ID number = the parent's code (empty at the top level). Row order gives sibling order.
- Descriptions are written as plain text (Description format 2, FORMAT_PLAIN); HTML descriptions (format 0 or 1)
  from Moodle are turned into plain text on import.
- Not carried (Moodle has no place for them): version (imports get "1" unless one is given), departments,
  evidence kinds, checklists, revalidation. Per-competency scales, rules and cross-references in a Moodle file are
  ignored with a warning.
"""
import csv
import io
import json
import re
from html import unescape
from html.parser import HTMLParser

from .common import FrameworkImportError, Node, Parsed, fail

HEADERS = ("Parent ID number", "ID number", "Short name", "Description", "Description format", "Scale values",
           "Scale configuration", "Rule type (optional)", "Rule outcome (optional)", "Rule config (optional)",
           "Cross-referenced competency ID numbers", "Exported ID (optional)", "Is framework", "Taxonomy")
KEYS = ("parent", "idnumber", "shortname", "description", "descriptionformat", "scalevalues", "scaleconfiguration",
        "ruletype", "ruleoutcome", "ruleconfig", "related", "exportid", "isframework", "taxonomy")
REQUIRED = ("parent", "idnumber", "shortname", "description", "scalevalues", "scaleconfiguration", "isframework")
NAMES = dict(zip(KEYS, HEADERS, strict=True))
FORMAT_MOODLE, FORMAT_HTML, FORMAT_PLAIN = 0, 1, 2
FIELD_NAMES = {"code": "ID number", "title": "Short name", "name": "Short name", "description": "Description",
               "parent": "Parent ID number", "scale": "Scale configuration"}


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


ALIASES = {_norm(h): key for h, key in zip(HEADERS, KEYS, strict=True)}
ALIASES.update({"crossreferencedcompetencyidnumbers": "related", "relatedidnumbers": "related",
                "exportedid": "exportid", "exportedidoptional": "exportid", "ruletype": "ruletype",
                "ruleoutcome": "ruleoutcome", "ruleconfig": "ruleconfig", "taxonomies": "taxonomy"})


def _delimiter(first_line: str) -> str:
    best, score = ",", -1
    for delim in (",", ";", "\t"):
        found = sum(1 for cell in next(csv.reader([first_line], delimiter=delim)) if _norm(cell) in ALIASES)
        if found > score:
            best, score = delim, found
    return best


def _records(text: str):
    """(first line number, row) for every CSV record, counting lines inside quoted fields."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text.splitlines()[0]))
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def parse(text: str, version: str | None = None) -> Parsed:
    records = _records(text)
    try:
        _, header = next(records)
    except StopIteration:
        fail(None, None, "The file is empty.")
    columns = {}
    for index, cell in enumerate(header):
        key = ALIASES.get(_norm(cell))
        if key and key not in columns:
            columns[key] = index
    missing = [NAMES[k] for k in REQUIRED if k not in columns]
    if missing:
        raise FrameworkImportError([{"where": "line 1", "field": name, "message": "Required column missing."}
                                    for name in missing])

    def cell(row, key):
        index = columns.get(key)
        return row[index].strip() if index is not None and index < len(row) else ""

    errors, warnings = [], []
    framework, framework_line, nodes, seen = None, None, [], {}
    ignored = {"scale": 0, "rule": 0, "related": 0}
    try:
        rows = list(records)
    except csv.Error as exc:
        fail(None, None, f"Not a readable CSV file: {exc}.")
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue
        where = f"line {line}"
        description = _description(cell(row, "description"), cell(row, "descriptionformat"), where, errors)
        if _truthy(cell(row, "isframework")):
            if framework is not None:
                errors.append({"where": where, "field": NAMES["isframework"],
                               "message": f"A second framework row (the first is on {framework_line})."})
                continue
            framework_line = where
            scale = _scale(cell(row, "scalevalues"), cell(row, "scaleconfiguration"), where, errors)
            framework = {"code": cell(row, "idnumber"), "name": cell(row, "shortname"),
                         "description": description, "version": version or "1", "scale": scale,
                         "source": "Imported from a Moodle competency framework CSV file."}
            continue
        code = cell(row, "idnumber")
        if not code:
            errors.append({"where": where, "field": NAMES["idnumber"], "message": "Missing."})
            continue
        if code in seen:
            errors.append({"where": where, "field": NAMES["idnumber"],
                           "message": f"ID number {code!r} is used twice (also on {seen[code]})."})
            continue
        seen[code] = where
        ignored["scale"] += bool(cell(row, "scalevalues"))
        ignored["rule"] += bool(cell(row, "ruletype"))
        ignored["related"] += bool(cell(row, "related"))
        parent = cell(row, "parent") or None
        nodes.append(Node(ref=code, parent_ref=parent, where=where, order=len(nodes),
                          data={"code": code, "title": cell(row, "shortname"), "description": description}))
    if framework is None and not errors:
        errors.append({"where": None, "field": NAMES["isframework"],
                       "message": "No framework row (a row with Is framework = 1)."})
    if errors:
        raise FrameworkImportError(errors)
    if ignored["scale"]:
        warnings.append(f"{ignored['scale']} competency scale(s) ignored: the framework's scale applies to all.")
    if ignored["rule"]:
        warnings.append(f"{ignored['rule']} competency rule(s) ignored.")
    if ignored["related"]:
        warnings.append(f"Cross-referenced competencies on {ignored['related']} row(s) ignored.")
    return Parsed(format="moodle-csv", framework=framework, framework_where=framework_line, nodes=nodes,
                  field_names=FIELD_NAMES, warnings=warnings)


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "n")


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:50] or "level"


def _scale(values: str, config: str, where: str, errors: list) -> list | None:
    labels = [v.strip() for v in values.split(",") if v.strip()]

    def bad(field, message):
        errors.append({"where": where, "field": NAMES[field], "message": message})

    if len(labels) < 2:
        bad("scalevalues", "Give at least two comma-separated level labels, lowest first.")
        return None
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        bad("scaleconfiguration", f"Not valid JSON ({exc.msg} at character {exc.pos}).")
        return None
    if not (isinstance(parsed, list) and parsed and isinstance(parsed[0], dict) and "scaleid" in parsed[0]):
        bad("scaleconfiguration", 'Expected a JSON list starting with {"scaleid": ...}.')
        return None
    levels = [{"code": _slug(label), "label": label, "proficient": False} for label in labels]
    for entry in parsed[1:]:
        try:
            position = int(entry["id"])
        except (TypeError, KeyError, ValueError):
            bad("scaleconfiguration", f"Entry {json.dumps(entry)} needs a numeric id.")
            return None
        if not 1 <= position <= len(levels):
            bad("scaleconfiguration", f"id {position} is not a position in the {len(levels)} scale values.")
            return None
        level = levels[position - 1]
        level["proficient"] = _truthy(str(entry.get("proficient", 0)))
        if isinstance(entry.get("code"), str) and entry["code"]:
            level["code"] = entry["code"]
    codes = [lvl["code"] for lvl in levels]
    for i, lvl in enumerate(levels):  # labels that slug alike ("A+", "A-") still need distinct codes
        if codes.count(lvl["code"]) > 1:
            lvl["code"] = f"{lvl['code']}_{i + 1}"
    return levels


class _Text(HTMLParser):
    BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BREAKS and self.parts:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def _description(value: str, fmt: str, where: str, errors: list) -> str | None:
    if not value:
        return None
    try:
        fmt_number = int(fmt) if fmt else FORMAT_HTML
    except ValueError:
        errors.append({"where": where, "field": NAMES["descriptionformat"], "message": "Expected a number."})
        return value
    if fmt_number in (FORMAT_MOODLE, FORMAT_HTML) and ("<" in value or "&" in value):
        parser = _Text()
        parser.feed(value)
        parser.close()
        value = re.sub(r"\n{3,}", "\n\n", unescape("".join(parser.parts))).strip()
    return value or None


def _taxonomy(tree) -> str:
    depth = max((d for d, _ in tree.walk()), default=0) + 1
    return ",".join(["domain"] + ["competency"] * (depth - 1))


def export(tree) -> str:
    fw = tree.framework
    labels = [lvl["label"] for lvl in fw.scale]
    bad = [label for label in labels if "," in label]
    if bad:
        fail("framework", "scale", f"Moodle scale labels cannot contain commas: {bad[0]!r}.")
    first_proficient = next(i for i, lvl in enumerate(fw.scale) if lvl["proficient"])
    config = [{"scaleid": "1"}] + [
        {"id": i + 1, "scaledefault": int(i == first_proficient), "proficient": int(bool(lvl["proficient"])),
         "code": lvl["code"]}
        for i, lvl in enumerate(fw.scale)
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADERS)
    writer.writerow(["", fw.code, fw.name, fw.description or "", FORMAT_PLAIN, ",".join(labels),
                     json.dumps(config, separators=(",", ":")), "", "", "", "", "", 1, _taxonomy(tree)])
    for _, comp in tree.walk():
        writer.writerow([comp.parent.code if comp.parent else "", comp.code, comp.title, comp.description or "",
                         FORMAT_PLAIN, "", "", "", 0, "null", "", comp.id, 0, ""])
    return out.getvalue()
