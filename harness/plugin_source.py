"""A recommender's parameters read from its source file, without importing it.

``submit`` checks ``-p`` before it starts a worker, but no plugin code may run in the parent
(importing torch alone takes seconds, and the code is untrusted). So the entry point's module is
located (``importlib.util.find_spec`` of the top-level package runs nothing), parsed with
:mod:`ast`, and the ``__init__`` of the named class (or the named factory function) read:
names, simple annotations (int, float, str, bool, ``X | None``, ``Optional``, ``Literal``) and
literal defaults. When the signature cannot be read statically (an inherited ``__init__``, a
decorator, ``**kwargs``), :func:`parameters` returns None and the worker checks the parameters
before ``fit``, with the same messages.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import typing
from importlib import metadata
from pathlib import Path

from harness.plugins import Parameter, _type_name

_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}
_PLAIN_BASES = {"object", "Recommender", "Protocol"}


class _Unknown(Exception):
    pass


def module_file(module: str) -> Path | None:
    """The source file of ``module`` (dotted), found without executing any package."""
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 1:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    for base in spec.submodule_search_locations or []:
        path = Path(base, *parts[1:])
        for candidate in (path.with_suffix(".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def package_dir(module: str) -> Path | None:
    """The directory of the top-level package of ``module`` (for the sandbox to mount)."""
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def parameters(ep: metadata.EntryPoint) -> list[Parameter] | None:
    """The keyword parameters of the entry point's factory, or None when not readable statically."""
    module, _, attr = ep.value.partition(":")
    path = module_file(module.strip())
    if path is None or not attr or "." in attr.strip():
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        return _from_module(tree, attr.strip())
    except (_Unknown, SyntaxError, OSError, UnicodeDecodeError, ValueError):
        return None


def _from_module(tree: ast.Module, attr: str) -> list[Parameter]:
    node = next(
        (
            n
            for n in reversed(tree.body)
            if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == attr
        ),
        None,
    )
    if node is None:
        raise _Unknown  # assigned, imported from elsewhere, or made at run time
    if node.decorator_list:
        raise _Unknown  # a dataclass, a registry decorator: its signature may differ
    if isinstance(node, ast.FunctionDef):
        return _from_function(node, skip_self=False)
    init = next(
        (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is None:
        bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "?") for b in node.bases}
        if bases - _PLAIN_BASES:
            raise _Unknown  # inherited from a base we would have to import
        return []
    if init.decorator_list:
        raise _Unknown
    return _from_function(init, skip_self=True)


def _from_function(fn: ast.FunctionDef, *, skip_self: bool) -> list[Parameter]:
    args = fn.args
    if args.vararg or args.kwarg:
        raise _Unknown
    positional = [*args.posonlyargs, *args.args]
    if skip_self:
        positional = positional[1:]
    no_default: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults = no_default + list(args.defaults)
    pairs = [*zip(positional, defaults), *zip(args.kwonlyargs, args.kw_defaults)]
    out = []
    for arg, default in pairs:
        value = inspect.Parameter.empty if default is None else _literal(default)
        annotation = _annotation(arg.annotation) if arg.annotation is not None else None
        out.append(Parameter(arg.arg, _type_name(annotation, value), value, annotation))
    return out


def _literal(node: ast.expr):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _Unknown from None  # a default computed at import time


def _annotation(node: ast.expr):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "int | None"
        return _annotation(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.Constant) and node.value is None:
        return type(None)
    if isinstance(node, ast.Name) and node.id in _SIMPLE:
        return _SIMPLE[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotation(node.left) | _annotation(node.right)  # types.UnionType, as at run time
    if isinstance(node, ast.Subscript):
        head = (
            node.value.attr
            if isinstance(node.value, ast.Attribute)
            else getattr(node.value, "id", "")
        )
        inner = node.slice
        items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        if head == "Optional":
            return typing.Optional[_annotation(items[0])]  # noqa: UP045  (built from source text)
        if head == "Union":
            return typing.Union[tuple(_annotation(i) for i in items)]  # noqa: UP007
        if head == "Literal":
            return typing.Literal[tuple(_literal(i) for i in items)]
    raise _Unknown  # a type we cannot name without importing: the worker checks
