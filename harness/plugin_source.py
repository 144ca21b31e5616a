"""A recommender's parameters read from its source file, without importing it.

``submit`` checks ``-p`` before it starts a worker, but no plugin code may run in the parent
(importing torch alone takes seconds, and the code is untrusted). So the entry point's module is
located (``importlib.util.find_spec`` of the top-level package runs nothing), parsed with
:mod:`ast`, and the ``__init__`` of the named class (or the named factory function) read:
names, simple annotations (int, float, str, bool, ``X | None``, ``Optional``, ``Literal``),
:class:`~harness.kit.Bounds` in ``Annotated[int, Bounds(ge=1)]`` (``Bounds`` imported at the top
of the module from ``harness.api`` or ``harness.kit``, its limits literal numbers) and literal
defaults. When the signature cannot be read statically (an inherited ``__init__``, a
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

from harness.kit import Bounds
from harness.plugins import Parameter, _type_name

_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}
_PLAIN_BASES = {"object", "Recommender", "Protocol"}
_BOUNDS_HOMES = {"harness.api", "harness.kit", "harness"}


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
    if not attr or "." in attr.strip():
        return None
    try:
        return _from_source(module.strip(), attr.strip(), hops=3)
    except (_Unknown, SyntaxError, OSError, UnicodeDecodeError, ValueError):
        return None


def _from_source(module: str, attr: str, *, hops: int) -> list[Parameter]:
    """``attr`` of ``module``, following ``from .model import Name`` re-exports (a package's
    ``__init__`` that exposes its class) up to ``hops`` times."""
    path = module_file(module)
    if path is None:
        raise _Unknown
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    try:
        return _from_module(tree, attr)
    except _Reexported as where:
        if hops <= 0:
            raise _Unknown from None
        source, name = where.args
        if source.startswith("."):  # relative to this module's package
            level = len(source) - len(source.lstrip("."))
            package = module.split(".")
            if path.name != "__init__.py":
                package = package[:-1]
            if level > 1:
                package = package[: -(level - 1)] if level - 1 < len(package) else []
            rest = source.lstrip(".")
            source = ".".join([*package, *([rest] if rest else [])])
        return _from_source(source, name, hops=hops - 1)


class _Reexported(_Unknown):
    """``attr`` is imported into the module: args (source module, name there)."""


def _from_module(tree: ast.Module, attr: str) -> list[Parameter]:
    node = next(
        (
            n
            for n in reversed(tree.body)
            if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.ImportFrom))
            and (
                n.name == attr
                if not isinstance(n, ast.ImportFrom)
                else any((a.asname or a.name) == attr for a in n.names)
            )
        ),
        None,
    )
    if (
        isinstance(node, ast.ImportFrom)
        and node.module is not None
        or (isinstance(node, ast.ImportFrom) and node.level)
    ):
        name = next(a.name for a in node.names if (a.asname or a.name) == attr)
        raise _Reexported("." * node.level + (node.module or ""), name)
    if node is None or isinstance(node, ast.ImportFrom):
        raise _Unknown  # assigned, imported from elsewhere, or made at run time
    if node.decorator_list:
        raise _Unknown  # a dataclass, a registry decorator: its signature may differ
    names = _bounds_names(tree)
    if isinstance(node, ast.FunctionDef):
        return _from_function(node, names, skip_self=False)
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
    return _from_function(init, names, skip_self=True)


def _bounds_names(tree: ast.Module) -> set[str]:
    """Names under which the module's top level imports harness' Bounds (``Bounds``, or an
    alias); ``api.Bounds`` and ``harness.api.Bounds`` (and ``kit``) are recognised as written."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in _BOUNDS_HOMES and not node.level:
            names |= {a.asname or a.name for a in node.names if a.name == "Bounds"}
    return names


def _from_function(fn: ast.FunctionDef, names: set[str], *, skip_self: bool) -> list[Parameter]:
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
        annotation, bounds = None, None
        if arg.annotation is not None:
            annotation, bounds = _annotation(_unquoted(arg.annotation), names, outer=True)
        out.append(Parameter(arg.arg, _type_name(annotation, value), value, annotation, bounds))
    return out


def _literal(node: ast.expr):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _Unknown from None  # a default computed at import time


def _unquoted(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "int | None"
        return ast.parse(node.value, mode="eval").body
    return node


def _head(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _annotation(node: ast.expr, names: set[str], *, outer: bool = False):
    """(type, Bounds or None) for the parameter's whole annotation (``outer``), else the type."""
    node = _unquoted(node)
    if (
        outer
        and isinstance(node, ast.Subscript)
        and _head(node.value) == "Annotated"
        and isinstance(node.slice, ast.Tuple)
        and len(node.slice.elts) >= 2
    ):
        base, *extras = node.slice.elts
        found = [_bounds(e) for e in extras if isinstance(e, ast.Call) and _is_bounds(e, names)]
        return _type(base, names), (found[-1] if found else None)
    typ = _type(node, names)
    return (typ, None) if outer else typ


def _is_bounds(node: ast.Call, names: set[str]) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in names
    return isinstance(func, ast.Attribute) and ast.unparse(func) in (
        "api.Bounds",
        "kit.Bounds",
        "harness.api.Bounds",
        "harness.kit.Bounds",
    )


def _bounds(node: ast.Call) -> Bounds:
    fields = ("ge", "gt", "le", "lt")
    if len(node.args) > len(fields) or any(k.arg is None for k in node.keywords):
        raise _Unknown
    values = {
        **{f: _literal(a) for f, a in zip(fields, node.args)},
        **{k.arg: _literal(k.value) for k in node.keywords if k.arg is not None},
    }
    try:
        return Bounds(**values)
    except TypeError:
        raise _Unknown from None  # not numbers, an unknown key: the worker reports it


def _type(node: ast.expr, names: set[str]):
    node = _unquoted(node)
    if isinstance(node, ast.Constant) and node.value is None:
        return type(None)
    if isinstance(node, ast.Name) and node.id in _SIMPLE:
        return _SIMPLE[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _type(node.left, names) | _type(node.right, names)  # types.UnionType, as at run time
    if isinstance(node, ast.Subscript):
        head = (
            node.value.attr
            if isinstance(node.value, ast.Attribute)
            else getattr(node.value, "id", "")
        )
        inner = node.slice
        items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        if head == "Optional":
            return typing.Optional[_type(items[0], names)]  # noqa: UP045  (built from source text)
        if head == "Union":
            return typing.Union[tuple(_type(i, names) for i in items)]  # noqa: UP007
        if head == "Literal":
            return typing.Literal[tuple(_literal(i) for i in items)]
    raise _Unknown  # a type we cannot name without importing: the worker checks
