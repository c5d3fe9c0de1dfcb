"""Finding English left in a Spanish page.

A page is rendered twice with the same data, once in English and once in Spanish. A piece of visible text (a text
node, or the title / aria-label / placeholder / alt / value of an element, or a string the page hands its script)
that reads the same in both, and that still holds English words once the data is taken out (names, codes,
competency titles, what people typed, numbers), is a string nobody wrapped for translation. A Spanish text that
contains a whole English message of the catalog is one that was wrapped but built from an untranslated part.
"""
import json
import re
from html.parser import HTMLParser

# Words that read the same in both languages: acronyms, product and credential names, units, the language names.
SAME_IN_BOTH = {
    "CE", "UAN", "PDSA", "LMS", "CSV", "PDF", "JSON", "ZIP", "ACPE", "CASE", "LTI", "PTCB", "CPhT", "CSPT", "NHA",
    "USP", "Canvas", "Moodle", "Open", "Badges", "CLR", "JWT", "KB", "MB", "AM", "PM", "EST", "EDT", "CST", "CDT",
    "MST", "MDT", "PST", "PDT", "UTC", "English", "Español", "No", "Error", "ID", "IV", "Adv", "ExCPT", "NABP", "CPE",
    "QR", "RS", "OIDC", "JWKS", "URL", "API", "Excel", "xlsx", "US", "Letter", "A4", "SHA",
}
VISIBLE_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "data-busy", "data-busy-label", "data-label")
WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’])+")


class _Texts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.skip = 0
        self.json = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in VISIBLE_ATTRIBUTES:
            if attrs.get(name):
                self.texts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])
        if tag in ("script", "style"):
            self.skip += 1
            self.json = tag == "script" and attrs.get("type") == "application/json"

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
            self.json = False

    def handle_data(self, data):
        if self.json:
            values = json.loads(data)
            self.texts += [v for v in (values.values() if isinstance(values, dict) else values) if isinstance(v, str)]
        elif not self.skip:
            self.texts.append(data)


def visible_texts(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    return [t for t in (" ".join(x.split()) for x in parser.texts) if t]


def _without(text: str, data: list[str]) -> str:
    for value in data:
        if len(value) <= len(text) and value in text:
            text = text.replace(value, " ")
    return text


def _english(words) -> list[str]:
    # Codes (US states, ACPE letters) are 2-3 capitals; they read the same in any language.
    return [w for w in words if w not in SAME_IN_BOTH and not (w.isupper() and len(w) <= 3)]


def english_words(text: str, data: list[str]) -> list[str]:
    """The words of `text` left once the data strings are taken out, less those the same in both languages."""
    return _english(WORD.findall(_without(text, data)))


def data_strings(values) -> list[str]:
    """Every string in `values` (nested lists and dicts too), longest first, so a long title goes before a word
    inside it."""
    found: set = set()

    def walk(value):
        if isinstance(value, str):
            if value.strip():
                found.add(" ".join(value.split()))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple | set):
            for v in value:
                walk(v)

    walk(values)
    return sorted(found, key=len, reverse=True)


class Phrases:
    """Catalog messages of at least two words, without placeholders, whose Spanish differs: none of them may be
    seen in a Spanish page. Indexed by first word, so a page's texts are checked against the few that could
    match."""

    def __init__(self, catalog):
        self.by_first: dict[str, list[str]] = {}
        # Messages the translator kept as they are ("Supervisor", "Preceptor", "CSV"): the same in Spanish.
        self.same = {m.id for m in catalog if isinstance(m.id, str) and m.string == m.id}
        for message in catalog:
            if not message.id or not isinstance(message.id, str) or "%" in message.id or "{" in message.id:
                continue
            words = WORD.findall(message.id)
            if message.string != message.id and len(words) >= 2:
                self.by_first.setdefault(words[0], []).append(message.id)

    def found_in(self, text: str) -> str | None:
        for word in set(WORD.findall(text)):
            for phrase in self.by_first.get(word, ()):
                if phrase in text and re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text):
                    return phrase
        return None


def untranslated(spanish_html: str, english_html: str, data: list[str], phrases) -> list[str]:
    english = set(visible_texts(english_html))
    problems = []
    for text in dict.fromkeys(visible_texts(spanish_html)):
        residue = _without(text, data)
        if text in english and text not in phrases.same and _english(WORD.findall(residue)):
            problems.append(text)
            continue
        phrase = phrases.found_in(residue)
        if phrase:
            problems.append(f"{text}  [English: {phrase}]")
    return problems
