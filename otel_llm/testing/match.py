"""Value matchers for selectors and assertions: equality, prefix, regex, numeric comparison.

Anywhere a value is expected, pass a plain value (equality), one of these matchers, or
the YAML/dict form used by ``otel-llm check`` specs::

    llm_trace.llm_calls(model=prefix("llama"))
    span.assert_attr("gen_ai.usage.output_tokens", lt(4000))
    span.assert_attr("gen_ai.usage.output_tokens", {"lte": 4000})   # same, dict form

Dict keys (all must hold): ``eq``, ``ne``, ``lt``, ``lte``/``le``, ``gt``, ``gte``/``ge``,
``prefix``, ``suffix``, ``contains``, ``regex`` (``re.search``), ``in``, ``not_in``,
``exists`` (true/false).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Matcher",
    "absent",
    "as_matcher",
    "between",
    "contains",
    "eq",
    "exists",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "one_of",
    "prefix",
    "regex",
    "satisfies",
    "suffix",
]


class Matcher:
    """A predicate on one value with a readable description (``< 4000``)."""

    #: Whether the matcher accepts a missing value (only ``absent()`` does).
    accepts_missing = False

    def __call__(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.describe()


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, str) and isinstance(expected, int):  # YAML `error_type: 404`
        return actual == str(expected)
    return bool(actual == expected)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class _Eq(Matcher):
    def __init__(self, expected: Any) -> None:
        self.expected = expected

    def __call__(self, value: Any) -> bool:
        return _same(value, self.expected)

    def describe(self) -> str:
        return f"= {_fmt(self.expected)}"


class _Ne(_Eq):
    accepts_missing = True

    def __call__(self, value: Any) -> bool:
        return not _same(value, self.expected)

    def describe(self) -> str:
        return f"!= {_fmt(self.expected)}"


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Compare(Matcher):
    def __init__(self, op: str, bound: float) -> None:
        if _number(bound) is None:
            raise TypeError(f"{op} needs a number, got {bound!r}")
        self.op, self.bound = op, bound

    def __call__(self, value: Any) -> bool:
        number = _number(value)
        return (
            number is not None and not math.isnan(number) and _COMPARE[self.op](number, self.bound)
        )

    def describe(self) -> str:
        return f"{self.op} {_fmt(self.bound)}"


class _Text(Matcher):
    def __init__(self, kind: str, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"{kind} needs a string, got {text!r}")
        self.kind, self.text = kind, text

    def __call__(self, value: Any) -> bool:
        if self.kind == "contains" and isinstance(value, (list, tuple)):
            return self.text in value
        if not isinstance(value, str):
            return False
        if self.kind == "prefix":
            return value.startswith(self.text)
        if self.kind == "suffix":
            return value.endswith(self.text)
        return self.text in value

    def describe(self) -> str:
        word = {"prefix": "starts with", "suffix": "ends with"}.get(self.kind, "contains")
        return f"{word} {self.text!r}"


class _Regex(Matcher):
    def __init__(self, pattern: str | re.Pattern[str]) -> None:
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern

    def __call__(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.search(value) is not None

    def describe(self) -> str:
        return f"matches /{self.pattern.pattern}/"


class _OneOf(Matcher):
    def __init__(self, values: Iterable[Any], negate: bool = False) -> None:
        self.values, self.negate = list(values), negate
        self.accepts_missing = negate

    def __call__(self, value: Any) -> bool:
        found = any(_same(value, v) for v in self.values)
        return found != self.negate

    def describe(self) -> str:
        return ("not in " if self.negate else "in ") + _fmt(self.values)


class _Exists(Matcher):
    def __init__(self, present: bool) -> None:
        self.present = present
        self.accepts_missing = not present

    def __call__(self, value: Any) -> bool:
        return (value is not None) == self.present

    def describe(self) -> str:
        return "present" if self.present else "absent"


class _Satisfies(Matcher):
    def __init__(self, predicate: Callable[[Any], bool], description: str) -> None:
        self.predicate, self.description = predicate, description

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except Exception:
            return False

    def describe(self) -> str:
        return self.description


class _All(Matcher):
    def __init__(self, parts: Sequence[Matcher]) -> None:
        self.parts = list(parts)
        self.accepts_missing = all(p.accepts_missing for p in self.parts)

    def __call__(self, value: Any) -> bool:
        return all(p(value) for p in self.parts)

    def describe(self) -> str:
        return " and ".join(p.describe() for p in self.parts)


def eq(value: Any) -> Matcher:
    """Equal (arrays element-wise; ``True`` is not ``1``)."""
    return _Eq(value)


def ne(value: Any) -> Matcher:
    """Not equal (a missing value is not equal)."""
    return _Ne(value)


def lt(bound: float) -> Matcher:
    return _Compare("<", bound)


def le(bound: float) -> Matcher:
    return _Compare("<=", bound)


def gt(bound: float) -> Matcher:
    return _Compare(">", bound)


def ge(bound: float) -> Matcher:
    return _Compare(">=", bound)


def between(low: float, high: float) -> Matcher:
    """``low <= value <= high``."""
    return _All([ge(low), le(high)])


def prefix(text: str) -> Matcher:
    return _Text("prefix", text)


def suffix(text: str) -> Matcher:
    return _Text("suffix", text)


def contains(text: str) -> Matcher:
    """A substring of a string value, or an element of an array value."""
    return _Text("contains", text)


def regex(pattern: str | re.Pattern[str]) -> Matcher:
    """``re.search``: anchor with ``^...$`` for a full match."""
    return _Regex(pattern)


def one_of(*values: Any) -> Matcher:
    return _OneOf(values)


def exists() -> Matcher:
    return _Exists(True)


def absent() -> Matcher:
    return _Exists(False)


def satisfies(
    predicate: Callable[[Any], bool], description: str = "satisfies predicate"
) -> Matcher:
    """Any callable; exceptions count as a mismatch."""
    return _Satisfies(predicate, description)


_OPS: dict[str, Callable[[Any], Matcher]] = {
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "lte": le,
    "gt": gt,
    "ge": ge,
    "gte": ge,
    "prefix": prefix,
    "suffix": suffix,
    "contains": contains,
    "regex": regex,
    "in": lambda values: _OneOf(values),
    "not_in": lambda values: _OneOf(values, negate=True),
    "exists": lambda flag: _Exists(bool(flag)),
}
OPERATORS = frozenset(_OPS)


def as_matcher(spec: Any) -> Matcher:
    """A matcher from a plain value, a matcher, a compiled regex or a ``{op: arg}`` dict."""
    if isinstance(spec, Matcher):
        return spec
    if isinstance(spec, re.Pattern):
        return _Regex(spec)
    if isinstance(spec, Mapping):
        if not spec:
            raise ValueError("an empty matcher: give an operator, e.g. {lt: 2}")
        parts = []
        for key, arg in spec.items():
            make = _OPS.get(str(key))
            if make is None:
                known = ", ".join(sorted(_OPS))
                raise ValueError(f"unknown matcher operator {key!r} (known: {known})")
            try:
                parts.append(make(arg))
            except (TypeError, re.error) as exc:
                raise ValueError(f"bad argument for {key!r}: {exc}") from exc
        return parts[0] if len(parts) == 1 else _All(parts)
    if callable(spec):
        return _Satisfies(spec, getattr(spec, "__name__", "predicate"))
    return _Eq(spec)


def keyword_matcher(spec: Any = None, **ops: Any) -> Matcher | None:
    """A positional spec and/or keyword operators (``lt=2``) combined; None if neither."""
    parts = [] if spec is None else [as_matcher(spec)]
    if ops:
        parts.append(as_matcher(ops))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else _All(parts)
