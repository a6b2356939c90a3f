"""OpenAI-compatible API (``/v1/*``): request fields, SSE stream, ``usage`` and choices.

Only this module knows the OpenAI wire format. As for Ollama's native stream,
SSE events are decoded only when a byte search says they matter: the first
event (id, model), finish reasons, usage, tool calls, reasoning, errors and
``[DONE]``.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Mapping
from typing import Any, Final

from otel_llm import _content
from otel_llm import semconv as sc
from otel_llm._framing import LineFramer
from otel_llm._types import LLMCall, Parser, Routes, Steady
from otel_llm.adapters._common import (
    MAX_ERROR_LENGTH,
    MAX_ITEMS,
    EmbeddingsBody,
    ErrorBody,
    JsonBody,
    ToolCallItem,
    as_float,
    as_int,
    capped,
    capped_list,
    loads,
    note_tool_call,
    stream_incomplete,
    tool_calls,
)

__all__ = ["ENDPOINTS", "ROUTES", "OpenAICompatAdapter", "adapter"]

ENDPOINTS: Final[Mapping[str, str]] = {
    "/v1/chat/completions": sc.CHAT,
    "/v1/completions": sc.TEXT_COMPLETION,
    "/v1/embeddings": sc.EMBEDDINGS,
}

_FLOATS: Final = (
    ("temperature", sc.REQUEST_TEMPERATURE),
    ("top_p", sc.REQUEST_TOP_P),
    ("frequency_penalty", sc.REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", sc.REQUEST_PRESENCE_PENALTY),
)
_OLLAMA_FINGERPRINT: Final = "fp_ollama"
_ORDINARY: Final = (
    b'"},"finish_reason":null}]}\n\n',
    b'"},"logprobs":null,"finish_reason":null}]}\n\n',
)
"""How an ordinary delta ends: its last field a string (text or reasoning), so no
``tool_calls`` (written after the text by Ollama and OpenAI), no finish, usage or error."""
_ORDINARY_HEAD: Final = b"data:"
_ORDINARY_LINES: Final = 2  # the delta's line, then the blank line ending its event
_STEADY: Final = Steady(_ORDINARY_HEAD, _ORDINARY, _ORDINARY_LINES)
"""One ordinary delta in a chunk: the observer counts it, as ``SseStream.feed`` would."""
_USAGE_TAIL: Final = re.compile(rb'"(prompt_tokens|completion_tokens)": ?(\d+)')
_MODEL_HEAD: Final = re.compile(rb'"model": ?"([^"]*)"')
_ID_HEAD: Final = re.compile(rb'\s*\{\s*"id": ?"([^"\\]*)"')
"""The completion's id: the first field of the body (Ollama and OpenAI write it first)."""
_FINGERPRINT: Final = re.compile(rb'"system_fingerprint": ?"([^"\\]*)"')
_FINISH_AT: Final = re.compile(rb'finish_reason":\s*"([^"\\]{1,64})"')
_REASONING_AT: Final = re.compile(rb'reasoning(?:_content)?":\s*"[^"]')
"""What a body too long to keep gives from anywhere in it, found by a byte search and
then matched where found: each choice's finish reason (in choice order) and whether a
message reasons. A key's closing quote is never inside a string (it would be escaped),
so neither matches an answer's text."""
_SCAN_CARRY: Final = 96  # the longest match: a key, ": ", a 64-byte reason and its quotes


class OpenAICompatAdapter:
    """The OpenAI-compatible protocol, as Ollama, vLLM, LM Studio or OpenAI serve it."""

    name = "openai_compat"

    def read_request(self, call: LLMCall, body: Mapping[str, Any]) -> None:
        call.request_model = capped(body.get("model"))
        call.stream = body.get("stream") is True
        attrs = call.request_attributes
        for key, name in _FLOATS:
            value = as_float(body.get(key))
            if value is not None:
                attrs[name] = value
        max_tokens = as_int(body.get("max_completion_tokens"))
        if max_tokens is None:
            max_tokens = as_int(body.get("max_tokens"))
        if max_tokens is not None:
            attrs[sc.REQUEST_MAX_TOKENS] = max_tokens
        seed = as_int(body.get("seed"))
        if seed is not None:
            attrs[sc.REQUEST_SEED] = seed
        top_k = as_int(body.get("top_k"))
        if top_k is not None:
            attrs[sc.REQUEST_TOP_K] = top_k
        stop = capped_list(body.get("stop"))
        if stop is not None:
            attrs[sc.REQUEST_STOP_SEQUENCES] = stop
        n = as_int(body.get("n"))
        if n is not None and n != 1:
            attrs[sc.REQUEST_CHOICE_COUNT] = n
        response_format = body.get("response_format")
        if isinstance(response_format, Mapping):
            kind = response_format.get("type")
            if kind in ("json_object", "json_schema"):
                attrs[sc.OUTPUT_TYPE] = "json"
            elif kind == "text":
                attrs[sc.OUTPUT_TYPE] = "text"
        effort = capped(body.get("reasoning_effort"))
        reasoning = body.get("reasoning")
        if effort is None and isinstance(reasoning, Mapping):
            effort = capped(reasoning.get("effort"))
        if effort:
            attrs[sc.REQUEST_REASONING_LEVEL] = effort
        encoding = capped(body.get("encoding_format"))
        if call.operation == sc.EMBEDDINGS and encoding is not None:
            attrs[sc.REQUEST_ENCODING_FORMATS] = (encoding,)
        if call.stream:
            options = body.get("stream_options")
            include = isinstance(options, Mapping) and options.get("include_usage") is True
            # Without include_usage the stream carries no counts: say so, never record 0.
            call.usage_missing = not include
        if call.settings.capture_content:
            _capture_request(call, body)

    def parser(self, call: LLMCall, content_type: str) -> Parser:
        if call.status_code >= 400:
            return ErrorBody(call)
        if "event-stream" in content_type:
            return SseStream(call)
        if call.operation == sc.EMBEDDINGS:
            return EmbeddingsBody(call, _read_body, _scan_large)
        return ChoicesBody(call)


adapter: Final = OpenAICompatAdapter()
ROUTES: Final = Routes(adapter, ENDPOINTS, prefix="/v1/")
"""Many servers speak ``/v1``: the provider is decided by host (``Settings.provider_for``)."""


class SseStream:
    """``data: {...}`` events ending with ``data: [DONE]``."""

    __slots__ = (
        "_capture",
        "_fast",
        "_framer",
        "_reasoning_phase",
        "_seen_first",
        "_slow",
        "call",
        "final",
    )

    def __init__(self, call: LLMCall) -> None:
        self.call = call
        self._framer = LineFramer()
        self._capture = call.settings.capture_content
        self._seen_first = False
        self._slow = True  # decode every event: until the first is read, or when capturing
        self._reasoning_phase = True  # reasoning deltas come first; stop looking after text
        self._fast = False  # past the reasoning phase, not capturing: ordinary deltas skipped
        self.final = False

    @property
    def steady(self) -> Steady | None:
        return _STEADY if self._fast and not self._framer.busy else None

    def feed(self, data: bytes) -> bool:
        # The steady state: one ordinary delta per chunk, byte tests and a count
        # (``steady`` tells the httpx and requests observers to make them without a call).
        if (
            self._fast
            and data.endswith(_ORDINARY)
            and data.count(b"\n") == _ORDINARY_LINES
            and data.startswith(_ORDINARY_HEAD)
            and not self._framer.busy
        ):
            self.call.chunks += 1
            return False
        framer = self._framer
        if framer.busy or not data.endswith(b"\n"):
            data = framer.feed(data)
            if framer.skimmed is not None and self._read_skim():
                return True
            if not data:
                return False
        # Regions start at a line start, and JSON escapes newlines: every "data:" that
        # begins a line begins an event.
        events = data.count(b"\ndata:") + data.startswith(b"data:")
        self.call.chunks += events
        return self._scan(data, events)

    def _scan(self, data: bytes, events: int) -> bool:
        """Complete events (already counted): decode the ones that matter."""
        call = self.call
        if self._slow:
            return self._read_lines(data)
        if events == 1 and data.endswith(b'"finish_reason":null}]}\n\n'):
            # An ordinary delta: no finish, usage, error or [DONE] in it.
            # Needles without a leading quote: JSON is full of quotes, which makes the
            # byte search stop and compare at nearly every other position.
            if b"tool_calls" in data:
                return self._read_lines(data)
            if self._reasoning_phase:
                if b"reasoning" in data:
                    self._reasoning_phase = False
                    self._fast = not self._capture
                    return self._read_lines(data)
                if b'"content":""' not in data:
                    self._reasoning_phase = False
                    self._fast = not self._capture
            return False
        if (
            b"[DONE]" in data
            or b'"finish_reason":"' in data
            or b'"usage":{' in data
            or b'"tool_calls"' in data
            or b'"error"' in data
            or (not call.thinking and b'"reasoning' in data)
        ):
            return self._read_lines(data)
        return False

    def _read_lines(self, region: bytes) -> bool:
        for line in region.split(b"\n"):
            if line.startswith(b"data:") and self._read_event(line[5:].strip()):
                return True
        return False

    def _read_skim(self) -> bool:
        """An event too long to keep: read it if its two ends join into valid JSON."""
        framer = self._framer
        skim, framer.skimmed = framer.skimmed, None
        if skim is None:
            return False
        self.call.chunks += 1
        joined = skim.joined()
        if joined is None or not joined.startswith(b"data:"):
            return False
        return self._read_event(joined[5:].strip())

    def _read_event(self, payload: bytes) -> bool:
        call = self.call
        if payload == b"[DONE]":
            call.chunks -= 1
            self.final = True
            return True
        event = loads(payload)
        if not isinstance(event, dict):
            return False
        if not self._seen_first:
            self._seen_first = True
            self._slow = self._capture
            _read_header(call, event)
        error = event.get("error")
        if error is not None:
            if isinstance(error, Mapping):
                error = error.get("message", error)
            call.error_type = sc.ERROR_STREAM_ERROR
            call.error_message = str(error)[:MAX_ERROR_LENGTH]
            self.final = True
            return True
        usage = event.get("usage")
        if isinstance(usage, Mapping) and usage.get("total_tokens") != 0:
            _read_usage(call, usage)
        choices = event.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, Mapping):
                    _read_choice(call, choice, streamed=True)
        return False

    def close(self) -> None:
        if self.final:
            return
        rest = self._framer.flush()
        if self._framer.skimmed is not None and self._read_skim():
            return
        if rest.startswith(b"data:") and self._read_event(rest[5:].strip()):
            return
        stream_incomplete(self.call, "stream ended without data: [DONE]")


def _read_header(call: LLMCall, event: Mapping[str, Any]) -> None:
    response_id = capped(event.get("id"))
    if response_id is not None:
        call.response_id = response_id
    model = capped(event.get("model"))
    if model is not None:
        call.response_model = model
    if event.get("system_fingerprint") == _OLLAMA_FINGERPRINT:
        call.provider_confirmed = "ollama"


def _read_usage(call: LLMCall, usage: Mapping[str, Any]) -> None:
    call.usage_missing = False
    call.input_tokens = as_int(usage.get("prompt_tokens"))
    call.output_tokens = as_int(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    if isinstance(details, Mapping):
        call.cache_read_tokens = as_int(details.get("cached_tokens"))


def _read_choice(call: LLMCall, choice: Mapping[str, Any], *, streamed: bool) -> None:
    reason = capped(choice.get("finish_reason"))
    index = as_int(choice.get("index")) or 0
    if reason and 0 <= index < MAX_ITEMS:
        reasons = call.finish_reasons or []
        while len(reasons) <= index:
            reasons.append("")
        reasons[index] = reason
        call.finish_reasons = reasons
    body = choice.get("delta" if streamed else "message")
    capture = call.settings.capture_content
    if not isinstance(body, Mapping):
        text = choice.get("text")  # /v1/completions
        if capture and isinstance(text, str) and text:
            if call.output_text is None:
                call.output_text = []
            call.output_text.append(text)
        return
    reasoning = body.get("reasoning") or body.get("reasoning_content")
    if reasoning:
        call.thinking = True
    for item in tool_calls(body.get("tool_calls")):
        # Streamed tool calls arrive in fragments: only the first carries id and name.
        note_tool_call(call, item)
        if capture:
            _capture_tool_fragment(call, item, streamed)
    if capture:
        call.add_output(body.get("content"), reasoning)


def _capture_tool_fragment(call: LLMCall, item: ToolCallItem, streamed: bool) -> None:
    if call.output_tool_calls is None:
        call.output_tool_calls = []
    calls = call.output_tool_calls
    arguments = item.arguments if isinstance(item.arguments, str) else ""
    if streamed and not item.name and calls:
        calls[-1]["_raw"] = calls[-1].get("_raw", "") + arguments
        return
    calls.append({"type": "tool_call", "id": item.id, "name": item.name, "_raw": arguments})


def _read_body(call: LLMCall, obj: Any) -> None:
    if not isinstance(obj, Mapping):
        return
    error = obj.get("error")
    if error is not None and "choices" not in obj and "data" not in obj:
        if isinstance(error, Mapping):
            error = error.get("message", error)
        call.error_type = sc.ERROR_STREAM_ERROR
        call.error_message = str(error)[:MAX_ERROR_LENGTH]
        return
    call.chunks = 1
    _read_header(call, obj)
    usage = obj.get("usage")
    if isinstance(usage, Mapping):
        _read_usage(call, usage)
    if call.operation == sc.EMBEDDINGS:
        data = obj.get("data")
        if isinstance(data, list) and data and isinstance(data[0], Mapping):
            vector = data[0].get("embedding")
            if isinstance(vector, list):
                call.embedding_dimensions = len(vector)
            elif isinstance(vector, str):
                with contextlib.suppress(ValueError):
                    call.embedding_dimensions = len(base64.b64decode(vector)) // 4
        return
    choices = obj.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, Mapping):
                _read_choice(call, choice, streamed=False)


class ChoicesBody(JsonBody):
    """A chat or text completion body; past ``JsonBody``'s limit, its choices are scanned.

    A body too long to keep is decoded from its two ends when what lies between is one
    string (a long answer). Several long choices, or a long reasoning before a long
    answer, leave more than that in the middle; the fields the span needs from the
    choices (finish reasons, reasoning) are then found by a byte search of every chunk
    once the body has outgrown the limit, so a body that stays small is not searched.
    """

    __slots__ = ("_carry", "_reasoning", "_reasons", "_scanning")

    def __init__(self, call: LLMCall) -> None:
        super().__init__(call, _read_body, _scan_large)
        self._scanning = False
        self._carry = b""
        self._reasons: list[str] = []
        self._reasoning = False

    def feed(self, data: bytes) -> bool:
        buffer = self._buffer
        if self._scanning:
            carry = self._carry
            text = carry + data
        elif buffer.size + len(data) <= buffer.limit:
            buffer.feed(data)
            return False
        else:  # the body outgrows the limit: search what was kept, then every chunk
            self._scanning = True
            carry, text = b"", buffer.head + data
        buffer.feed(data)
        self._carry = text[-_SCAN_CARRY:]
        fresh = len(carry)  # a match ending in the carry was counted with the last chunk
        at = text.find(b"finish_reason")  # a memchr-speed search; the regex only where found
        while at >= 0:
            match = _FINISH_AT.match(text, at)
            if match and match.end() > fresh and len(self._reasons) < MAX_ITEMS:
                self._reasons.append(match.group(1).decode("utf-8", "replace"))
            at = text.find(b"finish_reason", at + 13)
        if not self._reasoning:
            at = text.find(b"reasoning")
            while at >= 0 and not self._reasoning:
                match = _REASONING_AT.match(text, at)
                self._reasoning = match is not None and match.end() > fresh
                at = text.find(b"reasoning", at + 9)
        return False

    def _large(self, head: bytes, tail: bytes) -> None:
        super()._large(head, tail)
        call = self.call
        found = _ID_HEAD.match(head)
        if found:
            call.response_id = capped(found.group(1).decode("utf-8", "replace"))
        found = _FINGERPRINT.search(head) or _FINGERPRINT.search(tail)
        if found and found.group(1).decode("utf-8", "replace") == _OLLAMA_FINGERPRINT:
            call.provider_confirmed = "ollama"
        if self._reasons:
            call.finish_reasons = list(self._reasons)
        if self._reasoning:
            call.thinking = True


def _scan_large(call: LLMCall, head: bytes, tail: bytes) -> None:
    """Huge bodies (big embedding batches): model leads, usage trails."""
    match = _MODEL_HEAD.search(head) or _MODEL_HEAD.search(tail)
    if match:
        call.response_model = capped(match.group(1).decode("utf-8", "replace"))
    found = {m.group(1): int(m.group(2)) for m in _USAGE_TAIL.finditer(tail)}
    if b"prompt_tokens" in found:
        call.input_tokens = found[b"prompt_tokens"]
    if b"completion_tokens" in found:
        call.output_tokens = found[b"completion_tokens"]
    start = head.find(b'"embedding":[')
    if start >= 0:
        start += len(b'"embedding":[')
        end = head.find(b"]", start)
        if end > start:
            call.embedding_dimensions = head.count(b",", start, end) + 1


def _capture_request(call: LLMCall, body: Mapping[str, Any]) -> None:
    settings = call.settings
    messages: list[dict[str, Any]] = []
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt:
        messages.append({"role": "user", "parts": [_content.part_text(prompt, settings)]})
    raw = body.get("messages")
    for entry in raw if isinstance(raw, list) else ():
        if not isinstance(entry, Mapping):
            continue
        role = entry.get("role")
        role = "system" if role == "developer" else role if isinstance(role, str) else "user"
        content = entry.get("content")
        texts: list[str] = [content] if isinstance(content, str) else []
        others: list[dict[str, Any]] = []
        for part in content if isinstance(content, list) else ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, Mapping):  # images, audio: never recorded, only named
                others.append({"type": "generic", "generic_type": str(part.get("type"))})
        call_id = entry.get("tool_call_id")
        messages.append(
            _content.message(
                role,
                texts,
                settings,
                tool_call_id=call_id if isinstance(call_id, str) else None,
                tool_calls=tool_calls(entry.get("tool_calls")),
                extra=others,
            )
        )
    if messages:
        call.input_messages = messages
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        call.request_attributes[sc.TOOL_DEFINITIONS] = _content.encode(tools)
