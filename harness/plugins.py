"""Recommender discovery: the one place that reads the ``harness.recommenders`` entry points.

Built-in baselines and third-party packages use the same door. ``$HARNESS_PLUGINS``
(comma-separated entry-point names) restricts discovery to a subset. Parameters given on the command
line as strings (``-p factors=64``) are converted to the types the recommender's ``__init__``
declares (its annotations, else the type of its default) and checked against the
:class:`~harness.kit.Bounds` an ``Annotated`` annotation declares.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from harness.api import ENTRY_POINT_GROUP, Recommender
from harness.config import ENV_PLUGINS
from harness.errors import ConfigError, NotFoundError, PluginError, UsageError
from harness.kit import Bounds

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_NONE = {"none", "null"}


@dataclass
class Parameter:
    """One keyword parameter a recommender accepts."""

    name: str
    type_name: str
    default: Any = inspect.Parameter.empty
    annotation: Any = None  # without Annotated[...]: its Bounds are in ``bounds``
    bounds: Bounds | None = None

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def as_tuple(self) -> tuple[str, str, Any]:
        return (self.name, self.type_name, None if self.required else self.default)


@dataclass
class PluginInfo:
    """What ``harness list`` shows about one entry point; ``error`` is set when it fails to load."""

    name: str
    value: str
    distribution: str | None = None
    version: str | None = None
    description: str = ""
    params: list[Parameter] = field(default_factory=list)
    error: str | None = None
    factory: Any = field(default=None, repr=False, compare=False)

    @property
    def parameters(self) -> list[tuple[str, str, Any]]:
        """(name, type name, default) per parameter; default None when required."""
        return [p.as_tuple() for p in self.params]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "distribution": self.distribution,
            "version": self.version,
            "description": self.description,
            "parameters": [
                {
                    "name": p.name,
                    "type": p.type_name,
                    "required": p.required,
                    "default": _plain(None if p.required else p.default),
                    "bounds": bounds_json(p.bounds),
                }
                for p in self.params
            ],
            "error": self.error,
        }


def _plain(value: Any) -> Any:
    """A default as JSON can hold it: scalars as they are, anything else as its repr."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def bounds_json(bounds: Bounds | None) -> dict[str, float] | None:
    """``{"ge": 1}``: the limits a parameter declares, None without."""
    if bounds is None:
        return None
    return {k: v for k in ("ge", "gt", "le", "lt") if (v := getattr(bounds, k)) is not None}


def split_annotated(annotation: Any) -> tuple[Any, Bounds | None]:
    """``Annotated[int, Bounds(ge=1)]`` -> ``(int, Bounds(ge=1))``; anything else -> ``(it, None)``.
    Other metadata of ``Annotated`` is ignored; the last Bounds wins."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return annotation, None
    base, *extras = typing.get_args(annotation)
    found = [e for e in extras if isinstance(e, Bounds)]
    return base, (found[-1] if found else None)


def _entry_points() -> list[metadata.EntryPoint]:
    """Entry points of the group, first registration of each name wins, filtered by the env var."""
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    wanted = os.environ.get(ENV_PLUGINS, "").strip()
    if wanted:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        return [seen[n] for n in names if n in seen]
    return sorted(seen.values(), key=lambda ep: ep.name)


def _describe(factory: Any) -> str:
    text = getattr(factory, "description", None)
    if not isinstance(text, str) or not text.strip():
        text = inspect.getdoc(factory) or ""
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _type_name(annotation: Any, default: Any) -> str:
    if annotation is None or annotation is inspect.Parameter.empty:
        if default is inspect.Parameter.empty or default is None:
            return "str"
        return type(default).__name__
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _signature_params(factory: Any) -> list[Parameter]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    params = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation, bounds = split_annotated(hints.get(p.name, p.annotation))
        if annotation is inspect.Parameter.empty:
            annotation = None
        params.append(
            Parameter(p.name, _type_name(annotation, p.default), p.default, annotation, bounds)
        )
    return params


def _info(ep: metadata.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    info = PluginInfo(
        name=ep.name,
        value=ep.value,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
    )
    try:
        factory = ep.load()
        info.factory = factory
        info.description = _describe(factory)
        info.params = _signature_params(factory)
    except Exception as exc:  # a broken plugin is listed, never fatal for discovery
        info.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return info


def discover() -> list[PluginInfo]:
    """Every registered recommender (respecting ``$HARNESS_PLUGINS``); broken ones carry ``error``."""
    return [_info(ep) for ep in _entry_points()]


def get(name: str) -> PluginInfo:
    """The recommender registered as ``name``; NotFoundError listing the known names."""
    return _info(entry_point(name))


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; ConfigError naming a pair without ``=`` or a repeated key."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"parameter {pair!r} is not of the form key=value")
        if key in out:
            raise ConfigError(f"parameter {key!r} given twice")
        out[key] = value.strip()
    return out


def _convert_one(text: str, tp: Any) -> Any:
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("expected true/false/1/0/yes/no")
    if tp in (int, float, str):
        return tp(text)
    raise TypeError


def convert(text: str, param: Parameter) -> Any:
    """Convert a command-line string to the declared type of ``param``; ValueError if it cannot."""
    annotation = param.annotation
    if annotation is None:
        default = param.default
        if default is inspect.Parameter.empty or default is None:
            return text
        annotation = type(default)
    origin = typing.get_origin(annotation)
    options: tuple = (annotation,)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
    elif origin is typing.Literal:
        allowed = typing.get_args(annotation)
        for value in allowed:
            if str(value) == text:
                return value
        raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
    if type(None) in options and text.lower() in _NONE:
        return None
    concrete = [t for t in options if t is not type(None)]
    # try the strictest types first so that "3" becomes int in `int | float`
    order = {bool: 0, int: 1, float: 2, str: 3}
    for tp in sorted(concrete, key=lambda t: order.get(t, 4)):
        try:
            return _convert_one(text, tp)
        except (ValueError, TypeError):
            continue
    if not any(t in order for t in concrete):
        return text  # a type we do not know how to parse: hand the string over
    raise ValueError(f"expected {param.type_name}")


def entry_points() -> list[metadata.EntryPoint]:
    """The registered entry points (respecting ``$HARNESS_PLUGINS``), none of them loaded."""
    return _entry_points()


def entry_point(name: str) -> metadata.EntryPoint:
    """The entry point registered as ``name``, not loaded; NotFoundError listing the known names."""
    eps = {ep.name: ep for ep in _entry_points()}
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise NotFoundError(f"no recommender named {name!r}; known: {known} (see `harness list`)")
    return eps[name]


def convert_params(
    name: str, declared: list[Parameter], params: dict[str, Any] | None
) -> dict[str, Any]:
    """String parameters -> keyword arguments of the declared types.

    ConfigError for an unknown parameter (listing the accepted ones) or a value of the wrong type;
    UsageError (exit 2) for a value outside the parameter's declared :class:`Bounds`.
    """
    by_name = {p.name: p for p in declared}
    kwargs: dict[str, Any] = {}
    for key, text in (params or {}).items():
        if key not in by_name:
            accepted = ", ".join(by_name) or "none"
            raise ConfigError(
                f"recommender {name!r} has no parameter {key!r}; accepted: {accepted}"
            )
        param = by_name[key]
        if not isinstance(text, str):
            kwargs[key] = text
        else:
            try:
                kwargs[key] = convert(text, param)
            except ValueError as exc:
                raise ConfigError(
                    f"recommender {name!r}: parameter {key}={text!r} is not a valid "
                    f"{param.type_name} ({exc})"
                ) from None
        check_bounds(name, param, kwargs[key], text)
    return kwargs


def check_bounds(name: str, param: Parameter, value: Any, given: Any = None) -> None:
    """UsageError naming the parameter, the value and the bound when ``value`` is outside
    ``param.bounds`` (the one message of the parent's check and of the worker's)."""
    if param.bounds is None or param.bounds.contains(value):
        return
    shown = given if isinstance(given, str) else repr(value)
    raise UsageError(
        f"recommender {name!r}: parameter {param.name}={shown} is out of range "
        f"(must be {param.bounds})"
    )


def instantiate(name: str, factory: Any, params: dict[str, str] | None = None) -> Recommender:
    """Construct a loaded recommender factory from string parameters (PluginError, ConfigError)."""
    kwargs = convert_params(name, _signature_params(factory), params)
    try:
        model = factory(**kwargs)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"recommender {name!r} rejected its parameters: {exc}") from exc
    except Exception as exc:
        raise PluginError(
            f"recommender {name!r} failed to build: {type(exc).__name__}: {exc}"
        ) from exc
    if not (callable(getattr(model, "fit", None)) and callable(getattr(model, "recommend", None))):
        raise PluginError(f"recommender {name!r} built an object without fit() and recommend()")
    return model


def build(name: str, params: dict[str, str] | None = None) -> Recommender:
    """Load recommender ``name`` and construct it from string parameters.

    Raises NotFoundError (unknown name), PluginError (import or construction failed) and
    ConfigError (unknown parameter, listing the accepted ones; or a value of the wrong type).
    """
    info = get(name)
    if info.error:
        raise PluginError(f"recommender {name!r} ({info.value}) failed to import: {info.error}")
    return instantiate(name, info.factory, params)
