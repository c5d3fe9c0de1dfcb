"""CSV files people open in Excel: every cell that a spreadsheet would read as a formula is neutralised.

A value starting with =, +, -, @, a tab or a carriage return is prefixed with a single quote (OWASP's advice for
CSV injection), so a name like `=HYPERLINK(...)` typed by anyone is shown as text, never run. Plain numbers
(including negative ones) are left as they are.
"""
import csv
import io
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def safe_cell(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def to_csv(header, rows) -> str:
    """A CSV document (CRLF line ends, as RFC 4180 and Excel expect) of a header row and data rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
