"""A small, safe filter language compiled to polars expressions (never Python ``eval``).

Grammar::

    expr  := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | cmp
    cmp   := value (OP value | ["not"] "in" "(" value ("," value)* ")")?
    value := NUMBER | 'string' | "string" | COLUMN | "(" expr ")"
    OP    := == | != | < | <= | > | >=

Examples: ``rating >= 4``, ``watched_pct > 10 and total_dur >= 300``,
``content_type in ('film', 'series')``, ``not (rating < 3)``.
"""

from __future__ import annotations

import re

import polars as pl

from harness.errors import ConfigError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<op>==|!=|<=|>=|<|>|\(|\)|,)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
_OPS = {
    "==": "__eq__",
    "!=": "__ne__",
    "<": "__lt__",
    "<=": "__le__",
    ">": "__gt__",
    ">=": "__ge__",
}
_KEYWORDS = {"and", "or", "not", "in"}
MAX_DEPTH = 50  # parentheses and "not"s nested deeper are an error, not a RecursionError


def _kind(dtype) -> str | None:
    """ "number" or "text" for a column type that a literal is compared with; None: unchecked."""
    if dtype is None:
        return None
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Utf8 or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "text"
    return None


def _tokenize(text: str, where: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ConfigError(f"{where}: cannot parse filter {text!r} at {text[pos:].strip()!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def compile_filter(text: str, columns=None, *, where: str = "filter") -> pl.Expr:
    """Compile ``text`` into a boolean polars expression; ``columns`` (if given) are the only
    names allowed, and when it maps names to types (a polars schema) a column compared with a
    literal of the other kind (``clicks >= 'x'``, ``kind == 3``) is an error too. Raises
    :class:`ConfigError` naming ``where`` on any syntax, name, type or nesting error."""
    tokens = _tokenize(text, where)
    types = dict(columns) if isinstance(columns, (dict, pl.Schema)) else {}
    pos = 0
    depth = 0

    def fail(msg: str):
        shown = text if len(text) <= 80 else text[:79] + "…"  # one readable line
        raise ConfigError(f"{where}: {msg} in filter {shown!r}")

    def peek():
        return tokens[pos] if pos < len(tokens) else ("end", "")

    def take(kind=None, value=None):
        nonlocal pos
        tok = peek()
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            fail(f"expected {value or kind}, found {tok[1] or 'end'!r}")
        pos += 1
        return tok

    def deeper():
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            fail(f"parentheses or 'not' nested more than {MAX_DEPTH} deep")

    def value():
        """(expression, what it holds: "number", "text", a column name or None)."""
        nonlocal depth
        kind, val = peek()
        if kind == "num":
            take()
            return pl.lit(float(val) if any(c in val for c in ".eE") else int(val)), "number"
        if kind == "str":
            take()
            return pl.lit(val[1:-1]), "text"
        if kind == "name":
            take()
            if columns is not None and val not in columns:
                fail(f"unknown column {val!r} (columns: {', '.join(columns)})")
            return pl.col(val), ("column", val)
        if val == "(":
            take()
            deeper()
            inner = expr()
            take("op", ")")
            depth -= 1
            return inner, None
        fail(f"unexpected {val or 'end'!r}")

    def check(left, right_kind: str, literal: str) -> None:
        """A column compared with a literal of the other kind cannot be evaluated."""
        if isinstance(left, tuple) and right_kind in ("number", "text"):
            have = _kind(types.get(left[1]))
            if have is not None and have != right_kind:
                fail(
                    f"column {left[1]!r} holds {'numbers' if have == 'number' else 'text'}, "
                    f"compared with {right_kind} {literal}"
                )

    def literal_list(left):
        take("op", "(")
        out = []
        while True:
            kind, val = take()
            if kind == "num":
                check(left, "number", val)
                out.append(float(val) if any(c in val for c in ".eE") else int(val))
            elif kind == "str":
                check(left, "text", val)
                out.append(val[1:-1])
            else:
                fail(f"expected a literal in list, found {val!r}")
            if peek()[1] == ",":
                take()
                continue
            take("op", ")")
            return out

    def cmp():
        left, left_kind = value()
        kind, val = peek()
        if kind == "op" and val in _OPS:
            take()
            literal = peek()[1]
            right, right_kind = value()
            check(left_kind, right_kind, literal)
            check(right_kind, left_kind if isinstance(left_kind, str) else None, "")
            return getattr(left, _OPS[val])(right)
        if (
            kind == "kw"
            and val in ("in", "not")
            and (val == "in" or tokens[pos + 1 : pos + 2] == [("kw", "in")])
        ):
            negate = val == "not"
            take()
            if negate:
                take("kw", "in")
            result = left.is_in(literal_list(left_kind))
            return ~result if negate else result
        return left

    def not_():
        nonlocal depth
        if peek() == ("kw", "not"):
            take()
            deeper()
            inner = ~not_()
            depth -= 1
            return inner
        return cmp()

    def and_():
        result = not_()
        while peek() == ("kw", "and"):
            take()
            result = result & not_()
        return result

    def expr():
        result = and_()
        while peek() == ("kw", "or"):
            take()
            result = result | and_()
        return result

    if not tokens:
        fail("empty expression")
    result = expr()
    if pos != len(tokens):
        fail(f"unexpected {tokens[pos][1]!r}")
    return result
