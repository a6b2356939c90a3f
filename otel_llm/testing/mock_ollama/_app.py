"""A loopback server that answers like Ollama, byte for byte, with deterministic output.

Tests, demos and benchmarks need the real wire format (NDJSON and SSE framing, Go's JSON
quirks, Go's chunking rule) without a model, and exact numbers to assert. Only
``created_at`` / ``created`` carry the wall clock; everything else follows these rules:

* **Tokens**: ``re.findall(r"\\s*\\S+", text)``; one token per streamed chunk.
* **prompt_eval_count** (unless ``Scenario.prompt_tokens`` is set): the tokens of every
  prompt text, at least 1. Generate: ``system`` + ``prompt``; chat: each message's
  ``content`` (text parts on ``/v1``). Embeddings: each input counts at least 1; summed.
* **eval_count**: thinking tokens + content tokens + one per tool call.
  ``options.num_predict`` (``max_tokens`` on ``/v1``) caps content tokens and turns
  ``done_reason`` into ``length``. When tool calls are emitted the reply text is not.
* **Durations** (ns): ``prompt_eval_duration = prompt * 1 ms``, ``eval_duration =
  eval * 10 ms``, ``load_duration = Scenario.load_duration_ns``, ``total_duration`` = sum.
  ``/api/embed``: ``total_duration = load + prompt * 1 ms``.
* **context** (``/api/generate`` unless ``raw``): ``[1000, 1001, ...]``, prompt + eval ids.
* **Tool-call ids**: ``call_`` + 8 base-36 chars of ``sha1(f"{index}:{name}")``.
* **/v1 ids**: the k-th answered (0-based) chat request is ``chatcmpl-{k % 999}``; the
  k-th completion ``cmpl-{k % 999}``.
* **Embeddings**: 6 significant digits, magnitude in [0.001, 0.1), from
  ``shake_128(text)``; the legacy ``/api/embeddings`` widens them to float64 like Ollama.
* **Timing**: ``ttft`` before the response head (Go sends headers with the first flush),
  ``chunk_delay`` between streamed writes; a non-streaming reply waits
  ``ttft + chunk_delay * (chunks - 1)``. ``Scenario.status`` answers after ``ttft``;
  ``error_after`` on a non-streaming request answers 500.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import uvicorn

__all__ = [
    "DEFAULT_MODELS",
    "MockOllama",
    "RecordedRequest",
    "Scenario",
    "ScenarioSet",
    "ToolCall",
    "load_scenarios",
    "main",
    "scenario_from_dict",
]

VERSION = "0.33.0"
DEFAULT_MODELS: tuple[str, ...] = ("llama3.2", "qwen3:8b", "all-minilm")

_MS = 1_000_000
_EVAL_NS = 10 * _MS
_GO_BUFFER = 2048  # net/http's bufferBeforeChunkingSize: larger bodies go out chunked
_MODIFIED_NS = 1_746_403_064_418_265_397  # fixed "pulled at" instant for every model
_LOCAL_OFFSET = -7 * 3600  # "server local time" used by modified_at / expires_at
_NATIVE_JSON = b"application/json; charset=utf-8"
_NDJSON = b"application/x-ndjson"
_SSE = b"text/event-stream"
_DONE_EVENT = b"data: [DONE]\n\n"

_Event = dict[str, Any]
_Receive = Callable[[], Awaitable[_Event]]
_Send = Callable[[_Event], Awaitable[None]]


@dataclass
class ToolCall:
    """A function call the mock model makes when the request offers tools."""

    name: str
    arguments: dict[str, Any]


@dataclass
class Scenario:
    """How the mock answers one model."""

    reply: str = "The sky is blue because air scatters blue light."
    thinking: str | None = None  # sent when the request asks to think
    tool_calls: list[ToolCall] = field(default_factory=list)  # sent when it carries tools
    prompt_tokens: int | None = None  # None: counted from the request (module docstring)
    ttft: float = 0.0  # seconds before the first byte
    chunk_delay: float = 0.0  # seconds between streamed chunks
    load_duration_ns: int = 1_000_000  # reported load_duration (big = cold load)
    status: int | None = None  # answer with this HTTP error before any byte
    error_message: str = "simulated failure"
    error_after: int | None = None  # break a stream after N chunks (no done line, no [DONE])
    done_reason: str = "stop"
    embedding_dim: int = 8
    chunks: int | None = None  # stream exactly this many content chunks, cycling the reply


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received, so tests can assert what a client really sent."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


# --- Go-compatible encoding -------------------------------------------------------------

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
    sec, frac = divmod(ns, 1_000_000_000)
    text = _seconds(sec + offset)
    if frac:
        text += f".{frac:09d}".rstrip("0")
    if offset == 0:
        return text + "Z"
    sign = "-" if offset < 0 else "+"
    return f"{text}{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"


def _now() -> str:
    return _rfc3339nano(time.time_ns())


# --- deterministic content --------------------------------------------------------------

_TOKEN = re.compile(r"\s*\S+")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=512)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text))


def _count(value: Any) -> int:
    """Tokens of a prompt text: a string, or a list of ``{"type":"text","text":...}`` parts."""
    if isinstance(value, str):
        return len(_tokens(value))
    if isinstance(value, list):
        return sum(_count(part.get("text")) for part in value if isinstance(part, dict))
    return 0


@lru_cache(maxsize=256)
def _call_id(index: int, name: str) -> str:
    number = int.from_bytes(hashlib.sha1(f"{index}:{name}".encode()).digest()[:8], "big")
    digits = []
    for _ in range(8):
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
    return "call_" + "".join(digits)


@lru_cache(maxsize=1024)
def _vector(text: str, dim: int) -> tuple[float, ...]:
    """Six significant digits: float32's shortest form equals Python's repr of the value."""
    raw = hashlib.shake_128(text.encode("utf-8", "surrogatepass")).digest(4 * dim)
    values = []
    for (word,) in struct.iter_unpack("<I", raw):
        value = float(f"{0.001 + (word >> 1) / 2**31 * 0.099:.6g}")
        values.append(-value if word & 1 else value)
    return tuple(values)


def _widen(values: Sequence[float]) -> list[float]:
    """float32 -> float64, as Ollama's legacy endpoint reports them."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _full_name(model: str) -> str:
    return model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"


def _aliases(model: str) -> tuple[str, ...]:
    """``llama3.2`` and ``llama3.2:latest`` name the same model."""
    if model.endswith(":latest"):
        return model, model[: -len(":latest")]
    return (model, model + ":latest") if model != _full_name(model) else (model,)


def _family(model: str) -> str:
    if "minilm" in model or "embed" in model:
        return "bert"
    return "qwen3" if model.startswith("qwen3") else "llama"


def _details(model: str) -> dict[str, Any]:
    family = _family(model)
    size, quant = {"bert": ("23M", "F16"), "qwen3": ("8.2B", "Q4_K_M")}.get(
        family, ("3.2B", "Q4_K_M")
    )
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": size,
        "quantization_level": quant,
    }


def _digest(model: str) -> str:
    return hashlib.sha256(_full_name(model).encode()).hexdigest()


def _size(model: str) -> int:
    return 1_000_000_000 + int(_digest(model)[:6], 16)


def _owner(model: str) -> str:
    parts = model.split("/")
    return parts[-2] if len(parts) > 1 else "library"


# --- one generation, rendered by four wire formats ---------------------------------------


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


# --- the ASGI application ---------------------------------------------------------------


class _HTTPError(Exception):
    """Answered before any byte: native ``{"error":...}`` or the /v1 error object."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _v1_error(status: int, message: str) -> bytes:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    return _encode({"error": error}) + b"\n"


def _parse(body: bytes) -> dict[str, Any]:
    """Decode a request body, with Go-like error texts."""
    if not body.strip():
        raise _HTTPError(400, "missing request body")
    try:
        payload = json.loads(body)
    except UnicodeDecodeError as exc:
        raise _HTTPError(400, "invalid character in string literal") from exc
    except json.JSONDecodeError as exc:
        if exc.pos >= len(exc.doc.rstrip()):
            raise _HTTPError(400, "unexpected EOF") from exc
        char = exc.doc[exc.pos]
        raise _HTTPError(400, f"invalid character {char!r} looking for beginning of value") from exc
    if not isinstance(payload, dict):
        kind = "array" if isinstance(payload, list) else type(payload).__name__
        raise _HTTPError(400, f"json: cannot unmarshal {kind} into Go value of type object")
    return payload


def _native_think(payload: Mapping[str, Any]) -> bool:
    think = payload.get("think")
    return think is True or (isinstance(think, str) and think in ("low", "medium", "high", "max"))


def _v1_think(payload: Mapping[str, Any]) -> bool:
    reasoning = payload.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    effort = effort or payload.get("reasoning_effort")
    if effort in (None, ""):
        return False
    if effort not in ("high", "medium", "low", "none"):
        raise _HTTPError(
            400,
            f'invalid reasoning value: \'{effort}\' (must be "high", "medium", "low", or "none")',
        )
    return bool(effort != "none")


def _include_usage(payload: Mapping[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _options(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    options = payload.get("options")
    return options if isinstance(options, dict) else {}


async def _read_body(receive: _Receive) -> bytes | None:
    body = bytearray()
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return None
        body += event.get("body", b"")
        if not event.get("more_body"):
            return bytes(body)


async def _watch_disconnect(receive: _Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _reply(send: _Send, status: int, body: bytes, content_type: bytes) -> None:
    """One body; ``content-length`` only when Go would buffer it all, else chunked."""
    headers = [(b"content-type", content_type)]
    if len(body) <= _GO_BUFFER:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


@dataclass
class _Request:
    method: str
    path: str
    body: bytes
    receive: _Receive
    send: _Send


class _App:
    """ASGI routes of an Ollama server; state lives in the owning ``MockOllama``."""

    def __init__(self, mock: MockOllama) -> None:
        self._mock = mock
        self._chat_ids = itertools.count()
        self._completion_ids = itertools.count()
        get_head = ("GET", "HEAD")
        self._routes: dict[tuple[str, str], Callable[[_Request], Awaitable[None]]] = {
            **{(m, "/"): self._root for m in get_head},
            **{(m, "/api/version"): self._version for m in get_head},
            **{(m, "/api/tags"): self._tags for m in get_head},
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/generate"): self._generate,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/embed"): self._embed,
            ("POST", "/api/embeddings"): self._embeddings,
            ("POST", "/v1/chat/completions"): self._v1_chat,
            ("POST", "/v1/completions"): self._v1_completions,
            ("POST", "/v1/embeddings"): self._v1_embeddings,
            ("GET", "/v1/models"): self._v1_models,
        }

    async def __call__(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        method, path = scope["method"], scope["path"]
        self._mock.requests.append(RecordedRequest(method, path, headers, body))
        handler = self._routes.get((method, path))
        model_path = path.removeprefix("/v1/models/")
        if handler is None and method == "GET" and model_path != path and "/" not in model_path:
            handler = self._v1_model
        if handler is None:  # gin answers unknown routes and wrong methods alike
            await _reply(send, 404, b"404 page not found", b"text/plain")
            return
        try:
            await handler(_Request(method, path, body, receive, send))
        except _HTTPError as exc:
            if path.startswith("/v1/"):
                await _reply(
                    send, exc.status, _v1_error(exc.status, exc.message), b"application/json"
                )
            else:
                await _reply(send, exc.status, _encode({"error": exc.message}), _NATIVE_JSON)

    # --- shared steps

    def _scenario(self, model: Any) -> tuple[str, Scenario]:
        if not isinstance(model, str) or not model:
            raise _HTTPError(400, "model is required")
        scenario = self._mock.scenario_for(model)
        if scenario is None:
            raise _HTTPError(404, f"model '{model}' not found")
        return model, scenario

    @staticmethod
    async def _wait(scenario: Scenario, *, chunks: int = 1, broken: bool = False) -> None:
        """Time to first byte (a whole body's worth if unstreamed), then any failure."""
        delay = scenario.ttft + scenario.chunk_delay * max(0, chunks - 1)
        if delay > 0:
            await asyncio.sleep(delay)
        if scenario.status is not None:
            raise _HTTPError(scenario.status, scenario.error_message)
        if broken:
            raise _HTTPError(500, scenario.error_message)

    async def _wait_plan(self, plan: _Plan, *, stream: bool) -> None:
        if stream:
            await self._wait(plan.scenario)
        else:
            await self._wait(plan.scenario, chunks=len(plan.pieces), broken=plan.cut is not None)

    @staticmethod
    async def _stream(
        req: _Request, content_type: bytes, frames: Iterator[bytes], delay: float
    ) -> None:
        """One body write per frame, each flushed; stops early if the client goes away."""
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch_disconnect(req.receive, gone))
        try:
            headers = [(b"content-type", content_type)]
            await req.send({"type": "http.response.start", "status": 200, "headers": headers})
            for index, frame in enumerate(frames):
                if index and delay > 0:
                    await asyncio.sleep(delay)
                elif index % 4 == 3:  # let the loop notice a client that went away
                    await asyncio.sleep(0)
                if gone.is_set():
                    return
                await req.send({"type": "http.response.body", "body": frame, "more_body": True})
            await req.send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    @staticmethod
    async def _native(req: _Request, payload: Any) -> None:
        await _reply(req.send, 200, _encode(payload), _NATIVE_JSON)

    @staticmethod
    async def _v1(req: _Request, payload: Any) -> None:
        await _reply(req.send, 200, _encode(payload) + b"\n", b"application/json")

    def _models(self) -> list[str]:
        names = {_full_name(m): m for m in (*self._mock.models, *self._mock.scenarios)}
        return list(names.values())

    # --- native endpoints

    async def _root(self, req: _Request) -> None:
        await _reply(req.send, 200, b"Ollama is running", b"text/plain; charset=utf-8")

    async def _version(self, req: _Request) -> None:
        await self._native(req, {"version": VERSION})

    async def _tags(self, req: _Request) -> None:
        modified = _rfc3339nano(_MODIFIED_NS, _LOCAL_OFFSET)
        models = [
            {
                "name": _full_name(m),
                "model": _full_name(m),
                "modified_at": modified,
                "size": _size(m),
                "digest": _digest(m),
                "details": _details(m),
            }
            for m in self._models()
        ]
        await self._native(req, {"models": models})

    async def _ps(self, req: _Request) -> None:
        expires = _rfc3339nano(time.time_ns() + 300 * 1_000_000_000, _LOCAL_OFFSET)
        models = [
            {
                "name": _full_name(m),
                "model": _full_name(m),
                "size": _size(m),
                "digest": _digest(m),
                "details": _details(m),
                "expires_at": expires,
                "size_vram": _size(m),
                "context_length": 4096,
            }
            for m in self._models()
        ]
        await self._native(req, {"models": models})

    async def _show(self, req: _Request) -> None:
        payload = _parse(req.body)
        model, scenario = self._scenario(payload.get("model") or payload.get("name"))
        family = _family(model)
        if family == "bert":
            capabilities = ["embedding"]
        else:
            capabilities = ["completion", "tools", *(["thinking"] if scenario.thinking else [])]
        show = {
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {_full_name(model)}\n',
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": _details(model),
            "model_info": {
                "general.architecture": family,
                "general.parameter_count": _size(model) * 2,
                f"{family}.context_length": 131072,
                f"{family}.embedding_length": scenario.embedding_dim,
            },
            "capabilities": capabilities,
            "modified_at": _rfc3339nano(_MODIFIED_NS, _LOCAL_OFFSET),
        }
        await self._native(req, show)

    async def _generate(self, req: _Request) -> None:
        payload = _parse(req.body)
        model, scenario = self._scenario(payload.get("model"))
        if not payload.get("prompt") and not payload.get("images"):
            plan = _loaded(model, scenario, payload)
            await self._native(req, _generate_record(plan, "", "", False))
            return
        prompt = _count(payload.get("system")) + _count(payload.get("prompt"))
        limit = _options(payload).get("num_predict")
        think = _native_think(payload)
        plan = _plan(model, scenario, prompt, think=think, tools=False, limit=limit)
        stream = payload.get("stream") is not False
        context = payload.get("raw") is not True
        await self._wait_plan(plan, stream=stream)
        if stream:
            frames = _native_frames(plan, chat=False, context=context)
            await self._stream(req, _NDJSON, frames, scenario.chunk_delay)
        else:
            record = _generate_record(plan, plan.text("content"), plan.text("thinking"), context)
            await self._native(req, record)

    async def _chat(self, req: _Request) -> None:
        payload = _parse(req.body)
        model, scenario = self._scenario(payload.get("model"))
        messages = payload.get("messages")
        if not messages or not isinstance(messages, list):
            plan = _loaded(model, scenario, payload)
            await self._native(req, _chat_record(plan, _chat_message("", "", ())))
            return
        prompt = sum(_count(m.get("content")) for m in messages if isinstance(m, dict))
        tools = bool(payload.get("tools"))
        limit = _options(payload).get("num_predict")
        think = _native_think(payload)
        plan = _plan(model, scenario, prompt, think=think, tools=tools, limit=limit)
        stream = payload.get("stream") is not False
        await self._wait_plan(plan, stream=stream)
        if stream:
            frames = _native_frames(plan, chat=True, context=False)
            await self._stream(req, _NDJSON, frames, scenario.chunk_delay)
        else:
            message = _chat_message(plan.text("content"), plan.text("thinking"), plan.calls())
            await self._native(req, _chat_record(plan, message))

    def _embed_inputs(self, payload: Mapping[str, Any]) -> tuple[Scenario, list[str], int]:
        _, scenario = self._scenario(payload.get("model"))
        raw = payload.get("input")
        if isinstance(raw, str):
            texts = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            texts = list(raw)
        elif raw is None:
            texts = []
        else:
            raise _HTTPError(400, "invalid input type")
        dim = scenario.embedding_dim
        wanted = payload.get("dimensions")
        if isinstance(wanted, int) and 0 < wanted < dim:
            dim = wanted
        return scenario, texts, dim

    async def _embed(self, req: _Request) -> None:
        payload = _parse(req.body)
        scenario, texts, dim = self._embed_inputs(payload)
        if not texts:
            await self._native(req, {"model": payload["model"], "embeddings": []})
            return
        await self._wait(scenario)
        prompt = sum(max(1, _count(text)) for text in texts)
        load = scenario.load_duration_ns
        body: dict[str, Any] = {
            "model": payload["model"],
            "embeddings": [_vector(text, dim) for text in texts],
        }
        items = (("total_duration", load + prompt * _MS), ("load_duration", load))
        body.update((key, value) for key, value in items if value)
        body["prompt_eval_count"] = prompt
        await self._native(req, body)

    async def _embeddings(self, req: _Request) -> None:
        payload = _parse(req.body)
        _, scenario = self._scenario(payload.get("model"))
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            await self._native(req, {"embedding": []})
            return
        await self._wait(scenario)
        await self._native(req, {"embedding": _widen(_vector(prompt, scenario.embedding_dim))})

    # --- OpenAI-compatible endpoints

    async def _v1_chat(self, req: _Request) -> None:
        payload = _parse(req.body)
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "[] is too short - 'messages'")
        think = _v1_think(payload)
        created = int(time.time())
        model, scenario = self._scenario(payload.get("model"))
        prompt = sum(_count(m.get("content")) for m in messages if isinstance(m, dict))
        tools = bool(payload.get("tools"))
        limit = payload.get("max_tokens")
        plan = _plan(model, scenario, prompt, think=think, tools=tools, limit=limit)
        stream = payload.get("stream") is True
        await self._wait_plan(plan, stream=stream)
        head = {
            "id": f"chatcmpl-{next(self._chat_ids) % 999}",
            "object": "chat.completion.chunk" if stream else "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_ollama",
        }
        if stream:
            frames = _v1_chat_frames(plan, head, _include_usage(payload))
            await self._stream(req, _SSE, frames, scenario.chunk_delay)
            return
        message: dict[str, Any] = {"role": "assistant", "content": plan.text("content")}
        if reasoning := plan.text("thinking"):
            message["reasoning"] = reasoning
        if calls := plan.calls():
            message["tool_calls"] = _v1_calls(calls)
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": "tool_calls" if calls else plan.done_reason,
        }
        await self._v1(req, {**head, "choices": [choice], "usage": plan.usage()})

    async def _v1_completions(self, req: _Request) -> None:
        payload = _parse(req.body)
        prompt = payload.get("prompt", "")
        if not isinstance(prompt, str):
            raise _HTTPError(
                400,
                "json: cannot unmarshal array into Go struct field "
                "CompletionRequest.prompt of type string",
            )
        created = int(time.time())
        model, scenario = self._scenario(payload.get("model"))
        stream = payload.get("stream") is True
        if prompt:
            limit = payload.get("max_tokens")
            plan = _plan(model, scenario, _count(prompt), think=False, tools=False, limit=limit)
            await self._wait_plan(plan, stream=stream)
        else:
            plan = _loaded(model, scenario, payload)
        ident = f"cmpl-{next(self._completion_ids) % 999}"
        if stream:
            frames = _v1_completion_frames(plan, ident, created, _include_usage(payload))
            await self._stream(req, _SSE, frames, scenario.chunk_delay)
            return
        choice = {"text": plan.text("content"), "index": 0, "finish_reason": plan.done_reason}
        completion = {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [choice],
            "usage": plan.usage(),
        }
        await self._v1(req, completion)

    async def _v1_embeddings(self, req: _Request) -> None:
        payload = _parse(req.body)
        encoding = payload.get("encoding_format") or "float"
        if not isinstance(encoding, str) or encoding.lower() not in ("float", "base64"):
            raise _HTTPError(
                400,
                f"Invalid value for 'encoding_format' = {encoding}. "
                "Supported values: ['float', 'base64'].",
            )
        raw = payload.get("input")
        if raw == "":
            payload["input"] = [""]
        elif raw is None or raw == []:
            raise _HTTPError(400, "invalid input")
        scenario, texts, dim = self._embed_inputs(payload)
        await self._wait(scenario)
        data = []
        for index, text in enumerate(texts):
            vector: Any = _vector(text, dim)
            if encoding.lower() == "base64":
                vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "embedding": vector, "index": index})
        prompt = sum(max(1, _count(text)) for text in texts)
        usage = {"prompt_tokens": prompt, "total_tokens": prompt}
        await self._v1(
            req, {"object": "list", "data": data, "model": payload["model"], "usage": usage}
        )

    async def _v1_models(self, req: _Request) -> None:
        created = _MODIFIED_NS // 1_000_000_000
        data = [
            {"id": _full_name(m), "object": "model", "created": created, "owned_by": _owner(m)}
            for m in self._models()
        ]
        await self._v1(req, {"object": "list", "data": data or None})  # Go: nil slice -> null

    async def _v1_model(self, req: _Request) -> None:
        model = req.path.removeprefix("/v1/models/")
        model, _ = self._scenario(model)
        created = _MODIFIED_NS // 1_000_000_000
        await self._v1(
            req, {"id": model, "object": "model", "created": created, "owned_by": _owner(model)}
        )


# --- the server -------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """Leaves signal handling to the host program: the server runs in a helper thread."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # the same hook in uvicorn < 0.29
        pass


class MockOllama:
    """A real Ollama-shaped HTTP server on 127.0.0.1, run by uvicorn in a daemon thread.

    ``scenarios``, ``default`` and ``models`` may be changed while it runs; each request
    looks them up afresh. ``requests`` records every request received, in order.
    """

    def __init__(
        self,
        scenarios: Mapping[str, Scenario] | None = None,
        *,
        default: Scenario | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        port: int = 0,
    ) -> None:
        self.scenarios: dict[str, Scenario] = dict(scenarios or {})
        self.default = default if default is not None else Scenario()
        self.models: list[str] = list(models)
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._app = _App(self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:11434``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The ``OLLAMA_HOST`` form, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def scenario_for(self, model: str) -> Scenario | None:
        """The scenario answering ``model`` (``:latest`` optional), or None if unknown."""
        names = _aliases(model)
        for name in names:
            if name in self.scenarios:
                return self.scenarios[name]
        listed = {_full_name(m) for m in self.models}
        return self.default if any(_full_name(name) in listed for name in names) else None

    def start(self) -> MockOllama:
        """Bind 127.0.0.1:port (0 = ephemeral), serve from a thread, return once ready."""
        if self._server is not None:
            return self
        # With an explicit IPPROTO_TCP asyncio sets TCP_NODELAY (no 40 ms delayed-ACK stalls).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            cast(Any, self._app),
            http="auto",  # h11, or httptools when installed
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        server = _Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"mock-ollama-{self.port}"
        )
        thread.daemon = True
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(5)
                sock.close()
                raise RuntimeError(f"mock Ollama did not start on {self.host}")
            time.sleep(0.002)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Shut down gracefully (in-flight streams get 2 s) and join the thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(10)

    def __enter__(self) -> MockOllama:
        return self.start()

    @classmethod
    def from_file(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], *, port: int = 0
    ) -> MockOllama:
        """A mock scripted by a YAML/JSON scenario file (or its dict); see ``load_scenarios``."""
        return load_scenarios(source).mock(port=port)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- scenario files ---------------------------------------------------------------------
#
#   models:                      # model name -> Scenario fields (see Scenario)
#     llama3.2: {reply: "Hello there", ttft: 0.2, chunk_delay: 0.01}
#     qwen3:8b:
#       thinking: "Tokyo is in Japan."
#       tool_calls: [{name: get_weather, arguments: {city: Tokyo}}]
#     broken: {error_after: 2}          # native: error line; /v1: cut without [DONE]
#     down: {status: 503, error_message: "server overloaded"}
#     cold: {load_duration: 4.5}        # seconds (or load_duration_ns)
#     chunky: {tokens: ["Hel", "lo", " there"]}   # must follow the token rule
#   default: {reply: "..."}     # every other listed model
#   listed: [llama3.2, all-minilm]    # /api/tags (default: DEFAULT_MODELS + models)

_SCENARIO_FIELDS = tuple(f.name for f in fields(Scenario))
_FILE_KEYS = ("models", "default", "listed")
_INT_FIELDS = (
    "prompt_tokens",
    "status",
    "error_after",
    "embedding_dim",
    "chunks",
    "load_duration_ns",
)
_FLOAT_FIELDS = ("ttft", "chunk_delay")
_TEXT_FIELDS = ("reply", "thinking", "error_message", "done_reason")


@dataclass(frozen=True)
class ScenarioSet:
    """What a scenario file describes: per-model scenarios, the default, the listed models."""

    scenarios: dict[str, Scenario]
    default: Scenario
    models: list[str]

    def mock(self, *, port: int = 0) -> MockOllama:
        """A (not yet started) ``MockOllama`` answering with these scenarios."""
        return MockOllama(self.scenarios, default=self.default, models=self.models, port=port)


def _tool_call(raw: Any, where: str) -> ToolCall:
    if isinstance(raw, Mapping) and isinstance(raw.get("function"), Mapping):
        raw = raw["function"]  # the OpenAI shape {type, function: {name, arguments}}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ValueError(f"{where}: a tool call is {{name: str, arguments: {{...}}}}, got {raw!r}")
    unknown = sorted(set(raw) - {"name", "arguments", "id", "type"})
    if unknown:
        raise ValueError(f"{where}: unknown tool call keys {unknown} (use name, arguments)")
    arguments = raw.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: arguments are not JSON: {exc.msg}") from exc
    if not isinstance(arguments, Mapping):
        raise ValueError(f"{where}: arguments must be an object, got {arguments!r}")
    return ToolCall(raw["name"], dict(arguments))


def scenario_from_dict(data: Mapping[str, Any] | None, where: str = "scenario") -> Scenario:
    """A ``Scenario`` from file fields, with readable errors for unknown keys and bad types.

    Besides ``Scenario``'s own fields: ``tokens`` (the reply as its streamed tokens,
    each optional whitespace then non-space text, e.g. ``["The", " sky"]``),
    ``load_duration`` (seconds) and tool calls as ``{name, arguments}``.
    """
    if data is None:
        return Scenario()
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of Scenario fields, got {data!r}")
    values = dict(data)
    tokens = values.pop("tokens", None)
    if tokens is not None:
        if "reply" in values:
            raise ValueError(f"{where}: give reply or tokens, not both")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{where}: tokens must be a list of strings")
        reply = "".join(tokens)
        if list(_tokens(reply)) != tokens:
            raise ValueError(
                f"{where}: tokens {tokens!r} would stream as {list(_tokens(reply))!r}: each"
                " token is optional leading whitespace plus non-space text"
            )
        values["reply"] = reply
    if "load_duration" in values:
        seconds = values.pop("load_duration")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{where}: load_duration must be seconds >= 0, got {seconds!r}")
        values["load_duration_ns"] = round(seconds * 1e9)
    unknown = sorted(set(values) - set(_SCENARIO_FIELDS))
    if unknown:
        known = ", ".join((*_SCENARIO_FIELDS, "tokens", "load_duration"))
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {known})")
    for name in _INT_FIELDS:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
    for name in _FLOAT_FIELDS:
        value = values.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{where}: {name} must be seconds >= 0, got {value!r}")
            values[name] = float(value)
    for name in _TEXT_FIELDS:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: {name} must be a string, got {value!r}")
    status = values.get("status")
    if status is not None and not 400 <= status <= 599:
        raise ValueError(f"{where}: status must be an HTTP error status (400-599), got {status}")
    if "tool_calls" in values:
        calls = values["tool_calls"] or []
        if not isinstance(calls, list):
            raise ValueError(f"{where}: tool_calls must be a list")
        values["tool_calls"] = [
            _tool_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(calls)
        ]
    return Scenario(**values)


def _read_scenario_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with otel-llm[testing]
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(
                f"{path}: YAML needs PyYAML (pip install 'otel-llm[testing]')"
            ) from None
    return yaml.safe_load(text)


def load_scenarios(source: str | os.PathLike[str] | Mapping[str, Any]) -> ScenarioSet:
    """Read a scenario file (YAML or JSON) or its already-parsed dict.

    ``{"models": {name: fields}, "default": fields, "listed": [names]}``, all optional.
    """
    where = "scenarios"
    if isinstance(source, Mapping):
        data: Any = source
    else:
        path = Path(source)
        where = str(path)
        data = _read_scenario_file(path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping with models/default/listed")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        joined = ", ".join(map(str, unknown))
        raise ValueError(f"{where}: unknown key(s) {joined} (known: models, default, listed)")
    models = data.get("models") or {}
    if not isinstance(models, Mapping):
        raise ValueError(f"{where}: models must map model names to scenarios")
    scenarios = {
        str(name): scenario_from_dict(fields_, f"{where}: models.{name}")
        for name, fields_ in models.items()
    }
    default = scenario_from_dict(data.get("default"), f"{where}: default")
    listed = data.get("listed")
    if listed is None:
        names = list(DEFAULT_MODELS)
        known = {_full_name(m) for m in names}
        names.extend(m for m in scenarios if _full_name(m) not in known)
    elif isinstance(listed, list) and all(isinstance(m, str) for m in listed):
        names = list(listed)
    else:
        raise ValueError(f"{where}: listed must be a list of model names")
    return ScenarioSet(scenarios, default, names)


def main(argv: Sequence[str] | None = None) -> int:
    """``otel-llm mock-ollama``: serve in the foreground until Ctrl-C."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["mock-ollama"]:
        args_in = args_in[1:]
    parser = argparse.ArgumentParser(
        prog="otel-llm mock-ollama", description="Serve a deterministic mock Ollama."
    )
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first byte")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--reply", default=Scenario.reply, help="text every model answers")
    parser.add_argument("--model", action="append", dest="models", help="repeatable")
    parser.add_argument(
        "--scenario", metavar="FILE", help="YAML/JSON scenario file (models, default, listed)"
    )
    args = parser.parse_args(args_in)
    default = Scenario(reply=args.reply, ttft=args.ttft, chunk_delay=args.chunk_delay)
    mock = MockOllama(default=default, models=args.models or DEFAULT_MODELS, port=args.port)
    if args.scenario:
        try:
            scripted = load_scenarios(args.scenario)
        except (OSError, ValueError) as exc:
            print(f"otel-llm mock-ollama: {exc}", file=sys.stderr)
            return 2
        flags = {"reply": args.reply, "ttft": args.ttft, "chunk_delay": args.chunk_delay}
        changed = {k: v for k, v in flags.items() if v != getattr(Scenario, k)}
        mock = MockOllama(
            scripted.scenarios,
            default=replace(scripted.default, **changed),
            models=scripted.models + [m for m in args.models or () if m not in scripted.models],
            port=args.port,
        )
    try:
        mock.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(mock.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        mock.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
