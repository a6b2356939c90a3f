"""Parsers every adapter shares: a capped JSON body and an HTTP error body."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from otel_llm._framing import BodyBuffer
from otel_llm._types import LLMCall

__all__ = ["ErrorBody", "JsonBody", "ToolCallItem", "as_float", "as_int", "loads", "tool_calls"]


def loads(data: bytes) -> Any:
    """``json.loads`` that answers None for anything that is not JSON."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def as_int(value: Any) -> int | None:
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
        call_id, name = item.get("id"), function.get("name")
        out.append(
            ToolCallItem(
                call_id if isinstance(call_id, str) else None,
                name if isinstance(name, str) else None,
                function.get("arguments"),
            )
        )
    return out


class JsonBody:
    """A single JSON body: parsed whole when small, skimmed (``_framing.Skim``) when huge."""

    __slots__ = ("_buffer", "_on_large", "_on_object", "_status_ok", "call")

    def __init__(
        self,
        call: LLMCall,
        on_object: Callable[[LLMCall, Any], None],
        on_large: Callable[[LLMCall, bytes, bytes], None],
    ) -> None:
        self.call = call
        self._buffer = BodyBuffer()
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
                self._on_large(self.call, buffer.head, buffer.tail)
            return
        obj = loads(whole)
        if obj is None:
            if self._buffer.size:
                self.call.error_type = "invalid_response"
                self.call.error_message = "response body is not JSON"
            return
        self._on_object(self.call, obj)


class ErrorBody:
    """An HTTP error body: keep a little of it for the span's status description."""

    __slots__ = ("_buffer", "call")

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
        self.call.error_message = message[:512] or None
