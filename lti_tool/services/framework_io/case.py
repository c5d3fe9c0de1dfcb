"""1EdTech CASE 1.1 JSON: a CFPackage {CFDocument, CFItems, CFAssociations, CFDefinitions, CFRubrics}.

Import keeps everything the package holds. The tool reads what it needs (title, version, description; per item
identifier, humanCodingScheme, abbreviatedStatement, fullStatement; the isChildOf tree) and stores the rest as
the publisher wrote it: the CFDocument, every CFItem and every CFAssociation (all types, cross-document links
included, identifiers and lastChangeDateTime unchanged), CFDefinitions, CFRubrics and package extensions
(Framework.extra["case"], Competency.extra["case"]). Export writes those back, so an imported package comes out
as it went in. Nothing is invented: an item without humanCodingScheme has an empty code (the tool shows its
statement), an item without abbreviatedStatement is shown by its fullStatement's first line but exported without
one; two items may share a humanCodingScheme (items are keyed by identifier; the shared code is a warning).

Frameworks made in the tool (the shipped one, or imported from Moodle CSV or native JSON) are written from their
fields: Framework -> CFDocument, Competency -> CFItem (CFItemType "Competency Area" at the top level, else
"Competency"; notes summarize departments, checklist and revalidation), the tree -> isChildOf CFAssociations.

Export is CASE 1.1 (the official CFPackage JSON schema is checked in the tests). CASE 1.0 fields that 1.1 no
longer has (CFPackageURI, CFDocumentURI, CFItemAssociationURI, ...) or that a publisher added outside the
standard are not dropped: they are carried in the entity's `extensions` under EXTENSION_KEY, key "notInCase11",
and put back in place when that file is imported again. What 1.0 servers wrote loosely is written as 1.1 wants
it: nulls as absent, a string sequenceNumber as an integer, a lastChangeDateTime without offset as UTC ("Z"),
a CFItemType without description with an empty one.

Our own extension, under `extensions[EXTENSION_KEY]`:
- on CFDocument: {"code", "version", "source", "scale": [{code, label, proficient}, ...]};
- on each CFItem: {"departments", "evidenceKinds", "checklist", "revalidationMonths"}.
"""
import copy
import json
import re
import uuid
from datetime import UTC

from .common import IDENTIFIER_NAMESPACE, FrameworkImportError, Node, Parsed, competency_identifier, fail

EXTENSION_KEY = "pharmacyTechPathways"
NOT_IN_11 = "notInCase11"
CREATOR = "Pharmacy Tech Pathways"
DEFAULT_SCALE = [
    {"code": "not_yet", "label": "Not yet competent", "proficient": False},
    {"code": "supervised", "label": "Competent with supervision", "proficient": False},
    {"code": "competent", "label": "Competent", "proficient": True},
    {"code": "trainer", "label": "Can train others", "proficient": True},
]
FIELD_NAMES = {
    "code": "humanCodingScheme", "title": "abbreviatedStatement", "description": "fullStatement",
    "identifier": "identifier", "departments": f"extensions.{EXTENSION_KEY}.departments",
    "evidence_kinds": f"extensions.{EXTENSION_KEY}.evidenceKinds",
    "checklist": f"extensions.{EXTENSION_KEY}.checklist",
    "revalidation_months": f"extensions.{EXTENSION_KEY}.revalidationMonths",
    "name": "title", "source": "notes", "scale": f"extensions.{EXTENSION_KEY}.scale",
}
ITEM_EXTENSION = {"departments": "departments", "evidenceKinds": "evidence_kinds", "checklist": "checklist",
                  "revalidationMonths": "revalidation_months"}
MAX_TITLE = 500
# The properties CASE 1.1's CFPackage schema allows on each entity (it allows no others).
CASE11_KEYS = {
    "document": {"identifier", "uri", "frameworkType", "caseVersion", "creator", "title", "lastChangeDateTime",
                 "officialSourceURL", "publisher", "description", "subject", "subjectURI", "language", "version",
                 "adoptionStatus", "statusStartDate", "statusEndDate", "licenseURI", "notes", "extensions"},
    "item": {"identifier", "fullStatement", "alternativeLabel", "CFItemType", "uri", "humanCodingScheme",
             "listEnumeration", "abbreviatedStatement", "conceptKeywords", "conceptKeywordsURI", "notes", "subject",
             "subjectURI", "language", "educationLevel", "CFItemTypeURI", "licenseURI", "statusStartDate",
             "statusEndDate", "lastChangeDateTime", "extensions"},
    "association": {"identifier", "associationType", "sequenceNumber", "uri", "originNodeURI",
                    "destinationNodeURI", "CFAssociationGroupingURI", "lastChangeDateTime", "notes", "extensions"},
}
PACKAGE_PARTS = ("CFDefinitions", "CFRubrics", "extensions")


def looks_like(doc) -> bool:
    return isinstance(doc, dict) and (
        "CFDocument" in doc or "CFItems" in doc or "CFAssociations" in doc or isinstance(doc.get("CFPackage"), dict)
    )


def _ext(obj) -> dict:
    ext = obj.get("extensions")
    value = ext.get(EXTENSION_KEY) if isinstance(ext, dict) else None
    return value if isinstance(value, dict) else {}


def _text(value):
    """The string as given, or None when missing or blank."""
    return value if isinstance(value, str) and value.strip() else None


def _as_published(entity: dict) -> dict:
    """The entity without our extension, with fields a 1.1 export moved into it put back in place: what the
    publisher wrote, to store and write back."""
    out = dict(entity)
    ext = out.get("extensions")
    if isinstance(ext, dict) and EXTENSION_KEY in ext:
        ours = ext[EXTENSION_KEY] if isinstance(ext[EXTENSION_KEY], dict) else {}
        for key, value in (ours.get(NOT_IN_11) or {}).items():
            out.setdefault(key, value)
        rest = {k: v for k, v in ext.items() if k != EXTENSION_KEY}
        if rest:
            out["extensions"] = rest
        else:
            del out["extensions"]
    return out


def parse(doc: dict) -> Parsed:
    if isinstance(doc.get("CFPackage"), dict):  # some CASE 1.0 servers wrap the package
        doc = doc["CFPackage"]
    document = doc.get("CFDocument")
    if not isinstance(document, dict):
        fail("CFPackage", "CFDocument", "Missing: a CASE package needs a CFDocument.")
    doc_id = _text(document.get("identifier"))
    if not doc_id:
        fail("CFDocument", "identifier", "Missing.")
    items = doc.get("CFItems") or []
    associations = doc.get("CFAssociations") or []
    if not isinstance(items, list):
        fail("CFPackage", "CFItems", "Expected a list.")
    if not isinstance(associations, list):
        fail("CFPackage", "CFAssociations", "Expected a list.")

    doc_ext = _ext(document)
    kept = {"document": _as_published(document), "associations": []}
    for part in PACKAGE_PARTS:
        if doc.get(part) not in (None, [], {}):
            kept[part] = doc[part]
    framework = {
        "code": doc_ext.get("code") or doc_id,
        "name": document.get("title"),
        "version": doc_ext.get("version") or _text(document.get("version")) or "1",
        "identifier": doc_id,
        "description": _text(document.get("description")),
        "source": doc_ext["source"] if "source" in doc_ext else _source(document),
        "scale": doc_ext.get("scale", DEFAULT_SCALE),
        "extra": {"case": kept},
    }
    warnings: list[str] = []
    errors: list[dict] = []
    nodes: dict[str, Node] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"where": f"CFItems[{index}]", "field": None, "message": "Expected an object."})
            continue
        ident = _text(item.get("identifier"))
        if not ident:
            errors.append({"where": f"CFItems[{index}]", "field": "identifier", "message": "Missing."})
            continue
        where = f"CFItem {ident}"
        if ident in nodes or ident == doc_id:
            errors.append({"where": where, "field": "identifier", "message": "Used by two entries."})
            continue
        full = _text(item.get("fullStatement"))
        if not full:
            errors.append({"where": where, "field": "fullStatement", "message": "Missing."})
            continue
        title = _text(item.get("abbreviatedStatement")) or _display_title(full)
        data = {
            "code": _text(item.get("humanCodingScheme")) or "",
            "title": title,
            "description": full if full != title else None,
            "identifier": ident,
            "extra": {"case": _as_published(item)},
        }
        ext = _ext(item)
        for key, ours in ITEM_EXTENSION.items():
            if key in ext:
                data[ours] = ext[key]
        nodes[ident] = Node(ref=ident, parent_ref=None, where=where, data=data, order=float("inf"))
    if errors:
        raise FrameworkImportError(errors)

    outside = 0
    for index, assoc in enumerate(associations):
        where = f"CFAssociation {assoc.get('identifier') or index}" if isinstance(assoc, dict) else \
            f"CFAssociations[{index}]"
        if not isinstance(assoc, dict):
            fail(where, None, "Expected an object.")
        kept["associations"].append(_as_published(assoc))
        if assoc.get("associationType") != "isChildOf":
            continue
        origin = _node_id(assoc, "originNodeURI", where)
        dest = _node_id(assoc, "destinationNodeURI", where)
        if origin not in nodes or (dest != doc_id and dest not in nodes):
            outside += 1  # a link to or from another framework: kept, not part of this tree
            continue
        node = nodes[origin]
        if node.order != float("inf"):
            warnings.append(f"{node.where} is the child of more than one item; shown under the first, "
                            "and every association is kept.")
            continue
        node.parent_ref = None if dest == doc_id else dest
        seq = assoc.get("sequenceNumber")
        node.order = float(seq) if isinstance(seq, int | float) and not isinstance(seq, bool) else 1e9 + index
    if outside:
        warnings.append(f"{outside} isChildOf association(s) link to items outside this package; they are kept "
                        "and exported again, but do not place items in this framework's tree.")
    orphans = [n for n in nodes.values() if n.order == float("inf")]
    if orphans:
        warnings.append(f"{len(orphans)} item(s) had no isChildOf association in this package and are shown at "
                        "the top level.")
    return Parsed(format="case", framework=framework, framework_where="CFDocument", nodes=list(nodes.values()),
                  field_names=FIELD_NAMES, warnings=warnings)


def _node_id(assoc, key, where):
    ref = assoc.get(key)
    ident = _text(ref.get("identifier")) if isinstance(ref, dict) else None
    if not ident:
        fail(where, f"{key}.identifier", "Missing.")
    return ident


def _display_title(full):
    """What the tool shows for an item without abbreviatedStatement: the statement's first non-empty line (a
    Markdown table or list keeps its first row), cut to the title limit. Never exported."""
    line = next((ln.strip() for ln in full.splitlines() if ln.strip()), full.strip())
    return line if len(line) <= MAX_TITLE else line[:MAX_TITLE - 1].rstrip() + "\u2026"


def _source(document):
    parts = [_text(document.get(k)) for k in ("publisher", "creator", "officialSourceURL", "uri")]
    parts = [p for p in parts if p]
    return "CASE: " + "; ".join(parts) if parts else None


def _when(value):
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _notes(comp):
    lines = []
    if comp.departments:
        lines.append("Departments: " + ", ".join(comp.departments))
    if comp.evidence_kinds:
        lines.append("Evidence: " + ", ".join(k.replace("_", " ") for k in comp.evidence_kinds))
    if comp.revalidation_months:
        lines.append(f"Revalidate every {comp.revalidation_months} months")
    if comp.checklist:
        lines.append("Checklist: " + "; ".join(f"{i}. {step}" for i, step in enumerate(comp.checklist, 1)))
    return "\n".join(lines) or None


def _case11(entity: dict, kind: str, ours: dict | None = None) -> dict:
    """The entity as CASE 1.1 allows it: nulls dropped, fields 1.1 does not know moved into our extension,
    our own extension data added."""
    allowed = CASE11_KEYS[kind]
    out = {k: v for k, v in entity.items() if k in allowed and v is not None}
    seq = out.get("sequenceNumber")
    if isinstance(seq, str) and seq.strip().isdigit():
        out["sequenceNumber"] = int(seq)  # some CASE 1.0 servers (OpenSALT) wrote it as a string
    moved = {k: v for k, v in entity.items() if k not in allowed and v is not None}
    ext = dict(ours or {})
    if moved:
        ext[NOT_IN_11] = moved
    if ext:
        extensions = dict(out.get("extensions") or {})
        extensions[EXTENSION_KEY] = ext
        out["extensions"] = extensions
    return out


def document_id(framework) -> str:
    """The CFDocument identifier of a framework (frameworks made outside an import have none stored: derive a
    stable one from what identifies them)."""
    return framework.identifier or str(uuid.uuid5(
        IDENTIFIER_NAMESPACE, f"{framework.registration_id}:{framework.code}:{framework.version}"))


def item_id(framework, comp) -> str:
    return comp.identifier or competency_identifier(document_id(framework), comp.code)


def package(tree, base_uri: str | None = None) -> dict:
    """The CFPackage of a framework tree, as a dict (see export)."""
    fw = tree.framework
    doc_id = document_id(fw)
    kept = copy.deepcopy((fw.extra or {}).get("case") or {})  # written to below; never the stored JSON
    changed = _when(fw.created_at)

    def uri(kind, ident):
        return f"{base_uri.rstrip('/')}/ims/case/v1p1/{kind}/{ident}" if base_uri else f"urn:uuid:{ident}"

    ours = {"code": fw.code, "version": fw.version, "source": fw.source, "scale": list(fw.scale)}
    if kept.get("document"):
        document = dict(kept["document"])
        document.setdefault("uri", uri("CFDocuments", doc_id))
        document.setdefault("lastChangeDateTime", changed)
        document.setdefault("title", fw.name)
        document.setdefault("creator", _text(document.get("publisher")) or "Unknown")
    else:
        document = {
            "identifier": doc_id, "uri": uri("CFDocuments", doc_id), "creator": CREATOR, "title": fw.name,
            "lastChangeDateTime": changed, "description": fw.description, "language": "en",
            "version": fw.version, "notes": fw.source, "caseVersion": "1.1",
        }
    document = _case11(document, "document", ours)
    doc_link = {"title": document["title"], "identifier": doc_id, "uri": document["uri"]}

    items, associations = [], []
    for depth, comp in tree.walk():
        ident = item_id(fw, comp)
        ext = {"departments": list(comp.departments or []), "evidenceKinds": list(comp.evidence_kinds or []),
               "checklist": list(comp.checklist or []), "revalidationMonths": comp.revalidation_months}
        original = copy.deepcopy((comp.extra or {}).get("case"))
        if original:
            item = dict(original)
            item.setdefault("uri", uri("CFItems", ident))
            item.setdefault("lastChangeDateTime", changed)
        else:
            item = {
                "identifier": ident, "uri": uri("CFItems", ident),
                "fullStatement": comp.description or comp.title, "abbreviatedStatement": comp.title,
                "humanCodingScheme": comp.code or None,
                "CFItemType": "Competency Area" if depth == 0 else "Competency", "language": "en",
                "notes": _notes(comp), "lastChangeDateTime": changed,
            }
        items.append(_case11(item, "item", ext))
        if kept.get("document"):
            continue  # the package's own associations are written below, as published
        parent = comp.parent
        if parent is None:
            dest = doc_link
        else:
            pid = item_id(fw, parent)
            dest = {"title": parent.title, "identifier": pid, "uri": uri("CFItems", pid)}
        assoc_id = competency_identifier(ident, "isChildOf")
        associations.append({
            "identifier": assoc_id, "associationType": "isChildOf", "uri": uri("CFAssociations", assoc_id),
            "originNodeURI": {"title": comp.title, "identifier": ident, "uri": items[-1]["uri"]},
            "destinationNodeURI": dest, "sequenceNumber": comp.position + 1, "lastChangeDateTime": changed,
        })
    if kept.get("document"):
        associations = [_case11(a, "association") for a in kept.get("associations", [])]
    out = {"CFDocument": document, "CFItems": items, "CFAssociations": associations}
    for part in PACKAGE_PARTS:
        if part in kept:
            out[part] = _without_nulls(kept[part])
    _with_utc_offsets(out)
    for item_type in (out.get("CFDefinitions") or {}).get("CFItemTypes") or []:
        # 1.1 requires a description; 1.0 servers (OpenSALT) wrote null. Empty says "none given" and invents nothing.
        if isinstance(item_type, dict):
            item_type.setdefault("description", "")
    return out


_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")


def _with_utc_offsets(value):
    """lastChangeDateTime is an RFC 3339 date-time; some 1.0 servers (OpenSALT) wrote UTC without the offset."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "lastChangeDateTime" and isinstance(inner, str) and _NAIVE.match(inner):
                value[key] = inner + "Z"
            else:
                _with_utc_offsets(inner)
    elif isinstance(value, list):
        for inner in value:
            _with_utc_offsets(inner)


def _without_nulls(value):
    """CASE has no nulls: an absent value is left out (some 1.0 servers wrote null)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def export(tree, base_uri: str | None = None) -> str:
    return json.dumps(package(tree, base_uri), indent=2, ensure_ascii=False) + "\n"
