"""Ids and whole numbers read from URLs, forms and query strings.

Two traps this module closes once for every view and service:
- `str.isdigit()` and `int()` accept far more than 0-9: "²".isdigit() is True (and int("²") fails), int("٣") is 3;
- the database's integer columns stop at 2^31 - 1 (PostgreSQL answers a larger id with an error, not "not found").
So an id is 1 to 10 ASCII digits no larger than MAX_ID; anything else names nothing.
"""
import re

from werkzeug.routing import IntegerConverter

# PostgreSQL `integer` (every primary key here): no row can have a larger id.
MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def is_digits(raw) -> bool:
    """ASCII digits only, at most 10 of them (unlike str.isdigit)."""
    return isinstance(raw, str) and _DIGITS.fullmatch(raw) is not None


def parse_id(raw) -> int:
    """An id from text ("42", " 42 "); ValueError for anything else, so it also serves as werkzeug's `type=`."""
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif is_digits(text):
        value = int(text)
    else:
        raise ValueError(f"not an id: {raw!r}")
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"not an id: {raw!r}")
    return value


def id_or_none(raw) -> int | None:
    try:
        return parse_id(raw)
    except ValueError:
        return None


def ids(values) -> list[int]:
    """The valid ids among form values, in order; the others left out."""
    return [i for i in (id_or_none(v) for v in values) if i is not None]


def whole_number(raw, low: int, high: int) -> int | None:
    """A whole number from low to high written in ASCII digits, or None."""
    value = id_or_none(raw)
    return value if value is not None and low <= value <= high else None


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: ASCII digits only and at most MAX_ID, so /x/99999999999 and /x/٣ are 404s."""

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(url_map, fixed_digits=fixed_digits, min=0 if min is None else min,
                         max=MAX_ID if max is None else max, signed=False)
