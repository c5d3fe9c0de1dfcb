"""1EdTech CASE 1.1 JSON: a CFPackage {CFDocument, CFItems, CFAssociations}.

Mapping (export and import):
- Framework -> CFDocument: identifier, uri, creator, title (name), version, description, notes (source),
  lastChangeDateTime; CFPackageURI.
- Competency -> CFItem: identifier, uri, humanCodingScheme (code), abbreviatedStatement (title), fullStatement
  (description, or the title when there is none), CFItemType ("Competency Area" at the top level, else
  "Competency"), notes (a readable summary of departments, checklist and revalidation), lastChangeDateTime.
- Tree -> CFAssociations of type isChildOf: originNodeURI = the child, destinationNodeURI = the parent CFItem or
  the CFDocument for the top level, each {title, identifier, uri}; sequenceNumber = 1-based order among siblings.

Extension: CASE 1.1 allows an `extensions` object on CASE entities. Ours lives under the key EXTENSION_KEY:
- on CFDocument: {"code", "version", "source", "scale": [{code, label, proficient}, ...]};
- on each CFItem: {"departments", "evidenceKinds", "checklist", "revalidationMonths"}.
With it, export then import is lossless. Without it (plain CASE from elsewhere): code = humanCodingScheme (or the
item identifier when missing), title = abbreviatedStatement (or fullStatement cut to 500 characters),
description = fullStatement when it differs from the title, the default four-level scale, version =
CFDocument.version or "1". Associations other than isChildOf (isRelatedTo, exactMatchOf, ...) are ignored with a
warning; an item that is the child of two parents keeps the first and gets a warning; an item with no isChildOf
association goes to the top level.
"""
import json
import uuid
from datetime import UTC

from .common import IDENTIFIER_NAMESPACE, FrameworkImportError, Node, Parsed, competency_identifier, fail

EXTENSION_KEY = "pharmacyTechPathways"
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


def parse(doc: dict) -> Parsed:
    if isinstance(doc.get("CFPackage"), dict):  # some CASE 1.0 servers wrap the package
        doc = doc["CFPackage"]
    document = doc.get("CFDocument")
    if not isinstance(document, dict):
        fail("CFPackage", "CFDocument", "Missing: a CASE package needs a CFDocument.")
    doc_id = _text(document.get("identifier"))
    if not doc_id:
        fail("CFDocument", "identifier", "Missing.")
    items = doc.get("CFItems", [])
    associations = doc.get("CFAssociations", [])
    if not isinstance(items, list):
        fail("CFPackage", "CFItems", "Expected a list.")
    if not isinstance(associations, list):
        fail("CFPackage", "CFAssociations", "Expected a list.")

    doc_ext = _ext(document)
    framework = {
        "code": doc_ext.get("code") or _text(document.get("humanCodingScheme")) or doc_id,
        "name": document.get("title"),
        "version": doc_ext.get("version") or _text(document.get("version")) or "1",
        "identifier": doc_id,
        "description": _text(document.get("description")),
        "source": doc_ext["source"] if "source" in doc_ext else _source(document),
        "scale": doc_ext.get("scale", DEFAULT_SCALE),
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
        title = _text(item.get("abbreviatedStatement")) or _text(item.get("title")) or _shorten(full)
        data = {
            "code": _text(item.get("humanCodingScheme")) or ident,
            "title": title,
            "description": full if full != title else None,
            "identifier": ident,
        }
        ext = _ext(item)
        for key, ours in ITEM_EXTENSION.items():
            if key in ext:
                data[ours] = ext[key]
        nodes[ident] = Node(ref=ident, parent_ref=None, where=where, data=data, order=float("inf"))
    if errors:
        raise FrameworkImportError(errors)

    ignored = 0
    for index, assoc in enumerate(associations):
        where = f"CFAssociation {assoc.get('identifier') or index}" if isinstance(assoc, dict) else \
            f"CFAssociations[{index}]"
        if not isinstance(assoc, dict):
            fail(where, None, "Expected an object.")
        if assoc.get("associationType") != "isChildOf":
            ignored += 1
            continue
        origin = _node_id(assoc, "originNodeURI", where)
        dest = _node_id(assoc, "destinationNodeURI", where)
        if origin not in nodes:
            fail(where, "originNodeURI.identifier", f"Unknown item {origin!r}: not a CFItem of this package.")
        if dest != doc_id and dest not in nodes:
            fail(where, "destinationNodeURI.identifier",
                 f"Unknown item {dest!r}: neither a CFItem of this package nor its CFDocument.")
        node = nodes[origin]
        if node.order != float("inf"):
            warnings.append(f"{node.where} is the child of more than one item; kept the first parent.")
            continue
        node.parent_ref = None if dest == doc_id else dest
        seq = assoc.get("sequenceNumber")
        node.order = float(seq) if isinstance(seq, int | float) and not isinstance(seq, bool) else 1e9 + index
    if ignored:
        warnings.append(f"Ignored {ignored} association(s) other than isChildOf.")
    orphans = [n for n in nodes.values() if n.order == float("inf")]
    if orphans:
        warnings.append(f"{len(orphans)} item(s) had no isChildOf association and were put at the top level.")
    return Parsed(format="case", framework=framework, framework_where="CFDocument", nodes=list(nodes.values()),
                  field_names=FIELD_NAMES, warnings=warnings)


def _node_id(assoc, key, where):
    ref = assoc.get(key)
    ident = _text(ref.get("identifier")) if isinstance(ref, dict) else None
    if not ident:
        fail(where, f"{key}.identifier", "Missing.")
    return ident


def _shorten(text):
    return text if len(text) <= MAX_TITLE else text[:MAX_TITLE - 1].rstrip() + "\u2026"


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


def export(tree, base_uri: str | None = None) -> str:
    fw = tree.framework
    # Frameworks made outside an import have no identifier: derive a stable one from what identifies them.
    doc_id = fw.identifier or str(uuid.uuid5(IDENTIFIER_NAMESPACE, f"{fw.registration_id}:{fw.code}:{fw.version}"))
    changed = _when(fw.created_at)

    def uri(kind, ident):
        return f"{base_uri.rstrip('/')}/ims/case/v1p1/{kind}/{ident}" if base_uri else f"urn:uuid:{ident}"

    doc_link = {"title": fw.name, "identifier": doc_id, "uri": uri("CFDocuments", doc_id)}
    document = {
        "identifier": doc_id,
        "uri": doc_link["uri"],
        "creator": CREATOR,
        "title": fw.name,
        "lastChangeDateTime": changed,
        "description": fw.description,
        "language": "en",
        "version": fw.version,
        "notes": fw.source,
        "CFPackageURI": {"title": fw.name, "identifier": doc_id, "uri": uri("CFPackages", doc_id)},
        "extensions": {EXTENSION_KEY: {"code": fw.code, "version": fw.version, "source": fw.source,
                                       "scale": list(fw.scale)}},
    }
    document = {k: v for k, v in document.items() if v is not None}
    items, associations = [], []
    for depth, comp in tree.walk():
        ident = comp.identifier or competency_identifier(doc_id, comp.code)
        item = {
            "identifier": ident,
            "uri": uri("CFItems", ident),
            "fullStatement": comp.description or comp.title,
            "abbreviatedStatement": comp.title,
            "humanCodingScheme": comp.code,
            "CFItemType": "Competency Area" if depth == 0 else "Competency",
            "language": "en",
            "notes": _notes(comp),
            "lastChangeDateTime": changed,
            "CFDocumentURI": doc_link,
            "extensions": {EXTENSION_KEY: {
                "departments": list(comp.departments or []), "evidenceKinds": list(comp.evidence_kinds or []),
                "checklist": list(comp.checklist or []), "revalidationMonths": comp.revalidation_months}},
        }
        items.append({k: v for k, v in item.items() if v is not None})
        parent = comp.parent
        if parent is None:
            dest = doc_link
        else:
            pid = parent.identifier or competency_identifier(doc_id, parent.code)
            dest = {"title": parent.title, "identifier": pid, "uri": uri("CFItems", pid)}
        assoc_id = competency_identifier(ident, "isChildOf")
        associations.append({
            "identifier": assoc_id,
            "associationType": "isChildOf",
            "uri": uri("CFAssociations", assoc_id),
            "originNodeURI": {"title": comp.title, "identifier": ident, "uri": item["uri"]},
            "destinationNodeURI": dest,
            "sequenceNumber": comp.position + 1,
            "lastChangeDateTime": changed,
            "CFDocumentURI": doc_link,
        })
    package = {"CFDocument": document, "CFItems": items, "CFAssociations": associations}
    return json.dumps(package, indent=2, ensure_ascii=False) + "\n"
