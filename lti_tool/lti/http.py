"""Outbound HTTP with a timeout on every call: a slow LMS must never hang a worker."""
import requests
from flask import current_app

USER_AGENT = "PharmacyTechPathways-LTI/1.0"


class TimeoutSession(requests.Session):
    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def http_session() -> TimeoutSession:
    return TimeoutSession(current_app.config["LTI_HTTP_TIMEOUT"])
