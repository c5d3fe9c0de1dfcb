"""Moodle's competency framework CSV (admin/tool/lpimportcsv), as its framework_exporter writes it.

Columns, in Moodle's order (English header strings of tool_lpimportcsv): Parent ID number, ID number, Short name,
Description, Description format, Scale values, Scale configuration, Rule type (optional), Rule outcome (optional),
Rule config (optional), Cross-referenced competency ID numbers, Exported ID (optional), Is framework, Taxonomy.
Moodle reads the columns by position and writes the header in the site's language, so a file whose header is not
recognized (French, German, ...) is read by position, as Moodle does. An English header is matched by name,
ignoring case, spaces and punctuation (so "Shortname" and "Short name" both work, and columns may be reordered).

- The framework is the row with Is framework = 1: ID number = our code, Short name = name, Description, and the
  framework's scale: Scale values = the level labels joined by commas, lowest first (Moodle's compact_items), Scale
  configuration = JSON `[{"scaleid": "1"}, {"id": 1, "scaledefault": 0, "proficient": 0, "code": "not_yet"}, ...]`
  where id is the 1-based position of the level. Moodle reads scaleid, id, scaledefault and proficient and ignores
  other keys; we add "code" so that our level codes survive a round trip (without it codes come from the labels).
- Every other row is a competency: ID number = code, Short name = title (Moodle keeps at most 100 characters),
  Parent ID number = the parent's code (empty at the top level). Row order gives sibling order.
- HTML descriptions (format 0 or 1) are shown as plain text in the tool.
- Kept and written back as the file had them (Framework.extra["moodle"], Competency.extra["moodle"]): the
  taxonomy, the framework's scale cells, each competency's own scale, rule type/outcome/config, cross-referenced
  ID numbers, exported id, and the original description with its format. The tool rates every competency on the
  framework's scale and does not run Moodle's rules; it only carries them.
- Not carried (Moodle has no place for them): version (imports get "1" unless one is given), departments,
  evidence kinds, checklists, revalidation.
"""
import csv
import io
import json
import re
from html import unescape
from html.parser import HTMLParser

from .. import csv_cells
from .common import FrameworkImportError, Node, Parsed, fail

HEADERS = ("Parent ID number", "ID number", "Short name", "Description", "Description format", "Scale values",
           "Scale configuration", "Rule type (optional)", "Rule outcome (optional)", "Rule config (optional)",
           "Cross-referenced competency ID numbers", "Exported ID (optional)", "Is framework", "Taxonomy")
KEYS = ("parent", "idnumber", "shortname", "description", "descriptionformat", "scalevalues", "scaleconfiguration",
        "ruletype", "ruleoutcome", "ruleconfig", "related", "exportid", "isframework", "taxonomy")
REQUIRED = ("parent", "idnumber", "shortname", "description", "scalevalues", "scaleconfiguration", "isframework")
NAMES = dict(zip(KEYS, HEADERS, strict=True))
# A header with no English column name is read by position when it has at least Moodle's 13 original columns.
POSITIONAL_MIN = 13
# Cells kept as the file had them and written back on export.
KEPT = ("descriptionformat", "scalevalues", "scaleconfiguration", "ruletype", "ruleoutcome", "ruleconfig", "related",
        "exportid")
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
    """The delimiter that makes the most known header names, or (a translated header) the most columns."""
    best, score = ",", (-1, -1)
    for delim in (",", ";", "\t"):
        cells = next(csv.reader([first_line], delimiter=delim))
        found = (sum(1 for cell in cells if _norm(cell) in ALIASES), len(cells))
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
    in_place = all(index < len(KEYS) and KEYS[index] == key for key, index in columns.items())
    if missing and in_place and len(header) >= POSITIONAL_MIN:
        # Moodle's own order in another language (a French header shares "Description" with English): by position.
        columns = {key: index for index, key in enumerate(KEYS[:len(header)])}
        missing = []
    if missing:
        raise FrameworkImportError([{"where": "line 1", "field": name, "message": "Required column missing."}
                                    for name in missing])

    def cell(row, key, strip=True):
        index = columns.get(key)
        value = row[index] if index is not None and index < len(row) else ""
        return value.strip() if strip else value

    errors, warnings = [], []
    framework, framework_line, nodes, seen = None, None, [], {}
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
                         "source": "Imported from a Moodle competency framework CSV file.",
                         "extra": {"moodle": {**_kept(row, cell), "taxonomy": cell(row, "taxonomy")}}}
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
        parent = cell(row, "parent") or None
        nodes.append(Node(ref=code, parent_ref=parent, where=where, order=len(nodes),
                          data={"code": code, "title": cell(row, "shortname"), "description": description,
                                "extra": {"moodle": _kept(row, cell)}}))
    if framework is None and not errors:
        errors.append({"where": None, "field": NAMES["isframework"],
                       "message": "No framework row (a row with Is framework = 1)."})
    if errors:
        raise FrameworkImportError(errors)
    own_scales = sum(1 for n in nodes if n.data["extra"]["moodle"].get("scalevalues"))
    if own_scales:
        warnings.append(f"{own_scales} competency scale(s) kept for Moodle; the tool rates every competency on the "
                        "framework's scale.")
    return Parsed(format="moodle-csv", framework=framework, framework_where=framework_line, nodes=nodes,
                  field_names=FIELD_NAMES, warnings=warnings)


def _kept(row, cell) -> dict:
    """The cells the tool does not use, as the file had them (empty ones left out)."""
    kept = {key: cell(row, key) for key in KEPT if cell(row, key)}
    if cell(row, "shortname", strip=False) != cell(row, "shortname"):
        kept["shortname"] = cell(row, "shortname", strip=False)  # Moodle cuts at 100 characters, spaces and all
    raw = cell(row, "description")
    if raw:
        kept["description"] = raw
    return kept


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
    kept = ((tree.framework.extra or {}).get("moodle") or {}).get("taxonomy")
    if kept:
        return kept
    depth = max((d for d, _ in tree.walk()), default=0) + 1
    return ",".join(["domain"] + ["competency"] * (depth - 1))


def _id_numbers(tree) -> dict:
    """Competency id -> Moodle ID number: the code, or the identifier when the code is empty or shared (Moodle
    needs a unique ID number; CASE frameworks may have neither)."""
    codes = [c.code for _, c in tree.walk()]
    return {c.id: c.code if c.code and codes.count(c.code) == 1 else (c.identifier or str(c.id))
            for _, c in tree.walk()}


def _scale_cells(fw) -> tuple[str, str]:
    kept = (fw.extra or {}).get("moodle") or {}
    if kept.get("scalevalues") and kept.get("scaleconfiguration"):
        return kept["scalevalues"], kept["scaleconfiguration"]  # the scale Moodle had (its scaleid)
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
    return ",".join(labels), json.dumps(config, separators=(",", ":"))


def _description_cells(obj, kept) -> tuple[str, object]:
    if "description" in kept or "descriptionformat" in kept:
        return kept.get("description", ""), kept.get("descriptionformat", FORMAT_HTML)
    return obj.description or "", FORMAT_PLAIN


def export(tree) -> str:
    fw = tree.framework
    values, config = _scale_cells(fw)
    kept_fw = (fw.extra or {}).get("moodle") or {}
    out = io.StringIO()
    writer = csv_cells.writer(out, cell=csv_cells.moodle_text, lineterminator="\n")
    writer.writerow(HEADERS)
    writer.writerow(["", fw.code, fw.name, *_description_cells(fw, kept_fw), values, config, "", "", "", "", "", 1,
                     _taxonomy(tree)])
    id_numbers = _id_numbers(tree)
    for _, comp in tree.walk():
        kept = (comp.extra or {}).get("moodle") or {}
        if kept:
            rule = [kept.get("ruletype", ""), kept.get("ruleoutcome", ""), kept.get("ruleconfig", "")]
            own = [kept.get("scalevalues", ""), kept.get("scaleconfiguration", "")]
            related, exportid = kept.get("related", ""), kept.get("exportid", comp.id)
        else:
            rule, own, related, exportid = ["", 0, "null"], ["", ""], "", comp.id
        writer.writerow([id_numbers[comp.parent.id] if comp.parent else "", id_numbers[comp.id],
                         kept.get("shortname", comp.title),
                         *_description_cells(comp, kept), *own, *rule, related, exportid, 0, ""])
    return out.getvalue()
