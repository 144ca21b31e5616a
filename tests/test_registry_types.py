"""The dataset registry is typed: every value is checked once at load, with a one-line error
naming the file, the dataset, the key and the expected type; names and paths stay inside the
home and the package; no file content is quoted in an error."""

from __future__ import annotations

import pytest

from harness.datasets import prepare
from harness.errors import ConfigError, DataError

BASE = """
[mine]
format = "csv"
source = {{ path = "log.csv" }}
columns = {{ user_id = "u", item_id = "i", timestamp = "t" }}
{extra}
  [mine.splits.main]
  protocol = "temporal"
  {split}
"""


def _registry(tmp_path, extra="", split="days = 1", name=None):
    (tmp_path / "log.csv").write_text("u,i,t\na,x,1\na,y,100000\nb,x,2\nb,z,100001\n")
    text = BASE.format(extra=extra, split=split)
    if name is not None:
        text = text.replace("[mine]", f'["{name}"]').replace("[mine.splits", f'["{name}".splits')
    path = tmp_path / "reg.toml"
    path.write_text(text)
    return path


def _error(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "extra, split, words",
    [
        ('min_user = "two"', "days = 1", ["[mine]", "min_user", "integer", "'two'"]),
        ("min_item = 1.5", "days = 1", ["[mine]", "min_item", "integer"]),
        ("min_user = -1", "days = 1", ["min_user", "0"]),
        ("", 'quantile = "half"', ["[mine]", "splits.main.quantile", "number", "'half'"]),
        ("", "quantile = 1.5", ["splits.main.quantile", "less than 1"]),
        ("", 'days = "7"', ["splits.main.days", "integer"]),
        ('dedup = "sometimes"', "days = 1", ["dedup", "'first'"]),
        ('timestamp_unit = "hours"', "days = 1", ["timestamp_unit", "'s'"]),
        ("columns = 3", "days = 1", ["columns", "table"]),
        ("positive = 4", "days = 1", ["positive", "string"]),
    ],
)
def test_ill_typed_values_are_one_line_errors(tmp_path, home, extra, split, words):
    reg = _registry(tmp_path, extra.replace("columns = 3", ""), split)
    if extra == "columns = 3":
        reg.write_text(
            reg.read_text().replace(
                'columns = { user_id = "u", item_id = "i", timestamp = "t" }', "columns = 3"
            )
        )
    with pytest.raises(ConfigError) as info:
        prepare("mine", home=home, registry_file=reg)
    message = _error(info)
    assert str(reg) in message
    for w in words:
        assert w in message, (w, message)


def test_ill_typed_registry_through_the_cli(cli, tmp_path):
    reg = _registry(tmp_path, 'min_user = "two"')
    result = cli("--datasets", str(reg), "data", "list", expect=1)
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert "min_user" in result.stderr


def test_default_split_is_computed_once():
    from harness.datasets.registry import load_registry

    entries = load_registry()
    assert entries["ml-latest-small"]["default_split"] == "user-temporal"  # declared
    assert entries["ml-100k"]["default_split"] == "temporal"  # first declared


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden"])
def test_entry_names_cannot_leave_the_cache(tmp_path, home, name):
    reg = _registry(tmp_path, name=name)
    with pytest.raises(ConfigError, match="dataset name"):
        prepare(name, home=home, registry_file=reg)
    assert not (home.parent / "escape").exists()


def test_embedded_paths_stay_inside_the_package(tmp_path, home):
    reg = tmp_path / "reg.toml"
    reg.write_text(
        '[up]\nformat = "movielens-latest"\nsource = { embedded = "../.." }\n'
        '[up.splits.r]\nprotocol = "random"\ntest_ratio = 0.2\n'
    )
    with pytest.raises(ConfigError, match="embedded"):
        prepare("up", home=home, registry_file=reg)


def test_files_stay_inside_the_source(tmp_path, home):
    reg = _registry(tmp_path, 'files = { interactions = "../../etc/passwd" }')
    with pytest.raises(ConfigError, match="files.interactions"):
        prepare("mine", home=home, registry_file=reg)


def test_errors_quote_no_file_content(tmp_path, home):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/sh\n")
    reg = tmp_path / "reg.toml"
    reg.write_text(
        f'[leak]\nformat = "csv"\nsource = {{ path = "{secret}" }}\n'
        '[leak.splits.r]\nprotocol = "random"\ntest_ratio = 0.2\n'
    )
    with pytest.raises((ConfigError, DataError)) as info:
        prepare("leak", home=home, registry_file=reg)
    message = _error(info)
    assert "root:x" not in message and "/bin/bash" not in message and str(secret) in message


def _stamped(tmp_path, stamps, unit):
    lines = ["u,i,t"] + [f"u{n % 3},i{n},{t}" for n, t in enumerate(stamps)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "reg.toml"
    path.write_text(
        f'[mine]\nformat = "csv"\nsource = {{ path = "log.csv" }}\n'
        f'columns = {{ user_id = "u", item_id = "i", timestamp = "t" }}\n'
        f'timestamp_unit = "{unit}"\n[mine.splits.r]\nprotocol = "random"\n'
    )
    return path


def test_huge_epoch_is_an_error_naming_the_row(tmp_path, home):
    reg = _stamped(tmp_path, [1_600_000_000, 10**18, 1_600_000_100], "s")
    with pytest.raises(DataError) as info:
        prepare("mine", home=home, registry_file=reg)
    message = _error(info)
    assert "row 2" in message and "timestamp_unit" in message and "'s'" in message


def test_implausible_timestamp_unit_warns(tmp_path, home):
    from harness.errors import HarnessWarning

    stamps = [1_600_000_000 + 86_400 * d for d in range(30)]
    reg = _stamped(tmp_path, stamps, "ns")
    with pytest.warns(HarnessWarning, match=r"timestamp_unit 'ns'.*'s'"):
        prepare("mine", home=home, registry_file=reg)
    reg = _stamped(tmp_path, stamps, "s")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", HarnessWarning)
        prepare("mine", home=home, registry_file=reg, force=True)


def test_warnings_print_as_one_line_in_the_cli(cli, tmp_path):
    stamps = [1_600_000_000 + 86_400 * d for d in range(30)]
    reg = _stamped(tmp_path, stamps, "ms")
    result = cli("--datasets", str(reg), "data", "prepare", "mine")
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "timestamp_unit 'ms'" in warning[0]
