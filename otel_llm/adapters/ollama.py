"""Ollama's native API (``/api/*``): request fields, NDJSON stream, final-record fields.

Only this module knows Ollama's native wire format. The stream parser looks at
most lines with a few byte searches and decodes JSON only for the lines that
matter (the final ``done:true`` record, tool calls, errors), so a long stream
costs almost nothing per chunk; with content capture on, every line is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from otel_llm import _content
from otel_llm import semconv as sc
from otel_llm._config import Settings
from otel_llm._framing import LineFramer
from otel_llm._types import LLMCall, Parser, Routes, Steady
from otel_llm.adapters._common import (
    MAX_ERROR_LENGTH,
    MAX_TEXT_LENGTH,
    EmbeddingsBody,
    ErrorBody,
    JsonBody,
    as_float,
    as_int,
    capped,
    capped_list,
    loads,
    note_tool_call,
    stream_incomplete,
    tool_calls,
)

__all__ = ["ENDPOINTS", "PS_PATH", "ROUTES", "Loaded", "OllamaAdapter", "adapter", "parse_ps"]

ENDPOINTS: Final[Mapping[str, str]] = {
    "/api/chat": sc.CHAT,
    "/api/generate": sc.TEXT_COMPLETION,
    "/api/embed": sc.EMBEDDINGS,
    "/api/embeddings": sc.EMBEDDINGS,
}

_FLOAT_OPTIONS: Final = (
    ("temperature", sc.REQUEST_TEMPERATURE),
    ("top_p", sc.REQUEST_TOP_P),
    ("frequency_penalty", sc.REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", sc.REQUEST_PRESENCE_PENALTY),
)
_INT_OPTIONS: Final = (
    ("top_k", sc.REQUEST_TOP_K),
    ("num_predict", sc.REQUEST_MAX_TOKENS),
    ("seed", sc.REQUEST_SEED),
)
_ORDINARY: Final = (b'"},"done":false}\n', b'","done":false}\n')
"""How an ordinary record ends: with a string, the message's text or thinking (chat) or
the ``response`` (generate). Go writes fields in struct order, ``tool_calls`` after the
text and ``done`` last when false, so a record ending so holds no tool call."""
_STEADY: Final = Steady(b"", _ORDINARY, 1)
"""One ordinary record in a chunk: the observer counts it (``Steady``)."""
_SCALARS: Final = re.compile(
    rb'"(total_duration|load_duration|prompt_eval_count|prompt_eval_duration|'
    rb'eval_count|eval_duration|prompt_eval_cached_count|model|done_reason)": ?("[^"]*"|\d+)'
)


class OllamaAdapter:
    """The native protocol: one instance serves every call."""

    name = "ollama"

    def read_request(self, call: LLMCall, body: Mapping[str, Any]) -> None:
        call.request_model = capped(body.get("model"))
        attrs = call.request_attributes
        if call.operation != sc.EMBEDDINGS:
            stream = body.get("stream", True)
            call.stream = stream is not False
        options = body.get("options")
        if type(options) is dict or isinstance(options, Mapping):
            for key, name in _FLOAT_OPTIONS:
                value = as_float(options.get(key))
                if value is not None:
                    attrs[name] = value
            for key, name in _INT_OPTIONS:
                ivalue = as_int(options.get(key))
                if ivalue is not None:
                    attrs[name] = ivalue
            call.num_ctx = as_int(options.get("num_ctx"))  # the context window (_context_window)
            stop = capped_list(options.get("stop"))
            if stop is not None:
                attrs[sc.REQUEST_STOP_SEQUENCES] = stop
        fmt = body.get("format")
        if fmt is not None and (fmt == "json" or isinstance(fmt, Mapping)):  # ABC check: rare
            attrs[sc.OUTPUT_TYPE] = "json"
        think = capped(body.get("think"))
        if think:
            attrs[sc.REQUEST_REASONING_LEVEL] = think
        if call.settings.capture_content:
            _capture_request(call, body)

    def parser(self, call: LLMCall, content_type: str) -> Parser:
        if call.status_code >= 400:
            return ErrorBody(call)
        if "ndjson" in content_type:
            return NdjsonStream(call)
        if call.operation == sc.EMBEDDINGS:
            return EmbeddingsBody(call, _read_embed, _scan_large)
        return JsonBody(call, _read_record, _scan_large)


adapter: Final = OllamaAdapter()
ROUTES: Final = Routes(adapter, ENDPOINTS, prefix="/api/", provider="ollama")
"""Native paths are Ollama's own: whatever the host, the provider is ``ollama``."""


class NdjsonStream:
    """``/api/chat`` and ``/api/generate`` streams: one JSON record per line."""

    __slots__ = ("_capture", "_fast", "_framer", "_thinking_phase", "call", "final")

    def __init__(self, call: LLMCall) -> None:
        self.call = call
        self._framer = LineFramer()
        self._capture = call.settings.capture_content
        self._thinking_phase = True  # thinking comes first; once text starts, stop looking
        self._fast = False  # past the thinking phase, not capturing: ordinary records skipped
        self.final = False

    @property
    def steady(self) -> Steady | None:
        return _STEADY if self._fast and not self._framer.busy else None

    def feed(self, data: bytes) -> bool:
        # The steady state: one ordinary record per chunk, two byte tests and a count
        # (``steady`` tells the httpx and requests observers to make them without a call).
        if self._fast and data.endswith(_ORDINARY) and not self._framer.busy:
            lines = data.count(b"\n")  # JSON escapes newlines inside strings: one per record
            self.call.chunks += lines
            return lines > 1 and self._scan(data)
        framer = self._framer
        if framer.busy or not data.endswith(b"\n"):
            data = framer.feed(data)
            if framer.skimmed is not None and self._read_skim():
                return True
            if not data:
                return False
        self.call.chunks += data.count(b"\n")
        return self._scan(data)

    def _scan(self, data: bytes) -> bool:
        """Complete lines (already counted): decode the ones that matter."""
        call = self.call
        if data.endswith(b'"done":false}\n') and not self._capture:
            # Ordinary records (Go writes ``done`` last when false; a final or error
            # record would be last): only a tool call or the first thinking is worth
            # decoding, and thinking is looked for only until the answer's text begins.
            # Needles without a leading quote: JSON is full of quotes, which makes the
            # byte search stop and compare at nearly every other position.
            if b"tool_calls" in data:
                return self._read_lines(data)
            if self._thinking_phase:
                if b"thinking" in data:
                    self._thinking_phase = False
                    self._fast = True
                    return self._read_lines(data)
                if b'"content":""' not in data and b'"response":""' not in data:
                    self._thinking_phase = False
                    self._fast = True
            return False
        if (
            self._capture
            or b'"done":true' in data
            or b'"tool_calls"' in data
            or b'{"error"' in data
            or (not call.thinking and b'"thinking"' in data)
        ):
            return self._read_lines(data)
        return False

    def _read_lines(self, region: bytes) -> bool:
        return any(line.strip() and self._read_line(line) for line in region.split(b"\n"))

    def _read_line(self, line: bytes) -> bool:
        record = loads(line)
        return isinstance(record, dict) and self._read_record(record)

    def _read_skim(self) -> bool:
        """A record too long to keep (``/api/generate``'s final one carries ``context``)."""
        framer = self._framer
        skim, framer.skimmed = framer.skimmed, None
        if skim is None:
            return False
        self.call.chunks += 1
        joined = skim.joined()
        record = loads(joined) if joined is not None else None
        if isinstance(record, dict):
            return self._read_record(record)
        # The middle was neither numbers nor one string: the scalars at both ends.
        head, tail = skim.head, skim.tail
        _scan_large(self.call, head, tail)
        if b'"done":true' in head or b'"done":true' in tail:
            self.final = True
            return True
        return False

    def _read_record(self, record: dict[str, Any]) -> bool:
        call = self.call
        error = record.get("error")
        if error is not None:
            call.error_type = sc.ERROR_STREAM_ERROR
            call.error_message = str(error)[:MAX_ERROR_LENGTH]
            self.final = True
            return True
        _read_message(call, record)
        if record.get("done") is True:
            _read_final(call, record)
            self.final = True
            return True
        return False

    def close(self) -> None:
        if self.final:
            return
        rest = self._framer.flush()
        if self._framer.skimmed is not None and self._read_skim():
            return
        if rest.strip():
            self.call.chunks += 1
            if self._read_line(rest):
                return
        stream_incomplete(self.call, "stream ended without a final (done) record")


def _read_message(call: LLMCall, record: Mapping[str, Any]) -> None:
    """Tool calls, thinking and (when capturing) text of one chat/generate record."""
    message = record.get("message")
    source = message if type(message) is dict else record  # decoded JSON: dicts
    text = source.get("content" if source is message else "response")
    thinking = source.get("thinking")
    if thinking:
        call.thinking = True
    capture = call.settings.capture_content
    for item in tool_calls(source.get("tool_calls")):
        note_tool_call(call, item)
        if capture:
            if call.output_tool_calls is None:
                call.output_tool_calls = []
            call.output_tool_calls.append(
                _content.part_tool_call(item.id, item.name, item.arguments, call.settings)
            )
    if capture:
        call.add_output(text, thinking)


def _read_final(call: LLMCall, record: Mapping[str, Any]) -> None:
    """The ``done:true`` record (or a whole non-streamed body): counts and server timings."""
    model = capped(record.get("model"))
    if model is not None:
        call.response_model = model
    reason = capped(record.get("done_reason"))
    if reason:
        call.finish_reasons = [reason]
    call.input_tokens = as_int(record.get("prompt_eval_count"))
    call.output_tokens = as_int(record.get("eval_count"))
    call.cache_read_tokens = as_int(record.get("prompt_eval_cached_count"))
    call.total_duration_ns = as_int(record.get("total_duration"))
    call.load_duration_ns = as_int(record.get("load_duration"))
    call.prompt_eval_duration_ns = as_int(record.get("prompt_eval_duration"))
    call.eval_duration_ns = as_int(record.get("eval_duration"))


def _read_record(call: LLMCall, obj: Any) -> None:
    """A non-streamed ``/api/chat`` or ``/api/generate`` body."""
    if type(obj) is not dict:  # decoded JSON
        return
    if "error" in obj and "done" not in obj:
        call.error_type = sc.ERROR_STREAM_ERROR
        call.error_message = str(obj["error"])[:MAX_ERROR_LENGTH]
        return
    call.chunks = 1
    _read_message(call, obj)
    _read_final(call, obj)


def _read_embed(call: LLMCall, obj: Any) -> None:
    """``/api/embed`` (``embeddings``) and legacy ``/api/embeddings`` (``embedding``)."""
    if not isinstance(obj, Mapping):
        return
    vectors = obj.get("embeddings")
    if isinstance(vectors, list) and vectors and isinstance(vectors[0], list):
        call.embedding_dimensions = len(vectors[0])
    vector = obj.get("embedding")
    if isinstance(vector, list):
        call.embedding_dimensions = len(vector)
    _read_final(call, obj)


def _scan_large(call: LLMCall, head: bytes, tail: bytes) -> None:
    """A body too large to keep (big embeddings): top-level scalars are at its ends.

    Go writes struct fields in order, so ``model`` leads and the counts and
    durations trail the vectors; the last match of a key is the top-level one.
    """
    found: dict[bytes, bytes] = {}
    for chunk in (head, tail):
        for match in _SCALARS.finditer(chunk):
            found[match.group(1)] = match.group(2)
    model = found.get(b"model")
    if model:
        call.response_model = capped(model.strip(b'"').decode("utf-8", "replace"))
    reason = found.get(b"done_reason", b"").strip(b'"')
    if reason:
        call.finish_reasons = [reason.decode("utf-8", "replace")[:MAX_TEXT_LENGTH]]
    fields = {
        b"prompt_eval_count": "input_tokens",
        b"eval_count": "output_tokens",
        b"prompt_eval_cached_count": "cache_read_tokens",
        b"total_duration": "total_duration_ns",
        b"load_duration": "load_duration_ns",
        b"prompt_eval_duration": "prompt_eval_duration_ns",
        b"eval_duration": "eval_duration_ns",
    }
    for key, attr in fields.items():
        raw = found.get(key)
        if raw is not None and raw.isdigit():
            setattr(call, attr, int(raw))
    start = head.find(b"[[")
    if start < 0:
        start = head.find(b'"embedding":[')
        start = start + len(b'"embedding":') if start >= 0 else -1
    else:
        start += 1
    if start >= 0:
        end = head.find(b"]", start)
        if end > start:
            call.embedding_dimensions = head.count(b",", start, end) + 1


def _capture_request(call: LLMCall, body: Mapping[str, Any]) -> None:
    settings = call.settings
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        call.system_instructions = [_content.part_text(system, settings)]
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt:
        messages.append({"role": "user", "parts": [_content.part_text(prompt, settings)]})
    raw_messages = body.get("messages")
    if isinstance(raw_messages, list):
        for message in raw_messages:
            if isinstance(message, Mapping):
                messages.append(_message(message, settings))
    if messages:
        call.input_messages = messages
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        call.request_attributes[sc.TOOL_DEFINITIONS] = _content.encode(tools)


def _message(message: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    role = message.get("role")
    text, thinking = message.get("content"), message.get("thinking")
    call_id, name = message.get("tool_call_id"), message.get("tool_name")
    images = message.get("images")
    return _content.message(
        role if isinstance(role, str) else "user",
        [text] if isinstance(text, str) else [],
        settings,
        reasoning=thinking if isinstance(thinking, str) else None,
        tool_call_id=call_id if isinstance(call_id, str) else None,
        tool_calls=tool_calls(message.get("tool_calls")),
        # Image bytes are never recorded, only that an image was sent.
        extra=[{"type": "generic", "generic_type": "image"}] * len(images)
        if isinstance(images, list)
        else [],
        name=name if isinstance(name, str) else None,
    )


# -- GET /api/ps: the models held in memory (for otel_llm._residency) ---------------------

PS_PATH: Final = "/api/ps"

_FRACTION = re.compile(r"(\.\d{6})\d+")  # Go prints nanoseconds; Python 3.10 takes 6 digits


@dataclass(frozen=True, slots=True)
class Loaded:
    """One model Ollama holds in memory, as ``/api/ps`` reports it."""

    name: str
    size: int
    size_vram: int
    expires_at: float | None  # unix seconds; None when not reported or unparsable


def _expires(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw:
        return None
    text = _FRACTION.sub(r"\1", raw.strip())
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def parse_ps(body: Any) -> list[Loaded]:
    """The models in an ``/api/ps`` answer; entries without a name are skipped."""
    models = body.get("models") if isinstance(body, dict) else None
    out: list[Loaded] = []
    for item in models if isinstance(models, list) else ():
        if not isinstance(item, dict):
            continue
        name = capped(item.get("model") or item.get("name"))
        if not name:
            continue
        size, vram = item.get("size"), item.get("size_vram")
        out.append(
            Loaded(
                name=name,
                size=size if isinstance(size, int) else 0,
                size_vram=vram if isinstance(vram, int) else 0,
                expires_at=_expires(item.get("expires_at")),
            )
        )
    return out
