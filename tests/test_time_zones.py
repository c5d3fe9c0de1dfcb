"""Times in the viewer's zone: the LMS's (custom parameter at launch), else the tenant's, else the browser's."""
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from lti_tool.extensions import db
from lti_tool.models import Person, Registration
from lti_tool.services import settings

CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"


def _launch(platform, http, live_server, sub, custom=None):
    extra = (lambda body: {**body, CUSTOM: custom}) if custom is not None else None
    resp, _, _ = platform.launch(http, live_server, sub=sub, claims=extra)
    assert resp.status_code == 303, resp.text
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    return token


def _person(app, sub):
    with app.app_context():
        person = db.session.scalar(db.select(Person).where(Person.sub == sub))
        return person.time_zone, person.time_zone_source


def test_the_lms_zone_is_kept_and_shown(app, live_server, platform, registered, http):
    _launch(platform, http, live_server, "tz-lms", {"timezone": "America/Los_Angeles"})
    assert _person(app, "tz-lms") == ("America/Los_Angeles", "lms")
    with app.app_context():
        person = db.session.scalar(db.select(Person).where(Person.sub == "tz-lms"))
        zone = settings.viewer_time_zone(person, person.registration)
        assert datetime(2026, 12, 1, 18, 0, tzinfo=UTC).astimezone(zone).strftime("%H %Z") == "10 PST"
        assert not settings.wants_browser_zone(person, person.registration)
    # A later launch without the parameter, or with Canvas's unsubstituted variable, keeps it.
    _launch(platform, http, live_server, "tz-lms", {"timezone": "$Person.address.timezone"})
    _launch(platform, http, live_server, "tz-lms")
    assert _person(app, "tz-lms") == ("America/Los_Angeles", "lms")
    _launch(platform, http, live_server, "tz-lms", {"timezone": "America/Chicago"})
    assert _person(app, "tz-lms") == ("America/Chicago", "lms")


def test_a_made_up_zone_from_the_lms_is_ignored(app, live_server, platform, registered, http):
    _launch(platform, http, live_server, "tz-bad", {"timezone": "Mars/Olympus_Mons"})
    assert _person(app, "tz-bad") == (None, None)


def _page_and_script(http, live_server, token):
    page = http.get(f"{live_server}/me/", params={"lt": token})
    assert page.status_code == 200
    found = re.search(r'<script src="[^"]*time_zone\.js" data-url="([^"]+)" data-csrf="([^"]+)"', page.text)
    return found


def test_the_browser_reports_its_zone_when_nothing_else_says(app, live_server, platform, registered, http):
    token = _launch(platform, http, live_server, "tz-browser")
    found = _page_and_script(http, live_server, token)
    assert found, "the page asks the browser for its zone"
    url, csrf = found.group(1).replace("&amp;", "&"), found.group(2)
    target = live_server + url if url.startswith("/") else url

    refused = http.post(target, data={"time_zone": "Not/AZone", "csrf_token": csrf})
    assert refused.status_code == 400 and refused.json()["error"] == "Not a known time zone."
    forged = http.post(target, data={"time_zone": "America/Denver", "csrf_token": "x" * 40})
    assert forged.status_code == 400
    assert _person(app, "tz-browser") == (None, None), "nothing written on bad input"

    assert http.post(target, data={"time_zone": "America/Denver", "csrf_token": csrf}).status_code == 204
    assert _person(app, "tz-browser") == ("America/Denver", "browser")
    assert _page_and_script(http, live_server, token) is None, "asked once"

    # The LMS's zone wins over the browser's, and the browser cannot replace it afterwards.
    token = _launch(platform, http, live_server, "tz-browser", {"timezone": "America/Phoenix"})
    assert _person(app, "tz-browser") == ("America/Phoenix", "lms")
    assert http.post(target, data={"time_zone": "America/Denver", "csrf_token": csrf}).status_code == 204
    assert _person(app, "tz-browser") == ("America/Phoenix", "lms")


def test_the_tenant_setting_beats_the_browser_but_not_the_lms(app, live_server, platform, registered, http):
    token = _launch(platform, http, live_server, "tz-tenant")
    with app.app_context():
        registration = db.session.scalar(db.select(Registration))
        registration.settings = {**(registration.settings or {}), "time_zone": "America/Anchorage"}
        person = db.session.scalar(db.select(Person).where(Person.sub == "tz-tenant"))
        person.time_zone, person.time_zone_source = "America/Denver", "browser"
        db.session.commit()
        assert str(settings.viewer_time_zone(person, registration)) == "America/Anchorage"
        person.time_zone, person.time_zone_source = "America/Denver", "lms"
        assert str(settings.viewer_time_zone(person, registration)) == "America/Denver"
        fresh = Person(registration_id=registration.id, sub="nobody")
        assert not settings.wants_browser_zone(fresh, registration), "the tenant said"
    assert _page_and_script(http, live_server, token) is None


def test_a_real_browser_reports_its_zone_once(app, live_server, platform, registered, http):
    """js/time_zone.js in Debian's chromium, emulating a browser in Denver."""
    from tests.support.browser import chromium

    token = _launch(platform, http, live_server, "tz-chromium")
    with chromium() as browser:
        context = browser.new_context(timezone_id="America/Denver")
        page = context.new_page()
        with page.expect_response(lambda r: r.url.startswith(live_server + "/time-zone")) as answer:
            page.goto(f"{live_server}/me/?lt={token}")
        assert answer.value.status == 204
        context.close()
    assert _person(app, "tz-chromium") == ("America/Denver", "browser")
