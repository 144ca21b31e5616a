"""The filter language: hand-checked selections, errors naming the column, no eval."""

import polars as pl
import pytest

from harness.datasets.filters import compile_filter
from harness.errors import ConfigError

FRAME = pl.DataFrame({"rating": [1.0, 3.5, 4.0, 5.0], "kind": ["a", "b", "a", "c"],
                      "pct": [0, 10, 50, 100]})


def select(text):
    return FRAME.filter(compile_filter(text, FRAME.columns))["rating"].to_list()


@pytest.mark.parametrize("text, expected", [
    ("rating >= 4", [4.0, 5.0]),
    ("rating == 3.5", [3.5]),
    ("rating != 1", [3.5, 4.0, 5.0]),
    ("pct > 10 and kind == 'a'", [4.0]),
    ("pct < 10 or kind == \"c\"", [1.0, 5.0]),
    ("not (rating < 4)", [4.0, 5.0]),
    ("kind in ('a', 'c')", [1.0, 4.0, 5.0]),
    ("kind not in ('a')", [3.5, 5.0]),
    ("not kind in ('a') and pct >= 50", [5.0]),
    ("rating > 1 and (kind == 'a' or kind == 'b')", [3.5, 4.0]),
])
def test_selections(text, expected):
    assert select(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("ratng >= 4", "unknown column 'ratng'"),
    ("rating >=", "unexpected 'end'"),
    ("rating >= 4 4", "unexpected '4'"),
    ("__import__('os')", "unknown column '__import__'"),
    ("rating('os')", "unexpected '('"),
    ("rating ; 1", "cannot parse"),
    ("", "empty expression"),
])
def test_errors_are_one_line_config_errors(text, fragment):
    with pytest.raises(ConfigError) as info:
        compile_filter(text, FRAME.columns, where="[d] positive")
    assert fragment in str(info.value) and str(info.value).startswith("[d] positive")
    assert "\n" not in str(info.value)
