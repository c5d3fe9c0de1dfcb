"""lti/http.py, the one way the tool calls a platform: which addresses it refuses, redirects, limits."""
import pytest

from lti_tool.lti.http import BlockedAddress, OutboundError, PlatformSession, address_refused
from tests.support.hostile import HostilePlatform, redirect_to


@pytest.mark.parametrize("ip, allow, refused", [
    ("93.184.215.14", (), False),                 # a public address
    ("2606:2800:21f:cb07::1", (), False),
    ("127.0.0.1", (), True),                      # loopback
    ("::1", (), True),
    ("10.1.2.3", (), True),                       # private
    ("172.16.0.9", (), True),
    ("192.168.1.20", (), True),
    ("100.64.0.1", (), True),                     # carrier-grade NAT
    ("169.254.169.254", (), True),                # link-local: cloud metadata
    ("fd00:ec2::254", (), True),                  # AWS metadata over IPv6 (unique local)
    ("fe80::1%eth0", (), True),
    ("::ffff:127.0.0.1", (), True),               # IPv4-mapped loopback
    ("0.0.0.0", (), True),
    ("224.0.0.1", (), True),                      # multicast
    ("10.20.3.4", ("10.20.0.0/16",), False),      # allowed by the operator
    ("10.21.3.4", ("10.20.0.0/16",), True),
    ("127.0.0.1", ("127.0.0.1",), False),
    ("::ffff:127.0.0.1", ("127.0.0.1",), False),
])
def test_which_addresses_are_refused(ip, allow, refused):
    assert address_refused(ip, allow) is refused


@pytest.fixture(scope="module")
def server():
    h = HostilePlatform()
    yield h
    h.close()


@pytest.fixture
def lms(server):
    server.hits.clear()
    server.routes.clear()
    return server


def session(allow=("127.0.0.1",), max_bytes=64 * 1024):
    return PlatformSession(2.0, max_bytes, allow)


def test_production_defaults_refuse_loopback_before_sending_anything(lms):
    with pytest.raises(BlockedAddress):
        session(allow=()).get(lms.base + "/jwks")
    assert lms.hits == []


def test_same_origin_redirects_are_followed_others_are_not(lms):
    lms.routes["/moved"] = redirect_to(lms.base + "/jwks")
    assert session().get(lms.base + "/moved").json()["keys"]
    other_origin = lms.base.replace("127.0.0.1", "localhost")
    lms.routes["/away"] = redirect_to(other_origin + "/jwks")
    with pytest.raises(OutboundError, match="another site"):
        session().get(lms.base + "/away", headers={"Authorization": "Bearer secret"})
    assert [h["path"] for h in lms.hits] == ["/moved", "/jwks", "/away"], "the other origin was never called"
    lms.routes["/post-moved"] = redirect_to(lms.base + "/jwks", status=302)
    with pytest.raises(OutboundError, match="redirected a POST"):
        session().post(lms.base + "/post-moved", data={"a": "b"})


def test_answers_are_size_limited_and_only_http_is_spoken(lms):
    from werkzeug.wrappers import Response

    lms.routes["/huge"] = lambda request: Response(b"x" * 200_000)
    with pytest.raises(OutboundError, match="larger than the tool accepts"):
        session().get(lms.base + "/huge")
    for url in ("file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.org/x", "http:///nohost"):
        with pytest.raises(OutboundError, match="not an http"):
            session().get(url)
