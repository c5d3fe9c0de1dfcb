"""What every framework format shares: the parsed form, the error that lists every problem, tree checks.

A parser turns a file into a `Parsed`: the framework's fields and a flat list of `Node`s (each with a reference
unique in the file, its parent's reference, and where it was found: "line 7", "CFItem <identifier>", ...).
`validate()` then checks every node with the same marshmallow schemas and the whole tree (unique codes, known
parents, no cycles), and returns the nodes in tree order. Nothing touches the database here: a file is checked
completely before the first row is written, so a bad file writes nothing.
"""
import uuid
from dataclasses import dataclass, field

from marshmallow import ValidationError

from ...schemas.frameworks import competency_load, framework_load
from .. import DomainError

# Competency identifiers we mint are UUIDv5 under the framework's identifier, so the shipped framework gets the
# same identifiers on every installation and in every export.
IDENTIFIER_NAMESPACE = uuid.UUID("7c0f3a52-5d0e-4a43-9b8e-2f6f5c1d9a10")
MAX_LISTED = 20


class FrameworkImportError(DomainError):
    """A file that cannot be imported. `.errors` lists {"where", "field", "message"} for every problem found."""

    code = "import_invalid"

    def __init__(self, errors: list[dict]):
        self.errors = errors
        lines = [describe(e) for e in errors[:MAX_LISTED]]
        if len(errors) > MAX_LISTED:
            lines.append(f"... and {len(errors) - MAX_LISTED} more")
        noun = "problem" if len(errors) == 1 else "problems"
        super().__init__(f"The framework was not imported ({len(errors)} {noun}):\n" + "\n".join(lines),
                         fields={"errors": errors})


def describe(error: dict) -> str:
    where = error.get("where") or "file"
    return f"{where}, {error['field']}: {error['message']}" if error.get("field") else f"{where}: {error['message']}"


def fail(where: str | None, fld: str | None, message: str):
    raise FrameworkImportError([{"where": where, "field": fld, "message": message}])


@dataclass
class Node:
    ref: str
    parent_ref: str | None
    where: str
    data: dict
    order: float = 0.0


@dataclass
class Parsed:
    format: str
    framework: dict
    framework_where: str
    nodes: list[Node]
    # Our field name -> the name the file uses ("title" -> "Short name"), so errors speak the file's language.
    field_names: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ValidNode:
    data: dict
    parent: "ValidNode | None"
    position: int
    depth: int
    children: list["ValidNode"] = field(default_factory=list)


@dataclass
class ValidTree:
    format: str
    framework: dict
    nodes: list[ValidNode]  # pre-order: every parent before its children
    warnings: list[str]


@dataclass
class FrameworkTree:
    """A framework with its competencies wired up in memory (built by services.frameworks.get_tree)."""

    framework: object
    roots: list
    by_id: dict

    def walk(self):
        """(depth, competency) in tree order, depth 0 for the top level."""
        stack = [(0, c) for c in reversed(self.roots)]
        while stack:
            depth, comp = stack.pop()
            yield depth, comp
            stack.extend((depth + 1, child) for child in reversed(comp.children))

    def __len__(self):
        return len(self.by_id)


def _flatten(messages, prefix=""):
    """marshmallow's nested {field: [msg] | {index: ...}} -> [(field path, message)]."""
    if isinstance(messages, list):
        return [(prefix, str(m)) for m in messages]
    out = []
    for key, value in messages.items():
        if isinstance(key, int):
            path = f"{prefix}[{key}]"
        elif key == "_schema":
            path = prefix
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        out.extend(_flatten(value, path))
    return out


def _name(parsed: Parsed, path: str) -> str:
    head, sep, rest = path.partition("[")
    head, dot, tail = head.partition(".")
    return parsed.field_names.get(head, head) + (dot + tail if dot else "") + (sep + rest if sep else "")


def validate(parsed: Parsed) -> ValidTree:
    errors = []

    def add(where, path, message):
        errors.append({"where": where, "field": _name(parsed, path) if path else None, "message": message})

    try:
        framework = framework_load.load(parsed.framework)
    except ValidationError as exc:
        framework = None
        for path, message in _flatten(exc.messages):
            add(parsed.framework_where, path, message)

    loaded: dict[str, dict] = {}
    by_code: dict[str, Node] = {}
    shared: list[str] = []  # codes used twice: allowed (items are keyed by identifier), reported
    for node in parsed.nodes:
        try:
            loaded[node.ref] = competency_load.load(node.data)
        except ValidationError as exc:
            for path, message in _flatten(exc.messages):
                add(node.where, path, message)
            continue
        code = loaded[node.ref]["code"]
        if code and code in by_code:
            shared.append(f"{node.where}: code {code!r} is also used at {by_code[code].where}.")
        elif code:
            by_code[code] = node

    refs = {node.ref: node for node in parsed.nodes}
    for node in parsed.nodes:
        if node.parent_ref is not None and node.parent_ref not in refs:
            add(node.where, "parent", f"Unknown parent {node.parent_ref!r}: nothing in the file has it.")
    errors.extend(_cycles(parsed, refs))
    if errors:
        raise FrameworkImportError(errors)

    children: dict[str | None, list[Node]] = {}
    for node in parsed.nodes:
        children.setdefault(node.parent_ref, []).append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: n.order)  # stable: equal orders keep file order

    ordered: list[ValidNode] = []

    def visit(parent_ref, parent):
        for position, node in enumerate(children.get(parent_ref, [])):
            valid = ValidNode(loaded[node.ref], parent, position, parent.depth + 1 if parent else 0)
            if parent is not None:
                parent.children.append(valid)
            ordered.append(valid)
            visit(node.ref, valid)

    visit(None, None)
    warnings = list(parsed.warnings)
    if shared:
        warnings.append(f"{len(shared)} competency code(s) are shared by more than one item (kept as published; "
                        "items are told apart by identifier): " + " ".join(shared[:MAX_LISTED]))
    return ValidTree(parsed.format, framework, ordered, warnings)


def _cycles(parsed: Parsed, refs: dict) -> list[dict]:
    errors, state = [], {}  # ref -> "visiting" | "done"
    for start in refs:
        path, ref = [], start
        while ref is not None and ref in refs and state.get(ref) != "done":
            if state.get(ref) == "visiting":
                loop = path[path.index(ref):]
                node = refs[ref]
                errors.append({"where": node.where, "field": _name(parsed, "parent"),
                               "message": "The parent links form a cycle: " + " -> ".join(loop + [ref]) + "."})
                break
            state[ref] = "visiting"
            path.append(ref)
            ref = refs[ref].parent_ref
        for seen in path:
            state[seen] = "done"
    return errors


def framework_identifier(value: str | None) -> str:
    return value or str(uuid.uuid4())


def competency_identifier(framework_identifier: str, code: str) -> str:
    try:
        namespace = uuid.UUID(framework_identifier)
    except ValueError:
        namespace = uuid.uuid5(IDENTIFIER_NAMESPACE, framework_identifier)
    return str(uuid.uuid5(namespace, code))


def decode(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            fail(None, None, f"The file is not UTF-8 text (byte {exc.start}).")
    return raw.removeprefix("\ufeff")
