"""W3C Data Integrity proofs with the eddsa-rdfc-2022 cryptosuite, for credentials embedded in a CLR.

1EdTech's CLR 2.0 validator checks every AchievementCredential inside a ClrCredential for a proof of its own
(EmbeddedProofProbe: a DataIntegrityProof with cryptosuite eddsa-rdfc-2022, proofPurpose assertionMethod, and a
verificationMethod URL whose document has the issuer as `controller` and an Ed25519 `publicKeyMultibase`).

The algorithm (vc-di-eddsa, section 3.3): RDFC-1.0 canonical N-Quads of the document without its proof and of the
proof options (with the document's @context); hashData = SHA-256(options) || SHA-256(document); the Ed25519
signature of hashData, multibase base58btc, is the proofValue. JSON-LD contexts are never fetched: the ones the
credentials use are vendored in lti_tool/data/jsonld (copies of the documents published at the URLs below).

The Ed25519 key is derived (HKDF-SHA256) from the tool's current RSA signing key, so it rotates with it and needs
no storage of its own; its public half is served at /credentials/keys/<kid> (verification_method()).
"""
import hashlib
import json
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pyld import jsonld

CONTEXT_DIR = Path(__file__).resolve().parent.parent / "data" / "jsonld"
CONTEXTS = {
    "https://www.w3.org/ns/credentials/v2": "credentials-v2.json",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": "ob-v3p0-context-3.0.3.json",
    "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json": "clr_context_2.0.1.json",
    "https://w3id.org/security/data-integrity/v2": "security-data-integrity-v2.json",
    "https://w3id.org/security/multikey/v1": "security-multikey-v1.json",
}
CRYPTOSUITE = "eddsa-rdfc-2022"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
_ED25519_PUB = b"\xed\x01"  # multicodec prefix of an Ed25519 public key
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class UnknownContext(ValueError):
    """A credential names a JSON-LD context the tool does not carry (it never fetches one)."""


@cache
def _context(url: str) -> dict:
    name = CONTEXTS.get(url)
    if name is None:
        raise UnknownContext(f"JSON-LD context {url!r} is not one the tool carries.")
    return json.loads((CONTEXT_DIR / name).read_text(encoding="utf-8"))


def _loader(url, options=None):
    return {"contextUrl": None, "documentUrl": url, "document": _context(url)}


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _B58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def signing_key(tool_key) -> Ed25519PrivateKey:
    """The Ed25519 key belonging to one of the tool's RSA keys (derived, so it needs no storage)."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"pharmacy-tech-pathways eddsa-rdfc-2022",
                info=tool_key.kid.encode()).derive(tool_key.private_pem.encode()
                                                   if isinstance(tool_key.private_pem, str)
                                                   else tool_key.private_pem)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_multibase(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + b58encode(_ED25519_PUB + raw)


def verification_method(base: str, kid: str) -> str:
    return f"{base}/credentials/keys/{kid}"


def key_document(base: str, tool_key, controller: str) -> dict:
    """The Multikey document a verifier dereferences the proof's verificationMethod to."""
    return {"@context": [MULTIKEY_CONTEXT], "id": verification_method(base, tool_key.kid), "type": "Multikey",
            "controller": controller, "publicKeyMultibase": public_multibase(signing_key(tool_key).public_key())}


def _canonical(document: dict) -> bytes:
    return jsonld.normalize(document, {"algorithm": "URDNA2015", "format": "application/n-quads",
                                       "documentLoader": _loader, "safe": True}).encode("utf-8")


def _hash_data(document: dict, options: dict) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = {**options, "@context": document["@context"]}
    return hashlib.sha256(_canonical(config)).digest() + hashlib.sha256(_canonical(unsecured)).digest()


def add_proof(document: dict, base: str, tool_key, created: str) -> dict:
    """The document with a DataIntegrityProof (eddsa-rdfc-2022, assertionMethod) signed by the tool."""
    options = {"type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE, "created": created,
               "verificationMethod": verification_method(base, tool_key.kid), "proofPurpose": "assertionMethod"}
    signature = signing_key(tool_key).sign(_hash_data(document, options))
    # A list: the OB 3.0 schema types `proof` as an array (a proof set of one).
    return {**document, "proof": [{**options, "proofValue": "z" + b58encode(signature)}]}


def check_proof(document: dict, public: Ed25519PublicKey) -> bool:
    """True when the document's proof verifies with this Ed25519 public key."""
    proof = document.get("proof")
    proof = proof[0] if isinstance(proof, list) and len(proof) == 1 else proof
    if not isinstance(proof, dict) or proof.get("cryptosuite") != CRYPTOSUITE:
        return False
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        return False
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    try:
        public.verify(b58decode(value[1:]), _hash_data(document, options))
    except Exception:  # noqa: BLE001 - any failure means "does not verify"
        return False
    return True
