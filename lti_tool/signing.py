"""Serializers for the tool's signed tokens (session, login state, notices), built once per secret and purpose.

Building one derives its keys; the session token is read and re-issued on every request, so a fresh serializer
each time was a measurable part of a page's cost. They hold no per-call state and are safe to share.
"""
from functools import lru_cache

from flask import current_app
from itsdangerous import Serializer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode


@lru_cache(maxsize=64)
def _derived(signer_class, secret_key: bytes, salt, key_derivation: str, digest_method) -> bytes:
    signer = signer_class(secret_key, salt=salt, key_derivation=key_derivation, digest_method=digest_method)
    return super(_KeyOnce, signer).derive_key(secret_key)


class _KeyOnce(TimestampSigner):
    """itsdangerous derives the signing key (a hash of salt and secret) again for every token it signs or checks,
    and makes a new signer for each: the key is the same every time, so it is derived once."""

    def derive_key(self, secret_key=None) -> bytes:
        secret_key = self.secret_keys[-1] if secret_key is None else secret_key
        return _derived(type(self), secret_key, self.salt, self.key_derivation, self.digest_method)


class _TokenSerializer(URLSafeTimedSerializer):
    default_signer = _KeyOnce

    def dump_payload(self, obj) -> bytes:
        # Never compressed: the tokens are short and mostly random, so zlib rarely shortened them and always cost a
        # compression. Compressed tokens issued before still load (URLSafeSerializerMixin.load_payload).
        return base64_encode(Serializer.dump_payload(self, obj))


@lru_cache(maxsize=16)
def _timed(secret: str, salt: str) -> URLSafeTimedSerializer:
    return _TokenSerializer(secret, salt=salt)


def timed_serializer(salt: str) -> URLSafeTimedSerializer:
    """This app's serializer for `salt` (a changed SECRET_KEY gets a new one)."""
    return _timed(current_app.config["SECRET_KEY"], salt)
