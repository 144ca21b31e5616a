"""Parameter bounds a model declares (``Annotated[int, Bounds(ge=1)]``): read from the source
without importing the plugin, checked before any worker starts, applied again by the worker when
the source cannot be read, shown by ``harness list``. A value out of range is one ``error:`` line
naming the parameter, the value and the bound, exit code 2, and no run stored."""

from __future__ import annotations

import json
import math
import sys
from importlib import metadata
from typing import Annotated

import pytest

from harness import plugin_source, plugins
from harness.api import Bounds
from harness.errors import UsageError
from harness.store import runs as store

BOUNDED = """
from typing import Annotated
import polars as pl
from harness.api import Bounds

class Model:
    def __init__(
        self,
        factors: Annotated[int, Bounds(ge=1)] = 4,
        dropout: Annotated[float, Bounds(ge=0, lt=1)] = 0.1,
        window: Annotated[int | None, Bounds(gt=0)] = None,
        plain: int = 3,
    ):
        self.factors = factors

    def fit(self, data):
        self.item = data.interactions["item_id"][0]

    def recommend(self, users, k):
        return pl.DataFrame({"user_id": users, "item_id": [self.item] * len(users),
                             "score": [1.0] * len(users)})
"""


# -- the marker ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "text", "inside", "outside"),
    [
        (Bounds(ge=1), ">= 1", [1, 2, 10**9], [0, -3, 0.5]),
        (Bounds(gt=0), "> 0", [1e-9, 3], [0, -1.0]),
        (Bounds(le=10), "<= 10", [10, -5], [10.5, 11]),
        (Bounds(lt=1.5), "< 1.5", [1.49], [1.5, 2]),
        (Bounds(ge=0, lt=1), "in [0, 1)", [0, 0.999], [1, -0.01, 1.0]),
        (Bounds(gt=0, le=1), "in (0, 1]", [1, 0.5], [0, 1.01]),
    ],
)
def test_bounds_text_and_membership(bounds, text, inside, outside):
    assert str(bounds) == text
    assert all(bounds.contains(v) for v in inside)
    assert not any(bounds.contains(v) for v in outside)


def test_bounds_leave_none_and_non_numbers_alone_and_refuse_nan():
    b = Bounds(ge=1)
    assert b.contains(None) and b.contains("x") and b.contains(True)
    assert not b.contains(math.nan)


@pytest.mark.parametrize(
    "kwargs", [{"ge": 1, "gt": 0}, {"le": 1, "lt": 2}, {"ge": "1"}, {"ge": math.nan}]
)
def test_bounds_refuse_contradictory_or_non_numeric_limits(kwargs):
    with pytest.raises(TypeError):
        Bounds(**kwargs)


# -- read from the source, as at run time ----------------------------------------------------


def _ep(name: str) -> metadata.EntryPoint:
    return plugins.entry_point(name)


def test_the_source_reader_finds_the_bounds_the_runtime_sees(register_plugins):
    register_plugins({"bounded": BOUNDED})
    static = plugin_source.parameters(_ep("bounded"))
    assert static is not None
    assert {p.name: p.bounds for p in static} == {
        "factors": Bounds(ge=1),
        "dropout": Bounds(ge=0, lt=1),
        "window": Bounds(gt=0),
        "plain": None,
    }
    assert [p.type_name for p in static] == ["int", "float", "int | None", "int"]
    runtime = plugins.get("bounded").params
    assert [(p.name, p.type_name, p.default, p.bounds) for p in runtime] == [
        (p.name, p.type_name, p.default, p.bounds) for p in static
    ]


@pytest.mark.parametrize(
    ("imports", "annotation", "expected"),
    [
        ("from harness.api import Bounds as B", "Annotated[int, B(ge=2)]", Bounds(ge=2)),
        ("from harness import api", "Annotated[int, api.Bounds(le=5)]", Bounds(le=5)),
        ("import harness.kit", "Annotated[int, harness.kit.Bounds(gt=-1)]", Bounds(gt=-1)),
        ("from harness.kit import Bounds", "'Annotated[int, Bounds(1)]'", Bounds(ge=1)),
        ("from harness.api import Bounds", "Annotated[int, 'doc', Bounds(ge=0)]", Bounds(ge=0)),
        # a Bounds of someone else's is not ours: not read as bounds (nor at run time)
        ("from mylib import Bounds", "Annotated[int, Bounds(ge=1)]", None),
    ],
)
def test_the_source_reader_knows_how_bounds_are_imported(imports, annotation, expected):
    import ast

    source = f"{imports}\nfrom typing import Annotated\nclass M:\n    def __init__(self, n: {annotation} = 3): pass\n"
    (param,) = plugin_source._from_module(ast.parse(source), "M")
    assert param.type_name == "int" and param.bounds == expected


def test_bounds_the_source_cannot_evaluate_leave_the_check_to_the_worker():
    import ast

    source = (
        "from typing import Annotated\nfrom harness.api import Bounds\nLOW = 1\n"
        "class M:\n    def __init__(self, n: Annotated[int, Bounds(ge=LOW)] = 3): pass\n"
    )
    with pytest.raises(plugin_source._Unknown):
        plugin_source._from_module(ast.parse(source), "M")


def test_the_source_reader_follows_a_package_reexport(tmp_path, monkeypatch):
    pkg = tmp_path / "reexporting"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .model import Model as Exposed\n")
    (pkg / "model.py").write_text(
        "from typing import Annotated\nfrom harness.api import Bounds\n"
        "class Model:\n    def __init__(self, k: Annotated[int, Bounds(ge=1)] = 5): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint("x", "reexporting:Exposed", "harness.recommenders")
    (param,) = plugin_source.parameters(ep)
    assert (param.name, param.bounds) == ("k", Bounds(ge=1))
    assert "reexporting" not in sys.modules  # read, never imported


def test_every_registered_recommender_is_read_statically_with_its_bounds():
    """The parent checks every shipped model's -p without importing it, and sees exactly the
    signature (types, defaults, bounds) the worker will apply."""
    for ep in plugins.entry_points():
        static = plugin_source.parameters(ep)
        assert static is not None, f"{ep.name}: signature not readable from its source"
        runtime = plugins.get(ep.name).params
        assert [(p.name, p.type_name, p.default, p.bounds) for p in static] == [
            (p.name, p.type_name, p.default, p.bounds) for p in runtime
        ], ep.name


@pytest.mark.parametrize(
    ("name", "param", "bounds"),
    [
        ("als", "factors", Bounds(ge=1)),
        ("als", "iterations", Bounds(ge=1)),
        ("als", "regularization", Bounds(ge=0)),
        ("bpr", "learning_rate", Bounds(gt=0)),
        ("ease", "regularization", Bounds(gt=0)),
        ("itemknn", "neighbours", Bounds(ge=1)),
        ("userknn", "neighbours", Bounds(ge=1)),
        ("popular", "window_days", Bounds(ge=1)),
        ("dssm", "epochs", Bounds(ge=1)),
        ("dssm", "dim", Bounds(ge=1)),
        ("dssm", "lr", Bounds(gt=0)),
        ("dssm", "dropout", Bounds(ge=0, lt=1)),
        ("sasrec", "dropout", Bounds(ge=0, lt=1)),
        ("sasrec", "heads", Bounds(ge=1)),
        ("two-stage", "candidates", Bounds(ge=1)),
        ("two-stage", "window_fraction", Bounds(gt=0, lt=1)),
    ],
)
def test_shipped_models_declare_bounds(name, param, bounds):
    if name not in {ep.name for ep in plugins.entry_points()}:
        pytest.skip(f"{name} is not installed")
    declared = {p.name: p for p in plugin_source.parameters(_ep(name))}
    assert declared[param].bounds == bounds
    assert bounds.contains(declared[param].default) or declared[param].default is None


# -- checked up front -------------------------------------------------------------------------


def test_out_of_range_parameter_is_a_usage_error_before_any_worker(dataset, home, cli, no_worker):
    result = cli("submit", "als", "--dataset", dataset, "-p", "factors=-3", expect=2)
    assert result.stderr.strip().splitlines() == [
        "error: recommender 'als': parameter factors=-3 is out of range (must be >= 1)"
    ]
    assert "Traceback" not in result.stderr
    assert store.list_runs(home) == []
    result = cli("submit", "dssm", "--dataset", dataset, "-p", "dropout=1", expect=2)
    assert "parameter dropout=1 is out of range (must be in [0, 1))" in result.stderr
    result = cli("submit", "popular", "--dataset", dataset, "-p", "window_days=0", expect=2)
    assert "window_days=0" in result.stderr and ">= 1" in result.stderr
    assert store.list_runs(home) == []


def test_in_range_and_none_values_pass(register_plugins, dataset, home):
    register_plugins({"bounded": BOUNDED})
    from harness.runner import submit

    run = submit(
        home,
        "bounded",
        dataset=dataset,
        k=5,
        params={"factors": "1", "dropout": "0", "window": "none"},
        sandbox="none",
    )
    assert run.status == "ok"


def test_the_worker_applies_the_same_bounds_when_the_source_cannot_be_read(
    register_plugins, dataset, home, cli
):
    """A decorated class: the parent cannot read its signature, so the worker checks, before
    fit, with the same message and exit code; no run is stored."""
    source = BOUNDED.replace(
        "class Model:", "def keep(cls):\n    return cls\n\n@keep\nclass Model:"
    )
    register_plugins({"decorated": source})
    assert plugin_source.parameters(_ep("decorated")) is None
    result = cli(
        "submit", "decorated", "--dataset", dataset, "-p", "factors=0", "--sandbox", "none",
        expect=2,
    )  # fmt: skip
    assert result.stderr.strip().splitlines()[-1] == (
        "error: recommender 'decorated': parameter factors=0 is out of range (must be >= 1)"
    )
    assert store.list_runs(home) == []


def test_build_recommender_and_the_python_api_check_bounds(dataset, home):
    import harness
    from harness.api import build_recommender

    with pytest.raises(UsageError, match=r"parameter factors=0 is out of range \(must be >= 1\)"):
        build_recommender("als", factors=0)
    with pytest.raises(UsageError, match=r"iterations='-1'|iterations=-1"):
        build_recommender("als", iterations="-1")

    class Mine:
        def __init__(self, size: Annotated[int, Bounds(ge=1)] = 2):
            self.size = size

        def fit(self, data):
            pass

        def recommend(self, users, k):
            raise AssertionError("not reached")

    with pytest.raises(UsageError, match=r"parameter size=0 is out of range"):
        harness.submit(Mine, dataset, params={"size": 0}, progress=False, sandbox="none")
    assert store.list_runs(home) == []


def test_check_recommender_flags_a_default_outside_its_own_bounds():
    from harness.checks import check_recommender
    from harness.errors import PluginError

    class Popularish:
        def __init__(self, n: Annotated[int, Bounds(ge=1)] = 0):
            self.n = n

        def fit(self, data):
            self.data = data

        def recommend(self, users, k):
            import polars as pl

            item = self.data.item_ids[0]
            return pl.DataFrame({"user_id": users, "item_id": [item] * users.len(), "score": 1.0})

    with pytest.raises(PluginError, match=r"default n=0 is outside its own bounds \(>= 1\)"):
        check_recommender(Popularish, full_lists=False)


def test_harness_list_shows_bounds(cli, monkeypatch):
    monkeypatch.setenv("HARNESS_PLUGINS", "als,dssm")
    monkeypatch.setenv("COLUMNS", "160")
    out = cli("list").stdout
    assert "factors=64 (>= 1)" in out and "dropout=0.1 (in [0, 1))" in out
    rows = {r["name"]: r for r in json.loads(cli("list", "--json").stdout)}
    params = {p["name"]: p for p in rows["als"]["parameters"]}
    assert params["factors"]["bounds"] == {"ge": 1}
    assert params["use_cg"]["bounds"] is None
    assert {p["name"]: p for p in rows["dssm"]["parameters"]}["dropout"]["bounds"] == {
        "ge": 0,
        "lt": 1,
    }
