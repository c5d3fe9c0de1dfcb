"""Framework files made by other systems (tests/data/third_party, see its README for sources and licences):
import, export, compare field by field, and validate every CASE export against 1EdTech's CASE 1.1 CFPackage
schema (tests/data/schemas)."""
import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest

from lti_tool.services import frameworks as service
from lti_tool.services.framework_io import case

DATA = Path(__file__).parent / "data"
THIRD = DATA / "third_party"
CASE_SCHEMA = json.loads((DATA / "schemas" / "case_v1p1_cfpackage_schema.json").read_text())
CASE_FILES = ("opensalt_sample_framework.json", "opensalt_markdown_framework.json",
              "opensalt_smartlevel_framework.json")
MOODLE_FILE = THIRD / "moodle_lpimportcsv_example.csv"


def test_the_schema_check_includes_date_times():
    # Without rfc3339-validator, jsonschema silently skips "format": "date-time".
    assert case_errors({"CFDocument": {"identifier": "c1a0e5b2-4d7f-4e1a-9a3b-0f2e8d6c5b41", "uri": "u",
                                       "creator": "c", "title": "t", "lastChangeDateTime": "2017-05-25T18:05:33"}})


def case_errors(package: dict) -> list[str]:
    validator = jsonschema.Draft201909Validator(CASE_SCHEMA,
                                                format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(package)]


def as_published(entity: dict) -> dict:
    """An exported entity turned back into what the publisher wrote: our extension removed, fields CASE 1.1 has
    no place for put back from it."""
    out = dict(entity)
    ours = (out.get("extensions") or {}).get(case.EXTENSION_KEY) or {}
    out.update(ours.get(case.NOT_IN_11, {}))
    rest = {k: v for k, v in (out.pop("extensions", None) or {}).items() if k != case.EXTENSION_KEY}
    if rest:
        out["extensions"] = rest
    return out


def normalized(entity: dict) -> dict:
    """CASE has no nulls, sequenceNumber is an integer and lastChangeDateTime has an offset: what some 1.0 servers
    wrote otherwise, normalized (the export does the same)."""
    out = {k: v for k, v in entity.items() if v is not None}
    if isinstance(out.get("sequenceNumber"), str):
        out["sequenceNumber"] = int(out["sequenceNumber"])
    stamp = out.get("lastChangeDateTime")
    if isinstance(stamp, str) and len(stamp) == 19:
        out["lastChangeDateTime"] = stamp + "Z"
    return out


def imported(name, make, version=None):
    reg = make.registration()
    result = service.import_framework(None, (THIRD / name).read_bytes(), filename=name, registration_id=reg.id,
                                      version=version)
    return result, service.get_tree(None, result.framework.id)


def exported_case(framework_id) -> dict:
    return json.loads(service.export_framework(None, framework_id, "case"))


def test_shipped_framework_exports_valid_case_1_1(make):
    fw = service.ensure_default_framework()
    package = exported_case(fw.id)
    assert case_errors(package) == []
    for stale in ("CFPackageURI",):
        assert stale not in package["CFDocument"]
    assert not any("CFDocumentURI" in entity for entity in package["CFItems"] + package["CFAssociations"])
    with_base = json.loads(service.export_framework(None, fw.id, "case", base_uri="https://tool.example.org"))
    assert case_errors(with_base) == []
    assert with_base["CFDocument"]["uri"] == f"https://tool.example.org/ims/case/v1p1/CFDocuments/{fw.identifier}"


@pytest.mark.parametrize("name", CASE_FILES)
def test_case_package_from_opensalt_survives_import_and_export(make, name):
    original = json.loads((THIRD / name).read_text())
    result, tree = imported(name, make, version=Path(name).stem)
    package = exported_case(result.framework.id)
    assert case_errors(package) == []

    # The document: every field as published (1.0-only fields carried in our extension), nothing rewritten.
    assert normalized(as_published(package["CFDocument"])) == normalized(original["CFDocument"])
    assert package["CFDocument"]["creator"] == original["CFDocument"]["creator"]
    # Items: keyed by identifier, every field as published, nothing invented.
    by_id = {i["identifier"]: i for i in package["CFItems"]}
    assert set(by_id) == {i["identifier"] for i in original["CFItems"]}
    for item in original["CFItems"]:
        assert normalized(as_published(by_id[item["identifier"]])) == normalized(item), item["identifier"]
        assert ("abbreviatedStatement" in by_id[item["identifier"]]) == ("abbreviatedStatement" in item)
        assert ("humanCodingScheme" in by_id[item["identifier"]]) == ("humanCodingScheme" in item)
    # Associations: all of them, every type, identifiers and time stamps unchanged.
    assert [normalized(as_published(a)) for a in package["CFAssociations"]] == \
        [normalized(a) for a in original["CFAssociations"]]
    for part in ("CFDefinitions", "CFRubrics"):
        if original.get(part) not in (None, [], {}):
            assert part in package

    # Importing our export again gives the same package.
    again, _ = imported_text(json.dumps(package), make, version=Path(name).stem + "-again")
    repeat = exported_case(again.framework.id)
    for entity in ("CFItems", "CFAssociations"):
        assert [as_published(e) for e in repeat[entity]] == [as_published(e) for e in package[entity]]


def imported_text(text, make, version):
    reg = make.registration()
    result = service.import_framework(None, text, filename="again.json", registration_id=reg.id, version=version)
    return result, service.get_tree(None, result.framework.id)


def test_opensalt_sample_keeps_every_association_type(make):
    result, tree = imported("opensalt_sample_framework.json", make)
    assert result.warnings == []
    package = exported_case(result.framework.id)
    types = sorted({a["associationType"] for a in package["CFAssociations"]})
    assert types == ["exactMatchOf", "exemplar", "isChildOf", "isRelatedTo", "precedes"]
    # exactMatchOf links point into another framework (cross-document) and are kept as they were.
    exact = [a for a in package["CFAssociations"] if a["associationType"] == "exactMatchOf"]
    own = {i["identifier"] for i in package["CFItems"]} | {package["CFDocument"]["identifier"]}
    assert any(a["destinationNodeURI"]["identifier"] not in own for a in exact)
    # What the tool shows: the publisher's codes and statements, the tree from isChildOf.
    assert len(tree) == 16 and all(c.code for c in tree.by_id.values())
    doc = package["CFDocument"]
    assert doc["adoptionStatus"] == json.loads((THIRD / "opensalt_sample_framework.json").read_text())[
        "CFDocument"]["adoptionStatus"]
    assert "CFPackageURI" in doc["extensions"][case.EXTENSION_KEY][case.NOT_IN_11]
    # The export normalizes copies: what is stored stays as the publisher wrote it.
    assert doc["lastChangeDateTime"].endswith("Z")
    assert result.framework.extra["case"]["document"]["lastChangeDateTime"] == json.loads(
        (THIRD / "opensalt_sample_framework.json").read_text())["CFDocument"]["lastChangeDateTime"]


def test_items_without_codes_or_short_statements_get_none_invented(make):
    result, tree = imported("opensalt_smartlevel_framework.json", make)
    assert {c.code for c in tree.by_id.values()} == {""}
    package = exported_case(result.framework.id)
    assert not any("humanCodingScheme" in i or "abbreviatedStatement" in i for i in package["CFItems"])

    result, tree = imported("opensalt_markdown_framework.json", make)
    table = next(c for c in tree.by_id.values() if "table" in c.title)
    assert table.title == "This contains a _table_ in markdown:"  # shown by the first line only
    assert "| data 1 | data 2|" in table.description
    package = exported_case(result.framework.id)
    item = next(i for i in package["CFItems"] if i["identifier"] == table.identifier)
    assert "abbreviatedStatement" not in item and "| Column 1 | Column 2 |" in item["fullStatement"]


def test_shared_human_coding_scheme_is_a_warning(make):
    package = json.loads((THIRD / "opensalt_sample_framework.json").read_text())
    first, second = package["CFItems"][1], package["CFItems"][2]
    second["humanCodingScheme"] = first["humanCodingScheme"]
    reg = make.registration()
    result = service.import_framework(None, json.dumps(package), registration_id=reg.id)
    assert any("shared by more than one item" in w and first["humanCodingScheme"] in w for w in result.warnings)
    out = exported_case(result.framework.id)
    codes = {i["identifier"]: i.get("humanCodingScheme") for i in out["CFItems"]}
    assert codes[first["identifier"]] == codes[second["identifier"]] == first["humanCodingScheme"]
    assert case_errors(out) == []
    # Moodle needs unique ID numbers: the shared code gives way to the identifier there.
    rows = list(csv.reader(io.StringIO(service.export_framework(None, result.framework.id, "moodle-csv"))))
    id_numbers = [r[1] for r in rows[2:]]
    assert len(set(id_numbers)) == len(id_numbers) and first["identifier"] in id_numbers


def moodle_rows(text):
    return [r for r in csv.reader(io.StringIO(text)) if any(r)]


def test_moodle_fixture_survives_import_and_export(make):
    result, tree = imported(MOODLE_FILE.name, make)
    fw = result.framework
    assert (fw.code, fw.name) == ("OECD-CORE", "OECD")
    assert len(tree) == 64
    level1 = next(c for c in tree.by_id.values() if c.code == "level-1")
    assert level1.extra["moodle"]["related"].startswith("S-DT-1,S-DT-2")
    assert fw.extra["moodle"]["taxonomy"] == "competency,competency,competency,competency"
    assert "<p>" not in level1.description  # shown as text

    original = moodle_rows(MOODLE_FILE.read_text(encoding="utf-8"))
    exported = moodle_rows(service.export_framework(None, fw.id, "moodle-csv"))
    assert len(exported) == len(original)
    # Field by field: every column Moodle reads comes back as the file had it (the framework row's Exported id
    # and the competencies' Is framework 0 vs empty are the only differences, both ignored by Moodle).
    # Rows come out in tree order (parents first), so compare them by ID number.
    assert exported[1][:12] == original[1][:12] and exported[1][13] == original[1][13]
    theirs = {row[1]: row for row in original[2:]}
    assert len(theirs) == len(exported) - 2
    for row in exported[2:]:
        assert row[:12] == theirs[row[1]][:12], row[1]
        assert row[13] == theirs[row[1]][13]
    assert exported[1][12] == "1"


GERMAN = ('"ID-Nummer des übergeordneten Elements","ID-Nummer",Kurzname,Beschreibung,Beschreibungsformat,'
          'Skalenwerte,Skalenkonfiguration,"Regeltyp (optional)","Regelergebnis (optional)",'
          '"Regelkonfiguration (optional)","Querverweise auf Kompetenz-ID-Nummern","Exportierte ID (optional)",'
          'Ist-Kompetenzrahmen,Taxonomie')
# French shares the word "Description" with English, in the same place.
FRENCH = ('"Numéro d\'identification parent","Numéro d\'identification","Nom abrégé",Description,'
          '"Format de la description","Valeurs du barème","Configuration du barème","Type de règle (facultatif)",'
          '"Résultat de la règle (facultatif)","Configuration de la règle (facultatif)",'
          '"Numéros d\'identification des compétences liées","ID exporté (facultatif)","Est un référentiel",'
          'Taxonomie')


@pytest.mark.parametrize("header", [GERMAN, FRENCH], ids=["German", "French"])
def test_moodle_file_with_a_translated_header_is_read_by_position(make, header):
    text = MOODLE_FILE.read_text(encoding="utf-8")
    # Moodle writes the header in the site's language; it reads the columns by position.
    translated = header + text[text.index("\n"):]
    reg = make.registration()
    result = service.import_framework(None, translated.encode(), filename="de.csv", registration_id=reg.id)
    english, _ = imported(MOODLE_FILE.name, make)
    theirs = service.get_tree(None, result.framework.id)
    ours = service.get_tree(None, english.framework.id)
    assert [(d, c.code, c.title, c.description, c.extra) for d, c in theirs.walk()] == \
        [(d, c.code, c.title, c.description, c.extra) for d, c in ours.walk()]
