"""Plugin discovery, parameter conversion and `harness list`, through real entry points."""

from __future__ import annotations

import json

import pytest

from harness import plugins
from harness.errors import ConfigError, NotFoundError, PluginError

GOOD = '''
class Model:
    """A fake model for tests.

    More text that is not the description.
    """

    def __init__(self, factors: int = 8, rate: float = 0.1, flag: bool = False,
                 window: int | None = None, name: str = "x", untyped=3, plain=None):
        self.kwargs = dict(factors=factors, rate=rate, flag=flag, window=window, name=name,
                           untyped=untyped, plain=plain)

    def fit(self, data):
        pass

    def recommend(self, users, k):
        raise NotImplementedError
'''

DESCRIBED = '''
class Model:
    """Docstring that loses against the attribute."""

    description = "Attribute description"

    def __init__(self, needed: int):
        self.needed = needed

    def fit(self, data):
        pass

    def recommend(self, users, k):
        raise NotImplementedError
'''

BROKEN = "import module_that_does_not_exist_anywhere\nclass Model: pass\n"

NOT_A_MODEL = """
class Model:
    def __init__(self, x: int = 1):
        if x < 0:
            raise ValueError("x must not be negative")
"""


@pytest.fixture
def fakes(register_plugins, monkeypatch):
    register_plugins(
        {
            "fake-good": GOOD,
            "fake-described": DESCRIBED,
            "fake-broken": BROKEN,
            "fake-nomodel": NOT_A_MODEL,
        },
        dist="fakedist",
        version="1.2.3",
    )
    monkeypatch.setenv("HARNESS_PLUGINS", "fake-good,fake-described,fake-broken,fake-nomodel")


def test_discover_reads_distribution_description_and_parameters(fakes):
    infos = {i.name: i for i in plugins.discover()}
    assert set(infos) == {"fake-good", "fake-described", "fake-broken", "fake-nomodel"}
    good = infos["fake-good"]
    assert (good.distribution, good.version, good.value) == (
        "fakedist",
        "1.2.3",
        "fakedist_mods.fake_good:Model",
    )
    assert good.description == "A fake model for tests."
    assert good.error is None
    assert good.parameters == [
        ("factors", "int", 8),
        ("rate", "float", 0.1),
        ("flag", "bool", False),
        ("window", "int | None", None),
        ("name", "str", "x"),
        ("untyped", "int", 3),
        ("plain", "str", None),
    ]
    assert infos["fake-described"].description == "Attribute description"
    assert infos["fake-described"].params[0].required


def test_broken_plugin_is_listed_with_its_error_not_raised(fakes):
    broken = plugins.get("fake-broken")
    assert broken.error.startswith("ModuleNotFoundError")
    assert "module_that_does_not_exist_anywhere" in broken.error
    with pytest.raises(PluginError, match="fake-broken.*failed to import"):
        plugins.build("fake-broken", {})


def test_harness_plugins_selects_a_subset(register_plugins, monkeypatch):
    register_plugins({"fake-good": GOOD, "fake-broken": BROKEN})
    monkeypatch.setenv("HARNESS_PLUGINS", "fake-good")
    assert [i.name for i in plugins.discover()] == ["fake-good"]
    with pytest.raises(NotFoundError, match="known: fake-good"):
        plugins.get("fake-broken")


def test_builtin_baselines_are_discovered_through_the_same_door(monkeypatch):
    monkeypatch.delenv("HARNESS_PLUGINS", raising=False)
    infos = {i.name: i for i in plugins.discover()}
    for name in (
        "random",
        "popular",
        "personal-popular",
        "itemknn",
        "userknn",
        "ease",
        "als",
        "bpr",
    ):
        assert infos[name].error is None, infos[name].error
        assert infos[name].distribution == "harness"
        assert infos[name].description
    assert ("window_days", "int | None", None) in infos["popular"].parameters


def test_build_converts_strings_to_declared_types(fakes):
    model = plugins.build(
        "fake-good",
        {
            "factors": "64",
            "rate": "1e-3",
            "flag": "yes",
            "window": "none",
            "name": "abc",
            "untyped": "5",
            "plain": "text",
        },
    )
    assert model.kwargs == dict(
        factors=64, rate=0.001, flag=True, window=None, name="abc", untyped=5, plain="text"
    )
    assert plugins.build("fake-good", {"window": "7", "flag": "0"}).kwargs["window"] == 7
    assert plugins.build("fake-good", {"flag": "0"}).kwargs["flag"] is False


@pytest.mark.parametrize(
    "params, message",
    [
        ({"factor": "3"}, "no parameter 'factor'; accepted: factors, rate, flag, window, name"),
        ({"factors": "3.5"}, "factors='3.5' is not a valid int"),
        ({"flag": "maybe"}, "flag='maybe' is not a valid bool"),
        ({"window": "soon"}, "window='soon' is not a valid int | None"),
    ],
)
def test_build_rejects_unknown_names_and_bad_values(fakes, params, message):
    with pytest.raises(ConfigError, match=message.replace("|", r"\|")):
        plugins.build("fake-good", params)


def test_build_reports_construction_errors_and_non_models(fakes):
    with pytest.raises(PluginError, match="rejected its parameters: x must not be negative"):
        plugins.build("fake-nomodel", {"x": "-1"})
    with pytest.raises(PluginError, match="without fit"):
        plugins.build("fake-nomodel", {})
    with pytest.raises(NotFoundError, match="no recommender named 'nope'"):
        plugins.build("nope", {})


def test_parse_params():
    assert plugins.parse_params(["a=1", "b = x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ConfigError, match="'oops' is not of the form key=value"):
        plugins.parse_params(["oops"])
    with pytest.raises(ConfigError, match="'a' given twice"):
        plugins.parse_params(["a=1", "a=2"])


def test_harness_list_survives_a_broken_plugin(fakes, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    result = cli("list")
    assert "fake-good" in result.stdout and "fakedist" in result.stdout
    assert "1.2.3" in result.stdout and "factors=8" in result.stdout
    broken = [line for line in result.stdout.splitlines() if "fake-broken" in line]
    assert len(broken) == 1 and "error: ModuleNotFoundError" in broken[0]


def test_harness_list_json(fakes, cli):
    rows = {r["name"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert rows["fake-broken"]["error"].startswith("ModuleNotFoundError")
    assert rows["fake-good"]["parameters"][0] == {
        "name": "factors",
        "type": "int",
        "default": 8,
        "required": False,
        "bounds": None,
    }
    assert rows["fake-described"]["parameters"][0]["required"] is True
