"""Languages (lti_tool/i18n.py): the Spanish catalog is complete and matches the code, the language follows the
launch's locale claim unless the person picked one in the tool, the switch in the header, dates in Spanish, and
e-mails in each recipient's language."""
import gettext
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask_babel import force_locale, get_locale
from sqlalchemy import select

from lti_tool import formatting, i18n
from lti_tool.extensions import db
from lti_tool.models import Person, SentMessage
from lti_tool.services import reminders
from tests.support.platform import CANVAS_ROLES, CLAIM
from tests.test_admin_pages import Browser

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "lti_tool" / "translations"
PO = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.mo"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def catalog():
    with PO.open("rb") as fh:
        return read_po(fh, locale="es")


def source_messages() -> set:
    """Every msgid the code and templates mark, extracted now with babel.cfg's rules (as `pybabel extract`)."""
    method_map = [("lti_tool/**.py", "python"), ("lti_tool/templates/**.html", "jinja2"),
                  ("lti_tool/templates/**.txt", "jinja2")]
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords=KEYWORDS, options_map={"lti_tool/templates/**": {}}):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_babel_cfg_names_what_the_test_extracts():
    text = (ROOT / "babel.cfg").read_text()
    assert "[python: lti_tool/**.py]" in text and "[jinja2: lti_tool/templates/**.html]" in text
    assert "[jinja2: lti_tool/templates/**.txt]" in text and "-k N_" in text


def test_spanish_catalog_has_no_untranslated_or_fuzzy_entry():
    cat = catalog()
    assert not cat.fuzzy, "the catalog header is marked fuzzy: gettext would skip the whole file"
    problems = []
    for message in cat:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(s and s.strip() for s in strings):
            problems.append(message.id)
        # Every placeholder the translation uses must exist in the English (a typo would raise at run time).
        source = set(PLACEHOLDER.findall(" ".join(message.id if isinstance(message.id, tuple) else (message.id,))))
        if not set(PLACEHOLDER.findall(" ".join(strings))) <= source:
            problems.append(("placeholder", message.id))
    assert not problems, problems[:20]
    # Babel's (CLDR's) Spanish plural rule, so `pybabel update` keeps it: one, many (millions), other.
    assert cat.num_plurals == 3


def test_every_marked_string_is_in_the_catalog_and_nothing_stale():
    ids = {m.id for m in catalog() if m.id}
    source = source_messages()
    missing = sorted(map(str, source - ids))
    stale = sorted(map(str, ids - source))
    assert not missing, f"run pybabel extract/update and translate: {missing[:20]}"
    assert not stale, f"run pybabel update (these are no longer used): {stale[:20]}"


def test_compiled_catalog_matches_the_po():
    """The .mo is committed (nothing to compile at install); it must say what the .po says."""
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    for message in catalog():
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            assert compiled.ngettext(message.id[0], message.id[1], 1) == message.string[0], message.id
            assert compiled.ngettext(message.id[0], message.id[1], 5) == message.string[-1], message.id
        else:
            assert compiled.gettext(message.id) == message.string, message.id


def test_supported_language_tags():
    assert i18n.supported("es-MX") == "es" and i18n.supported("es_419") == "es" and i18n.supported("ES") == "es"
    assert i18n.supported("en-US") == "en"
    assert i18n.supported("fr-CA") is None and i18n.supported("") is None and i18n.supported(None) is None


def test_browser_language_is_used_without_a_choice(app):
    with app.test_request_context("/", headers={"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}):
        assert str(get_locale()) == "es"
    with app.test_request_context("/", headers={"Accept-Language": "fr-FR"}):
        assert str(get_locale()) == "en"


def test_dates_and_spans_in_spanish(app):
    moment = datetime(2026, 11, 30, 19, 30, tzinfo=UTC)
    with app.app_context(), force_locale("es"):
        assert formatting.us_date(date(2026, 11, 30)) == "30 nov 2026"
        assert formatting.us_date(date(2026, 9, 3)) == "3 sept 2026"
        assert formatting.us_datetime(moment, "America/Chicago") == "30 nov 2026, 1:30 p. m. CST"
        assert formatting.ago(moment - timedelta(days=3), now=moment) == "hace 3 días"
        assert formatting.ago(moment + timedelta(hours=1, minutes=5), now=moment) == "en 1 hora"
        assert formatting.until(moment + timedelta(minutes=5), now=moment) == "en 5 minutos"
    with app.app_context(), force_locale("en"):
        assert formatting.us_date(date(2026, 11, 30)) == "Nov 30, 2026"
        assert formatting.us_datetime(moment, "America/Chicago") == "Nov 30, 2026, 1:30 PM CST"
        assert formatting.ago(moment - timedelta(days=3), now=moment) == "3 days ago"


def test_kept_catalog_gives_flask_babels_text_and_follows_a_forced_locale(app):
    """i18n.gettext keeps the catalog in g: inside one request a forced locale (an e-mail in the recipient's
    language) and the way back must each give Flask-Babel's own text."""
    import flask_babel

    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        spanish = i18n.gettext("Achieved")
        assert spanish == flask_babel.gettext("Achieved") == "Obtenida"
        assert i18n.gettext("for %(code)s", code="<b>") == flask_babel.gettext("for %(code)s", code="<b>")
        assert i18n.ngettext("%(num)d draft", "%(num)d drafts", 2) == flask_babel.ngettext(
            "%(num)d draft", "%(num)d drafts", 2)
        with force_locale("en"):
            assert i18n.gettext("Achieved") == flask_babel.gettext("Achieved") == "Achieved"
        assert i18n.gettext("Achieved") == "Obtenida"
    with app.app_context():  # no request: Flask-Babel's default language
        assert i18n.gettext("Achieved") == flask_babel.gettext("Achieved") == "Achieved"


def test_a_template_rendered_in_a_forced_locale_uses_that_catalog(app):
    """Templates translate through the catalog of the render (i18n's context processor), escaping as Jinja's
    newstyle gettext does."""
    from flask import render_template_string

    page = '{{ _("Achieved") }}|{{ _("for %(code)s", code=code) }}|{{ ngettext("%(num)d draft", "%(num)d drafts", 1) }}'
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        spanish = render_template_string(page, code="<b>")
        with force_locale("en"):
            english = render_template_string(page, code="<b>")
    assert spanish.startswith("Obtenida|") and "&lt;b&gt;" in spanish and "<b>" not in spanish
    assert english == "Achieved|for &lt;b&gt;|1 draft"


# --- the language of a session ----------------------------------------------------------------------------

def launch(app, platform, http, base, locale=None, sub="tech-1", roles=None):
    extra = {CLAIM + "launch_presentation": {"document_target": "iframe", "locale": locale}} if locale else {}
    resp, _auth, _body = platform.launch(http, base, roles=roles or CANVAS_ROLES["student"], sub=sub, **extra)
    assert resp.status_code == 303, resp.text[:2000]
    return Browser(app, http, base, parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0])


def person(app, sub):
    with app.app_context():
        row = db.session.scalars(select(Person).where(Person.sub == sub)).one()
        return row.language, row.launch_language


def test_the_launch_locale_sets_the_language(app, platform, registered, live_server, http):
    tech = launch(app, platform, http, live_server, "es-MX")
    page = tech.get("/app/")
    assert page.status_code == 200 and '<html lang="es">' in page.text
    assert "Requiere su atención" in page.page and "Needs your attention" not in page.page
    assert "Saltar al contenido" in page.page
    assert person(app, "tech-1") == (None, "es")
    # A later launch in English (the person changed the LMS's language) follows it.
    import requests
    with requests.Session() as again:
        english = launch(app, platform, again, live_server, "en-US")
        assert '<html lang="en">' in english.get("/app/").text
    assert person(app, "tech-1") == (None, "en")


def test_no_locale_claim_keeps_the_last_one_and_unknown_ones_fall_back(app, platform, registered, live_server,
                                                                       http):
    import requests
    launch(app, platform, http, live_server, "es-419")
    with requests.Session() as again:
        tech = launch(app, platform, again, live_server)  # no launch_presentation locale
        assert '<html lang="es">' in tech.get("/app/").text
    with requests.Session() as third:
        tech = launch(app, platform, third, live_server, "fr-CA")  # not shipped: the browser's, else English
        assert person(app, "tech-1") == (None, "es"), "an unknown locale keeps what was known"
        assert '<html lang="es">' in tech.get("/app/").text


def test_the_switch_persists_and_wins_over_the_launch(app, platform, registered, live_server, http):
    tech = launch(app, platform, http, live_server, "es-MX")
    page = tech.get("/me/evidence", kind="cross_training")
    assert 'name="language" value="en"' in page.text
    assert 'value="es" lang="es" class="link-button" aria-pressed="true"' in page.text
    back = tech.post("/app/language", {"language": "en", "next": "/me/evidence?kind=cross_training"})
    assert back.status_code == 303
    target = urlsplit(back.headers["Location"])
    assert target.path == "/me/evidence" and parse_qs(target.query)["kind"] == ["cross_training"]
    shown = tech.follow(back)
    assert '<html lang="en">' in shown.text and "The tool now shows in English." in shown.page
    assert "My evidence" in shown.page
    assert person(app, "tech-1") == ("en", "es")
    # The next launch still says es-MX: the person's pick wins.
    import requests
    with requests.Session() as again:
        relaunched = launch(app, platform, again, live_server, "es-MX")
        assert '<html lang="en">' in relaunched.get("/app/").text
    # And back to Spanish.
    spanish = tech.follow(tech.post("/app/language", {"language": "es", "next": "/app/"}))
    assert "La herramienta ahora se muestra en español." in spanish.page and '<html lang="es">' in spanish.text


def test_the_switch_refuses_bad_input_and_never_leaves_the_tool(app, platform, registered, live_server, http):
    tech = launch(app, platform, http, live_server, "en-US")
    for bad in ("fr", "ES", "", "es-MX"):
        refused = tech.post("/app/language", {"language": bad, "next": "/app/"})
        assert refused.status_code == 400 and "Choose English or Spanish." in refused.page
    assert person(app, "tech-1") == (None, "en"), "a refused switch writes nothing"
    for outside in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        moved = tech.post("/app/language", {"language": "es", "next": outside})
        assert moved.status_code == 303
        target = urlsplit(moved.headers["Location"])
        assert not target.netloc and target.path in ("/app/",), moved.headers["Location"]
    assert tech.post("/app/language", {"language": "es"}, csrf=False).status_code == 400
    assert tech.http.post(tech.base + "/app/language", data={"language": "es"}).status_code == 401


# --- e-mail in the recipient's language -----------------------------------------------------------------------

def test_reminder_emails_are_written_in_each_recipients_language(app, make):
    from tests.support.competency_world import World
    world = World(make)
    world.reg.settings = {**(world.reg.settings or {}), "email_enabled": True}
    for actor, language in ((world.tech, "es"), (world.tech2, None)):
        actor.person.email = f"{actor.person.sub}@example.org"
        actor.person.language = language
    now = datetime.now(UTC)
    for actor in (world.tech, world.tech2):
        requests_ = world.submitted(actor, [world.audit_comp], now=now - timedelta(days=355))
        reviews_sign_off(world, requests_[0].id, now - timedelta(days=355))
    db.session.flush()
    created = reminders.plan(now)
    rows = {m.person_id: m for m in db.session.scalars(select(SentMessage).where(SentMessage.id.in_(created)))}
    spanish, english = rows[world.tech.person.id], rows[world.tech2.person.id]
    assert spanish.subject == "Controlled-substance audit debe renovarse", "the competency's title is data"
    assert "Registre evidencia nueva y pida una revisión a tiempo." in spanish.body_text
    assert "Hola," in spanish.body_text and 'lang="es"' in spanish.body_html and "vence" in spanish.body_text
    assert re.search(r"\d{1,2} (ene|feb|mar|abr|may|jun|jul|ago|sept|oct|nov|dic) \d{4}", spanish.body_text)
    assert english.subject.endswith("is due for renewal") and "Hello" in english.body_text
    assert "Record new evidence and ask for review in time." in english.body_text


def reviews_sign_off(world, request_id, when):
    from lti_tool.services import reviews
    reviews.sign_off(world.manager, request_id, "competent", "observed", [], now=when)


def test_in_language_falls_back_to_the_launch_language_then_english(app):
    class P:
        def __init__(self, language, launch_language):
            self.language, self.launch_language = language, launch_language

        @property
        def preferred_language(self):
            return self.language or self.launch_language

    with app.app_context():
        with i18n.in_language(P(None, "es")) as chosen:
            assert chosen == "es" and i18n.current() == "es"
        with i18n.in_language(P("en", "es")) as chosen:
            assert chosen == "en"
        with i18n.in_language(P(None, None)) as chosen:
            assert chosen == "en"
        with i18n.in_language(None, language="es") as chosen:
            assert chosen == "es"


def test_templates_use_new_style_gettext_only():
    """`{% trans %}` blocks and old-style `_("..." % x)` would escape wrongly or skip extraction."""
    for path in (ROOT / "lti_tool" / "templates").rglob("*.*"):
        text = path.read_text()
        assert "{% trans" not in text, path
        assert not re.search(r'_\("(?:[^"\\]|\\.)*"\s*%', text), path


def test_every_name_and_label_of_the_shipped_ce_rules_is_in_the_catalog():
    """The rules file is data the pages show (cycle names, requirement labels): each must be translatable."""
    import json

    from lti_tool.services import ce

    words = set()

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("name", "label") and isinstance(item, str):
                    words.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads((ROOT / "lti_tool" / "data" / "ce_rules.json").read_text()))
    assert words and words <= set(ce.RULE_WORDS), sorted(words - set(ce.RULE_WORDS))
    translated = {m.id: m.string for m in catalog() if m.id}
    assert all(translated.get(word) for word in words)
