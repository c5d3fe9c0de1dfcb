"""Framework import/export: CASE 1.1 and Moodle CSV round trips of the shipped framework, files from other
systems, and malformed files (each error names the line or item and the field; nothing is written)."""
import copy
import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import AuditEntry, Competency, Framework
from lti_tool.services import frameworks as service
from lti_tool.services.framework_io import FrameworkImportError, case, moodle_csv, read

DATA = Path(__file__).parent / "data"


def shape(tree, extras=False):
    """The tree as comparable rows: depth, code, title, description, parent code, position (+ our fields)."""
    rows = []
    for depth, c in tree.walk():
        row = (depth, c.code, c.title, c.description, c.parent.code if c.parent else None, c.position)
        if extras:
            row += (c.identifier, c.departments, c.evidence_kinds, c.checklist, c.revalidation_months)
        rows.append(row)
    return rows


def counts():
    return (db.session.scalar(select(func.count()).select_from(Framework)),
            db.session.scalar(select(func.count()).select_from(Competency)))


@pytest.fixture
def default_tree(make):
    return service.get_tree(None, service.ensure_default_framework().id)


def test_case_round_trip_is_lossless(make, default_tree):
    reg = make.registration()
    exported = service.export_framework(None, default_tree.framework.id, "case")
    package = json.loads(exported)
    assert set(package) == {"CFDocument", "CFItems", "CFAssociations"}
    doc = package["CFDocument"]
    assert doc["identifier"] == default_tree.framework.identifier and doc["title"] == "Pharmacy Technician"
    assert {"uri", "creator", "lastChangeDateTime", "version", "description"} <= doc.keys()
    item = next(i for i in package["CFItems"] if i["humanCodingScheme"] == "USP797-02")
    assert item["abbreviatedStatement"].startswith("USP <797> garbing")
    assert item["fullStatement"].startswith("Hand hygiene and garbing competency")
    assert item["extensions"][case.EXTENSION_KEY]["revalidationMonths"] == 6
    assert "Revalidate every 6 months" in item["notes"]
    assoc = next(a for a in package["CFAssociations"] if a["originNodeURI"]["identifier"] == item["identifier"])
    assert assoc["associationType"] == "isChildOf"
    assert assoc["destinationNodeURI"]["title"] == "USP compounding competency assessments"
    assert assoc["sequenceNumber"] == 2
    assert len(package["CFItems"]) == len(package["CFAssociations"]) == len(default_tree)

    # The same framework in the same version is a duplicate, also for a tenant (issue 11): import the copy
    # as another version; everything else must come back unchanged.
    with pytest.raises(FrameworkImportError, match="already exists"):
        service.import_framework(None, exported, filename="pt.json", registration_id=reg.id)
    result = service.import_framework(None, exported, filename="pt.json", registration_id=reg.id,
                                      version="2025.1-copy")
    assert result.format == "case" and result.warnings == []
    back = service.get_tree(None, result.framework.id)
    assert shape(back, extras=True) == shape(default_tree, extras=True)
    assert back.framework.version == "2025.1-copy"
    for attr in ("code", "name", "description", "source", "identifier", "scale"):
        assert getattr(back.framework, attr) == getattr(default_tree.framework, attr), attr
    assert back.framework.registration_id == reg.id
    # Exporting the import again gives the same document, bar the time stamps (the copy was created now).
    stamp = re.compile(r'"lastChangeDateTime": "[^"]+"')
    again = service.export_framework(None, back.framework.id, "case")
    version = re.compile(r'"version": "[^"]*"')
    assert version.sub("", stamp.sub("", again)) == version.sub("", stamp.sub("", exported))


def test_moodle_csv_round_trip(make, default_tree):
    reg = make.registration()
    exported = service.export_framework(None, default_tree.framework.id, "moodle-csv")
    rows = list(csv.reader(io.StringIO(exported)))
    assert tuple(rows[0]) == moodle_csv.HEADERS
    assert rows[1][1] == "PHARM-TECH" and rows[1][12] == "1"
    assert rows[1][5] == "Not yet competent,Competent with supervision,Competent,Can train others"
    config = json.loads(rows[1][6])
    assert config[0] == {"scaleid": "1"}
    assert [(c["id"], c["proficient"], c["scaledefault"]) for c in config[1:]] == [(1, 0, 0), (2, 0, 0), (3, 1, 1),
                                                                                   (4, 1, 0)]
    assert all(len(r) == 14 for r in rows) and len(rows) == 2 + len(default_tree)
    a101 = next(r for r in rows if r[1] == "A1-01")
    assert a101[0] == "A1" and a101[12] == "0" and a101[9] == "null"

    result = service.import_framework(None, exported.encode(), filename="pt.csv", registration_id=reg.id)
    assert result.format == "moodle-csv"
    back = service.get_tree(None, result.framework.id)
    assert shape(back) == shape(default_tree)
    assert back.framework.scale == default_tree.framework.scale
    assert (back.framework.code, back.framework.name, back.framework.description) == (
        "PHARM-TECH", "Pharmacy Technician", default_tree.framework.description)


def test_native_round_trip_and_the_shipped_file_agree(make, default_tree):
    exported = service.export_framework(None, default_tree.framework.id, "native")
    shipped = json.loads(service.DEFAULT_FRAMEWORK_PATH.read_text())
    tree = read(exported)
    assert [n.data["code"] for n in tree.nodes] == [row[1] for row in shape(default_tree)]
    assert json.loads(exported)["framework"]["scale"] == shipped["framework"]["scale"]


def test_plain_case_package_from_elsewhere(make):
    reg = make.registration()
    result = service.import_framework(None, (DATA / "case_plain_package.json").read_bytes(), registration_id=reg.id)
    fw = result.framework
    assert (fw.code, fw.name, fw.version) == ("c1a0e5b2-4d7f-4e1a-9a3b-0f2e8d6c5b41",
                                              "Sterile Compounding Onboarding", "3.2")
    assert fw.identifier == "c1a0e5b2-4d7f-4e1a-9a3b-0f2e8d6c5b41"
    assert [lvl["code"] for lvl in fw.scale] == [lvl["code"] for lvl in case.DEFAULT_SCALE]
    assert "Example Health System" in fw.source
    tree = service.get_tree(None, fw.id)
    assert shape(tree) == [
        (0, "SC.1", "Cleanroom behaviour", None, None, 0),
        (1, "SC.1.1", "Hand hygiene", "Performs hand hygiene before entering the buffer room.", "SC.1", 0),
        (1, "SC.1.2", "Garbing order", tree.by_id[tree.roots[0].children[1].id].description, "SC.1", 1),
        # No humanCodingScheme in the file: no code is invented.
        (0, "", "Keeps critical sites in first air while withdrawing from vials and ampules.", None, None, 1),
    ]
    assert tree.roots[0].children[1].description.startswith("Dons garb")
    assert tree.roots[0].identifier == "0b6e3f4a-1111-4c2d-8e9f-000000000001"
    assert result.warnings == []
    # The association other than isChildOf is kept and written back as published.
    exported = json.loads(service.export_framework(None, fw.id, "case"))
    assert exported["CFAssociations"] == small_package()["CFAssociations"]


def test_moodle_file_from_moodle(make):
    reg = make.registration()
    result = service.import_framework(None, (DATA / "moodle_framework_export.csv").read_bytes(),
                                      registration_id=reg.id)
    fw = result.framework
    assert (fw.code, fw.name, fw.version) == ("HOSP-ONB", "Hospital technician onboarding", "1")
    assert fw.description == "Onboarding for new hospital technicians."
    assert fw.scale == [{"code": "not_yet_competent", "label": "Not yet competent", "proficient": False},
                        {"code": "competent", "label": "Competent", "proficient": True}]
    tree = service.get_tree(None, fw.id)
    assert shape(tree) == [
        (0, "ONB-1", "Unit-dose services", "Central pharmacy unit-dose services.\nCart fill & cabinets.", None, 0),
        (1, "ONB-1.1", "Cart fill", "Fills cassettes from the fill list.", "ONB-1", 0),
        (1, "ONB-1.2", "ADC restock", None, "ONB-1", 1),
        (0, "ONB-2", "Controlled substances", "Vault and counts", None, 1),
    ]
    assert result.warnings == []
    # Rules, cross-references, exported ids and the HTML descriptions are kept and written back as Moodle had them.
    original = list(csv.reader(io.StringIO((DATA / "moodle_framework_export.csv").read_text())))
    exported = list(csv.reader(io.StringIO(service.export_framework(None, fw.id, "moodle-csv"))))
    assert [row[:12] for row in exported[1:]] == [row[:12] for row in original[1:]]
    assert exported[1][13] == "domain,competency"
    audit = db.session.scalars(select(AuditEntry)).one()
    assert audit.action == "framework.imported" and audit.after["format"] == "moodle-csv"


def test_moodle_csv_semicolons_and_spelling_variants(make):
    text = ("Parent id number;Id number;Shortname;Description;Description format;Scale values;"
            "Scale configuration;Is framework\n"
            ';FW;Framework;;1;"No,Yes";"[{""scaleid"":""9""},{""id"":2,""scaledefault"":1,""proficient"":1}]";1\n'
            ";C1;One;;1;;;0\n")
    tree = read(text)
    assert tree.framework["code"] == "FW" and [n.data["code"] for n in tree.nodes] == ["C1"]


# --- malformed files ----------------------------------------------------------------------------------------


def small_package():
    return json.loads((DATA / "case_plain_package.json").read_text())


def _case_without_document():
    pkg = small_package()
    del pkg["CFDocument"]
    return pkg


def _case_item(pkg, index, **changes):
    pkg["CFItems"][index].update(changes)
    for key, value in changes.items():
        if value is None:
            del pkg["CFItems"][index][key]
    return pkg


def _case_cycle():
    pkg = small_package()
    # SC.1 becomes the child of its own child SC.1.1.
    pkg["CFAssociations"][0]["destinationNodeURI"] = copy.deepcopy(pkg["CFAssociations"][1]["originNodeURI"])
    return pkg


def _case_bad_extension():
    pkg = small_package()
    pkg["CFItems"][1]["extensions"] = {case.EXTENSION_KEY: {"revalidationMonths": "six",
                                                            "evidenceKinds": ["gossip"]}}
    return pkg


def _csv(replace=None):
    rows = [list(moodle_csv.HEADERS),
            ["", "FW", "Framework", "", "2", "No,Yes", '[{"scaleid":"1"},{"id":2,"scaledefault":1,"proficient":1}]',
             "", "", "", "", "", "1", ""],
            ["", "C1", "First", "Line one\nline two", "2", "", "", "", "0", "null", "", "", "0", ""],
            ["C1", "C2", "Second", "", "2", "", "", "", "0", "null", "", "", "0", ""]]
    for (row, col), value in (replace or {}).items():
        rows[row][col] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _csv_without(column):
    rows = list(csv.reader(io.StringIO(_csv())))
    index = moodle_csv.HEADERS.index(column)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([r[:index] + r[index + 1:] for r in rows])
    return out.getvalue()


def _csv_with_row(row):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    return _csv() + out.getvalue()


ITEM2 = "CFItem 0b6e3f4a-1111-4c2d-8e9f-000000000003"
MALFORMED = {
    "empty file": ("", None, None, "empty"),
    "only blank lines": ("\n \n", None, None, "empty"),
    "not JSON": ('{"CFDocument": {"identifier": "x",', "line 1", None, "Not valid JSON"),
    "JSON named file that is not JSON": (("framework.json", "Parent,Id\n"), "line 1", None, "Not valid JSON"),
    "unrecognized JSON": ({"hello": "world"}, None, None, "Unrecognized JSON"),
    "missing CFDocument": (_case_without_document(), "CFPackage", "CFDocument", "Missing"),
    "item without identifier": (_case_item(small_package(), 1, identifier=None), "CFItems[1]", "identifier",
                                "Missing"),
    "item without fullStatement": (_case_item(small_package(), 1, fullStatement=None), ITEM2, "fullStatement",
                                   "Missing"),
    "a cycle": (_case_cycle(), "CFItem 0b6e3f4a-1111-4c2d-8e9f-000000000001", "parent", "cycle"),
    "bad extension values": (_case_bad_extension(), ITEM2, f"extensions.{case.EXTENSION_KEY}.revalidationMonths",
                             "integer"),
    "duplicate codes in CSV": (_csv({(3, 1): "C1"}), "line 5", "ID number", "used twice"),
    "CSV missing a required column": (_csv_without("Short name"), "line 1", "Short name", "Required column"),
    "CSV row with an unknown parent": (_csv({(3, 0): "C9"}), "line 5", "Parent ID number", "'C9'"),
    "bad scale configuration JSON": (_csv({(1, 6): "[{scaleid:1}"}), "line 2", "Scale configuration",
                                     "Not valid JSON"),
    "scale configuration id out of range": (_csv({(1, 6): '[{"scaleid":"1"},{"id":7,"proficient":1}]'}),
                                            "line 2", "Scale configuration", "id 7"),
    "scale without a proficient level": (_csv({(1, 6): '[{"scaleid":"1"},{"id":1,"scaledefault":1}]'}),
                                         "line 2", "Scale configuration", "proficient"),
    "CSV without a framework row": (_csv({(1, 12): "0"}), None, "Is framework", "No framework row"),
    "CSV competency without a short name": (_csv({(2, 2): ""}), "line 3", "Short name", "Missing"),
    "CSV row without an id number": (_csv_with_row(["", "", "Orphan"]), "line 6", "ID number", "Missing"),
    "native: bad evidence kind": ({"format": "pharmacy-tech-pathways/framework",
                                   "framework": {"code": "X", "name": "X", "version": "1",
                                                 "scale": case.DEFAULT_SCALE},
                                   "competencies": [{"code": "X-1", "title": "T", "evidence_kinds": ["gossip"]}]},
                                  "competency X-1", "evidence_kinds[0]", "Must be one of"),
    "native: unknown key": ({"format": "pharmacy-tech-pathways/framework",
                             "framework": {"code": "X", "name": "X", "version": "1", "scale": case.DEFAULT_SCALE},
                             "competencies": [{"code": "X-1", "title": "T", "checklst": ["a"]}]},
                            "competency X-1", "checklst", "Unknown field"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_file_is_refused_and_writes_nothing(make, name):
    content, where, field, message = MALFORMED[name]
    filename = None
    if isinstance(content, tuple):
        filename, content = content
    if isinstance(content, dict):
        content = json.dumps(content)
    with pytest.raises(FrameworkImportError) as caught:
        service.import_framework(None, content.encode(), filename=filename)
    errors = caught.value.errors
    assert errors, name
    match = [e for e in errors if e["where"] == where and e["field"] == field and message in e["message"]]
    assert match, errors
    assert message in str(caught.value) and caught.value.status == 400
    assert counts() == (0, 0)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_every_problem_is_listed_at_once(make):
    text = _csv({(2, 2): "", (3, 0): "C9"})
    with pytest.raises(FrameworkImportError) as caught:
        read(text)
    places = {(e["where"], e["field"]) for e in caught.value.errors}
    assert places == {("line 5", "Parent ID number"), ("line 3", "Short name")}


def test_multiline_descriptions_keep_line_numbers_right(make):
    # Row 3 spans lines 3-4 (a newline inside its description), so the row after it starts on line 5.
    with pytest.raises(FrameworkImportError) as caught:
        read(_csv({(3, 0): "C9"}))
    assert caught.value.errors[0]["where"] == "line 5"


def test_clash_with_an_installed_framework_writes_nothing(make, default_tree):
    before = counts()
    exported = service.export_framework(None, default_tree.framework.id, "case")
    with pytest.raises(FrameworkImportError, match="already exists"):
        service.import_framework(None, exported)
    assert counts() == before
    result = service.import_framework(None, exported, version="2025.1-copy")
    assert result.framework.version == "2025.1-copy"
    assert counts() == (2, 2 * before[1])


def test_moodle_export_refuses_commas_in_scale_labels(make):
    tree = read(json.dumps({
        "format": "pharmacy-tech-pathways/framework",
        "framework": {"code": "X", "name": "X", "version": "1",
                      "scale": [{"code": "a", "label": "Not yet, sorry", "proficient": False},
                                {"code": "b", "label": "Yes", "proficient": True}]},
        "competencies": []}))
    fw = service.create_framework(None, tree, registration_id=None)
    with pytest.raises(FrameworkImportError, match="commas"):
        service.export_framework(None, fw.id, "moodle-csv")


def test_case_export_of_a_framework_made_without_an_identifier(make):
    """Frameworks created outside an import have no identifier; export derives a stable one."""
    import json

    from lti_tool.services import frameworks as framework_service
    from lti_tool.services.framework_io import case

    actor = make.actor(make.course(), "manager")
    fw = Framework(code="LOCAL", name="Local", version="1", scale=[{"code": "ok", "label": "OK", "proficient": True}])
    db.session.add(fw)
    db.session.flush()
    db.session.add(Competency(framework_id=fw.id, code="L-1", title="Local skill"))
    db.session.flush()
    first = json.loads(case.export(framework_service.get_tree(actor, fw.id)))
    second = json.loads(case.export(framework_service.get_tree(actor, fw.id)))
    assert first["CFDocument"]["identifier"] == second["CFDocument"]["identifier"]
    assert [i["humanCodingScheme"] for i in first["CFItems"]] == ["L-1"]
