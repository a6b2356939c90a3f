"""Read a JSON object's top-level fields without decoding the bulky ones.

A request body is mostly prompt: ``messages``, ``prompt``, ``input``, ``images``. The
span needs the few small fields around them (``model``, ``stream``, ``options``...).
``top_level`` walks the object's members, decodes the values of the keys it is not told
to skip and steps over the others: a string is crossed with a few ``bytes.find`` (C
speed), a list or object one string or bracket at a time. The cost follows the number
of strings in the skipped values, not their length; past ``_TOKENS`` of them the body is
decoded whole after all, since ``json.loads`` crosses many small strings faster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any, Final

__all__ = ["SMALL", "json_value", "top_level"]

SMALL: Final = 4096
"""Bodies up to this size are decoded whole (as fast as scanning them)."""

_KEY: Final = re.compile(rb'\s*"((?:[^"\\]|\\.)*)"\s*:\s*')
_NEXT: Final = re.compile(rb"\s*([,}])")
_STRUCTURE: Final = re.compile(rb'["\[\]{}]')
_SCALAR: Final = re.compile(rb"[^,}\]\s]+")
_BACKSLASH: Final = 92


class _Malformed(Exception):
    pass


_decode = json.JSONDecoder().decode


def json_value(data: bytes) -> Any:
    """``json.loads(data)``, UTF-8 (what every server sends) straight to the decoder;
    ``json.loads`` and its encoding detection (UTF-16/32, a BOM) only when that fails.
    Raises ``ValueError`` for what is not JSON."""
    try:
        return _decode(str(data, "utf-8"))
    except ValueError:
        return json.loads(data)


class _TooMany(Exception):
    """A value of many small parts: ``json.loads`` crosses those faster than we step."""


def top_level(body: bytes, skip: Collection[bytes]) -> dict[str, Any] | None:
    """The members of the JSON object ``body``, without those whose key is in ``skip``.

    None when ``body`` is not a JSON object. Bodies up to ``SMALL``, and bodies whose
    skipped values are made of many small parts (a long chat history), are decoded whole
    (``skip`` is then not applied: the keys are there for free).
    """
    if len(body) <= SMALL:
        try:
            whole = json_value(body)
        except ValueError:
            return None
        return whole if isinstance(whole, dict) else None
    try:
        return _members(body, skip)
    except _TooMany:
        pass
    except (_Malformed, ValueError, IndexError):
        return None
    try:
        whole = json_value(body)
    except ValueError:
        return None
    return whole if isinstance(whole, dict) else None


def _members(body: bytes, skip: Collection[bytes]) -> dict[str, Any]:
    start = body.find(b"{")
    if start < 0 or body[:start].strip():
        raise _Malformed
    out: dict[str, Any] = {}
    pos = start + 1
    empty = _NEXT.match(body, pos)
    if empty is not None and empty.group(1) == b"}":
        return out
    walk = _Walk(body)
    while True:
        key = _KEY.match(body, pos)
        if key is None:
            raise _Malformed
        pos = key.end()
        end = walk.skip_value(pos)
        name = key.group(1)
        if name not in skip:
            out[json_value(b'"' + name + b'"')] = json_value(body[pos:end])
        after = _NEXT.match(body, end)
        if after is None:
            raise _Malformed
        pos = after.end()
        if after.group(1) == b"}":
            if body[pos:].strip():
                raise _Malformed
            return out


_CLOSING: Final = re.compile(rb'"[,}\]:\n\r\t]')
"""A quote followed by what can follow a string (serialisers put no space before ``,``):
inside a string only an escaped quote can be, and prose rarely puts one there."""
_TOKENS: Final = 24
"""Strings and brackets stepped over in one list or object before giving up the walk."""
_HOPS: Final = 16
"""Escaped quotes stepped over one by one before ``_CLOSING`` takes over."""


class _Walk:
    """Steps over values of one body, left to right."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    def skip_value(self, pos: int) -> int:
        """Where the JSON value starting at ``pos`` ends."""
        body = self.body
        first = body[pos]
        if first == 34:  # "
            return self.skip_string(pos)
        if first in (91, 123):  # [ {
            depth = 0
            for _ in range(_TOKENS):
                hit = _STRUCTURE.search(body, pos)
                if hit is None:
                    raise _Malformed
                char = body[hit.start()]
                if char == 34:
                    pos = self.skip_string(hit.start())
                    continue
                pos = hit.end()
                depth += 1 if char in (91, 123) else -1
                if depth == 0:
                    return pos
            raise _TooMany
        scalar = _SCALAR.match(body, pos)
        if scalar is None:
            raise _Malformed
        return scalar.end()

    def skip_string(self, pos: int) -> int:
        """Where the string whose opening quote is at ``pos`` ends (after its closing quote).

        The next quote usually closes it (``bytes.find`` is a ``memchr``). Past a few
        escaped ones, one regular-expression pass looks only at quotes followed by what
        can follow a string.
        """
        body = self.body
        quote = body.find(b'"', pos + 1)
        hops = 0
        while True:
            if quote < 0:
                raise _Malformed
            back = quote
            while body[back - 1] == _BACKSLASH:
                back -= 1
            if (quote - back) % 2 == 0:  # not escaped
                return quote + 1
            hops += 1
            if hops < _HOPS:
                quote = body.find(b'"', quote + 1)
            else:
                hit = _CLOSING.search(body, quote + 1)
                quote = -1 if hit is None else hit.start()
