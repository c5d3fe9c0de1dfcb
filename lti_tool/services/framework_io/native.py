"""The tool's own framework file: JSON, one framework, competencies nested as a tree.

The shipped "Pharmacy Technician" framework (lti_tool/data/pharmacy_technician_framework.json) is in this format,
and `flask --app lti_tool frameworks export FRAMEWORK --format native` writes it. Layout::

    {
      "format": "pharmacy-tech-pathways/framework",      # marks the format (required)
      "format_version": 1,                                # this layout; readers refuse a newer one
      "framework": {
        "code": "PHARM-TECH",                             # required, <= 100 chars; unique per tenant + version
        "name": "Pharmacy Technician",                    # required, <= 300 chars
        "version": "2025.1",                              # required, <= 50 chars
        "identifier": "1b7a...-uuid",                     # optional; kept as the CASE CFDocument identifier
        "description": "...", "source": "citations ...",  # optional text
        "scale": [                                        # required: >= 2 levels, LOWEST FIRST,
          {"code": "not_yet", "label": "Not yet competent", "proficient": false},   # >= 1 proficient
          ...
        ]
      },
      "competencies": [                                   # the top level of the tree, in display order
        {
          "code": "XT-IV-03",                             # required, <= 100 chars (may be "" for a CASE item
                                                          #   without humanCodingScheme; a shared code warns)
          "title": "Clean and disinfect the PEC",         # required, <= 500 chars (<= 100 if exported to Moodle)
          "description": "...",                           # optional
          "identifier": "uuid",                           # optional; default UUIDv5(framework identifier, code)
          "departments": ["iv_room"],                     # optional slugs: community, central, iv_room,
                                                          #   nonsterile, hazardous, ltc, specialty, nuclear
          "evidence_kinds": ["cross_training"],           # optional subset of models.frameworks.EVIDENCE_KINDS;
                                                          #   empty = any kind counts
          "checklist": ["Hand hygiene", "..."],           # optional observable steps a signer ticks
          "revalidation_months": 6,                       # optional; an achieved sign-off expires after this
          "extra": {"case": {...}},                       # optional; what an imported file held beyond these
                                                          #   fields (the CASE CFItem, Moodle rule/scale cells)
          "children": [ ... ]                             # optional, same shape, in display order
        }
      ]
    }

Unknown keys are refused (a typo must not silently drop data).
"""
import json

from .common import Node, Parsed, fail

FORMAT = "pharmacy-tech-pathways/framework"
FORMAT_VERSION = 1
COMPETENCY_KEYS = ("code", "title", "description", "identifier", "departments", "evidence_kinds", "checklist",
                   "revalidation_months", "extra")
FRAMEWORK_KEYS = ("code", "name", "version", "identifier", "description", "source", "scale", "extra")


def looks_like(doc) -> bool:
    return isinstance(doc, dict) and (doc.get("format") == FORMAT or {"framework", "competencies"} <= doc.keys())


def parse(doc: dict) -> Parsed:
    version = doc.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        fail("file", "format_version", f"Unsupported format version {version!r} (this tool reads {FORMAT_VERSION}).")
    extra = set(doc) - {"format", "format_version", "framework", "competencies"}
    if extra:
        fail("file", sorted(extra)[0], "Unknown field.")
    framework = doc.get("framework")
    if not isinstance(framework, dict):
        fail("file", "framework", "Expected an object with the framework's code, name, version and scale.")
    tops = doc.get("competencies")
    if not isinstance(tops, list):
        fail("file", "competencies", "Expected a list of competencies.")

    nodes: list[Node] = []

    def walk(items, parent_ref, path):
        for index, item in enumerate(items):
            where = f"{path}[{index}]"
            if not isinstance(item, dict):
                fail(where, None, "Expected an object.")
            data = {k: v for k, v in item.items() if k != "children"}
            code = item.get("code")
            where = f"competency {code}" if isinstance(code, str) and code else where
            ref = f"{len(nodes)}"
            nodes.append(Node(ref=ref, parent_ref=parent_ref, where=where, data=data, order=index))
            kids = item.get("children", [])
            if not isinstance(kids, list):
                fail(where, "children", "Expected a list of competencies.")
            walk(kids, ref, f"{where}.children")

    walk(tops, None, "competencies")
    return Parsed(format="native", framework=dict(framework), framework_where="framework", nodes=nodes)


def export(tree) -> str:
    fw = tree.framework

    def item(comp):
        out = {"code": comp.code, "title": comp.title}
        if comp.description:
            out["description"] = comp.description
        if comp.identifier:
            out["identifier"] = comp.identifier
        for key in ("departments", "evidence_kinds", "checklist"):
            if getattr(comp, key):
                out[key] = list(getattr(comp, key))
        if comp.revalidation_months:
            out["revalidation_months"] = comp.revalidation_months
        if comp.extra:
            out["extra"] = comp.extra
        if comp.children:
            out["children"] = [item(child) for child in comp.children]
        return out

    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "framework": {k: getattr(fw, k) for k in FRAMEWORK_KEYS if getattr(fw, k) is not None},
        "competencies": [item(c) for c in tree.roots],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
