"""A generated translation task for sequence-to-sequence models: dates written
the ways people write them, to ISO 8601.

    "the twenty-first of march, nineteen ninety"   -> "1990-03-21"
    "Wednesday, March 21, 1990"                    -> "1990-03-21"
    "21.3.90"                                      -> "1990-03-21"

Sources vary in length (8 to about 60 characters), vocabulary (digits, month
and number words, weekday names) and word order, so a model has to find the
day, month and year wherever they are: the alignment that attention learns
(and a heat map shows). Two-digit years are read as 1950-2049. Every sample
is determined by its seed, so train and test sets can be drawn apart.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

__all__ = ["date_pairs", "FORMATS", "number_words"]

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_ONES = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                 "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FIRST, LAST = _dt.date(1950, 1, 1), _dt.date(2049, 12, 31)


def number_words(n: int) -> str:
    """0 <= n < 100 in words: 21 -> 'twenty-one'."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else "-" + _ONES[ones])


def _ordinal_words(n: int) -> str:
    words = number_words(n)
    head, _, last = words.rpartition("-")
    if last in _ORDINAL_ONES:
        last = _ORDINAL_ONES[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}-{last}" if head else last


def _year_words(y: int) -> str:
    century, rest = divmod(y, 100)
    if rest == 0:
        return f"{number_words(century)} hundred" if century != 20 else "two thousand"
    if century == 20 and rest < 10:
        return f"two thousand {number_words(rest)}"
    return f"{number_words(century)} {number_words(rest) if rest >= 10 else 'oh ' + number_words(rest)}"


def _suffix(d: int) -> str:
    return "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


# Each format writes one date; the lambda gets a datetime.date.
FORMATS = {
    "words": lambda d: f"the {_ordinal_words(d.day)} of {_MONTHS[d.month - 1]}, "
                       f"{_year_words(d.year)}",
    "month_day_year": lambda d: f"{_MONTHS[d.month - 1].title()} {d.day}, {d.year}",
    "weekday_long": lambda d: f"{_WEEKDAYS[d.weekday()].title()}, {_MONTHS[d.month - 1].title()} "
                              f"{d.day}, {d.year}",
    "day_month_year": lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    "ordinal_short": lambda d: f"{d.day}{_suffix(d.day)} {_MONTHS[d.month - 1][:3]} {d.year}",
    "abbrev": lambda d: f"{_MONTHS[d.month - 1][:3].upper()} {d.day:02d} {d.year % 100:02d}",
    "dotted": lambda d: f"{d.day}.{d.month}.{d.year % 100:02d}",
    "slashed_us": lambda d: f"{d.month}/{d.day}/{d.year}",
    "compact": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
}


def date_pairs(n: int, seed: int = 0, formats=None) -> list:
    """``n`` (source, target) string pairs: a uniformly random date in 1950-2049
    written in a random one of ``formats`` (default: all of ``FORMATS``), and
    its ISO form YYYY-MM-DD.

    >>> pairs = date_pairs(3, seed=1)
    >>> all(len(t) == 10 and t[4] == t[7] == "-" for _, t in pairs)
    True
    >>> FORMATS["words"](__import__("datetime").date(1990, 3, 21))
    'the twenty-first of march, nineteen ninety'
    """
    names = list(FORMATS) if formats is None else list(formats)
    unknown = [f for f in names if f not in FORMATS]
    if unknown:
        raise ValueError(f"date_pairs: unknown formats {unknown}; known: {list(FORMATS)}")
    if n < 0:
        raise ValueError(f"date_pairs: n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    span = (LAST - FIRST).days + 1
    days = rng.integers(0, span, size=n)
    which = rng.integers(0, len(names), size=n)
    out = []
    for d, f in zip(days, which):
        date = FIRST + _dt.timedelta(days=int(d))
        out.append((FORMATS[names[f]](date), date.isoformat()))
    return out
