"""Opt-in content: GenAI message parts, truncated and redacted before recording.

Only reached when content capture is on; the default path never builds these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from otel_llm._config import Settings

__all__ = ["clip", "encode", "message", "part_text", "part_tool_call", "part_tool_response"]


def clip(text: str, settings: Settings) -> str:
    """Redact, then truncate to the configured length (the JSON structure is kept)."""
    if settings.redact is not None:
        text = settings.redact(text)
    limit = settings.content_max_length
    if len(text) > limit:
        return text[:limit] + f"...[truncated {len(text) - limit} chars]"
    return text


def part_text(text: str, settings: Settings, kind: str = "text") -> dict[str, Any]:
    return {"type": kind, "content": clip(text, settings)}


def part_tool_call(
    call_id: str | None, name: str | None, arguments: Any, settings: Settings
) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call", "name": name or ""}
    if call_id:
        part["id"] = call_id
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            arguments = clip(arguments, settings)
    if arguments is not None:
        part["arguments"] = _clip_tree(arguments, settings)
    return part


def part_tool_response(call_id: str | None, response: str, settings: Settings) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call_response", "response": clip(response, settings)}
    if call_id:
        part["id"] = call_id
    return part


def _clip_tree(value: Any, settings: Settings) -> Any:
    if isinstance(value, str):
        return clip(value, settings)
    if isinstance(value, dict):
        return {k: _clip_tree(v, settings) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip_tree(v, settings) for v in value]
    return value


def encode(value: Any) -> str:
    """JSON string for a span attribute (Jaeger and most backends need a string)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def message(
    role: str,
    texts: Iterable[str],
    settings: Settings,
    *,
    reasoning: str | None = None,
    tool_call_id: str | None = None,
    tool_calls: Iterable[tuple[str | None, str | None, Any]] = (),
    extra: Iterable[dict[str, Any]] = (),
    name: str | None = None,
) -> dict[str, Any]:
    """One GenAI message: reasoning, text (a tool result for role ``tool``), tool calls."""
    parts: list[dict[str, Any]] = []
    if reasoning:
        parts.append(part_text(reasoning, settings, "reasoning"))
    for text in texts:
        if not text:
            continue
        if role == "tool":
            parts.append(part_tool_response(tool_call_id, text, settings))
        else:
            parts.append(part_text(text, settings))
    parts.extend(part_tool_call(i, n, a, settings) for i, n, a in tool_calls)
    parts.extend(extra)
    out: dict[str, Any] = {"role": role, "parts": parts}
    if name:
        out["name"] = name
    return out
