"""CASE 1.1 REST read API (1EdTech Competencies and Academic Standards Exchange): public, read-only, JSON.

    GET /ims/case/v1p1/CFDocuments            the public frameworks' documents
    GET /ims/case/v1p1/CFDocuments/<id>       one document (with its CFPackageURI)
    GET /ims/case/v1p1/CFPackages/<id>        the whole package: document, items, associations
    GET /ims/case/v1p1/CFItems/<id>           one item (with its CFDocumentURI)
    GET /ims/case/v1p1/CFAssociations/<id>    one association (with its CFDocumentURI)

Which frameworks are public: services.case_api. Errors use CASE's imsx_StatusInfo shape.
"""
from flask import Blueprint, jsonify, request

from ..services import NotFound, case_api

bp = Blueprint("case_api", __name__, url_prefix="/ims/case/v1p1")
MAX_ID = 100


def _base() -> str:
    return request.url_root.rstrip("/")


def _json(body, status=200):
    response = jsonify(body)
    response.status_code = status
    # A read-only public API: other CASE consumers may call it from a browser.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _status(code: int, minor: str, description: str):
    body = {"imsx_codeMajor": "failure", "imsx_severity": "error", "imsx_description": description,
            "imsx_codeMinor": {"imsx_codeMinorField": [{"imsx_codeMinorFieldName": "sourcedId",
                                                        "imsx_codeMinorFieldValue": minor}]}}
    response = _json(body, code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _one(getter, identifier):
    if len(identifier) > MAX_ID:
        return _status(400, "invalid_uuid", "The identifier is too long to be a CASE identifier.")
    try:
        return _json(getter(identifier, _base()))
    except NotFound as exc:
        return _status(404, "unknownobject", exc.message)


@bp.route("/CFDocuments")
def documents():
    return _json(case_api.documents(_base()))


@bp.route("/CFDocuments/<identifier>")
def document(identifier):
    return _one(case_api.document, identifier)


@bp.route("/CFPackages/<identifier>")
def package(identifier):
    return _one(case_api.package, identifier)


@bp.route("/CFItems/<identifier>")
def item(identifier):
    return _one(case_api.item, identifier)


@bp.route("/CFAssociations/<identifier>")
def association(identifier):
    return _one(case_api.association, identifier)
