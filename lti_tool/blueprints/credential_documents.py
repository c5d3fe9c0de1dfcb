"""Public documents that the ids inside the tool's credentials dereference to (services.credential_documents)."""
from flask import Blueprint, jsonify, request

from ..services import credential_documents as documents

bp = Blueprint("credential_documents", __name__, url_prefix="/credentials")


def _base() -> str:
    return request.url_root.rstrip("/")


def _json(body, mimetype="application/json"):
    response = jsonify(body)
    response.mimetype = mimetype
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/jwks/<kid>")
def jwk(kid):
    """A VC-JWT's `kid`: the single public JWK (OB 3.0 section 8.2)."""
    return _json(documents.jwk(kid), "application/jwk+json")


@bp.route("/keys/<kid>")
def key(kid):
    """The verificationMethod of embedded Data Integrity proofs: a Multikey document."""
    return _json(documents.key_document(_base(), kid), "application/ld+json")


@bp.route("/achievements/certification/<code>")
def certification(code):
    return _json(documents.certification(_base(), code), "application/ld+json")


@bp.route("/achievements/<identifier>")
def achievement(identifier):
    return _json(documents.achievement(_base(), identifier), "application/ld+json")


@bp.route("/frameworks/<identifier>/scale")
def scale(identifier):
    return _json(documents.scale(_base(), identifier), "application/ld+json")


@bp.route("/organizations/<public_id>")
def organization(public_id):
    return _json(documents.organization(_base(), public_id), "application/ld+json")
