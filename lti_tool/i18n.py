"""Languages: Flask-Babel, with the language chosen per request.

English is the source language; Spanish is shipped (lti_tool/translations/es). The choice, in order: the language
the person picked in the tool (people.language), the LMS launch's `locale` claim (people.launch_language, kept at
every launch), the browser's Accept-Language, English. web.choose_language puts the person's into g.locale before
the view runs; e-mails and worker jobs use `in_language(person)`. Code that says many strings a request (the
dashboard's services) uses this module's gettext/ngettext, and templates a catalog read once per render: the same
text as Flask-Babel's, without finding the catalog again for every string."""
from contextlib import contextmanager

from flask import g, has_app_context, request
from flask_babel import Babel, force_locale, get_locale, get_translations
from jinja2 import pass_context
from markupsafe import Markup

LANGUAGES = ("en", "es")
DEFAULT = "en"
# The switch in the header names each language in itself.
NAMES = {"en": "English", "es": "Español"}

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


def current() -> str:
    """The language of what is being written now ("en" outside a request and a forced locale)."""
    locale = get_locale()
    return supported(str(locale)) if locale is not None else DEFAULT


@contextmanager
def in_language(person=None, language: str | None = None):
    """Write (an e-mail, a PDF in the worker) in `language`, else the person's, else English."""
    chosen = supported(language) or supported(person.preferred_language if person is not None else None) \
        or DEFAULT
    with force_locale(chosen):
        yield chosen


def catalog():
    """The catalog of the language being written now: Flask-Babel's get_translations(), kept in `g` beside the
    locale it was read for. Flask-Babel finds it anew for each string (six lookups through `g`, about 5 µs), and
    a transcript PDF says almost two thousand; a forced locale (e-mails) or a refresh gives another locale
    object, so the catalog is read again for it. The locale is read where Flask-Babel keeps it, through one
    lookup of `g` (get_locale() when it is not chosen yet)."""
    if not has_app_context():
        return get_translations()
    kept_in = g._get_current_object().__dict__
    babel_state = kept_in.get("_flask_babel")
    locale = getattr(babel_state, "babel_locale", None) or get_locale()
    kept = kept_in.get("_catalog")
    if kept is None or kept[0] is not locale:
        kept = kept_in["_catalog"] = (locale, get_translations())
    return kept[1]


def gettext(string: str, **variables) -> str:
    """flask_babel.gettext (the same text), through catalog()."""
    text = catalog().ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """flask_babel.ngettext (the same text), through catalog()."""
    variables.setdefault("num", num)
    return catalog().ungettext(singular, plural, num) % variables


def init_app(app) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["current_language"] = current
    app.jinja_env.globals["language_names"] = NAMES
    app.context_processor(_catalog_of_this_render)


def _catalog_of_this_render() -> dict:
    """The page's gettext bound to the catalog of the language it is rendered in. Flask-Babel's template
    callables look the catalog up again for every string (six lookups through `g` each), a quarter of the
    dashboard's render time; the language cannot change in the middle of a render, so it is looked up once here.
    Templates and macros imported without context keep Flask-Babel's callables, which give the same text."""
    translations = catalog()

    @pass_context
    def gettext(context, string, **variables):
        # As Jinja's newstyle gettext: escaped when autoescaping, and always a format string.
        text = translations.ugettext(string)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables

    @pass_context
    def ngettext(context, singular, plural, num, **variables):
        variables.setdefault("num", num)
        text = translations.ungettext(singular, plural, num)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables

    return {"gettext": gettext, "_": gettext, "ngettext": ngettext}


def N_(text: str) -> str:  # noqa: N802  (the gettext convention's name)
    """Marks English text for the catalog without translating it here: labels that are also stored or exported
    in English (a credential's name in the evidence data); pages translate them when they show them."""
    return text
