"""Every CSV the tool writes goes through these writers, so no cell runs as a spreadsheet formula.

Excel, LibreOffice Calc and Google Sheets evaluate a cell that starts with = + - or @ (and one that starts with a
tab or carriage return followed by one of them): a technician's evidence title `=HYPERLINK("https://...","Open")`
would become a live link, or worse, on a manager's screen. Such a cell is written with a leading apostrophe,
which spreadsheets show as text (OWASP's advice); every other cell is written as it is.

Moodle's competency-framework importer does not drop that apostrophe, so the Moodle CSV export uses a leading
space instead: just as inert in a spreadsheet, invisible in Moodle (descriptions are HTML, names are shown
trimmed), and removed by this tool's own importer, which trims every cell.
"""
import csv
import io
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def spreadsheet_text(value):
    """The cell as a spreadsheet will show it, never as a formula. Numbers are left alone, also written as text
    (a negative number is not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def moodle_text(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return " " + value
    return value


class _Rows:
    """csv.writer with every cell passed through `cell` first."""

    def __init__(self, out, cell, **kwargs):
        self._writer = csv.writer(out, **kwargs)
        self._cell = cell

    def writerow(self, row):
        return self._writer.writerow([self._cell(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(out, *, cell=spreadsheet_text, **kwargs) -> _Rows:
    return _Rows(out, cell, **kwargs)


class DictWriter(csv.DictWriter):
    """csv.DictWriter whose rows (and header) are neutralised like writer()'s."""

    def __init__(self, out, fieldnames, *, cell=spreadsheet_text, **kwargs):
        super().__init__(out, fieldnames, **kwargs)
        dialect_args = {k: v for k, v in kwargs.items() if k not in ("restval", "extrasaction")}
        self.writer = _Rows(out, cell, **dialect_args)


def to_csv(header, rows) -> str:
    """A whole CSV document (CRLF line ends, as RFC 4180 and Excel expect): a header row and data rows."""
    out = io.StringIO()
    rows_out = writer(out, lineterminator="\r\n")
    rows_out.writerow(["" if h is None else h for h in header])
    rows_out.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()
