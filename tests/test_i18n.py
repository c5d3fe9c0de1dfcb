"""Language choice (lti_tool/i18n.py)."""
from flask_babel import get_locale

from lti_tool import i18n


def test_supported_language_tags():
    assert i18n.supported("es-MX") == "es" and i18n.supported("es_419") == "es" and i18n.supported("ES") == "es"
    assert i18n.supported("en-US") == "en"
    assert i18n.supported("fr-CA") is None and i18n.supported("") is None and i18n.supported(None) is None


def test_browser_language_is_used_without_a_choice(app):
    with app.test_request_context("/", headers={"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}):
        assert str(get_locale()) == "es"
    with app.test_request_context("/", headers={"Accept-Language": "fr-FR"}):
        assert str(get_locale()) == "en"
