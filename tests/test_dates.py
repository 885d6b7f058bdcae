"""The generated dates task for seq2seq: targets are the ISO form of the date the
source writes, whatever the format."""
import datetime

import pytest

from nnforge.data import date_pairs
from nnforge.data.dates import FORMATS, number_words


def test_every_format_writes_the_target_date():
    day = datetime.date(2003, 11, 2)
    written = {name: fmt(day) for name, fmt in FORMATS.items()}
    assert written["words"] == "the second of november, two thousand three"
    assert written["month_day_year"] == "November 2, 2003"
    assert written["weekday_long"] == "Sunday, November 2, 2003"
    assert written["ordinal_short"] == "2nd nov 2003"
    assert written["abbrev"] == "NOV 02 03"
    assert written["dotted"] == "2.11.03"
    assert written["slashed_us"] == "11/2/2003"
    assert written["compact"] == "20031102"
    assert len(set(written.values())) == len(FORMATS)


def test_pairs_are_seeded_valid_and_varied():
    pairs = date_pairs(2000, seed=0)
    assert pairs == date_pairs(2000, seed=0)
    assert pairs != date_pairs(2000, seed=1)
    for _, target in pairs:
        d = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= d <= datetime.date(2049, 12, 31)
    lengths = [len(s) for s, _ in pairs]
    assert min(lengths) <= 8 and max(lengths) >= 40  # variable lengths
    only = date_pairs(50, seed=2, formats=["dotted"])
    for source, target in only:
        day, month, yy = (int(p) for p in source.split("."))
        y, m, d = (int(p) for p in target.split("-"))
        assert (day, month, yy) == (d, m, y % 100)


def test_number_words_and_errors():
    assert [number_words(n) for n in (0, 13, 40, 99)] == ["zero", "thirteen", "forty",
                                                           "ninety-nine"]
    with pytest.raises(ValueError, match="unknown formats"):
        date_pairs(3, formats=["roman"])
    with pytest.raises(ValueError, match="n must be >= 0"):
        date_pairs(-1)
