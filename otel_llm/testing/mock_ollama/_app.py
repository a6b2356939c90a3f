"""The ASGI application: Ollama's routes, request parsing, timing and errors.

State (scenarios, models, recorded requests) lives in the owning ``MockOllama``; this
module turns a request into a plan (``_render``) and writes it as Ollama would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import struct
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otel_llm._units import NS_PER_S, nanoseconds
from otel_llm.testing.mock_ollama._content import (
    _count,
    _details,
    _digest,
    _family,
    _full_name,
    _owner,
    _size,
    _vector,
    _widen,
)
from otel_llm.testing.mock_ollama._encoding import _encode, _rfc3339nano
from otel_llm.testing.mock_ollama._render import (
    _MS,
    _NDJSON,
    _SSE,
    _chat_message,
    _chat_record,
    _generate_record,
    _loaded,
    _native_frames,
    _Plan,
    _plan,
    _v1_calls,
    _v1_chat_frames,
    _v1_completion_frames,
)
from otel_llm.testing.mock_ollama._scenario import RecordedRequest, Scenario

if TYPE_CHECKING:
    from otel_llm.testing.mock_ollama._server import MockOllama

VERSION = "0.33.0"

_GO_BUFFER = 2048  # net/http's bufferBeforeChunkingSize: larger bodies go out chunked
_MODIFIED_NS = 1_746_403_064_418_265_397  # fixed "pulled at" instant for every model
_LOCAL_OFFSET = -7 * 3600  # "server local time" used by modified_at / expires_at
_NATIVE_JSON = b"application/json; charset=utf-8"
DEFAULT_NUM_CTX = 4096  # Ollama's default window (under 24 GiB of VRAM)
TRAINED_CONTEXT = 131072  # every mock model's model_info "<arch>.context_length"
_PARAMS_LAYER = 1_024  # bytes of the small params layer every model has

_Event = dict[str, Any]
_Receive = Callable[[], Awaitable[_Event]]
_Send = Callable[[_Event], Awaitable[None]]


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


async def _empty(send: _Send) -> None:
    """gin's ``c.Status(200)``: headers only, no content type."""
    headers = [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


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
        self._slots: tuple[int, asyncio.Semaphore] | None = None
        get_head = ("GET", "HEAD")
        self._routes: dict[tuple[str, str], Callable[[_Request], Awaitable[None]]] = {
            **{(m, "/"): self._root for m in get_head},
            **{(m, "/api/version"): self._version for m in get_head},
            **{(m, "/api/tags"): self._tags for m in get_head},
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/pull"): self._pull,
            ("POST", "/api/push"): self._push,
            ("POST", "/api/create"): self._create,
            ("POST", "/api/copy"): self._copy,
            ("DELETE", "/api/delete"): self._delete,
            ("POST", "/api/generate"): self._queued(self._generate),
            ("POST", "/api/chat"): self._queued(self._chat),
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

    def _queued(
        self, handler: Callable[[_Request], Awaitable[None]]
    ) -> Callable[[_Request], Awaitable[None]]:
        """Serve at most ``MockOllama.parallel`` of these at once; the others wait their turn."""

        async def run(req: _Request) -> None:
            limit = self._mock.parallel
            if not limit:
                await handler(req)
                return
            if self._slots is None or self._slots[0] != limit:
                self._slots = (limit, asyncio.Semaphore(limit))
            async with self._slots[1]:
                await handler(req)

        return run

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

    def _window(self, model: str, payload: Mapping[str, Any]) -> int:
        """The context window: ``options.num_ctx``, else the Modelfile's, else the default."""
        scenario = self._mock.scenario_for(model) or self._mock.default
        wanted = _options(payload).get("num_ctx")
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted <= 0:
            wanted = scenario.num_ctx or DEFAULT_NUM_CTX
        return min(wanted, TRAINED_CONTEXT)

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
        expires = _rfc3339nano(time.time_ns() + nanoseconds(300), _LOCAL_OFFSET)
        models = [
            {
                "name": _full_name(m),
                "model": _full_name(m),
                "size": _size(m),
                "digest": _digest(m),
                "details": _details(m),
                "expires_at": expires,
                "size_vram": _size(m),
                "context_length": self._window(m, {}),
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
            "parameters": (
                f"num_ctx                        {scenario.num_ctx}\n" if scenario.num_ctx else ""
            )
            + 'stop                           "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": _details(model),
            "model_info": {
                "general.architecture": family,
                "general.parameter_count": _size(model) * 2,
                f"{family}.context_length": TRAINED_CONTEXT,
                f"{family}.embedding_length": scenario.embedding_dim,
            },
            "capabilities": capabilities,
            "modified_at": _rfc3339nano(_MODIFIED_NS, _LOCAL_OFFSET),
        }
        await self._native(req, show)

    # --- model operations (progress NDJSON for pull, push and create)

    @staticmethod
    def _target(payload: Mapping[str, Any], key: str = "model") -> str:
        model = payload.get(key) or (payload.get("name") if key == "model" else None)
        if not isinstance(model, str) or not model:
            raise _HTTPError(400, "model is required")
        return model

    async def _progress(
        self, req: _Request, payload: Mapping[str, Any], lines: list[dict[str, Any]]
    ) -> None:
        """Stream ``lines`` (one flushed NDJSON line each), or answer only the last one."""
        delay = self._mock.default.chunk_delay
        if payload.get("stream") is False:
            if delay > 0:
                await asyncio.sleep(delay * max(0, len(lines) - 1))
            last = lines[-1]
            if "error" in last:
                raise _HTTPError(500, last["error"])
            await self._native(req, last)
            return
        await self._stream(req, _NDJSON, (_encode(line) + b"\n" for line in lines), delay)

    @staticmethod
    def _layers(model: str) -> list[tuple[str, int]]:
        """``(digest, size)`` of a model's two layers: the weights and a small params blob."""
        weights = _digest(model)
        params = hashlib.sha256(f"params:{_full_name(model)}".encode()).hexdigest()
        return [(weights, _size(model)), (params, _PARAMS_LAYER)]

    @staticmethod
    def _transfer(verb: str, layers: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """Per layer: a line before any byte, one half way, one complete."""
        lines: list[dict[str, Any]] = []
        for digest, size in layers:
            status = f"{verb} {digest[:12]}"
            head = {"status": status, "digest": f"sha256:{digest}", "total": size}
            lines.append(head)
            lines.append({**head, "completed": size // 2})
            lines.append({**head, "completed": size})
        return lines

    async def _pull(self, req: _Request) -> None:
        payload = _parse(req.body)
        model = self._target(payload)
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        pullable = self._mock.pullable
        if pullable is not None and model not in pullable:
            lines.append({"error": "pull model manifest: file does not exist"})
        else:
            lines += self._transfer("pulling", self._layers(model))
            lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}]
            lines.append({"status": "success"})
            if self._mock.scenario_for(model) is None:
                self._mock.models.append(model)
        await self._progress(req, payload, lines)

    async def _push(self, req: _Request) -> None:
        payload = _parse(req.body)
        model, _ = self._scenario(self._target(payload))
        lines: list[dict[str, Any]] = [{"status": "retrieving manifest"}]
        lines += self._transfer("pushing", self._layers(model))
        lines += [{"status": "pushing manifest"}, {"status": "success"}]
        await self._progress(req, payload, lines)

    async def _create(self, req: _Request) -> None:
        payload = _parse(req.body)
        model = self._target(payload)
        source = payload.get("from")
        lines: list[dict[str, Any]] = []
        if isinstance(source, str) and source:
            self._scenario(source)
            lines.append({"status": f"using existing layer sha256:{_digest(source)}"})
        lines += [{"status": "writing manifest"}, {"status": "success"}]
        if self._mock.scenario_for(model) is None:
            self._mock.models.append(model)
        await self._progress(req, payload, lines)

    async def _copy(self, req: _Request) -> None:
        payload = _parse(req.body)
        source, destination = payload.get("source"), payload.get("destination")
        if not isinstance(source, str) or not isinstance(destination, str):
            raise _HTTPError(400, "source and destination are required")
        if self._mock.scenario_for(source) is None:
            raise _HTTPError(404, f'model "{source}" not found')
        if self._mock.scenario_for(destination) is None:
            self._mock.models.append(destination)
        await _empty(req.send)

    async def _delete(self, req: _Request) -> None:
        payload = _parse(req.body)
        model, _ = self._scenario(self._target(payload))
        names = {_full_name(model)}
        self._mock.models[:] = [m for m in self._mock.models if _full_name(m) not in names]
        for name in [n for n in self._mock.scenarios if _full_name(n) in names]:
            del self._mock.scenarios[name]
        await _empty(req.send)

    async def _generate(self, req: _Request) -> None:
        payload = _parse(req.body)
        model, scenario = self._scenario(payload.get("model"))
        if not payload.get("prompt") and not payload.get("images"):
            plan = _loaded(model, scenario, payload)
            await self._native(req, _generate_record(plan, "", "", False))
            return
        prompt = _count(payload.get("system")) + _count(payload.get("prompt"))
        prompt = min(prompt, self._window(model, payload))  # a long prompt is cut to fit
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
        prompt = min(prompt, self._window(model, payload))
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
        prompt = min(prompt, self._window(model, {}))  # /v1 has no num_ctx: the model's
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
        created = _MODIFIED_NS // NS_PER_S
        data = [
            {"id": _full_name(m), "object": "model", "created": created, "owned_by": _owner(m)}
            for m in self._models()
        ]
        await self._v1(req, {"object": "list", "data": data or None})  # Go: nil slice -> null

    async def _v1_model(self, req: _Request) -> None:
        model = req.path.removeprefix("/v1/models/")
        model, _ = self._scenario(model)
        created = _MODIFIED_NS // NS_PER_S
        await self._v1(
            req, {"id": model, "object": "model", "created": created, "owned_by": _owner(model)}
        )
