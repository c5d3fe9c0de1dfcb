"""Languages: Flask-Babel, with the language chosen per request.

English is the source language; Spanish is shipped (lti_tool/translations/es). The choice, in order: the language
the person picked in the tool, the LMS launch's `locale` claim kept in the tool session, the browser's
Accept-Language, English."""
from flask import g, request
from flask_babel import Babel

LANGUAGES = ("en", "es")
DEFAULT = "en"

babel = Babel()


def supported(tag: str | None) -> str | None:
    """'es-MX', 'es_419' or 'ES' -> 'es'; a language the tool does not ship -> None."""
    if not tag or not isinstance(tag, str):
        return None
    primary = tag.replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else None


def select_locale() -> str:
    chosen = supported(g.get("locale"))
    if chosen:
        return chosen
    if request:
        return request.accept_languages.best_match(LANGUAGES) or DEFAULT
    return DEFAULT


def init_app(app) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
