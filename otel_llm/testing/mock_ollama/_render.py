"""One generation (``_Plan``), rendered by four wire formats: native NDJSON, /v1 SSE chat,
/v1 SSE completions, and the non-streamed bodies built from the same records.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_llm.testing.mock_ollama._content import _call_id, _tokens
from otel_llm.testing.mock_ollama._encoding import _encode, _encode_text, _now
from otel_llm.testing.mock_ollama._scenario import Scenario, ToolCall

_MS = 1_000_000
_EVAL_NS = 10 * _MS
_NDJSON = b"application/x-ndjson"
_SSE = b"text/event-stream"
_DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(slots=True)
class _Piece:
    kind: str  # "content" | "thinking" | "tools"
    text: str = ""
    calls: tuple[ToolCall, ...] = ()


@dataclass
class _Plan:
    model: str
    scenario: Scenario
    pieces: list[_Piece]
    done_reason: str
    prompt_tokens: int
    eval_count: int

    @property
    def cut(self) -> int | None:
        """Index at which the stream breaks (len(pieces) = instead of the done record)."""
        after = self.scenario.error_after
        return after if after is not None and after <= len(self.pieces) else None

    def text(self, kind: str) -> str:
        return "".join(piece.text for piece in self.pieces if piece.kind == kind)

    def calls(self) -> list[ToolCall]:
        return [call for piece in self.pieces for call in piece.calls]

    def metrics(self) -> dict[str, int]:
        if self.done_reason in ("load", "unload"):
            return {}
        load = self.scenario.load_duration_ns
        prompt_ns, eval_ns = self.prompt_tokens * _MS, self.eval_count * _EVAL_NS
        items = (
            ("total_duration", load + prompt_ns + eval_ns),
            ("load_duration", load),
            ("prompt_eval_count", self.prompt_tokens),
            ("prompt_eval_duration", prompt_ns),
            ("eval_count", self.eval_count),
            ("eval_duration", eval_ns),
        )
        return {key: value for key, value in items if value}  # Go's omitempty

    def usage(self) -> dict[str, int]:
        prompt, completion = (0, 0) if not self.metrics() else (self.prompt_tokens, self.eval_count)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


def _plan(
    model: str, scenario: Scenario, prompt: int, *, think: bool, tools: bool, limit: Any
) -> _Plan:
    pieces: list[_Piece] = []
    if think and scenario.thinking:
        pieces.extend(_Piece("thinking", token) for token in _tokens(scenario.thinking))
    done_reason = scenario.done_reason
    if tools and scenario.tool_calls:
        pieces.append(_Piece("tools", calls=tuple(scenario.tool_calls)))
    else:
        tokens = _tokens(scenario.reply)
        n = len(tokens) if scenario.chunks is None or not tokens else scenario.chunks
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < n:
            n, done_reason = limit, "length"
        pieces.extend(_Piece("content", t) for t in itertools.islice(itertools.cycle(tokens), n))
    eval_count = sum(len(piece.calls) or 1 for piece in pieces)
    prompt = max(prompt, 1) if scenario.prompt_tokens is None else scenario.prompt_tokens
    return _Plan(model, scenario, pieces, done_reason, prompt, eval_count)


def _loaded(model: str, scenario: Scenario, payload: Mapping[str, Any]) -> _Plan:
    """An empty prompt only loads (or, with ``keep_alive`` 0, unloads) the model."""
    unload = payload.get("keep_alive") in (0, "0", "0s", "0m")
    return _Plan(model, scenario, [], "unload" if unload else "load", 0, 0)


def _native_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [
        {
            "id": _call_id(i, c.name),
            "function": {"index": i, "name": c.name, "arguments": c.arguments},
        }
        for i, c in enumerate(calls)
    ]


def _v1_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [
        {
            "id": _call_id(i, c.name),
            "index": i,
            "type": "function",
            "function": {"name": c.name, "arguments": _encode(c.arguments).decode()},
        }
        for i, c in enumerate(calls)
    ]


def _chat_message(content: str, thinking: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = _native_calls(calls)
    return message


def _chat_record(plan: _Plan, message: dict[str, Any]) -> dict[str, Any]:
    record = {"model": plan.model, "created_at": _now(), "message": message, "done": True}
    return {**record, "done_reason": plan.done_reason, **plan.metrics()}


def _generate_record(plan: _Plan, response: str, thinking: str, context: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"model": plan.model, "created_at": _now(), "response": response}
    if thinking:
        record["thinking"] = thinking
    record["done"] = True
    record["done_reason"] = plan.done_reason
    if context and plan.metrics():
        record["context"] = list(range(1000, 1000 + plan.prompt_tokens + plan.eval_count))
    record.update(plan.metrics())
    return record


def _native_frames(plan: _Plan, *, chat: bool, context: bool) -> Iterator[bytes]:
    """NDJSON lines; the error line replaces everything from ``cut`` on."""
    cut = plan.cut
    head = b'{"model":' + _encode(plan.model) + b',"created_at":"'
    if chat:
        before, after = b'","message":{"role":"assistant","content":', b'},"done":false}\n'
    else:
        before, after = b'","response":', b',"done":false}\n'
    for index, piece in enumerate(plan.pieces):
        if index == cut:
            break
        if piece.kind == "content":  # hot path, spliced: same bytes as the dict below
            yield head + _now().encode() + before + _encode_text(piece.text) + after
            continue
        thinking = piece.text if piece.kind == "thinking" else ""
        chunk: dict[str, Any] = {"model": plan.model, "created_at": _now()}
        if chat:
            chunk["message"] = _chat_message("", thinking, piece.calls)
        else:
            chunk["response"] = ""
            if thinking:
                chunk["thinking"] = thinking
        chunk["done"] = False
        yield _encode(chunk) + b"\n"
    if cut is not None:
        yield _encode({"error": plan.scenario.error_message}) + b"\n"
    elif chat:
        yield _encode(_chat_record(plan, _chat_message("", "", ()))) + b"\n"
    else:
        yield _encode(_generate_record(plan, "", "", context)) + b"\n"


def _sse(obj: Any) -> bytes:
    return b"data: " + _encode(obj) + b"\n\n"


def _v1_chat_frames(plan: _Plan, head: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    """One event per native chunk; finish, usage and [DONE] leave in one write, as in Go."""
    cut, sent_calls = plan.cut, False
    before = b"data: " + _encode(head)[:-1] + b',"choices":[{"index":0,"delta":{"content":'
    after = b'},"finish_reason":null}]}\n\n'
    for index, piece in enumerate(plan.pieces):
        if index == cut:
            return
        if index and piece.kind == "content":  # hot path, spliced
            yield before + _encode_text(piece.text) + after
            continue
        delta: dict[str, Any] = {"role": "assistant"} if index == 0 else {}
        if piece.kind == "content":
            delta["content"] = piece.text
        elif piece.kind == "thinking":
            delta["reasoning"] = piece.text
        else:
            delta["tool_calls"], sent_calls = _v1_calls(piece.calls), True
        yield _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    if cut is not None:
        return
    delta = {} if plan.pieces else {"role": "assistant"}
    finish = "tool_calls" if sent_calls else plan.done_reason
    tail = _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    if include_usage:
        tail += _sse({**head, "choices": [], "usage": plan.usage()})
    yield tail + _DONE_EVENT


def _v1_completion_frames(
    plan: _Plan, ident: str, created: int, include_usage: bool
) -> Iterator[bytes]:
    """``choices`` before ``model``; a zeroed usage on every chunk with ``include_usage``."""

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None) -> bytes:
        chunk = {"id": ident, "object": "text_completion", "created": created, "choices": choices}
        chunk.update({"model": plan.model, "system_fingerprint": "fp_ollama"})
        if usage is not None:
            chunk["usage"] = usage
        return _sse(chunk)

    zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    zeroed = zero if include_usage else None
    cut = plan.cut
    # hot path: splice each token into an event encoded once around a placeholder
    template = event([{"text": "\0", "index": 0, "finish_reason": None}], zeroed)
    before, _, after = template.partition(b'"\\u0000"')
    for index, piece in enumerate(plan.pieces):
        if index == cut:
            return
        yield before + _encode_text(piece.text) + after
    if cut is not None:
        return
    tail = event([{"text": "", "index": 0, "finish_reason": plan.done_reason}], zeroed)
    if include_usage:
        tail += event([], plan.usage())
    yield tail + _DONE_EVENT
