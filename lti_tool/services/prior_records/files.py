"""Reading the spreadsheets people actually have: CSV in UTF-8 (with or without a byte-order mark) or in Windows-1252
(Excel's "CSV" on US Windows), and XLSX with merged header cells, title rows above the header, and dates stored as
Excel serial numbers or real dates.

The result is always a Table: the header (one text per column) and rows of cell values (str, int, float, date,
datetime or None), each with its row number in the file so problems can be reported where a person finds them.
"""
import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _

from .. import DomainError

MAX_ROWS = 20_000
MAX_BYTES = 10 * 1024 * 1024
# The first rows may be a title, a "Printed on" line or a CPE Monitor preamble: the header is the first row
# among these that names at least two known columns.
HEADER_SEARCH_ROWS = 15
EXCEL_EPOCH = date(1899, 12, 30)  # Excel's day 0 (after its 1900 leap-year bug)


@dataclass
class Table:
    header: list
    rows: list  # [(row number in the file, [values])]
    preamble: list  # the rows above the header, as text (a CPE Monitor export names the person there)


def excel_serial(value) -> date | None:
    """An Excel serial day number (e.g. 45306 = Jan 15, 2024) as a date, or None if it does not look like one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if 1 <= value < 2958466:  # up to 9999-12-31
        return EXCEL_EPOCH + timedelta(days=int(value))
    return None


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Excel on US Windows saves "CSV" in Windows-1252 (curly quotes, é in names, the degree sign).
        return data.decode("cp1252", errors="replace")


def _read_csv(data: bytes) -> list[list]:
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect)]


def _read_xlsx(data: bytes) -> list[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DomainError(_("This file is not a readable Excel workbook (.xlsx)."), code="unreadable_file") from exc
    sheet = book.worksheets[0]
    grid = [list(row) for row in sheet.iter_rows(values_only=True)]
    # A merged cell keeps its value in its top-left cell only: spread it over the range (a header "Assessor"
    # merged over "Name" and "Role" becomes "Assessor" above both).
    for merged in sheet.merged_cells.ranges:
        top = grid[merged.min_row - 1][merged.min_col - 1] if merged.min_row - 1 < len(grid) else None
        for r in range(merged.min_row - 1, min(merged.max_row, len(grid))):
            for c in range(merged.min_col - 1, merged.max_col):
                if c < len(grid[r]) and grid[r][c] is None:
                    grid[r][c] = top
    return grid


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def read(filename: str, data: bytes, known_header) -> Table:
    """The table in a CSV or XLSX file. `known_header(texts) -> int` counts the column names it recognizes; the
    header is the first row (of the first few) that names at least two, or two stacked rows (merged group
    headers above sub-headers) joined."""
    if not data:
        raise DomainError(_("The file is empty."), code="empty_file")
    if len(data) > MAX_BYTES:
        raise DomainError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it.", code="too_large")
    is_xlsx = data[:2] == b"PK" or (filename or "").lower().endswith(".xlsx")
    grid = _read_xlsx(data) if is_xlsx else _read_csv(data)
    best, header_at, header = 0, None, None
    texts = [[_text(v) for v in row] for row in grid[:HEADER_SEARCH_ROWS + 1]]
    scores = [known_header(t) for t in texts]
    for i in range(min(HEADER_SEARCH_ROWS, len(texts))):
        if scores[i] > best:
            best, header_at, header = scores[i], i, texts[i]
        if i + 1 < len(texts):
            # Two stacked header rows (a merged group name above its sub-headers) read as one.
            top, below = texts[i], texts[i + 1]
            width = max(len(top), len(below))
            top, below = top + [""] * (width - len(top)), below + [""] * (width - len(below))
            joined = [f"{a} {b}".strip() if b and a != b else (a or b) for a, b in zip(top, below, strict=True)]
            score = known_header(joined)
            if score > max(best, scores[i + 1]):
                best, header_at, header = score, i + 1, joined
    if header is None or best < 2:
        raise DomainError(_("No header row found: the first rows of the file should name the columns (download a "
                          "template to see them)."), code="no_header")
    rows = []
    for number, row in enumerate(grid[header_at + 1:], start=header_at + 2):
        if all(_text(v) == "" for v in row):
            continue
        rows.append((number, list(row) + [None] * (len(header) - len(row))))
        if len(rows) > MAX_ROWS:
            raise DomainError(f"The file has more than {MAX_ROWS:,} rows; split it.", code="too_many_rows")
    preamble = [" ".join(_text(v) for v in row if _text(v)) for row in grid[:header_at]]
    return Table(header=header, rows=rows, preamble=[p for p in preamble if p])


def text_of(value) -> str:
    return _text(value)


def date_of(value) -> date | None:
    """A cell as a date: a real date, an Excel serial, ISO (2024-01-15), US (1/15/2024, 01/15/24) or
    "Jan 15, 2024". Raises ValueError with a readable message otherwise; None for an empty cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    serial = excel_serial(value)
    if serial is not None:
        return serial
    text = _text(value)
    if text.isdigit() and len(text) == 5:
        return excel_serial(int(text))
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%Y/%m/%d",
                "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M", "%m-%d-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"'{text[:40]}' is not a date (use 2024-01-15 or 1/15/2024).")
