"""Parsers every adapter shares: a capped JSON body and an HTTP error body."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from otel_llm import _fields
from otel_llm import semconv as sc
from otel_llm._fields import top_level
from otel_llm._framing import BodyBuffer
from otel_llm._types import LLMCall, Steady
from otel_llm.semconv import MAX_TEXT_LENGTH

__all__ = [
    "MAX_ERROR_LENGTH",
    "MAX_ITEMS",
    "MAX_TEXT_LENGTH",
    "REQUEST_BULK",
    "EmbeddingsBody",
    "ErrorBody",
    "JsonBody",
    "ToolCallItem",
    "as_float",
    "as_int",
    "capped",
    "capped_list",
    "loads",
    "note_tool_call",
    "request_fields",
    "stream_incomplete",
    "tool_calls",
]

MAX_ERROR_LENGTH: Final = 512
"""Most characters of an error message kept for the span's status description."""
MAX_ITEMS: Final = 64
"""Most entries of a list copied the same way (stop sequences, finish reasons by choice)."""


def capped(value: Any) -> str | None:
    """``value`` if it is a string, cut to ``MAX_TEXT_LENGTH``; else None."""
    return value[:MAX_TEXT_LENGTH] if isinstance(value, str) else None


def capped_list(value: Any) -> tuple[str, ...] | None:
    """A string or a list of strings as a tuple of capped strings (a span attribute as the
    SDK would store it); None for anything else."""
    if isinstance(value, str):
        return (value[:MAX_TEXT_LENGTH],)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(v[:MAX_TEXT_LENGTH] for v in value[:MAX_ITEMS])
    return None


REQUEST_BULK: Final = frozenset(
    {b"messages", b"prompt", b"system", b"suffix", b"input", b"images", b"tools", b"context"}
)
"""Request keys whose values are prompt, not parameters: stepped over unless capturing."""


def request_fields(body: bytes, capture: bool) -> dict[str, Any] | None:
    """The request body as ``read_request`` needs it: the small fields, or all when capturing.

    Without content capture the prompt is never decoded, so the cost of reading a
    request does not grow with its prompt (``_fields.top_level``).
    """
    if capture:
        whole = loads(body)
        return whole if isinstance(whole, dict) else None
    return top_level(body, REQUEST_BULK)


def loads(data: bytes) -> Any:
    """JSON (``_fields.json_value``), or None for anything that is not JSON."""
    try:
        return _fields.json_value(data)
    except ValueError:
        return None


def as_int(value: Any) -> int | None:
    if type(value) is int or value is None:  # the common cases first
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


class ToolCallItem(NamedTuple):
    """One entry of ``tool_calls``, a shape Ollama and OpenAI share."""

    id: str | None
    name: str | None
    arguments: Any


def tool_calls(raw: Any) -> list[ToolCallItem]:
    """``[{"id", "function": {"name", "arguments"}}]`` read defensively."""
    out: list[ToolCallItem] = []
    if not isinstance(raw, list):
        return out
    for item in raw:
        if not isinstance(item, dict):
            continue
        function = item.get("function")
        function = function if isinstance(function, dict) else {}
        out.append(
            ToolCallItem(
                capped(item.get("id")), capped(function.get("name")), function.get("arguments")
            )
        )
    return out


def note_tool_call(call: LLMCall, item: ToolCallItem) -> None:
    """Remember a tool call's name and id, at most ``MAX_ITEMS`` of each per call."""
    names, ids = call.tool_call_names, call.tool_call_ids
    if (names is None or len(names) < MAX_ITEMS) and (ids is None or len(ids) < MAX_ITEMS):
        call.add_tool_call(item.name, item.id)


class JsonBody:
    """A single JSON body: parsed whole when small, skimmed (``_framing.Skim``) when huge."""

    __slots__ = ("_buffer", "_on_large", "_on_object", "_status_ok", "call")

    steady: Steady | None = None  # one body, not a stream of records
    LIMIT = 1 << 14
    """Bytes decoded whole; a longer body is skimmed, so its cost stops growing here."""
    CAPTURE_LIMIT = 1 << 16
    """The same when capturing content, which wants the text itself."""

    def __init__(
        self,
        call: LLMCall,
        on_object: Callable[[LLMCall, Any], None],
        on_large: Callable[[LLMCall, bytes, bytes], None],
        limit: int = 0,
    ) -> None:
        self.call = call
        if not limit:
            limit = self.CAPTURE_LIMIT if call.settings.capture_content else self.LIMIT
        self._buffer = BodyBuffer(limit)
        self._on_object = on_object
        self._on_large = on_large

    def feed(self, data: bytes) -> bool:
        self._buffer.feed(data)
        return False

    def close(self) -> None:
        buffer = self._buffer
        whole = buffer.whole
        if whole is None:
            # Too large to keep: its two ends joined, when that is valid JSON (the
            # middle was numbers or the inside of one string); else scalars at the ends.
            skim = buffer.skim
            joined = skim.joined() if skim is not None else None
            obj = loads(joined) if joined is not None else None
            if obj is not None:
                self._on_object(self.call, obj)
            else:
                self._large(buffer.head, buffer.tail)
            return
        obj = loads(whole)
        if obj is None:
            if self._buffer.size:
                self.call.error_type = "invalid_response"
                self.call.error_message = "response body is not JSON"
            return
        self._on_object(self.call, obj)

    def _large(self, head: bytes, tail: bytes) -> None:
        """A body whose ends do not join: what its two ends give (subclasses add more)."""
        self._on_large(self.call, head, tail)


_VECTOR: Final = re.compile(rb'\[[-0-9]|"embedding": ?"')
"""Where a vector starts: a list of numbers, or an OpenAI base64 ``embedding`` string."""
_VECTOR_CARRY: Final = 15  # len('"embedding": "') + 1: a start split across two chunks


class EmbeddingsBody(JsonBody):
    """An embeddings answer of any size, vectors counted as the bytes go by.

    The number of vectors and the length of the first are counted with byte searches
    (no number is ever decoded), so a batch of 4096-dimension vectors costs bounded
    memory; the small fields (model, counts, usage) come from ``JsonBody``, which keeps
    only a few KiB of the body when it is large.
    """

    __slots__ = ("_carry", "_first", "_in_vectors", "_length", "dimensions", "vectors")

    LIMIT = 1 << 12

    def __init__(
        self,
        call: LLMCall,
        on_object: Callable[[LLMCall, Any], None],
        on_large: Callable[[LLMCall, bytes, bytes], None],
    ) -> None:
        super().__init__(call, on_object, on_large, limit=self.LIMIT)
        self._carry = b""
        self._in_vectors = False  # past the "embedding(s)" key: no other field can start one
        self._first = b""  # the closing byte of the first vector while inside it: ] or "
        self._length = 0  # commas (list) or characters (base64) of the first vector so far
        self.dimensions: int | None = None
        self.vectors = 0

    def feed(self, data: bytes) -> bool:
        self._buffer.feed(data)
        carry = self._carry
        text = carry + data if carry else data
        self._carry = text[-_VECTOR_CARRY:]
        fresh = len(carry)  # bytes of ``text`` already counted
        if not self._in_vectors:
            key = text.find(b'"embedding')
            if key < 0:
                return False
            self._in_vectors = True
            text, fresh = text[key:], 0
        at = 0
        if self.dimensions is None and not self._first:
            match = _VECTOR.search(text)
            if match is None:
                return False
            self._first = b"]" if match.group().startswith(b"[") else b'"'
            at = match.end() - (1 if self._first == b"]" else 0)
        if self._first:
            self._read_first(text, max(at, fresh))
        self.vectors += sum(1 for m in _VECTOR.finditer(text) if m.end() > fresh)
        return False

    def _read_first(self, text: bytes, at: int) -> None:
        closing = self._first
        end = text.find(closing, at)
        stop = len(text) if end < 0 else end
        if closing == b"]":
            self._length += text.count(b",", at, stop)
        else:
            self._length += stop - at
        if end >= 0:
            self._first = b""
            # n numbers have n-1 commas; base64 of 4-byte floats: 3 bytes per 4 characters
            self.dimensions = self._length + 1 if closing == b"]" else self._length * 3 // 16

    def close(self) -> None:
        super().close()
        if self.dimensions is not None and self.call.error_type is None:
            self.call.embedding_dimensions = self.dimensions
            self.call.embedding_count = self.vectors


class ErrorBody:
    """An HTTP error body: keep a little of it for the span's status description."""

    __slots__ = ("_buffer", "call")

    steady: Steady | None = None
    LIMIT = 4096

    def __init__(self, call: LLMCall) -> None:
        self.call = call
        self._buffer = BodyBuffer(self.LIMIT)

    def feed(self, data: bytes) -> bool:
        self._buffer.feed(data)
        return False

    def close(self) -> None:
        raw = self._buffer.head[: self.LIMIT]
        obj = loads(raw)
        message: Any = None
        if isinstance(obj, dict):
            message = obj.get("error")
            if isinstance(message, dict):  # OpenAI shape: {"error": {"message": ...}}
                message = message.get("message")
        if not isinstance(message, str):
            message = raw.decode("utf-8", "replace").strip()
        self.call.error_message = message[:MAX_ERROR_LENGTH] or None


def stream_incomplete(call: LLMCall, message: str) -> None:
    """A stream that ended without its final record is an error, unless one was seen."""
    if call.error_type is None:
        call.error_type = sc.ERROR_STREAM_INCOMPLETE
        call.error_message = message
