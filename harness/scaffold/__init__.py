"""``harness new NAME``: write a plugin package that installs with ``pip install -e`` and submits.

The files come from ``template/`` next to this module (shipped as package data). In file contents
``${name}`` (entry-point name), ``${dist}`` (distribution), ``${module}`` (import name) and
``${cls}`` (class) are substituted; ``__module__`` in a path becomes the import name, and the
``.tmpl`` suffix is dropped (so the templates are never imported or collected as tests here).
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import string
from importlib import metadata, resources
from pathlib import Path

from harness.api import ENTRY_POINT_GROUP
from harness.errors import ConfigError

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
SUFFIX = ".tmpl"


def names(name: str) -> dict[str, str]:
    """The names derived from an entry-point name such as ``my-model``."""
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in module.split("_")) + "Recommender"
    return {"name": name, "dist": f"harness-{name.replace('_', '-')}", "module": module, "cls": cls}


def check_name(name: str) -> None:
    """ConfigError (one line) unless ``name`` is a usable, unclaimed recommender name."""
    if not NAME_RE.match(name):
        raise ConfigError(
            f"invalid recommender name {name!r}: use lowercase letters, digits and single "
            "'-' or '_' between them, starting with a letter (e.g. my-model)"
        )
    module = names(name)["module"]
    if keyword.iskeyword(module):
        raise ConfigError(f"invalid recommender name {name!r}: {module!r} is a Python keyword")
    if importlib.util.find_spec(module) is not None:
        raise ConfigError(
            f"invalid recommender name {name!r}: a module named {module!r} is already importable "
            "here; pick a name that does not shadow it"
        )
    taken = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name in taken:
        raise ConfigError(
            f"a recommender named {name!r} is already registered (see `harness list`)"
        )


def _template_files():
    """(relative path parts, text) of every template file."""
    root = resources.files("harness") / "scaffold" / "template"
    stack = [(root, ())]
    while stack:
        node, parts = stack.pop()
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name != "__pycache__":
                    stack.append((child, parts + (child.name,)))
            elif child.name.endswith(SUFFIX):
                yield parts + (child.name,), child.read_text(encoding="utf-8")


def create(name: str, directory: Path | None = None) -> tuple[Path, list[Path]]:
    """Write the package for recommender ``name`` into ``directory`` (default ``./NAME``).

    Refuses (ConfigError) an invalid or taken name and a directory that exists and is not empty.
    Returns the directory and the files written.
    """
    check_name(name)
    target = Path(directory) if directory is not None else Path.cwd() / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} already exists and is not empty; choose another --dir")
    subs = names(name)
    written = []
    for parts, text in _template_files():
        rel = [p.replace("__module__", subs["module"]) for p in parts]
        rel[-1] = rel[-1][: -len(SUFFIX)]
        path = target.joinpath(*rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(string.Template(text).substitute(subs), encoding="utf-8")
        written.append(path)
    return target, sorted(written)
