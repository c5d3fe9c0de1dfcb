"""The one way the tool calls a platform (dynamic registration, JWKS, OAuth2 token, AGS, NRPS).

Every URL the tool calls was named by a platform, and anyone holding a registration link, or any registered
platform, can name one. So each call:
- goes to http(s) only, with a timeout on connecting and an overall deadline on reading the answer;
- reads at most LTI_HTTP_MAX_BYTES of the answer;
- follows a redirect only to the same origin (scheme, host and port), so an Authorization header is never sent
  anywhere the caller did not name;
- in production, refuses loopback, private, link-local (incl. cloud metadata) and other special addresses unless
  the address is in LTI_OUTBOUND_ALLOW. The check is made on the address the socket actually connected to, so a
  host name that resolves (or re-resolves) to an internal address is refused too;
- ignores proxy settings from the environment (the checked address must be the platform's).
Callers show an OutboundError's message; they never echo the platform's answer to a page.
"""
import ipaddress
import time
from urllib.parse import urljoin, urlsplit

import requests
from flask import current_app
from flask_babel import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

USER_AGENT = "PharmacyTechPathways-LTI/1.0"
MAX_REDIRECTS = 3


class OutboundError(Exception):
    """A call to a platform was refused or failed; the message names no part of the platform's answer."""


class BlockedAddress(OutboundError):
    pass


def _networks(allow) -> list:
    return [ipaddress.ip_network(item.strip(), strict=False) for item in allow or () if str(item).strip()]


def address_refused(ip: str, allow) -> bool:
    """True for addresses a platform must not make the tool call, unless the operator allowed them."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    if any(address in net for net in _networks(allow)):
        return False
    return not address.is_global or address.is_multicast


class _Guard:
    """Checks the peer of each new connection against the session's allow list."""

    allow: tuple = ()

    def _new_conn(self):
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if address_refused(peer, self.allow):
            sock.close()
            raise BlockedAddress(f"The address {self.host} ({peer}) is not one the tool may call. An operator can "
                                 "allow it with LTI_OUTBOUND_ALLOW.")
        return sock


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allow):
        self.allow = tuple(allow or ())
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        allow = self.allow
        http_conn = type("GuardedHTTPConnection", (_Guard, HTTPConnection), {"allow": allow})
        https_conn = type("GuardedHTTPSConnection", (_Guard, HTTPSConnection), {"allow": allow})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class PlatformSession(requests.Session):
    """A requests.Session with the rules above; pylti1p3 is handed one of these for its own calls."""

    def __init__(self, timeout: float, max_bytes: int, allow=()):
        super().__init__()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.trust_env = False
        self.headers["User-Agent"] = USER_AGENT
        adapter = _GuardedAdapter(allow)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, **kwargs):
        if urlsplit(str(url)).scheme not in ("http", "https") or not urlsplit(str(url)).hostname:
            raise OutboundError(_("The platform named an address that is not an http(s) URL."))
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        deadline = time.monotonic() + 2 * self.timeout
        start = url
        for _attempt in range(MAX_REDIRECTS + 1):
            try:
                resp = super().request(method, url, **kwargs)
            except requests.RequestException as exc:
                raise OutboundError(f"The platform at {_host(url)} could not be reached "
                                    f"({type(exc).__name__}).") from exc
            if not resp.is_redirect:
                return self._read(resp, deadline)
            target = urljoin(url, resp.headers.get("Location", ""))
            resp.close()
            if _origin(target) != _origin(start):
                raise OutboundError(f"The platform at {_host(start)} redirected the tool to another site, "
                                    "which the tool does not follow.")
            if method.upper() not in ("GET", "HEAD") and resp.status_code not in (307, 308):
                raise OutboundError(f"The platform at {_host(start)} redirected a {method.upper()} request.")
            url = target
        raise OutboundError(f"The platform at {_host(start)} redirected the tool too many times.")

    def _read(self, resp, deadline):
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise OutboundError(f"The answer from {_host(resp.url)} is larger than the tool accepts "
                                        f"({self.max_bytes // 1024} KB).")
                if time.monotonic() > deadline:
                    raise OutboundError(f"The answer from {_host(resp.url)} took too long.")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise OutboundError(f"The answer from {_host(resp.url)} could not be read "
                                f"({type(exc).__name__}).") from exc
        finally:
            resp.close()
        resp._content = b"".join(chunks)
        return resp


def _host(url) -> str:
    return urlsplit(str(url)).netloc or "?"


def http_session() -> PlatformSession:
    config = current_app.config
    return PlatformSession(config["LTI_HTTP_TIMEOUT"], config["LTI_HTTP_MAX_BYTES"],
                           config.get("LTI_OUTBOUND_ALLOW") or ())

