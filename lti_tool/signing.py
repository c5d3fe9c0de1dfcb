"""Serializers for the tool's signed tokens (session, login state, notices), built once per secret and purpose.

Building one derives its keys; the session token is read and re-issued on every request, so a fresh serializer
each time was a measurable part of a page's cost. They hold no per-call state and are safe to share.
"""
from functools import lru_cache

from flask import current_app
from itsdangerous import URLSafeTimedSerializer


@lru_cache(maxsize=16)
def _timed(secret: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=salt)


def timed_serializer(salt: str) -> URLSafeTimedSerializer:
    """This app's serializer for `salt` (a changed SECRET_KEY gets a new one)."""
    return _timed(current_app.config["SECRET_KEY"], salt)
