"""The README tells the truth: its commands exist with the options it shows, its test command is the
one CI runs, and its code examples run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import polars as pl
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _harness_lines() -> list[list[str]]:
    """Every ``harness ...`` invocation in the README's bash blocks, as argument lists."""
    found = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words and words[0] == "harness":
                    found.append(words[1:])
    return found


def test_first_two_commands_run_the_main_job_and_the_tests_ci_runs():
    first = _blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    main_job, tests = first
    assert main_job.endswith("harness demo")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == tests, "the README's test command and .ci/run differ"


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    from harness.cli import main

    command, rest = main, list(args)
    while isinstance(command, click.Group):
        while rest and rest[0].startswith("--"):  # global options and their values
            option = rest.pop(0)
            if "=" not in option and option not in ("--version", "--help"):
                rest.pop(0)
        assert rest, f"no subcommand in {args}"
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, (
            f"unknown command {rest[0]!r} in README line harness {' '.join(args)}"
        )
        command, rest = sub, rest[1:]
    return command, rest


def test_every_readme_command_and_option_exists():
    lines = _harness_lines()
    assert len(lines) >= 15
    for args in lines:
        command, rest = _resolve(args)
        known = {opt for param in command.params for opt in param.opts}
        for word in rest:
            if word.startswith("-"):
                assert word.split("=")[0] in known, (
                    f"README: harness {' '.join(args)}: no option {word}"
                )


def test_every_command_has_a_readme_section():
    from harness.cli import main

    headings = set(re.findall(r"^### (.+)$", README, flags=re.M))
    documented = {name for heading in headings for name in re.findall(r"harness (\w+)", heading)}
    assert set(main.commands) <= documented, set(main.commands) - documented
    data = main.commands["data"]
    used = {args[1] for args in _harness_lines() if args and args[0] == "data"}
    assert set(data.commands) <= used, set(data.commands) - used


def test_local_links_point_at_files():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to missing {target}"


def test_plugin_example_passes_the_contract_check():
    from harness.checks import check_recommender

    source = next(block for block in _blocks("python") if "class MyModel" in block)
    namespace: dict = {}
    exec(compile(source, "README.md", "exec"), namespace)
    report = check_recommender(namespace["MyModel"])
    assert report


def test_registry_example_prepares(cli, tmp_path):
    (entry,) = [b for b in _blocks("toml") if "[my-shop]" in b]
    assert "my-shop" in tomllib.loads(entry)
    (tmp_path / "my.toml").write_text(entry)
    # 40 users x 6 clicks over three weeks; clicks == 0 rows are not positive
    n = 240
    pl.DataFrame(
        {
            "uid": [u % 40 for u in range(n)],
            "product": [(u * 7) % 25 for u in range(n)],
            "ts": [1_700_000_000 + u * 7_500 for u in range(n)],
            "clicks": [u % 4 for u in range(n)],
        }
    ).write_csv(tmp_path / "clicks.csv")
    out = cli(
        "--datasets", str(tmp_path / "my.toml"), "data", "prepare", "my-shop", "--json"
    ).stdout
    assert '"last-week"' in out
    info = cli("--datasets", str(tmp_path / "my.toml"), "data", "info", "my-shop", "--json").stdout
    assert '"my-shop"' in info


@pytest.mark.parametrize(
    "page",
    [
        "docs/datasets.md",
        "docs/plugins.md",
        "docs/neural.md",
        "docs/metrics.md",
        "docs/leaderboard.md",
        "submissions/README.md",
    ],
)
def test_docs_pages_exist(page):
    assert (ROOT / page).read_text().startswith("# ")


def _section(heading_words: str) -> str:
    """A README command section ("### harness X ...") and the docs pages it links to."""
    for match in re.finditer(r"^### (.+)$", README, flags=re.M):
        if re.search(rf"\bharness {heading_words}\b", match.group(1)):
            end = re.search(r"^##", README[match.end() :], flags=re.M)
            text = README[match.start() : match.end() + (end.start() if end else len(README))]
            pages = re.findall(r"\]\((docs/[^)#]+\.md)", text)
            return text + "".join((ROOT / page).read_text() for page in pages)
    raise AssertionError(f"no README section for harness {heading_words}")


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_cli_option_is_documented_in_its_command_section():
    """Each option of each command appears in the README section of that command (or a docs page
    the section links to); --json and --help are documented once for all commands."""
    from harness.cli import main

    missing = []
    for path, command in _commands(main):
        text = _section(path[0])
        for param in command.params:
            if isinstance(param, click.Option) and param.opts[0] not in ("--json", "--help"):
                if not any(re.search(rf"(?<![\w-]){re.escape(opt)}\b", text) for opt in param.opts):
                    missing.append(f"harness {' '.join(path)} {param.opts[0]}")
    assert not missing, missing


def test_every_registered_metric_has_its_definition_in_docs_metrics():
    from harness.metrics import REGISTRY

    page = (ROOT / "docs" / "metrics.md").read_text()
    names = REGISTRY.names()
    assert len(names) >= 10
    undocumented = [n for n in names if not re.search(rf"^\| `{re.escape(n)}@k` \|", page, re.M)]
    assert not undocumented, undocumented
