"""CASE 1.1 REST read API: the shipped framework is public, a tenant's framework only when the tenant says so;
responses validate against the CASE 1.1 schema; unknown and private identifiers answer the same 404."""
import json
from pathlib import Path

import jsonschema
import pytest

from lti_tool.extensions import db
from lti_tool.models import AuditEntry
from lti_tool.services import Forbidden, case_api
from lti_tool.services import frameworks as service

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((DATA / "schemas" / "case_v1p1_cfpackage_schema.json").read_text())
API = "/ims/case/v1p1"


def valid_package(package):
    validator = jsonschema.Draft201909Validator(SCHEMA, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)
    return [e.message for e in validator.iter_errors(package)]


@pytest.fixture
def shipped(make):
    framework = service.ensure_default_framework()
    db.session.commit()  # the client's requests run in their own transactions
    return framework


def tenant_framework(make):
    reg = make.registration()
    result = service.import_framework(None, (DATA / "case_plain_package.json").read_bytes(), registration_id=reg.id)
    db.session.commit()
    return reg, result.framework


def test_shipped_framework_is_served_and_its_uris_resolve(client, shipped):
    listing = client.get(f"{API}/CFDocuments")
    assert listing.status_code == 200 and listing.headers["Access-Control-Allow-Origin"] == "*"
    docs = listing.get_json()["CFDocuments"]
    assert [d["identifier"] for d in docs] == [shipped.identifier]
    assert docs[0]["CFPackageURI"]["uri"] == f"http://localhost{API}/CFPackages/{shipped.identifier}"

    package = client.get(docs[0]["CFPackageURI"]["uri"]).get_json()
    assert valid_package(package) == []
    assert package["CFDocument"]["uri"] == f"http://localhost{API}/CFDocuments/{shipped.identifier}"
    assert client.get(package["CFDocument"]["uri"]).get_json()["identifier"] == shipped.identifier
    # Every item's and association's uri answers with that entity.
    item = package["CFItems"][5]
    got = client.get(item["uri"])
    assert got.status_code == 200
    assert got.get_json()["fullStatement"] == item["fullStatement"]
    assert got.get_json()["CFDocumentURI"]["identifier"] == shipped.identifier
    assoc = package["CFAssociations"][5]
    got = client.get(assoc["uri"]).get_json()
    assert (got["identifier"], got["originNodeURI"]) == (assoc["identifier"], assoc["originNodeURI"])


def test_a_tenants_framework_is_private_until_published(client, make, shipped):
    reg, fw = tenant_framework(make)
    item_id = "0b6e3f4a-1111-4c2d-8e9f-000000000001"
    private = [client.get(f"{API}/CFPackages/{fw.identifier}"), client.get(f"{API}/CFDocuments/{fw.identifier}"),
               client.get(f"{API}/CFItems/{item_id}")]
    unknown = client.get(f"{API}/CFItems/00000000-0000-4000-8000-000000000000")
    assert [r.status_code for r in private] == [404, 404, 404]
    assert all(r.get_json() == unknown.get_json() for r in private)  # private looks exactly like absent
    assert unknown.get_json()["imsx_codeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == \
        "unknownobject"
    assert fw.identifier not in client.get(f"{API}/CFDocuments").get_data(as_text=True)

    case_api.set_public(None, fw.id, True)
    db.session.commit()
    package = client.get(f"{API}/CFPackages/{fw.identifier}").get_json()
    assert valid_package(package) == []
    assert package["CFDocument"]["creator"] == "Example Health System Pharmacy Education"
    assert client.get(f"{API}/CFItems/{item_id}").get_json()["humanCodingScheme"] == "SC.1"
    assert {d["identifier"] for d in client.get(f"{API}/CFDocuments").get_json()["CFDocuments"]} == {
        shipped.identifier, fw.identifier}
    assert db.session.query(AuditEntry).filter_by(action="framework.published").one().registration_id == reg.id


def admin(make, course):
    actor = make.actor(course, "manager")
    actor.person.is_admin = True
    return actor


def test_only_a_tenants_administrator_publishes_its_own_framework(make):
    reg, fw = tenant_framework(make)
    course = make.course(registration=reg)
    with pytest.raises(Forbidden):
        case_api.set_public(make.actor(course, "manager"), fw.id, True)
    assert not fw.is_public
    with pytest.raises(service.NotFound):
        case_api.set_public(admin(make, make.course()), fw.id, True)  # another tenant's administrator
    assert not fw.is_public
    case_api.set_public(admin(make, course), fw.id, True)
    assert fw.is_public


def test_overlong_identifier_is_refused(client):
    assert client.get(f"{API}/CFItems/{'x' * 300}").status_code == 400


def test_cli_publishes_and_withdraws(app, make, client):
    _, fw = tenant_framework(make)
    runner = app.test_cli_runner()
    res = runner.invoke(args=["frameworks", "publish", str(fw.id)])
    assert res.exit_code == 0 and "public on the CASE API" in res.output
    assert client.get(f"{API}/CFPackages/{fw.identifier}").status_code == 200
    res = runner.invoke(args=["frameworks", "publish", str(fw.id), "--private"])
    assert res.exit_code == 0 and "no longer public" in res.output
    assert client.get(f"{API}/CFPackages/{fw.identifier}").status_code == 404
    shipped = service.ensure_default_framework()
    db.session.commit()
    res = runner.invoke(args=["frameworks", "publish", str(shipped.id), "--private"])
    assert res.exit_code == 1 and "always public" in res.output
