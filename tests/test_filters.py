"""The filter language: hand-checked selections, errors naming the column, no eval."""

import polars as pl
import pytest

from harness.datasets.filters import compile_filter
from harness.errors import ConfigError

FRAME = pl.DataFrame(
    {"rating": [1.0, 3.5, 4.0, 5.0], "kind": ["a", "b", "a", "c"], "pct": [0, 10, 50, 100]}
)


def select(text):
    return FRAME.filter(compile_filter(text, FRAME.columns))["rating"].to_list()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("rating >= 4", [4.0, 5.0]),
        ("rating == 3.5", [3.5]),
        ("rating != 1", [3.5, 4.0, 5.0]),
        ("pct > 10 and kind == 'a'", [4.0]),
        ('pct < 10 or kind == "c"', [1.0, 5.0]),
        ("not (rating < 4)", [4.0, 5.0]),
        ("kind in ('a', 'c')", [1.0, 4.0, 5.0]),
        ("kind not in ('a')", [3.5, 5.0]),
        ("not kind in ('a') and pct >= 50", [5.0]),
        ("rating > 1 and (kind == 'a' or kind == 'b')", [3.5, 4.0]),
    ],
)
def test_selections(text, expected):
    assert select(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("ratng >= 4", "unknown column 'ratng'"),
        ("rating >=", "unexpected 'end'"),
        ("rating >= 4 4", "unexpected '4'"),
        ("__import__('os')", "unknown column '__import__'"),
        ("rating('os')", "unexpected '('"),
        ("rating ; 1", "cannot parse"),
        ("", "empty expression"),
    ],
)
def test_errors_are_one_line_config_errors(text, fragment):
    with pytest.raises(ConfigError) as info:
        compile_filter(text, FRAME.columns, where="[d] positive")
    assert fragment in str(info.value) and str(info.value).startswith("[d] positive")
    assert "\n" not in str(info.value)


def test_deep_nesting_is_an_error_not_a_recursion_error():
    from harness.datasets.filters import MAX_DEPTH

    deep = "(" * 1000 + "rating >= 4" + ")" * 1000
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH}") as info:
        compile_filter(deep, ["rating"], where="[x] positive")
    assert len(str(info.value)) < 200 and str(info.value).endswith("((((…'")  # not 2000 chars
    nots = "not " * 1000 + "rating >= 4"
    with pytest.raises(ConfigError, match="nested"):
        compile_filter(nots, ["rating"], where="[x] positive")
    ok = "(" * 20 + "rating >= 4" + ")" * 20  # reasonable nesting still works
    assert pl.DataFrame({"rating": [3, 5]}).filter(compile_filter(ok, ["rating"]))[
        "rating"
    ].to_list() == [5]


@pytest.mark.parametrize(
    "text, words",
    [
        ("clicks >= 'x'", ["clicks", "number", "'x'"]),
        ("kind == 3", ["kind", "text", "3"]),
        ("kind in (1, 2)", ["kind", "text"]),
        ("clicks in ('a')", ["clicks", "number"]),
    ],
)
def test_comparing_a_column_with_a_literal_of_another_type_is_an_error(text, words):
    schema = {"clicks": pl.Int64, "kind": pl.Utf8}
    with pytest.raises(ConfigError) as info:
        compile_filter(text, schema, where="[x] positive")
    message = str(info.value)
    assert "[x] positive" in message and all(w in message for w in words), message
