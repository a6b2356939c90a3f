"""Go-compatible encoding: JSON as Go's encoding/json writes it, and Go's RFC 3339 times."""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from typing import Any

from otel_llm._units import NS_PER_S

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_NEEDS_ESCAPE = re.compile("[<>&\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def _encode(obj: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it (HTML-safe, raw UTF-8)."""
    text = _JSON.encode(obj)
    if _NEEDS_ESCAPE.search(text):
        text = text.translate(_GO_ESCAPES)
    try:
        return text.encode()
    except UnicodeEncodeError:  # Go turns invalid UTF-8 into U+FFFD
        return _SURROGATE.sub("\ufffd", text).encode()


@lru_cache(maxsize=4096)
def _encode_text(text: str) -> bytes:
    """A token's JSON string; streams cycle few tokens, so this is nearly always a hit."""
    return _encode(text)


@lru_cache(maxsize=8)
def _seconds(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def _rfc3339nano(ns: int, offset: int = 0) -> str:
    """Go's RFC3339Nano: 1-9 fraction digits with trailing zeros trimmed."""
    sec, frac = divmod(ns, NS_PER_S)
    text = _seconds(sec + offset)
    if frac:
        text += f".{frac:09d}".rstrip("0")
    if offset == 0:
        return text + "Z"
    sign = "-" if offset < 0 else "+"
    return f"{text}{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"


def _now() -> str:
    return _rfc3339nano(time.time_ns())
