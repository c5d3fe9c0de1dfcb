"""Everything a person reads is US English: templates, scripts, the shipped data (framework, pathways, CE rules)
and the Python source, whose keys end up in JSON answers and whose comments and names are read by the people who
maintain it."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "lti_tool"
BRITISH = re.compile(
    r"(?<!\w)(organis\w*|colour\w*|licence\w*|behaviour\w*|programme\w*|practis\w*|recognis\w*|authoris\w*|"
    r"immunis\w*|jewellery|catalogue\w*|centre\w*|labour\w*|favour\w*|honour\w*|analys(e|ed|es|ing)|"
    r"expiry date)\b", re.IGNORECASE)
FILES = sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("static/js/*.js"), *ROOT.glob("data/*.json"),
                *ROOT.glob("**/*.py")])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_british_spelling(path):
    found = [(n, m.group(0)) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             for m in BRITISH.finditer(line)]
    assert not found, found


def test_no_british_spelling_in_the_catalog():
    """Every string wrapped for translation in Python (labels, hints, errors, e-mails) is a msgid of the English
    source catalog: the same check for what the code says."""
    catalog = (ROOT / "translations" / "messages.pot").read_text(encoding="utf-8")
    found = [m.group(0) for line in catalog.splitlines() if line.startswith(("msgid", '"'))
             for m in BRITISH.finditer(line)]
    assert not found, found
